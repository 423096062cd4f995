package catalog

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/money"
)

// Show is a creator's series of episodes, with its fan page at /s/{slug}.
type Show struct {
	ID          int64     `db:"id"`
	OwnerID     int64     `db:"owner_id"`
	Slug        string    `db:"slug"`
	Title       string    `db:"title"`
	Description string    `db:"description"`
	Currency    string    `db:"currency"`
	FundingGoal int64     `db:"funding_goal"` // minor units per month; 0 means no goal
	ArtworkType string    `db:"artwork_type"` // empty when the show has no image
	Language    string    `db:"language"`     // BCP 47, for the feed
	Category    string    `db:"category"`     // one of Apple Podcasts' Categories, or empty
	Subcategory string    `db:"subcategory"`  // one of the category's, or empty
	Explicit    bool      `db:"explicit"`
	Author      string    `db:"author"`      // itunes:author; empty: the title
	OwnerName   string    `db:"owner_name"`  // itunes:owner
	OwnerEmail  string    `db:"owner_email"` // itunes:owner and podcast:locked's owner
	ShowType    string    `db:"show_type"`   // episodic or serial
	Locked      bool      `db:"locked"`      // podcast:locked: other platforms may not import the feed
	PodcastGUID *string   `db:"podcast_guid"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
}

// GoalText is the funding goal as a decimal string in the show's currency.
func (s Show) GoalText() string {
	c, err := money.LookupCurrency(s.Currency)
	if err != nil {
		return fmt.Sprint(s.FundingGoal)
	}
	return c.Format(s.FundingGoal)
}

// ShowInput is what the show form sends, as typed.
type ShowInput struct {
	Slug, Title, Description, Currency, FundingGoal string
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// parse validates the form and returns the values to store.
func (in *ShowInput) parse() (currency string, goal int64, err error) {
	fe := FieldErrors{}
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	in.Title = strings.TrimSpace(in.Title)
	in.Description = strings.TrimSpace(in.Description)
	switch {
	case len(in.Slug) < 2 || len(in.Slug) > 60:
		fe["slug"] = "Slug must be 2 to 60 characters."
	case !slugRE.MatchString(in.Slug):
		fe["slug"] = "Slug may hold only a-z, 0-9 and single hyphens between them."
	}
	checkTitle(fe, in.Title, in.Description)
	cur, cerr := money.LookupCurrency(in.Currency)
	if cerr != nil {
		fe["currency"] = fmt.Sprintf("Currency %q is not one Fanseed accepts.", in.Currency)
	} else {
		in.Currency = cur.Code
		g := strings.TrimSpace(in.FundingGoal)
		if strings.HasPrefix(g, "-") {
			fe["funding_goal"] = "Funding goal cannot be negative."
		} else if g != "" {
			if goal, err = cur.Parse(g); err != nil {
				fe["funding_goal"] = fmt.Sprintf("Funding goal must be an amount in %s such as %s.", cur.Code, cur.Format(50000))
			}
		}
	}
	if len(fe) > 0 {
		return "", 0, fe
	}
	return cur.Code, goal, nil
}

const showColumns = `id, owner_id, slug, title, description, currency, funding_goal, artwork_type, language, category, subcategory,
	explicit, author, owner_name, owner_email, show_type, locked, podcast_guid::text, created_at, updated_at`

// CreateShow stores a new show owned by ownerID.
func CreateShow(ctx context.Context, db DBTX, ownerID int64, in ShowInput) (Show, error) {
	cur, goal, err := in.parse()
	if err != nil {
		return Show{}, err
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO shows (owner_id, slug, title, description, currency, funding_goal)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+showColumns,
		ownerID, in.Slug, in.Title, in.Description, cur, goal)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Show])
	if err != nil {
		return Show{}, conflictField(err, "shows_slug_key", "slug", "Another show already uses this slug.")
	}
	return s, nil
}

// UpdateShow changes a show's fields.
func UpdateShow(ctx context.Context, db DBTX, id int64, in ShowInput) (Show, error) {
	cur, goal, err := in.parse()
	if err != nil {
		return Show{}, err
	}
	rows, _ := db.Query(ctx, `
		UPDATE shows SET slug = $2, title = $3, description = $4, currency = $5, funding_goal = $6, updated_at = now()
		WHERE id = $1 RETURNING `+showColumns,
		id, in.Slug, in.Title, in.Description, cur, goal)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Show])
	if err != nil {
		return Show{}, notFound(conflictField(err, "shows_slug_key", "slug", "Another show already uses this slug."), "show")
	}
	return s, nil
}

// FindShowByID loads a show for the account: its owner or an admin. Anyone else gets
// ErrNotFound, so that guessed ids reveal nothing.
func FindShowByID(ctx context.Context, db DBTX, id int64, viewer Account) (Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows WHERE id = $1 AND (owner_id = $2 OR $3)`,
		id, viewer.ID, viewer.IsAdmin())
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Show])
	return s, notFound(err, "show")
}

// FindShow loads a show for the platform's own work (a stream's recording), whoever asks.
func FindShow(ctx context.Context, db DBTX, id int64) (Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows WHERE id = $1`, id)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Show])
	return s, notFound(err, "show")
}

// FindShowBySlug loads a show for its public pages.
func FindShowBySlug(ctx context.Context, db DBTX, slug string) (Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows WHERE slug = $1`, slug)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Show])
	return s, notFound(err, "show")
}

// ListShows returns the shows an account manages (all of them for an admin), newest first.
func ListShows(ctx context.Context, db DBTX, viewer Account) ([]Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows WHERE owner_id = $1 OR $2 ORDER BY created_at DESC, id DESC`,
		viewer.ID, viewer.IsAdmin())
	shows, err := pgx.CollectRows(rows, pgx.RowToStructByName[Show])
	if err != nil {
		return nil, fmt.Errorf("list shows: %w", err)
	}
	return shows, nil
}

// ListPublishedShows returns up to limit shows that have a published episode, the most
// recently published first, for the home page.
func ListPublishedShows(ctx context.Context, db DBTX, limit int) ([]Show, error) {
	rows, _ := db.Query(ctx, `SELECT `+showColumns+` FROM shows s
		JOIN LATERAL (SELECT max(published_at) AS last FROM episodes e WHERE e.show_id = s.id AND e.status = 'published') p ON p.last IS NOT NULL
		ORDER BY p.last DESC, s.id DESC LIMIT $1`, limit)
	shows, err := pgx.CollectRows(rows, pgx.RowToStructByName[Show])
	if err != nil {
		return nil, fmt.Errorf("list published shows: %w", err)
	}
	return shows, nil
}
