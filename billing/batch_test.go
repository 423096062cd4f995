package billing

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// One batch applies a mix of events as applying them one by one in order does: payments
// posted together (two events about one charge posting once), a refund stored before its
// payment, and events that fail left to jobs of their own without holding up the others,
// even when a payment that fails makes the batch post its payments one by one.
func TestApplyBatchAsOneByOne(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) { t.Parallel(); testApplyBatch(t, false) })
	t.Run("PaymentWithoutPlan", func(t *testing.T) { t.Parallel(); testApplyBatch(t, true) })
}

func testApplyBatch(t *testing.T, withoutPlan bool) {
	ctx := context.Background()
	var logs bytes.Buffer // of the batch's service; the one-by-one service logs nothing at info level
	type setUp struct {
		f        fixture
		svc      *Service
		events   [][]byte
		donation int64
	}
	newSetUp := func() setUp {
		f := newFixture(t)
		_, err := MigrateJobs(ctx, f.db)
		must(t, err)
		svc := &Service{DB: f.db, WebhookSecret: "whsec_test", Log: slog.New(slog.NewTextHandler(&logs, nil))}
		_, err = NewJobClient(svc, JobOptions{}) // inserts jobs; nothing works them
		must(t, err)
		createPlan(t, f.db, f.show, SourceAll, FeePolicyGross, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7000, 3000))
		var owner, donation int64
		must(t, f.db.QueryRow(ctx, `SELECT owner_id FROM shows WHERE id = $1`, f.show).Scan(&owner))
		noPlan := newShow(t, f.db, owner, "no-plan")
		must(t, f.db.QueryRow(ctx, `INSERT INTO donations (show_id, amount, currency) VALUES ($1, 1000, 'USD') RETURNING id`,
			f.show).Scan(&donation))
		t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		md := func(show, donation int64) map[string]string {
			m := map[string]string{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(show, 10)}
			if donation != 0 {
				m[MetaDonationID] = strconv.FormatInt(donation, 10)
			}
			return m
		}
		session := func(id, ch string, gross int64, show, donation int64) map[string]any {
			return CheckoutSessionObject("cs_"+id, ChargeObject(ch, gross, TestFee(gross, "USD"), "USD", t0), "", gross, "USD", md(show, donation))
		}
		events := [][]byte{
			EventJSON("evt_refund_b", "charge.refunded", at(1), map[string]any{"id": "ch_b", "object": "charge",
				"amount": 2000, "amount_refunded": 500, "currency": "usd"}, map[string]any{"amount_refunded": 0}, ""),
			EventJSON("evt_pay_a", "checkout.session.completed", at(2), session("a", "ch_a", 1000, f.show, donation), nil, ""),
			EventJSON("evt_pay_a_async", "checkout.session.async_payment_succeeded", at(3), session("a", "ch_a", 1000, f.show, donation), nil, ""),
			EventJSON("evt_pay_b", "checkout.session.completed", at(4), session("b", "ch_b", 2000, f.show, 0), nil, ""),
			EventJSON("evt_no_show", "checkout.session.completed", at(5), session("c", "ch_c", 700, 0, 0), nil, ""),
		}
		if withoutPlan {
			events = append(events, EventJSON("evt_no_plan", "checkout.session.completed", at(6), session("d", "ch_d", 900, noPlan, 0), nil, ""))
		}
		for _, e := range events {
			ev, err := ParseEventHeader(e)
			must(t, err)
			_, err = svc.StoreEvent(ctx, ev, e)
			must(t, err)
		}
		return setUp{f, svc, events, donation}
	}
	dump := func(s setUp) []string {
		rows, _ := s.f.db.Query(ctx, `
			SELECT concat_ws(' ', e.kind, e.idempotency_key, e.occurred_at, e.source, a.kind, a.currency,
				coalesce(pa.kind, '-'), p.role, p.amount, coalesce(r.idempotency_key, '-'))
			FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id
			LEFT JOIN parties pa ON pa.id = a.party_id LEFT JOIN journal_entries r ON r.id = e.reverses_entry_id
			UNION ALL SELECT concat_ws(' ', 'donation', status, charge_id, paid_at) FROM donations
			UNION ALL SELECT concat_ws(' ', 'applied', id) FROM stripe_events WHERE applied_at IS NOT NULL`)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, err)
		slices.Sort(lines)
		return lines
	}

	one := newSetUp()
	ids := []string{"evt_refund_b", "evt_pay_a", "evt_pay_a_async", "evt_pay_b", "evt_refund_b", "evt_no_show"}
	failed := []string{"evt_no_show"}
	if withoutPlan {
		ids, failed = append(ids, "evt_no_plan"), append(failed, "evt_no_plan")
	}
	for _, id := range ids {
		err := one.svc.ApplyEvent(ctx, id)
		var cancel *river.JobCancelError
		if id == "evt_no_show" && !errors.As(err, &cancel) {
			t.Fatalf("event without a show: %v, want the job cancelled", err)
		}
		if id == "evt_no_plan" && !errors.Is(err, ErrNotFound) {
			t.Fatalf("payment without a plan: %v, want ErrNotFound", err)
		}
		if id != "evt_no_show" && id != "evt_no_plan" {
			must(t, err)
		}
	}

	batch := newSetUp()
	n, err := batch.svc.applyBatch(ctx)
	must(t, err)
	if n != len(batch.events) {
		t.Fatalf("the batch took %d events, want %d", n, len(batch.events))
	}
	if fellBack := strings.Contains(logs.String(), "stripe payments failed together: applied one by one"); fellBack != withoutPlan {
		t.Fatalf("payments posted one by one: %v, want %v; logs:\n%s", fellBack, withoutPlan, logs.String())
	}
	a, b := dump(one), dump(batch)
	if !slices.Equal(a, b) {
		t.Fatalf("one by one:\n%v\nin a batch:\n%v", a, b)
	}
	if len(a) < 15 {
		t.Fatalf("only %d lines: %v", len(a), a)
	}
	// The two that failed have jobs of their own, and no later batch takes them.
	if got := count(t, batch.f.db, `SELECT count(*) FROM river_job WHERE kind = 'stripe_event' AND state = 'available'
		AND args->>'event_id' = ANY($1)`, failed); got != len(failed) {
		t.Fatalf("%d jobs of their own, want %d", got, len(failed))
	}
	if n, err := batch.svc.applyBatch(ctx); err != nil || n != 0 {
		t.Fatalf("a second batch took %d events (%v), want none", n, err)
	}
	var total int64
	must(t, batch.f.db.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint FROM postings`).Scan(&total))
	if total != 0 {
		t.Fatalf("postings sum to %d", total)
	}
}
