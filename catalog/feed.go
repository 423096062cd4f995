package catalog

import (
	"context"
	"crypto/sha1"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/language"
)

// Categories is Apple Podcasts' category list: each category with its subcategories, in the
// order Apple lists them. A show's feed names one category and, optionally, one of its
// subcategories.
var Categories = []Category{
	{"Arts", []string{"Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"}},
	{"Business", []string{"Careers", "Entrepreneurship", "Investing", "Management", "Marketing", "Non-Profit"}},
	{"Comedy", []string{"Comedy Interviews", "Improv", "Stand-Up"}},
	{"Education", []string{"Courses", "How To", "Language Learning", "Self-Improvement"}},
	{"Fiction", []string{"Comedy Fiction", "Drama", "Science Fiction"}},
	{"Government", nil},
	{"History", nil},
	{"Health & Fitness", []string{"Alternative Health", "Fitness", "Medicine", "Mental Health", "Nutrition", "Sexuality"}},
	{"Kids & Family", []string{"Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"}},
	{"Leisure", []string{"Animation & Manga", "Automotive", "Aviation", "Crafts", "Games", "Hobbies", "Home & Garden", "Video Games"}},
	{"Music", []string{"Music Commentary", "Music History", "Music Interviews"}},
	{"News", []string{"Business News", "Daily News", "Entertainment News", "News Commentary", "Politics", "Sports News", "Tech News"}},
	{"Religion & Spirituality", []string{"Buddhism", "Christianity", "Hinduism", "Islam", "Judaism", "Religion", "Spirituality"}},
	{"Science", []string{"Astronomy", "Chemistry", "Earth Sciences", "Life Sciences", "Mathematics", "Natural Sciences", "Nature", "Physics", "Social Sciences"}},
	{"Society & Culture", []string{"Documentary", "Personal Journals", "Philosophy", "Places & Travel", "Relationships"}},
	{"Sports", []string{"Baseball", "Basketball", "Cricket", "Fantasy Sports", "Football", "Golf", "Hockey", "Rugby", "Running", "Soccer", "Swimming", "Tennis", "Volleyball", "Wilderness", "Wrestling"}},
	{"Technology", nil},
	{"True Crime", nil},
	{"TV & Film", []string{"After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"}},
}

// Category is one of Apple Podcasts' categories and its subcategories.
type Category struct {
	Name string
	Subs []string
}

// categoryValue is how the show form names a category and subcategory in one field.
func categoryValue(cat, sub string) string {
	if sub == "" {
		return cat
	}
	return cat + "/" + sub
}

// CategoryValue is the show's category as the form's select names it.
func (s Show) CategoryValue() string { return categoryValue(s.Category, s.Subcategory) }

// splitCategory checks a form's category value against Apple's list.
func splitCategory(v string) (cat, sub string, ok bool) {
	cat, sub, _ = strings.Cut(v, "/")
	for _, c := range Categories {
		if c.Name != cat {
			continue
		}
		if sub == "" {
			return cat, "", true
		}
		for _, s := range c.Subs {
			if s == sub {
				return cat, sub, true
			}
		}
	}
	return "", "", false
}

// FeedInput is what the show form sends about the podcast feed, as typed.
type FeedInput struct {
	Language, Category, Author, OwnerName, OwnerEmail, Type string
	Explicit, Locked                                        bool
}

// FeedInputOf is a show's feed settings as the form shows them.
func FeedInputOf(s Show) FeedInput {
	return FeedInput{Language: s.Language, Category: s.CategoryValue(), Author: s.Author, OwnerName: s.OwnerName,
		OwnerEmail: s.OwnerEmail, Type: s.ShowType, Explicit: s.Explicit, Locked: s.Locked}
}

type feedValues struct {
	language, category, subcategory, author, ownerName, ownerEmail, showType string
	explicit, locked                                                         bool
}

// parse validates the feed settings and returns the values to store.
func (in *FeedInput) parse() (feedValues, error) {
	fe := FieldErrors{}
	in.Language = strings.TrimSpace(in.Language)
	in.Author = strings.TrimSpace(in.Author)
	in.OwnerName = strings.TrimSpace(in.OwnerName)
	in.OwnerEmail = strings.TrimSpace(in.OwnerEmail)
	v := feedValues{author: in.Author, ownerName: in.OwnerName, ownerEmail: in.OwnerEmail,
		explicit: in.Explicit, locked: in.Locked, showType: in.Type}
	if lang, msg := parseLanguage(in.Language); msg != "" {
		fe["language"] = msg
	} else {
		v.language = lang
	}
	if in.Category != "" {
		var ok bool
		if v.category, v.subcategory, ok = splitCategory(in.Category); !ok {
			fe["category"] = fmt.Sprintf("Category %q is not one of Apple Podcasts' categories: pick one from the list.", in.Category)
		}
	}
	if utf8.RuneCountInString(in.Author) > 200 {
		fe["author"] = "Author must be at most 200 characters."
	}
	if utf8.RuneCountInString(in.OwnerName) > 200 {
		fe["owner_name"] = "Owner name must be at most 200 characters."
	}
	if in.OwnerEmail != "" {
		if msg := checkEmail(in.OwnerEmail); msg != "" {
			fe["owner_email"] = "Owner email: " + msg
		}
	} else if in.Locked {
		fe["owner_email"] = "A locked feed needs the owner's email: directories ask it before the feed moves."
	}
	switch in.Type {
	case "":
		v.showType = "episodic"
	case "episodic", "serial":
	default:
		fe["type"] = "Type must be episodic (newest first) or serial (in order)."
	}
	if len(fe) > 0 {
		return feedValues{}, fe
	}
	return v, nil
}

// parseLanguage checks a language code (BCP 47, such as en, en-US or pt-BR, its language an
// ISO 639 code) and returns it in its canonical form.
func parseLanguage(s string) (string, string) {
	if s == "" {
		return "", "Language is required: directories list a show under its language (en, fr, pt-BR...)."
	}
	tag, err := language.Parse(s)
	if err != nil || len(s) > 35 {
		return "", fmt.Sprintf("Language %q is not a language code: use a BCP 47 code such as en, en-US, fr or pt-BR.", s)
	}
	if base, conf := tag.Base(); conf != language.Exact || base.String() == "und" {
		return "", fmt.Sprintf("Language %q is not a language code: use a BCP 47 code such as en, en-US, fr or pt-BR.", s)
	}
	return tag.String(), ""
}

// UpdateShowFeed changes what a show's podcast feed tells directories.
func UpdateShowFeed(ctx context.Context, db DBTX, id int64, in FeedInput) error {
	v, err := in.parse()
	if err != nil {
		return err
	}
	tag, err := db.Exec(ctx, `UPDATE shows SET language = $2, category = $3, subcategory = $4, explicit = $5, author = $6,
		owner_name = $7, owner_email = $8, show_type = $9, locked = $10, updated_at = now() WHERE id = $1`,
		id, v.language, v.category, v.subcategory, v.explicit, v.author, v.ownerName, v.ownerEmail, v.showType, v.locked)
	if err != nil {
		return fmt.Errorf("update feed of show %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("show %d: %w", id, ErrNotFound)
	}
	return nil
}

// podcastNamespace is the Podcasting 2.0 namespace's UUID, under which podcast:guid is made.
var podcastNamespace = [16]byte{0xea, 0xd4, 0xc2, 0x36, 0xbf, 0x58, 0x58, 0xc6, 0xa2, 0xc6, 0xa6, 0xb2, 0x8d, 0x12, 0x8c, 0xb6}

// PodcastGUID is the podcast:guid of a feed: the UUIDv5 of its URL, scheme and trailing
// slashes removed, in the Podcasting 2.0 namespace, as the namespace's specification says.
func PodcastGUID(feedURL string) string {
	u := feedURL
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	u = strings.TrimRight(u, "/")
	h := sha1.New()
	h.Write(podcastNamespace[:])
	h.Write([]byte(u))
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// EnsurePodcastGUID gives a show its podcast:guid once, from the feed URL it has then, and
// returns the one it keeps: the guid never changes afterwards, even if the feed moves.
func EnsurePodcastGUID(ctx context.Context, db DBTX, showID int64, feedURL string) (string, error) {
	var guid string
	err := db.QueryRow(ctx, `UPDATE shows SET podcast_guid = coalesce(podcast_guid, $2::uuid) WHERE id = $1
		RETURNING podcast_guid::text`, showID, PodcastGUID(feedURL)).Scan(&guid)
	if err != nil {
		return "", notFound(err, "show")
	}
	return guid, nil
}
