package billing

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Plan sources: what money a plan applies to. A plan for SourceAll applies to a source that
// has no plan of its own.
const (
	SourceAll         = "all"
	SourceDonations   = "donations"
	SourceSponsorship = "sponsorship"
)

// Fee policies: who pays Stripe's fee. Net splits what is left after the fee among all
// parties; gross splits the whole payment and the distributor absorbs the fee from its share.
const (
	FeePolicyNet   = "net"
	FeePolicyGross = "gross"
)

// Plan is a show's share plan: how money received from EffectiveAt on is split. Plans are
// never changed; a new plan with a later effective time replaces one.
type Plan struct {
	ID          int64      `db:"id"`
	ShowID      int64      `db:"show_id"`
	Source      string     `db:"source"`
	FeePolicy   string     `db:"fee_policy"`
	EffectiveAt time.Time  `db:"effective_at"`
	CreatedBy   *int64     `db:"created_by"`
	CreatedAt   time.Time  `db:"created_at"`
	Lines       []PlanLine `db:"-"` // in position order
}

// PlanLine is one party's share of a plan, with the party's name for display. CreatePlan
// reads only PartyID and BasisPoints, and takes the lines' order as their position.
type PlanLine struct {
	PartyID     int64   `db:"party_id"`
	Name        string  `db:"name"`
	Email       *string `db:"email"`
	PartyKind   string  `db:"party_kind"`
	BasisPoints int     `db:"basis_points"`
	Position    int     `db:"position"`
}

// Share is one party's part of an amount split by a plan.
type Share struct {
	PartyID     int64
	PartyKind   string
	BasisPoints int
	Amount      int64
}

const planColumns = `id, show_id, source, fee_policy, effective_at, created_by, created_at`

// PlanAt returns the plan that splits money of a source received at time at: the latest plan
// for that source effective at or before at, or else the latest such plan for SourceAll, among
// the plans that existed at that time (see planInForce).
func PlanAt(ctx context.Context, db DBTX, showID int64, source string, at time.Time) (Plan, error) {
	if source != SourceAll && source != SourceDonations && source != SourceSponsorship {
		return Plan{}, fmt.Errorf("%w: plan source %q", ErrInvalid, source)
	}
	var id *int64
	err := db.QueryRow(ctx, `SELECT `+planInForce+` FROM (VALUES ($1::bigint, $2::text, $3::timestamptz)) AS t(show, src, at)`,
		showID, source, at).Scan(&id)
	if err != nil {
		return Plan{}, fmt.Errorf("%s plan of show %d at %s: %w", source, showID, at.Format(time.RFC3339), dbError(err))
	}
	if id == nil {
		return Plan{}, fmt.Errorf("%w: show %d has no share plan for %s in force at %s", ErrNotFound, showID, source, at.Format(time.RFC3339))
	}
	return findPlan(ctx, db, *id)
}

// findPlan loads a plan and its lines.
func findPlan(ctx context.Context, db DBTX, id int64) (Plan, error) {
	plan, err := findOne[Plan](ctx, db, fmt.Sprintf("share plan %d", id), `SELECT `+planColumns+` FROM share_plans WHERE id = $1`, id)
	if err != nil {
		return Plan{}, err
	}
	plans := []Plan{plan}
	if err := loadLines(ctx, db, plans); err != nil {
		return Plan{}, err
	}
	return plans[0], nil
}

// ListPlans returns every plan of a show, the latest effective first, for its history.
func ListPlans(ctx context.Context, db DBTX, showID int64) ([]Plan, error) {
	rows, _ := db.Query(ctx, `SELECT `+planColumns+` FROM share_plans WHERE show_id = $1
		ORDER BY effective_at DESC, source`, showID)
	plans, err := pgx.CollectRows(rows, pgx.RowToStructByName[Plan])
	if err != nil {
		return nil, fmt.Errorf("plans of show %d: %w", showID, dbError(err))
	}
	if err := loadLines(ctx, db, plans); err != nil {
		return nil, err
	}
	return plans, nil
}

// loadLines fills in the lines of plans with one query.
func loadLines(ctx context.Context, db DBTX, plans []Plan) error {
	if len(plans) == 0 {
		return nil
	}
	ids := make([]int64, len(plans))
	byID := make(map[int64]*Plan, len(plans))
	for i := range plans {
		ids[i] = plans[i].ID
		byID[plans[i].ID] = &plans[i]
	}
	type lineRow struct {
		PlanID int64 `db:"plan_id"`
		PlanLine
	}
	rows, _ := db.Query(ctx, `
		SELECT l.plan_id, l.party_id, p.name, p.email, p.kind AS party_kind, l.basis_points, l.position
		FROM share_plan_lines l JOIN parties p ON p.id = l.party_id
		WHERE l.plan_id = ANY($1)
		ORDER BY l.plan_id, l.position, l.party_id`, ids)
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByName[lineRow])
	if err != nil {
		return fmt.Errorf("share plan lines: %w", dbError(err))
	}
	for _, l := range lines {
		p := byID[l.PlanID]
		p.Lines = append(p.Lines, l.PlanLine)
	}
	return nil
}

// CreatePlan adds a plan for a show and source, in force from effectiveAt. The lines (in
// order) must name distinct parties with positive basis points summing to exactly 10000. So
// that a plan never rewrites history, it is refused when the show has money received at or
// after effectiveAt. createdBy is the account making the change, or nil.
func CreatePlan(ctx context.Context, db DBTX, showID int64, source, feePolicy string, effectiveAt time.Time,
	lines []PlanLine, createdBy *int64) (Plan, error) {
	if err := validatePlan(source, feePolicy, effectiveAt, lines); err != nil {
		return Plan{}, err
	}
	parties, bps, positions := make([]int64, len(lines)), make([]int32, len(lines)), make([]int32, len(lines))
	for i, l := range lines {
		parties[i], bps[i], positions[i] = l.PartyID, int32(l.BasisPoints), int32(i)
	}
	var plan Plan
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Payments being posted hold this lock shared: they finish first, and the check below
		// sees them, or they wait and see this plan.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, planLockKey(showID)); err != nil {
			return dbError(err)
		}
		var received bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal_entries
			WHERE show_id = $1 AND kind = 'payment' AND occurred_at >= $2)`, showID, effectiveAt).Scan(&received); err != nil {
			return dbError(err)
		}
		if received {
			return fmt.Errorf("%w: money received since %s has been split already; a new plan must take effect later",
				ErrConflict, effectiveAt.Format(time.RFC3339))
		}
		rows, _ := tx.Query(ctx, `
			INSERT INTO share_plans (show_id, source, fee_policy, effective_at, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, clock_timestamp())
			RETURNING `+planColumns, showID, source, feePolicy, effectiveAt, createdBy)
		p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Plan])
		if err != nil {
			return dbError(err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO share_plan_lines (plan_id, party_id, basis_points, position)
			SELECT $1, party, bps, pos FROM unnest($2::bigint[], $3::int[], $4::int[]) AS t(party, bps, pos)`,
			p.ID, parties, bps, positions); err != nil {
			return dbError(err)
		}
		plans := []Plan{p}
		if err := loadLines(ctx, tx, plans); err != nil {
			return err
		}
		plan = plans[0]
		return nil
	})
	if err != nil {
		return Plan{}, fmt.Errorf("create %s plan for show %d: %w", source, showID, err)
	}
	return plan, nil
}

func validatePlan(source, feePolicy string, effectiveAt time.Time, lines []PlanLine) error {
	if source != SourceAll && source != SourceDonations && source != SourceSponsorship && source != SourceCampaigns {
		return fmt.Errorf("%w: plan source %q", ErrInvalid, source)
	}
	if feePolicy != FeePolicyNet && feePolicy != FeePolicyGross {
		return fmt.Errorf("%w: fee policy %q", ErrInvalid, feePolicy)
	}
	if effectiveAt.IsZero() {
		return fmt.Errorf("%w: plan has no effective time", ErrInvalid)
	}
	if len(lines) == 0 {
		return fmt.Errorf("%w: plan has no lines", ErrInvalid)
	}
	seen := make(map[int64]bool, len(lines))
	total := 0
	for i, l := range lines {
		if l.BasisPoints < 1 || l.BasisPoints > TotalBasisPoints {
			return fmt.Errorf("%w: line %d has %d basis points", ErrInvalid, i+1, l.BasisPoints)
		}
		if seen[l.PartyID] {
			return fmt.Errorf("%w: party %d is on the plan twice", ErrInvalid, l.PartyID)
		}
		seen[l.PartyID] = true
		total += l.BasisPoints
	}
	if total != TotalBasisPoints {
		return fmt.Errorf("%w: lines sum to %d basis points, not %d", ErrInvalid, total, TotalBasisPoints)
	}
	return nil
}

// SplitByPlan divides amount among a plan's parties with Split, lines in position order.
func SplitByPlan(amount int64, plan Plan) ([]Share, error) {
	lines := slices.SortedStableFunc(slices.Values(plan.Lines), func(a, b PlanLine) int {
		return cmp.Compare(a.Position, b.Position)
	})
	bps := make([]int, len(lines))
	for i, l := range lines {
		bps[i] = l.BasisPoints
	}
	parts, err := Split(amount, bps)
	if err != nil {
		return nil, fmt.Errorf("split by plan %d: %w", plan.ID, err)
	}
	shares := make([]Share, len(lines))
	for i, l := range lines {
		shares[i] = Share{PartyID: l.PartyID, PartyKind: l.PartyKind, BasisPoints: l.BasisPoints, Amount: parts[i]}
	}
	return shares, nil
}
