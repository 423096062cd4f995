package catalog

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

func newAccount(t *testing.T, db *pgxpool.Pool, email, role string) Account {
	t.Helper()
	var a Account
	err := db.QueryRow(context.Background(), `INSERT INTO accounts (email, name, password_hash, role) VALUES ($1, $1, 'x', $2)
		RETURNING id, email, role`, email, role).Scan(&a.ID, &a.Email, &a.Role)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func fieldError(t *testing.T, err error, field string) string {
	t.Helper()
	var fe FieldErrors
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v, want field errors naming %s", err, field)
	}
	msg, ok := fe[field]
	if !ok {
		t.Fatalf("field errors %v name no %s", fe, field)
	}
	return msg
}

func TestCreateShow(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := newAccount(t, db, "ann@example.com", RoleCreator)

	t.Run("OK", func(t *testing.T) {
		s, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: " Night-Radio ", Title: " Night radio ", Currency: "eur", FundingGoal: "500.50"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Slug != "night-radio" || s.Title != "Night radio" || s.Currency != "EUR" || s.FundingGoal != 50050 || s.OwnerID != ann.ID {
			t.Fatalf("show %+v", s)
		}
		if s.GoalText() != "500.50" {
			t.Fatalf("goal text %q", s.GoalText())
		}
	})
	t.Run("ZeroDecimalGoal", func(t *testing.T) {
		s, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: "yen", Title: "Yen", Currency: "JPY", FundingGoal: "5000"})
		if err != nil || s.FundingGoal != 5000 || s.GoalText() != "5000" {
			t.Fatalf("show %+v, %v", s, err)
		}
	})
	for _, tt := range []struct {
		name, field string
		in          ShowInput
	}{
		{"ErrSlugTaken", "slug", ShowInput{Slug: "night-radio", Title: "Again", Currency: "USD"}},
		{"ErrSlugShort", "slug", ShowInput{Slug: "n", Title: "N", Currency: "USD"}},
		{"ErrSlugCharacters", "slug", ShowInput{Slug: "night--radio", Title: "N", Currency: "USD"}},
		{"ErrTitleRequired", "title", ShowInput{Slug: "untitled", Title: "  ", Currency: "USD"}},
		{"ErrTitleLong", "title", ShowInput{Slug: "long", Title: strings.Repeat("é", 201), Currency: "USD"}},
		{"ErrCurrency", "currency", ShowInput{Slug: "coins", Title: "Coins", Currency: "XYZ"}},
		{"ErrGoalNegative", "funding_goal", ShowInput{Slug: "neg", Title: "Neg", Currency: "USD", FundingGoal: "-5"}},
		{"ErrGoalDecimals", "funding_goal", ShowInput{Slug: "yen2", Title: "Yen", Currency: "JPY", FundingGoal: "5.5"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CreateShow(ctx, db, ann.ID, tt.in)
			if msg := fieldError(t, err, tt.field); msg == "" {
				t.Fatalf("empty message for %s", tt.field)
			}
		})
	}
}

// A show is found by id only by its owner or an admin; anyone else learns nothing, not even that
// it exists. Listing and paging follow the same rule.
func TestShowVisibility(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann, bob := newAccount(t, db, "ann@example.com", RoleCreator), newAccount(t, db, "bob@example.com", RoleCreator)
	admin := newAccount(t, db, "root@example.com", RoleAdmin)
	var anns []Show
	for _, slug := range []string{"one", "two", "three"} {
		s, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: slug, Title: slug, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		anns = append(anns, s)
	}
	if _, err := CreateShow(ctx, db, bob.ID, ShowInput{Slug: "bobs", Title: "Bob's", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	if _, err := FindShowByID(ctx, db, anns[0].ID, bob); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another creator finding Ann's show: %v, want ErrNotFound", err)
	}
	for _, viewer := range []Account{ann, admin} {
		if s, err := FindShowByID(ctx, db, anns[0].ID, viewer); err != nil || s.ID != anns[0].ID {
			t.Fatalf("%s finding the show: %+v, %v", viewer.Email, s, err)
		}
	}
	if s, err := FindShowBySlug(ctx, db, "two"); err != nil || s.ID != anns[1].ID {
		t.Fatalf("by slug: %+v, %v", s, err)
	}
	if _, err := FindShowBySlug(ctx, db, "nowhere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown slug: %v", err)
	}
	list, err := ListShows(ctx, db, ann)
	if err != nil || len(list) != 3 || list[0].ID != anns[2].ID {
		t.Fatalf("Ann's shows %+v, %v: want her 3, newest first", list, err)
	}
	if all, err := ListShows(ctx, db, admin); err != nil || len(all) != 4 {
		t.Fatalf("admin's shows: %d, %v", len(all), err)
	}
	page, err := ShowsPage(ctx, db, ann, 0, 2)
	if err != nil || len(page) != 2 || page[0].ID != anns[0].ID || page[1].ID != anns[1].ID {
		t.Fatalf("first page %+v, %v", page, err)
	}
	page, err = ShowsPage(ctx, db, ann, page[1].ID, 2)
	if err != nil || len(page) != 1 || page[0].ID != anns[2].ID {
		t.Fatalf("second page %+v, %v", page, err)
	}
}

func TestUpdateShow(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := newAccount(t, db, "ann@example.com", RoleCreator)
	a, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: "first", Title: "First", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: "second", Title: "Second", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	got, err := UpdateShow(ctx, db, a.ID, ShowInput{Slug: "renamed", Title: "Renamed", Description: "New", Currency: "GBP", FundingGoal: "10"})
	if err != nil || got.Slug != "renamed" || got.Currency != "GBP" || got.FundingGoal != 1000 || !got.UpdatedAt.After(a.UpdatedAt) {
		t.Fatalf("updated %+v, %v", got, err)
	}
	fieldError(t, func() error {
		_, err := UpdateShow(ctx, db, a.ID, ShowInput{Slug: "second", Title: "Clash", Currency: "USD"})
		return err
	}(), "slug")
	if _, err := UpdateShow(ctx, db, a.ID+100, ShowInput{Slug: "ghost", Title: "Ghost", Currency: "USD"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating a show that does not exist: %v, want ErrNotFound", err)
	}
}

func TestEpisodes(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := newAccount(t, db, "ann@example.com", RoleCreator)
	show, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: "eps", Title: "Episodes", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	fieldError(t, func() error { _, err := CreateEpisode(ctx, db, show.ID, EpisodeInput{Title: " "}); return err }(), "title")
	fieldError(t, func() error {
		_, err := CreateEpisode(ctx, db, show.ID, EpisodeInput{Title: "Long", Description: strings.Repeat("x", 5001)})
		return err
	}(), "description")
	var eps []Episode
	for _, title := range []string{"Pilot", "Second", "Third"} {
		e, err := CreateEpisode(ctx, db, show.ID, EpisodeInput{Title: " " + title + " "})
		if err != nil || e.Title != title || e.Status != "draft" {
			t.Fatalf("episode %+v, %v", e, err)
		}
		eps = append(eps, e)
	}
	if _, err := db.Exec(ctx, `UPDATE episodes SET status = 'published', published_at = now() WHERE id = $1`, eps[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE episodes SET status = 'deleted' WHERE id = $1`, eps[2].ID); err != nil {
		t.Fatal(err)
	}
	list, err := ListEpisodes(ctx, db, show.ID)
	if err != nil || len(list) != 2 || list[0].ID != eps[1].ID {
		t.Fatalf("episodes %+v, %v: want 2 without the deleted one, newest first", list, err)
	}
	pub, err := PublishedEpisodes(ctx, db, show.ID, 10)
	if err != nil || len(pub) != 1 || pub[0].ID != eps[1].ID {
		t.Fatalf("published %+v, %v", pub, err)
	}
	if _, err := FindPublishedEpisode(ctx, db, show.ID, eps[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a draft found as published: %v", err)
	}
	if e, err := FindPublishedEpisode(ctx, db, show.ID, eps[1].ID); err != nil || e.ID != eps[1].ID {
		t.Fatalf("published episode %+v, %v", e, err)
	}
	page, err := EpisodesPage(ctx, db, show.ID, eps[0].ID, 10)
	if err != nil || len(page) != 1 || page[0].ID != eps[1].ID {
		t.Fatalf("page after the first %+v, %v", page, err)
	}
}

// encodeImage is a w x h image in format (png or jpeg), as an image editor saves it.
func encodeImage(t *testing.T, format string, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range min(w, h) {
		img.SetGray(i, i, color.Gray{Y: 200})
	}
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 70})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Artwork is checked by its content and its size as podcast directories take it (a square
// PNG or JPEG of 1400 to 3000 pixels a side), kept on disk and recorded on the show.
func TestArtwork(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	ann := newAccount(t, db, "ann@example.com", RoleCreator)
	show, err := CreateShow(ctx, db, ann.ID, ShowInput{Slug: "art", Title: "Art", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	art := Artwork{Dir: t.TempDir()}
	if _, _, _, err := art.Open(ctx, db, show.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("artwork before any: %v, want ErrNotFound", err)
	}
	png := encodeImage(t, "png", 1400, 1400)
	if err := art.Save(ctx, db, show.ID, bytes.NewReader(png)); err != nil {
		t.Fatal(err)
	}
	f, typ, _, err := art.Open(ctx, db, show.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if typ != "image/png" || !bytes.Equal(got, png) {
		t.Fatalf("artwork %s of %d bytes", typ, len(got))
	}
	if err := art.Save(ctx, db, show.ID, bytes.NewReader(encodeImage(t, "jpeg", 3000, 3000))); err != nil {
		t.Fatal(err)
	}
	var w, h int
	if err := db.QueryRow(ctx, `SELECT artwork_type, artwork_width, artwork_height FROM shows WHERE id = $1`, show.ID).Scan(&typ, &w, &h); err != nil || typ != "image/jpeg" || w != 3000 || h != 3000 {
		t.Fatalf("JPEG recorded as %s %dx%d (%v)", typ, w, h, err)
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"1000x1000":  {encodeImage(t, "png", 1000, 1000), "at least 1400x1400 pixels: this one is 1000x1000"},
		"1399x1399":  {encodeImage(t, "jpeg", 1399, 1399), "at least 1400x1400"},
		"not square": {encodeImage(t, "png", 1600, 1400), "must be square: this one is 1600x1400"},
		"3001x3001":  {encodeImage(t, "jpeg", 3001, 3001), "at most 3000x3000"},
		"webp":       {append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), make([]byte, 32)...), "PNG or JPEG"},
		"svg":        {[]byte("<svg onload=alert(1)></svg>"), "PNG or JPEG"},
		"cut PNG":    {png[:30], "could not be read"},
		"over 2 MiB": {append(png, make([]byte, MaxArtworkBytes)...), "2 MiB"},
	} {
		if msg := fieldError(t, art.Save(ctx, db, show.ID, bytes.NewReader(c.b)), "artwork"); !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q, want it to say %q", name, msg, c.want)
		}
	}
	if _, typ, _, _ := art.Open(ctx, db, show.ID); typ != "image/jpeg" {
		t.Fatalf("a refused image replaced the artwork: %s", typ)
	}
}
