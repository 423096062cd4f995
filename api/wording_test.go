package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/catalog"
)

// TestPagesSpeakPlainly: sizes read in KiB, MiB and GiB.
func TestPagesSpeakPlainly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "plain", Title: "Plain", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	ep, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	if _, err := ts.db.Exec(ctx, `UPDATE torrents SET length = 1572864 WHERE id = $1`, rec.ID); err != nil {
		t.Fatal(err)
	}
	page := readBody(t, ts.do(t, &owner, "GET", fmt.Sprintf("/shows/%d/episodes/%d", show.ID, ep.ID), nil))
	if !strings.Contains(page, ">1.5 MiB<") || strings.Contains(page, "1572864 bytes<") {
		t.Errorf("episode page does not give the size as 1.5 MiB")
	}
	if page := readBody(t, ts.do(t, nil, "GET", fmt.Sprintf("/s/plain/e/%d", ep.ID), nil)); !strings.Contains(page, "pilot.mp3 · 1.5 MiB") {
		t.Errorf("fan episode page does not give the size as 1.5 MiB")
	}
}
