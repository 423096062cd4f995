package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
)

// An unfinished upload nobody wrote to for UPLOAD_EXPIRE_AFTER is deleted, bytes and all: a
// client resuming it hears it is gone and the episode says to upload again. An upload still
// arriving and a finished one stay, and so do the files of an upload being created.
func TestAbandonedUploadsExpire(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	start := func(slug string, data []byte, upTo int) (catalog.Episode, string) {
		t.Helper()
		ep := ts.newEpisode(t, owner, slug)
		path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": slug + ".mp4"})
		if path == "" {
			t.Fatalf("create: %d", resp.StatusCode)
		}
		if resp := ts.tusPatch(t, &owner, path, 0, data[:upTo]); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH: %d", resp.StatusCode)
		}
		return ep, path
	}
	data := mediaBytes(t, 100_000)
	abandoned, abandonedPath := start("abandoned", data, 40_000)
	_, activePath := start("active", data, 40_000)
	finished, finishedPath := start("finished", data, len(data))
	id := func(path string) string { return strings.TrimSuffix(filepath.Base(path), "/") }
	old := time.Now().Add(-25 * time.Hour)
	age := func(uploadID string) {
		t.Helper()
		for _, name := range []string{uploadID, uploadID + ".info", uploadID + ".hash"} {
			if err := os.Chtimes(filepath.Join(ts.uploadDir, name), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// All three were created long ago; the active one was written to a minute ago.
	if _, err := ts.db.Exec(ctx, `UPDATE uploads SET created_at = $1`, old); err != nil {
		t.Fatal(err)
	}
	age(id(abandonedPath))
	age(id(finishedPath))
	// Files of uploads whose creation failed half way, one old and one new.
	oldOrphan, newOrphan := strings.Repeat("a", 32), strings.Repeat("b", 32)
	for _, name := range []string{oldOrphan, oldOrphan + ".info", newOrphan + ".info"} {
		if err := os.WriteFile(filepath.Join(ts.uploadDir, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(filepath.Join(ts.uploadDir, oldOrphan), old, old)
	os.Chtimes(filepath.Join(ts.uploadDir, oldOrphan+".info"), old, old)

	store, err := publishing.NewUploadStore(ts.uploadDir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := publishing.ExpireUploads(ctx, ts.db, store, time.Now().Add(-publishing.DefaultUploadExpireAfter))
	if err != nil || n != 1 {
		t.Fatalf("ExpireUploads = %d, %v; want the abandoned upload", n, err)
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(ts.uploadDir, name))
		return err == nil
	}
	for _, name := range []string{id(abandonedPath), id(abandonedPath) + ".info", id(abandonedPath) + ".hash", oldOrphan, oldOrphan + ".info"} {
		if exists(name) {
			t.Errorf("%s is still there", name)
		}
	}
	for _, name := range []string{id(activePath), id(finishedPath), newOrphan + ".info"} {
		if !exists(name) {
			t.Errorf("%s was deleted", name)
		}
	}
	req, _ := http.NewRequest("HEAD", ts.URL+abandonedPath, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	if resp := ts.send(t, &owner, req); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of the expired upload: %d, want 404", resp.StatusCode)
	}
	if st, reason := episodeStatus(t, ts, abandoned.ID); st != catalog.EpisodeFailed || !strings.Contains(reason, "Upload the file again") {
		t.Errorf("episode of the expired upload: %s %q", st, reason)
	}
	if got := ts.tusOffset(t, &owner, activePath); got != 40_000 {
		t.Errorf("active upload offset %d, want 40000", got)
	}
	if resp := ts.tusPatch(t, &owner, activePath, 40_000, data[40_000:]); resp.StatusCode != http.StatusNoContent {
		t.Errorf("active upload after expiry: PATCH %d", resp.StatusCode)
	}
	if st, _ := episodeStatus(t, ts, finished.ID); st != catalog.EpisodeProcessing {
		t.Errorf("finished episode: %s", st)
	}
	// The creator uploads the expired episode's file again.
	path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(abandoned.ID), "filename": "again.mp4"})
	if path == "" {
		t.Fatalf("new upload of the expired episode: %d %s", resp.StatusCode, readBody(t, resp))
	}
}
