package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func lines(parties []int64, bps ...int) []PlanLine {
	out := make([]PlanLine, len(bps))
	for i, b := range bps {
		out[i] = PlanLine{PartyID: parties[i], BasisPoints: b}
	}
	return out
}

func createPlan(t *testing.T, db DBTX, show int64, source, fee string, at time.Time, l []PlanLine) Plan {
	t.Helper()
	p, err := CreatePlan(context.Background(), db, show, source, fee, at, l, nil)
	must(t, err)
	return p
}

func TestCreatePlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	parties := []int64{f.creator, f.distributor, f.collaborator}

	t.Run("OK", func(t *testing.T) {
		p := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines(parties, 7000, 2500, 500))
		if p.ID == 0 || p.ShowID != f.show || p.Source != SourceAll || p.FeePolicy != FeePolicyNet || !p.EffectiveAt.Equal(t0) {
			t.Fatalf("created %+v", p)
		}
		want := []PlanLine{
			{PartyID: f.creator, Name: "Ann", PartyKind: PartyCreator, BasisPoints: 7000, Position: 0},
			{PartyID: f.distributor, Name: "Fanseed (distributor)", PartyKind: PartyDistributor, BasisPoints: 2500, Position: 1},
			{PartyID: f.collaborator, Name: "Bob", PartyKind: PartyCollaborator, BasisPoints: 500, Position: 2},
		}
		if len(p.Lines) != len(want) {
			t.Fatalf("plan has %d lines, want %d", len(p.Lines), len(want))
		}
		for i, l := range p.Lines {
			l.Email = nil
			if l != want[i] {
				t.Errorf("line %d = %+v, want %+v", i, l, want[i])
			}
		}
	})
	for _, tt := range []struct {
		name           string
		source, policy string
		at             time.Time
		lines          []PlanLine
	}{
		{"ErrSumBelow", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines(parties, 7000, 2999)},
		{"ErrSumAbove", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines(parties, 7000, 3001)},
		{"ErrZeroLine", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines(parties, 10000, 0)},
		{"ErrNegativeLine", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines(parties, 10100, -100)},
		{"ErrDuplicateParty", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines([]int64{f.creator, f.creator}, 5000, 5000)},
		{"ErrNoLines", SourceAll, FeePolicyNet, t0.Add(time.Hour), nil},
		{"ErrSource", "merch", FeePolicyNet, t0.Add(time.Hour), lines(parties, 10000)},
		{"ErrFeePolicy", SourceAll, "half", t0.Add(time.Hour), lines(parties, 10000)},
		{"ErrNoTime", SourceAll, FeePolicyNet, time.Time{}, lines(parties, 10000)},
		{"ErrUnknownParty", SourceAll, FeePolicyNet, t0.Add(time.Hour), lines([]int64{1 << 40}, 10000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := count(t, f.db, `SELECT count(*) FROM share_plans`)
			_, err := CreatePlan(ctx, f.db, f.show, tt.source, tt.policy, tt.at, tt.lines, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CreatePlan = %v, want ErrInvalid", err)
			}
			if after := count(t, f.db, `SELECT count(*) FROM share_plans`); after != before {
				t.Fatal("a refused plan was written")
			}
		})
	}
	t.Run("ErrSameEffectiveTime", func(t *testing.T) {
		_, err := CreatePlan(ctx, f.db, f.show, SourceAll, FeePolicyNet, t0, lines(parties, 10000), nil)
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("CreatePlan = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrSumAtCommit", func(t *testing.T) {
		err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO share_plans (show_id, effective_at) VALUES ($1, $2) RETURNING id`,
				f.show, t0.Add(2*time.Hour)).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO share_plan_lines (plan_id, party_id, position, basis_points) VALUES ($1, $2, 0, 9000)`, id, f.creator)
			return err
		})
		if sqlState(err) != "23514" {
			t.Fatalf("a plan summing to 9000 committed: %v", err)
		}
	})
}

func TestPlanAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	parties := []int64{f.creator, f.distributor}
	all75 := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines(parties, 7500, 2500))
	donations := createPlan(t, f.db, f.show, SourceDonations, FeePolicyGross, t0.Add(48*time.Hour), lines(parties, 9000, 1000))

	// Money received on day 1 is split by the plan then in force.
	day1 := t0.Add(24 * time.Hour)
	plan, err := PlanAt(ctx, f.db, f.show, SourceSponsorship, day1)
	must(t, err)
	if plan.ID != all75.ID {
		t.Fatalf("PlanAt(day 1) = plan %d, want %d", plan.ID, all75.ID)
	}
	if _, err := PostPayment(ctx, f.db, Payment{Gross: 1000, Currency: "USD", OccurredAt: day1,
		Source: SourceSponsorship, IdempotencyKey: "payment:day1"}, plan); err != nil {
		t.Fatal(err)
	}
	// A plan made later, effective later, changes nothing received before it.
	all50 := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0.Add(72*time.Hour), lines(parties, 5000, 5000))

	for _, tt := range []struct {
		name   string
		source string
		at     time.Time
		want   int64
	}{
		{"AtEffectiveTime", SourceAll, t0, all75.ID},
		{"BeforeLaterPlan", SourceSponsorship, day1, all75.ID},
		{"DonationsFallBackToAll", SourceDonations, day1, all75.ID},
		{"DonationsOwnPlan", SourceDonations, t0.Add(49 * time.Hour), donations.ID},
		{"OwnPlanBeforeLaterAll", SourceDonations, t0.Add(100 * time.Hour), donations.ID},
		{"SponsorshipLaterAll", SourceSponsorship, t0.Add(100 * time.Hour), all50.ID},
		{"All", SourceAll, t0.Add(100 * time.Hour), all50.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanAt(ctx, f.db, f.show, tt.source, tt.at)
			if err != nil || p.ID != tt.want {
				t.Fatalf("PlanAt(%s, %s) = plan %d, %v; want %d", tt.source, tt.at, p.ID, err, tt.want)
			}
			if len(p.Lines) != 2 || p.Lines[0].PartyID != f.creator || p.Lines[0].Name != "Ann" {
				t.Fatalf("plan lines = %+v", p.Lines)
			}
		})
	}
	t.Run("ErrNotFoundBeforeFirstPlan", func(t *testing.T) {
		if _, err := PlanAt(ctx, f.db, f.show, SourceDonations, t0.Add(-time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("PlanAt before any plan = %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrSource", func(t *testing.T) {
		if _, err := PlanAt(ctx, f.db, f.show, "merch", day1); !errors.Is(err, ErrInvalid) {
			t.Fatalf("PlanAt(merch) = %v, want ErrInvalid", err)
		}
	})
	t.Run("MoneyKeepsItsSplit", func(t *testing.T) {
		if got := owed(t, f.db, f.creator, "USD"); got != 750 {
			t.Fatalf("creator is owed %d for day 1, want 750", got)
		}
	})
	t.Run("ErrPlanRewritingHistory", func(t *testing.T) {
		_, err := CreatePlan(ctx, f.db, f.show, SourceAll, FeePolicyNet, t0.Add(time.Hour), lines(parties, 5000, 5000), nil)
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("plan effective before money already split: %v, want ErrConflict", err)
		}
	})
	t.Run("ListPlans", func(t *testing.T) {
		ps, err := ListPlans(ctx, f.db, f.show)
		must(t, err)
		if len(ps) != 3 || ps[0].ID != all50.ID || ps[1].ID != donations.ID || ps[2].ID != all75.ID || len(ps[2].Lines) != 2 {
			t.Fatalf("ListPlans = %+v", ps)
		}
	})
}

func TestSplitByPlan(t *testing.T) {
	plan := Plan{ID: 1, Lines: []PlanLine{
		{PartyID: 30, BasisPoints: 3334, Position: 2},
		{PartyID: 10, BasisPoints: 3333, Position: 0},
		{PartyID: 20, BasisPoints: 3333, Position: 1},
	}}
	shares, err := SplitByPlan(100, plan)
	must(t, err)
	want := []Share{{PartyID: 10, BasisPoints: 3333, Amount: 33}, {PartyID: 20, BasisPoints: 3333, Amount: 33},
		{PartyID: 30, BasisPoints: 3334, Amount: 34}}
	for i := range want {
		if shares[i] != want[i] {
			t.Fatalf("SplitByPlan = %+v, want %+v", shares, want)
		}
	}
	if _, err := SplitByPlan(100, Plan{Lines: plan.Lines[:2]}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SplitByPlan of a plan summing to 6667: %v", err)
	}
}
