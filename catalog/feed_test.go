package catalog

import (
	"context"
	"testing"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// podcast:guid is the UUIDv5 the Podcasting 2.0 specification gives for its own example feed,
// whatever scheme or trailing slashes the URL has.
func TestPodcastGUID(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://mp3s.nashownotes.com/pc20rss.xml", "http://mp3s.nashownotes.com/pc20rss.xml//", "mp3s.nashownotes.com/pc20rss.xml"} {
		if got := PodcastGUID(u); got != "917393e3-1b1e-5cef-ace4-edaa54e1f810" {
			t.Errorf("PodcastGUID(%q) = %s, want the specification's 917393e3-1b1e-5cef-ace4-edaa54e1f810", u, got)
		}
	}
}

func TestFeedInput(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in             FeedInput
		lang, cat, sub string
	}{
		{FeedInput{Language: "en"}, "en", "", ""},
		{FeedInput{Language: " pt-br ", Category: "Arts/Books"}, "pt-BR", "Arts", "Books"},
		{FeedInput{Language: "fr-CA", Category: "True Crime", OwnerEmail: "me@example.com", Locked: true}, "fr-CA", "True Crime", ""},
		{FeedInput{Language: "zh-Hant-TW", Category: "TV & Film/After Shows", Type: "serial"}, "zh-Hant-TW", "TV & Film", "After Shows"},
	}
	for _, c := range ok {
		v, err := c.in.parse()
		if err != nil {
			t.Errorf("%+v: %v", c.in, err)
			continue
		}
		if v.language != c.lang || v.category != c.cat || v.subcategory != c.sub {
			t.Errorf("%+v: language %q category %q/%q, want %q %q/%q", c.in, v.language, v.category, v.subcategory, c.lang, c.cat, c.sub)
		}
	}
	bad := []struct {
		in    FeedInput
		field string
	}{
		{FeedInput{}, "language"},
		{FeedInput{Language: "english"}, "language"},
		{FeedInput{Language: "xx"}, "language"},
		{FeedInput{Language: "en_US!"}, "language"},
		{FeedInput{Language: "en", Category: "Cooking"}, "category"},
		{FeedInput{Language: "en", Category: "Arts/Stand-Up"}, "category"},
		{FeedInput{Language: "en", Locked: true}, "owner_email"},
		{FeedInput{Language: "en", OwnerEmail: "not an address"}, "owner_email"},
		{FeedInput{Language: "en", Type: "daily"}, "type"},
	}
	for _, c := range bad {
		_, err := c.in.parse()
		fe, isFE := err.(FieldErrors)
		if !isFE || fe[c.field] == "" {
			t.Errorf("%+v: error %v, want one naming %s", c.in, err, c.field)
		}
	}
}

// A show keeps the podcast:guid of the first feed URL it had, even after its slug changes.
func TestEnsurePodcastGUID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	owner := newAccount(t, db, "o@example.com", RoleCreator)
	show, err := CreateShow(ctx, db, owner.ID, ShowInput{Slug: "first", Title: "First", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	g1, err := EnsurePodcastGUID(ctx, db, show.ID, "https://fanseed.test/s/first/podcast.rss")
	if err != nil || g1 != PodcastGUID("fanseed.test/s/first/podcast.rss") {
		t.Fatalf("guid %q, %v", g1, err)
	}
	g2, err := EnsurePodcastGUID(ctx, db, show.ID, "https://fanseed.test/s/renamed/podcast.rss")
	if err != nil || g2 != g1 {
		t.Fatalf("guid after the feed moved %q (%v), want the first %q", g2, err, g1)
	}
}
