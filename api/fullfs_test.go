package api_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/publishing"
)

// On a small disk, an upload larger than the free space is refused at creation, and one the
// disk fills up under is answered 507 with a plain message, never a 500 naming a path.
func TestUploadOnAFullDisk(t *testing.T) {
	t.Parallel()
	dir := testkit.SmallDisk(t, "1m")
	store, err := publishing.NewUploadStore(filepath.Join(dir, "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServerWith(t, func(c *api.Config) {
		c.Uploads, c.Publisher.Store, c.UploadMaxBytes = store, store, 10<<20
	}, io.Discard)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	check := func(what string, resp *http.Response) {
		t.Helper()
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusInsufficientStorage || strings.Contains(body, dir) || !strings.Contains(body, "room") {
			t.Errorf("%s: %d %q, want 507 with a plain message", what, resp.StatusCode, body)
		}
	}

	ep := ts.newEpisode(t, owner, "too-big")
	path, resp := ts.tusCreate(t, &owner, 2<<20, map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "big.mp4"})
	if path != "" {
		t.Fatal("an upload twice the free space was created")
	}
	check("create larger than the free space", resp)
	if st, _ := episodeStatus(t, ts, ep.ID); st != catalog.EpisodeDraft {
		t.Errorf("episode %s after the refusal, want draft", st)
	}

	data := mediaBytes(t, 700<<10)
	path, resp = ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "fits.mp4"})
	if path == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, readBody(t, resp))
	}
	// Something else takes most of the disk meanwhile.
	if err := os.WriteFile(filepath.Join(dir, "other"), make([]byte, 600<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	check("PATCH onto a full disk", ts.tusPatch(t, &owner, path, 0, data))

	// With room again, the upload resumes from what was kept.
	os.Remove(filepath.Join(dir, "other"))
	off := ts.tusOffset(t, &owner, path)
	if resp := ts.tusPatch(t, &owner, path, off, data[off:]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH after room was made: %d %s", resp.StatusCode, readBody(t, resp))
	}
	checkTorrent(t, ts, ep.ID, "fits.mp4", data)
}
