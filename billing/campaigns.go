package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Campaign states: a draft is edited freely; live takes pledges and its goal, currency,
// deadline and plan are frozen (the schema refuses a change); at the deadline it succeeds or
// fails; a draft or live campaign can be cancelled (nobody charged).
const (
	CampaignDraft     = "draft"
	CampaignLive      = "live"
	CampaignSucceeded = "succeeded"
	CampaignFailed    = "failed"
	CampaignCancelled = "cancelled"
)

// SourceCampaigns is the source of money charged for pledges; a campaign's own share plan has
// it, so no donation or sponsorship is ever split by that plan.
const SourceCampaigns = "campaigns"

// Campaign is a community-funded project of a show: a goal in a currency by a deadline.
type Campaign struct {
	ID           int64      `db:"id"`
	ShowID       int64      `db:"show_id"`
	Title        string     `db:"title"`
	Story        string     `db:"story"`
	Goal         int64      `db:"goal"`
	Currency     string     `db:"currency"`
	Deadline     time.Time  `db:"deadline"`
	TimeZone     string     `db:"time_zone"` // IANA name, shown to creator and backers alike
	AllOrNothing bool       `db:"all_or_nothing"`
	Status       string     `db:"status"`
	SharePlanID  *int64     `db:"share_plan_id"`
	OwnPlan      bool       `db:"own_plan"`
	RefundedAt   *time.Time `db:"refunded_at"`
	CreatedAt    time.Time  `db:"created_at"`
	LaunchedAt   *time.Time `db:"launched_at"`
	ClosedAt     *time.Time `db:"closed_at"`
}

const campaignColumns = `id, show_id, title, story, goal, currency, deadline, time_zone, all_or_nothing, status,
	share_plan_id, own_plan, refunded_at, created_at, launched_at, closed_at`

// GoalMoney is the campaign's goal.
func (c Campaign) GoalMoney() Money { return Money{Amount: c.Goal, Currency: c.Currency} }

// Location is the campaign's time zone (UTC if it no longer loads).
func (c Campaign) Location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// DeadlineText is the deadline in the campaign's time zone, with the zone named.
func (c Campaign) DeadlineText() string {
	return c.Deadline.In(c.Location()).Format("Mon 2 Jan 2006 15:04 MST") + " (" + c.TimeZone + ")"
}

// CampaignInput is a campaign as its creator writes it.
type CampaignInput struct {
	Title        string
	Story        string
	Goal         int64 // minor units of Currency
	Currency     string
	Deadline     time.Time
	TimeZone     string
	AllOrNothing bool
	Stretch      []StretchGoal // amounts above the goal, each with what it pays for
	OwnPlan      []PlanLine    // the campaign's own share plan; nil for the show's
	FeePolicy    string        // of the own plan; "" for net
}

// StretchGoal is an amount beyond the goal and what reaching it adds.
type StretchGoal struct {
	ID          int64  `db:"id"`
	Amount      int64  `db:"amount"`
	Description string `db:"description"`
}

func (in *CampaignInput) validate(now time.Time) error {
	in.Title, in.Story, in.TimeZone = strings.TrimSpace(in.Title), strings.TrimSpace(in.Story), strings.TrimSpace(in.TimeZone)
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	if in.Title == "" || len(in.Title) > 200 {
		return fmt.Errorf("%w: title: required, at most 200 characters", ErrInvalid)
	}
	if len(in.Story) > 20000 {
		return fmt.Errorf("%w: story: at most 20,000 characters", ErrInvalid)
	}
	if _, err := LookupCurrency(in.Currency); err != nil {
		return fmt.Errorf("currency: %w", err)
	}
	if in.Goal <= 0 {
		return fmt.Errorf("%w: goal: must be more than zero", ErrInvalid)
	}
	if err := CheckStripeStep(in.Goal, in.Currency); err != nil {
		return fmt.Errorf("goal: %w", err)
	}
	if in.TimeZone == "" {
		return fmt.Errorf("%w: time zone: required (such as Europe/Paris)", ErrInvalid)
	}
	if _, err := time.LoadLocation(in.TimeZone); err != nil || len(in.TimeZone) > 64 {
		return fmt.Errorf("%w: time zone: %q is not a time zone name (such as Europe/Paris)", ErrInvalid, in.TimeZone)
	}
	if !in.Deadline.After(now) {
		return fmt.Errorf("%w: deadline: must be in the future", ErrInvalid)
	}
	if in.Deadline.After(now.AddDate(0, 0, 90)) {
		return fmt.Errorf("%w: deadline: at most 90 days away", ErrInvalid)
	}
	seen := map[int64]bool{}
	for i, g := range in.Stretch {
		in.Stretch[i].Description = strings.TrimSpace(g.Description)
		switch {
		case g.Amount <= in.Goal:
			return fmt.Errorf("%w: stretch goal %d: its amount must be above the goal", ErrInvalid, i+1)
		case seen[g.Amount]:
			return fmt.Errorf("%w: stretch goal %d: another has the same amount", ErrInvalid, i+1)
		case in.Stretch[i].Description == "" || len(in.Stretch[i].Description) > 1000:
			return fmt.Errorf("%w: stretch goal %d: description required, at most 1,000 characters", ErrInvalid, i+1)
		}
		seen[g.Amount] = true
	}
	if in.FeePolicy == "" {
		in.FeePolicy = FeePolicyNet
	}
	if in.OwnPlan != nil {
		if err := validatePlan(SourceCampaigns, in.FeePolicy, now, in.OwnPlan); err != nil {
			return fmt.Errorf("share plan: %w", err)
		}
	}
	return nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// CreateCampaign records a draft campaign for a show, with its stretch goals and, when given,
// its own share plan.
func (s *Service) CreateCampaign(ctx context.Context, showID int64, in CampaignInput, by *int64) (Campaign, error) {
	if err := in.validate(s.now()); err != nil {
		return Campaign{}, err
	}
	var c Campaign
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var planID *int64
		if in.OwnPlan != nil {
			p, err := CreatePlan(ctx, tx, showID, SourceCampaigns, in.FeePolicy, s.now(), in.OwnPlan, by)
			if err != nil {
				return err
			}
			planID = &p.ID
		}
		rows, _ := tx.Query(ctx, `INSERT INTO campaigns (show_id, title, story, goal, currency, deadline, time_zone,
				all_or_nothing, share_plan_id, own_plan)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bigint, $9::bigint IS NOT NULL) RETURNING `+campaignColumns,
			showID, in.Title, in.Story, in.Goal, in.Currency, in.Deadline, in.TimeZone, in.AllOrNothing, planID)
		var err error
		if c, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Campaign]); err != nil {
			return dbError(err)
		}
		return replaceStretch(ctx, tx, c.ID, in.Stretch)
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	return c, nil
}

func replaceStretch(ctx context.Context, tx pgx.Tx, campaignID int64, goals []StretchGoal) error {
	if _, err := tx.Exec(ctx, `DELETE FROM campaign_stretch_goals WHERE campaign_id = $1`, campaignID); err != nil {
		return dbError(err)
	}
	for _, g := range goals {
		if _, err := tx.Exec(ctx, `INSERT INTO campaign_stretch_goals (campaign_id, amount, description) VALUES ($1, $2, $3)`,
			campaignID, g.Amount, g.Description); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// UpdateCampaign changes a campaign. A draft changes in full; a live campaign only its title,
// story and stretch goals: its goal, currency, deadline, time zone, funding model and plan
// are what backers pledged to.
func (s *Service) UpdateCampaign(ctx context.Context, id int64, in CampaignInput) (Campaign, error) {
	var c Campaign
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		old, err := findCampaign(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if old.Status != CampaignDraft && old.Status != CampaignLive {
			return fmt.Errorf("%w: campaign is %s and can no longer change", ErrConflict, old.Status)
		}
		if old.Status == CampaignLive {
			switch {
			case in.Goal != old.Goal:
				return fmt.Errorf("%w: goal: a live campaign's goal cannot change", ErrInvalid)
			case !strings.EqualFold(strings.TrimSpace(in.Currency), old.Currency):
				return fmt.Errorf("%w: currency: a live campaign's currency cannot change", ErrInvalid)
			case in.Deadline.Sub(old.Deadline).Abs() >= time.Microsecond: // as stored
				return fmt.Errorf("%w: deadline: a live campaign's deadline cannot change", ErrInvalid)
			case strings.TrimSpace(in.TimeZone) != old.TimeZone:
				return fmt.Errorf("%w: time zone: a live campaign's time zone cannot change", ErrInvalid)
			case in.AllOrNothing != old.AllOrNothing:
				return fmt.Errorf("%w: funding: a live campaign's funding model cannot change", ErrInvalid)
			}
			in.OwnPlan, in.Deadline, in.Currency, in.TimeZone = nil, old.Deadline, old.Currency, old.TimeZone
			if err := in.validate(old.Deadline.Add(-time.Second)); err != nil { // the deadline was checked at launch
				return err
			}
		} else if err := in.validate(s.now()); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `UPDATE campaigns SET title = $2, story = $3, goal = $4, currency = $5, deadline = $6,
				time_zone = $7, all_or_nothing = $8 WHERE id = $1 RETURNING `+campaignColumns,
			id, in.Title, in.Story, in.Goal, in.Currency, in.Deadline, in.TimeZone, in.AllOrNothing)
		if c, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Campaign]); err != nil {
			return dbError(err)
		}
		return replaceStretch(ctx, tx, id, in.Stretch)
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("update campaign %d: %w", id, err)
	}
	return c, nil
}

// LaunchCampaign makes a draft live: its plan is pinned (the show's plan in force now, unless it
// has its own) and the job that closes it is scheduled at the deadline.
func (s *Service) LaunchCampaign(ctx context.Context, id int64) (Campaign, error) {
	var c Campaign
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		old, err := findCampaign(ctx, tx, id, true)
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case old.Status != CampaignDraft:
			return fmt.Errorf("%w: campaign is %s, not a draft", ErrConflict, old.Status)
		case !old.Deadline.After(now):
			return fmt.Errorf("%w: deadline: has passed; set a later one before launching", ErrInvalid)
		}
		planID := old.SharePlanID
		if planID == nil {
			p, err := PlanAt(ctx, tx, old.ShowID, SourceDonations, now)
			if err != nil {
				return fmt.Errorf("share plan: the show needs a share plan before a campaign launches: %w", err)
			}
			planID = &p.ID
		}
		rows, _ := tx.Query(ctx, `UPDATE campaigns SET status = 'live', share_plan_id = $2, launched_at = $3
			WHERE id = $1 RETURNING `+campaignColumns, id, *planID, now)
		if c, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Campaign]); err != nil {
			return dbError(err)
		}
		_, err = s.Jobs.InsertTx(ctx, tx, CloseCampaignArgs{CampaignID: id}, &river.InsertOpts{ScheduledAt: c.Deadline})
		return err
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("launch campaign %d: %w", id, err)
	}
	return c, nil
}

// FindCampaign loads a campaign.
func FindCampaign(ctx context.Context, db DBTX, id int64) (Campaign, error) {
	return findCampaign(ctx, db, id, false)
}

func findCampaign(ctx context.Context, db DBTX, id int64, lock bool) (Campaign, error) {
	q := `SELECT ` + campaignColumns + ` FROM campaigns WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	rows, _ := db.Query(ctx, q, id)
	c, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Campaign])
	if err != nil {
		return Campaign{}, wrapNotFound(err, fmt.Sprintf("campaign %d", id))
	}
	return c, nil
}

// ListCampaigns lists a show's campaigns, the newest first.
func ListCampaigns(ctx context.Context, db DBTX, showID int64) ([]Campaign, error) {
	rows, _ := db.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE show_id = $1 ORDER BY id DESC`, showID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Campaign])
	if err != nil {
		return nil, fmt.Errorf("campaigns of show %d: %w", showID, dbError(err))
	}
	return list, nil
}

// StretchGoals lists a campaign's stretch goals, the smallest first.
func StretchGoals(ctx context.Context, db DBTX, campaignID int64) ([]StretchGoal, error) {
	rows, _ := db.Query(ctx, `SELECT id, amount, description FROM campaign_stretch_goals WHERE campaign_id = $1 ORDER BY amount`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[StretchGoal])
	if err != nil {
		return nil, fmt.Errorf("stretch goals of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}

// Tier is a reward level: a minimum pledge, an optional limited quantity and what it gives.
type Tier struct {
	ID            int64      `db:"id"`
	CampaignID    int64      `db:"campaign_id"`
	Title         string     `db:"title"`
	Description   string     `db:"description"`
	Minimum       int64      `db:"minimum"`
	Quantity      *int32     `db:"quantity"` // nil: unlimited
	Taken         int32      `db:"taken"`
	DeliveryMonth *time.Time `db:"delivery_month"`
	EarlyAccess   bool       `db:"early_access"` // the campaign's episodes before their release date
	Credits       bool       `db:"credits"`      // a name in the credits
	Download      bool       `db:"download"`     // a digital download
	Position      int32      `db:"position"`
}

const tierColumns = `id, campaign_id, title, description, minimum, quantity, taken, delivery_month, early_access, credits, download, position`

// Left is how many of a limited tier are left; -1 when unlimited.
func (t Tier) Left() int32 {
	if t.Quantity == nil {
		return -1
	}
	return *t.Quantity - t.Taken
}

// TierInput is a tier as its creator writes it.
type TierInput struct {
	Title, Description string
	Minimum            int64
	Quantity           int32 // 0: unlimited
	DeliveryMonth      time.Time
	EarlyAccess        bool
	Credits            bool
	Download           bool
}

// AddTier adds a reward tier to a draft or live campaign.
func AddTier(ctx context.Context, db DBTX, campaignID int64, in TierInput) (Tier, error) {
	in.Title, in.Description = strings.TrimSpace(in.Title), strings.TrimSpace(in.Description)
	switch {
	case in.Title == "" || len(in.Title) > 200:
		return Tier{}, fmt.Errorf("%w: title: required, at most 200 characters", ErrInvalid)
	case len(in.Description) > 5000:
		return Tier{}, fmt.Errorf("%w: description: at most 5,000 characters", ErrInvalid)
	case in.Minimum <= 0:
		return Tier{}, fmt.Errorf("%w: minimum: must be more than zero", ErrInvalid)
	case in.Quantity < 0:
		return Tier{}, fmt.Errorf("%w: quantity: 0 for unlimited, or how many there are", ErrInvalid)
	}
	var quantity *int32
	if in.Quantity > 0 {
		quantity = &in.Quantity
	}
	var month *time.Time
	if !in.DeliveryMonth.IsZero() {
		m := time.Date(in.DeliveryMonth.Year(), in.DeliveryMonth.Month(), 1, 0, 0, 0, 0, time.UTC)
		month = &m
	}
	var t Tier
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		c, err := findCampaign(ctx, tx, campaignID, true)
		if err != nil {
			return err
		}
		if c.Status != CampaignDraft && c.Status != CampaignLive {
			return fmt.Errorf("%w: campaign is %s", ErrConflict, c.Status)
		}
		if err := CheckStripeStep(in.Minimum, c.Currency); err != nil {
			return fmt.Errorf("minimum: %w", err)
		}
		rows, _ := tx.Query(ctx, `INSERT INTO campaign_tiers (campaign_id, title, description, minimum, quantity, delivery_month,
				early_access, credits, download, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, (SELECT count(*) FROM campaign_tiers WHERE campaign_id = $1))
			RETURNING `+tierColumns,
			campaignID, in.Title, in.Description, in.Minimum, quantity, month, in.EarlyAccess, in.Credits, in.Download)
		t, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Tier])
		return dbError(err)
	})
	if err != nil {
		return Tier{}, fmt.Errorf("add tier to campaign %d: %w", campaignID, err)
	}
	return t, nil
}

// Tiers lists a campaign's tiers in order.
func Tiers(ctx context.Context, db DBTX, campaignID int64) ([]Tier, error) {
	rows, _ := db.Query(ctx, `SELECT `+tierColumns+` FROM campaign_tiers WHERE campaign_id = $1 ORDER BY position, id`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Tier])
	if err != nil {
		return nil, fmt.Errorf("tiers of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}

// Progress is what a campaign has raised: pledged (counting pledges that stand or were
// collected) and collected, and by how many backers.
type Progress struct {
	Pledged   int64
	Collected int64
	Backers   int64
}

// CampaignProgress sums a campaign's pledges.
func CampaignProgress(ctx context.Context, db DBTX, campaignID int64) (Progress, error) {
	var p Progress
	err := db.QueryRow(ctx, `SELECT coalesce(sum(amount) FILTER (WHERE status IN ('active', 'charging', 'collected', 'needs_action')), 0),
			coalesce(sum(amount) FILTER (WHERE status = 'collected'), 0),
			count(*) FILTER (WHERE status IN ('active', 'charging', 'collected', 'needs_action'))
		FROM pledges WHERE campaign_id = $1`, campaignID).Scan(&p.Pledged, &p.Collected, &p.Backers)
	if err != nil {
		return p, fmt.Errorf("progress of campaign %d: %w", campaignID, dbError(err))
	}
	return p, nil
}

// Update is a creator's news for a campaign's backers: on its page, in its feed, and emailed.
type Update struct {
	ID         int64      `db:"id"`
	CampaignID int64      `db:"campaign_id"`
	Title      string     `db:"title"`
	Body       string     `db:"body"`
	CreatedAt  time.Time  `db:"created_at"`
	EmailedAt  *time.Time `db:"emailed_at"`
}

// PostUpdate adds an update to a campaign; the notify job emails it to the backers.
func PostUpdate(ctx context.Context, db DBTX, campaignID int64, title, body string) (Update, error) {
	title, body = strings.TrimSpace(title), strings.TrimSpace(body)
	switch {
	case title == "" || len(title) > 200:
		return Update{}, fmt.Errorf("%w: title: required, at most 200 characters", ErrInvalid)
	case body == "" || len(body) > 20000:
		return Update{}, fmt.Errorf("%w: text: required, at most 20,000 characters", ErrInvalid)
	}
	rows, _ := db.Query(ctx, `INSERT INTO campaign_updates (campaign_id, title, body) VALUES ($1, $2, $3)
		RETURNING id, campaign_id, title, body, created_at, emailed_at`, campaignID, title, body)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Update])
	if err != nil {
		return Update{}, fmt.Errorf("update of campaign %d: %w", campaignID, dbError(err))
	}
	return u, nil
}

// Updates lists a campaign's updates, the newest first.
func Updates(ctx context.Context, db DBTX, campaignID int64) ([]Update, error) {
	rows, _ := db.Query(ctx, `SELECT id, campaign_id, title, body, created_at, emailed_at FROM campaign_updates
		WHERE campaign_id = $1 ORDER BY created_at DESC, id DESC`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Update])
	if err != nil {
		return nil, fmt.Errorf("updates of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}

// DueUpdate is an update not yet emailed, with the addresses of the campaign's backers.
type DueUpdate struct {
	Update
	CampaignTitle string   `db:"campaign_title"`
	Backers       []string `db:"backers"`
}

// DueUpdates locks up to limit updates not yet emailed (others skip them).
func DueUpdates(ctx context.Context, tx pgx.Tx, limit int) ([]DueUpdate, error) {
	rows, _ := tx.Query(ctx, `SELECT u.id, u.campaign_id, u.title, u.body, u.created_at, u.emailed_at, c.title AS campaign_title,
			coalesce((SELECT array_agg(DISTINCT lower(p.backer_email) ORDER BY lower(p.backer_email)) FROM pledges p
			 WHERE p.campaign_id = u.campaign_id AND p.status IN ('active', 'charging', 'collected', 'needs_action')), '{}') AS backers
		FROM campaign_updates u JOIN campaigns c ON c.id = u.campaign_id
		WHERE u.emailed_at IS NULL ORDER BY u.id LIMIT $1 FOR UPDATE OF u SKIP LOCKED`, limit)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[DueUpdate])
	if err != nil {
		return nil, fmt.Errorf("due campaign updates: %w", dbError(err))
	}
	return list, nil
}

// MarkUpdateEmailed records an update written to the outbox for every backer.
func MarkUpdateEmailed(ctx context.Context, tx pgx.Tx, id int64) error {
	_, err := tx.Exec(ctx, `UPDATE campaign_updates SET emailed_at = now() WHERE id = $1`, id)
	return dbError(err)
}

// DuePledgeNotice is a pledge whose charge needs the backer and who has not been told today.
type DuePledgeNotice struct {
	PledgeID      int64     `db:"id"`
	Email         string    `db:"backer_email"`
	Token         string    `db:"token"`
	Amount        int64     `db:"amount"`
	Currency      string    `db:"currency"`
	Failure       string    `db:"failure"`
	Reminders     int32     `db:"reminders"`
	Since         time.Time `db:"needs_action_since"`
	CampaignTitle string    `db:"title"`
}

// Money is the pledge's amount.
func (d DuePledgeNotice) Money() Money { return Money{Amount: d.Amount, Currency: d.Currency} }

// DuePledgeNotices locks up to limit pledges needing action whose backer was not emailed in
// the last day: the first notice, then a daily reminder until the pledge is paid or dropped.
func DuePledgeNotices(ctx context.Context, tx pgx.Tx, limit int) ([]DuePledgeNotice, error) {
	rows, _ := tx.Query(ctx, `SELECT p.id, p.backer_email, p.token, p.amount, p.currency, p.failure, p.reminders,
			p.needs_action_since, c.title
		FROM pledges p JOIN campaigns c ON c.id = p.campaign_id
		WHERE p.status = 'needs_action' AND (p.notice_sent_at IS NULL OR p.notice_sent_at <= now() - interval '1 day')
		ORDER BY p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED`, limit)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[DuePledgeNotice])
	if err != nil {
		return nil, fmt.Errorf("due pledge notices: %w", dbError(err))
	}
	return list, nil
}

// MarkPledgeNoticeSent records a notice or reminder written for a pledge.
func MarkPledgeNoticeSent(ctx context.Context, tx pgx.Tx, id int64) error {
	_, err := tx.Exec(ctx, `UPDATE pledges SET notice_sent_at = now(), reminders = reminders + 1 WHERE id = $1`, id)
	return dbError(err)
}

// PledgeDay is one day of a campaign's pledges, in its time zone: the pledges made that day
// that stand (or were collected), and the money collected that day.
type PledgeDay struct {
	Day       time.Time `db:"day"`
	Pledges   int64     `db:"pledges"`
	Pledged   int64     `db:"pledged"`
	Collected int64     `db:"collected"`
}

// PledgeDays lists a campaign's pledges over time, from its launch to today or its close.
func PledgeDays(ctx context.Context, db DBTX, c Campaign) ([]PledgeDay, error) {
	from := c.CreatedAt
	if c.LaunchedAt != nil {
		from = *c.LaunchedAt
	}
	to := time.Now()
	if c.ClosedAt != nil && c.ClosedAt.After(to) {
		to = *c.ClosedAt
	}
	rows, _ := db.Query(ctx, `
		SELECT d::date AS day,
			(SELECT count(*) FROM pledges p WHERE p.campaign_id = $1 AND (p.created_at AT TIME ZONE $2)::date = d::date
			   AND p.status IN ('active', 'charging', 'collected', 'needs_action', 'refunded')) AS pledges,
			(SELECT coalesce(sum(amount), 0) FROM pledges p WHERE p.campaign_id = $1 AND (p.created_at AT TIME ZONE $2)::date = d::date
			   AND p.status IN ('active', 'charging', 'collected', 'needs_action', 'refunded'))::bigint AS pledged,
			(SELECT coalesce(sum(amount), 0) FROM pledges p WHERE p.campaign_id = $1 AND (p.collected_at AT TIME ZONE $2)::date = d::date
			   AND p.status IN ('collected', 'refunded'))::bigint AS collected
		FROM generate_series(($3::timestamptz AT TIME ZONE $2)::date, ($4::timestamptz AT TIME ZONE $2)::date, interval '1 day') AS d
		LIMIT 400`, c.ID, c.TimeZone, from, to)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[PledgeDay])
	if err != nil {
		return nil, fmt.Errorf("pledge days of campaign %d: %w", c.ID, dbError(err))
	}
	return list, nil
}

// PledgeStates counts a campaign's pledges (those whose checkout completed) by state.
func PledgeStates(ctx context.Context, db DBTX, campaignID int64) (map[string]int64, error) {
	rows, _ := db.Query(ctx, `SELECT status, count(*) FROM pledges WHERE campaign_id = $1 AND status <> 'pending' GROUP BY status`, campaignID)
	out := map[string]int64{}
	var status string
	var n int64
	_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { out[status] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("pledge states of campaign %d: %w", campaignID, dbError(err))
	}
	return out, nil
}

// Credits lists the names backers of a campaign's credit tiers chose to be credited under,
// in the order they pledged.
func Credits(ctx context.Context, db DBTX, campaignID int64) ([]string, error) {
	rows, _ := db.Query(ctx, `SELECT p.credit_name FROM pledges p JOIN campaign_tiers t ON t.id = p.tier_id
		WHERE p.campaign_id = $1 AND t.credits AND p.credit_name IS NOT NULL
		  AND p.status IN ('active', 'charging', 'collected', 'needs_action') ORDER BY p.id`, campaignID)
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("credits of campaign %d: %w", campaignID, dbError(err))
	}
	return list, nil
}
