package billing

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// ledgerState is the balances a test looks at, in one currency.
type ledgerState struct {
	clearing, fees, revenue, refunds, disputes int64
	creator, distributor                       int64 // owed to them
}

func state(t *testing.T, f fixture, currency string) ledgerState {
	t.Helper()
	return ledgerState{
		clearing:    balance(t, f.db, StripeClearing, currency, 0),
		fees:        balance(t, f.db, ProcessorFees, currency, 0),
		revenue:     balance(t, f.db, PlatformRevenue, currency, 0),
		refunds:     balance(t, f.db, Refunds, currency, 0),
		disputes:    balance(t, f.db, DisputeLosses, currency, 0),
		creator:     owed(t, f.db, f.creator, currency),
		distributor: owed(t, f.db, f.distributor, currency),
	}
}

// pay posts a payment of gross with fee under a creator/distributor plan.
func pay(t *testing.T, f fixture, plan Plan, key string, gross, fee int64) int64 {
	t.Helper()
	id, err := PostPayment(context.Background(), f.db, Payment{Gross: gross, Fee: fee, Currency: "USD",
		OccurredAt: t0.Add(time.Hour), Source: SourceDonations, IdempotencyKey: key}, plan)
	must(t, err)
	return id
}

func reverse(t *testing.T, f fixture, kind string, entry int64, key string, amount, fee int64) {
	t.Helper()
	_, err := PostReversal(context.Background(), f.db, Reversal{EntryID: entry, Kind: kind, Amount: amount, Fee: fee,
		OccurredAt: t0.Add(2 * time.Hour), IdempotencyKey: key})
	must(t, err)
}

func checkState(t *testing.T, f fixture, want ledgerState) {
	t.Helper()
	if got := state(t, f, "USD"); got != want {
		t.Fatalf("ledger = %+v\n          want %+v", got, want)
	}
}

// A 10.00 USD donation with Stripe's 0.59 fee, split 75/25 between creator and distributor.
func TestPostPayment(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		policy string
		gross  int64
		fee    int64
		bps    []int
		want   ledgerState
	}{
		// 9.41 split 75/25: 7.0575 and 2.3525, the spare cent to the larger remainder.
		{"Net", FeePolicyNet, 1000, 59, []int{7500, 2500},
			ledgerState{clearing: 1000, fees: -59, creator: 706, distributor: 235}},
		// 10.00 split 75/25, the distributor paying the fee out of its 2.50.
		{"Gross", FeePolicyGross, 1000, 59, []int{7500, 2500},
			ledgerState{clearing: 1000, fees: -59, creator: 750, distributor: 191}},
		// The distributor's 0.01 covers a cent of the 0.33 fee; the platform bears the rest.
		{"GrossFeeAboveDistributorShare", FeePolicyGross, 100, 33, []int{9900, 100},
			ledgerState{clearing: 100, fees: -33, revenue: 32, creator: 99, distributor: 0}},
		{"NetNoFee", FeePolicyNet, 1, 0, []int{7500, 2500},
			ledgerState{clearing: 1, creator: 1}},
		{"NetFeeIsEverything", FeePolicyNet, 30, 30, []int{7500, 2500},
			ledgerState{clearing: 30, fees: -30}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			plan := createPlan(t, f.db, f.show, SourceAll, tt.policy, t0, lines([]int64{f.creator, f.distributor}, tt.bps...))
			id := pay(t, f, plan, "payment:ch_1", tt.gross, tt.fee)
			checkState(t, f, tt.want)
			again, err := PostPayment(context.Background(), f.db, Payment{Gross: tt.gross, Fee: tt.fee, Currency: "USD",
				OccurredAt: t0.Add(time.Hour), Source: SourceDonations, IdempotencyKey: "payment:ch_1"}, plan)
			if !errors.Is(err, ErrDuplicate) || again != id {
				t.Fatalf("second post = %d, %v; want %d, ErrDuplicate", again, err, id)
			}
			checkState(t, f, tt.want)
		})
	}
}

func TestPostPaymentRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	plan := createPlan(t, f.db, f.show, SourceDonations, FeePolicyNet, t0, lines([]int64{f.creator}, 10000))
	ok := Payment{Gross: 1000, Fee: 59, Currency: "USD", OccurredAt: t0.Add(time.Hour), Source: SourceDonations, IdempotencyKey: "k"}
	for _, tt := range []struct {
		name   string
		change func(*Payment, *Plan)
	}{
		{"ErrZeroGross", func(p *Payment, _ *Plan) { p.Gross = 0 }},
		{"ErrNegativeFee", func(p *Payment, _ *Plan) { p.Fee = -1 }},
		{"ErrFeeAboveGross", func(p *Payment, _ *Plan) { p.Fee = 1001 }},
		{"ErrNoKey", func(p *Payment, _ *Plan) { p.IdempotencyKey = "" }},
		{"ErrCurrency", func(p *Payment, _ *Plan) { p.Currency = "XYZ" }},
		{"ErrSource", func(p *Payment, _ *Plan) { p.Source = SourceAll }},
		{"ErrPlanForAnotherSource", func(p *Payment, _ *Plan) { p.Source = SourceSponsorship }},
		{"ErrPlanNotYetInForce", func(p *Payment, _ *Plan) { p.OccurredAt = t0.Add(-time.Hour) }},
		{"ErrNoPlan", func(_ *Payment, pl *Plan) { *pl = Plan{} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, pl := ok, plan
			tt.change(&p, &pl)
			if _, err := PostPayment(ctx, f.db, p, pl); !errors.Is(err, ErrInvalid) {
				t.Fatalf("PostPayment = %v, want ErrInvalid", err)
			}
		})
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries`); n != 0 {
		t.Fatalf("%d entries written by refused payments", n)
	}
}

func TestPostReversal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T, policy string) (fixture, int64) {
		f := newFixture(t)
		plan := createPlan(t, f.db, f.show, SourceAll, policy, t0, lines([]int64{f.creator, f.distributor}, 7500, 2500))
		return f, pay(t, f, plan, "payment:ch_1", 1000, 59)
	}

	t.Run("PartialRefundGross", func(t *testing.T) {
		t.Parallel()
		f, entry := setup(t, FeePolicyGross)
		// 4.00 of 10.00 comes back from what the payment left: 3.00 of the creator's 7.50,
		// 0.76 of the distributor's 1.91, and 0.24 of the 0.59 fee it absorbed, which Stripe
		// keeps: a platform loss. The platform's side, 1.15 - 0.24, is 25% of 6.00 less the fee.
		reverse(t, f, EntryRefund, entry, "refund:re_1", 400, 0)
		checkState(t, f, ledgerState{clearing: 600, fees: -59, refunds: 24, creator: 450, distributor: 115})
		reverse(t, f, EntryRefund, entry, "refund:re_2", 600, 0)
		checkState(t, f, ledgerState{clearing: 0, fees: -59, refunds: 59, creator: 0, distributor: 0})
	})
	t.Run("PartialRefundNet", func(t *testing.T) {
		t.Parallel()
		f, entry := setup(t, FeePolicyNet)
		// Under the net policy the parties bear the refund: 4.00 comes back from their 7.06 and
		// 2.35 in proportion, 3.0011 and 0.9989; only once nothing is left them is the fee a loss.
		reverse(t, f, EntryRefund, entry, "refund:re_1", 400, 0)
		checkState(t, f, ledgerState{clearing: 600, fees: -59, creator: 406, distributor: 135})
		reverse(t, f, EntryRefund, entry, "refund:re_2", 600, 0)
		checkState(t, f, ledgerState{clearing: 0, fees: -59, refunds: 59})
		t.Run("RetryIsDuplicate", func(t *testing.T) {
			_, err := PostReversal(ctx, f.db, Reversal{EntryID: entry, Kind: EntryRefund, Amount: 600,
				OccurredAt: t0.Add(2 * time.Hour), IdempotencyKey: "refund:re_2"})
			if !errors.Is(err, ErrDuplicate) {
				t.Fatalf("retried refund = %v, want ErrDuplicate", err)
			}
			checkState(t, f, ledgerState{clearing: 0, fees: -59, refunds: 59})
		})
		// Stripe may take more than is left (a refund settled at another rate): the parties have
		// nothing left to give back, so all of it is the platform's loss.
		t.Run("MoreThanLeftIsALoss", func(t *testing.T) {
			reverse(t, f, EntryRefund, entry, "refund:re_3", 7, 0)
			checkState(t, f, ledgerState{clearing: -7, fees: -59, refunds: 66})
		})
	})
	t.Run("DisputeWithFee", func(t *testing.T) {
		t.Parallel()
		f, entry := setup(t, FeePolicyGross)
		reverse(t, f, EntryDispute, entry, "dispute:dp_1", 1000, 1500)
		checkState(t, f, ledgerState{clearing: 0, fees: -1559, disputes: 1559})
	})
	t.Run("CentByCent", func(t *testing.T) {
		t.Parallel()
		// A cent at a time, nobody ever gives back more than its share; at the end nobody has any.
		f := newFixture(t)
		parties := []int64{f.creator, f.collaborator, f.distributor}
		plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyGross, t0, lines(parties, 3333, 3333, 3334))
		entry := pay(t, f, plan, "payment:ch_1", 100, 2)
		for i := range 100 {
			reverse(t, f, EntryRefund, entry, fmt.Sprintf("refund:%d", i), 1, 0)
			for _, p := range parties {
				if b := owed(t, f.db, p, "USD"); b < 0 {
					t.Fatalf("after %d refunds party %d owes %d", i+1, p, -b)
				}
			}
		}
		for _, p := range parties {
			if b := owed(t, f.db, p, "USD"); b != 0 {
				t.Fatalf("party %d is owed %d after a full refund", p, b)
			}
		}
		if r := balance(t, f.db, Refunds, "USD", 0); r != 2 {
			t.Fatalf("refund losses = %d, want the 2 fee", r)
		}
	})
	t.Run("Refuses", func(t *testing.T) {
		t.Parallel()
		f, entry := setup(t, FeePolicyNet)
		refund, err := PostReversal(ctx, f.db, Reversal{EntryID: entry, Kind: EntryRefund, Amount: 100,
			OccurredAt: t0, IdempotencyKey: "refund:re_1"})
		must(t, err)
		for _, tt := range []struct {
			name string
			r    Reversal
			want error
		}{
			{"ErrKind", Reversal{EntryID: entry, Kind: EntryPayout, Amount: 1, IdempotencyKey: "x"}, ErrInvalid},
			{"ErrZero", Reversal{EntryID: entry, Kind: EntryRefund, Amount: 0, IdempotencyKey: "x"}, ErrInvalid},
			{"ErrNegativeFee", Reversal{EntryID: entry, Kind: EntryDispute, Amount: 1, Fee: -1, IdempotencyKey: "x"}, ErrInvalid},
			{"ErrNoKey", Reversal{EntryID: entry, Kind: EntryRefund, Amount: 1}, ErrInvalid},
			{"ErrNotAPayment", Reversal{EntryID: refund, Kind: EntryRefund, Amount: 1, IdempotencyKey: "x"}, ErrInvalid},
			{"ErrNoEntry", Reversal{EntryID: 1 << 40, Kind: EntryRefund, Amount: 1, IdempotencyKey: "x"}, ErrNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tt.r.OccurredAt = t0
				if _, err := PostReversal(ctx, f.db, tt.r); !errors.Is(err, tt.want) {
					t.Fatalf("PostReversal = %v, want %v", err, tt.want)
				}
			})
		}
	})
}

// Random payments in several currencies under random plans, some of them then refunded in
// random pieces: the ledger sums to zero per currency, every payment not refunded leaves each
// party exactly what Split gives it, and a refunded payment leaves nobody anything.
func TestLedgerProperties(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	f := newFixture(t)
	ctx := context.Background()
	parties := []int64{f.distributor, f.creator, f.collaborator}
	for i := range 3 {
		parties = append(parties, newParty(t, f.db, "collaborator", fmt.Sprintf("C%d", i)))
	}
	var owner int64
	must(t, f.db.QueryRow(ctx, `SELECT owner_id FROM shows WHERE id = $1`, f.show).Scan(&owner))

	type key struct {
		party    int64
		currency string
	}
	want := map[key]int64{}
	currencies := []string{"USD", "JPY", "KWD"}
	for s := range 12 {
		show := newShow(t, f.db, owner, fmt.Sprintf("prop-%d", s))
		n := 1 + r.IntN(len(parties))
		chosen := slices.Clone(parties)
		r.Shuffle(len(chosen), func(i, j int) { chosen[i], chosen[j] = chosen[j], chosen[i] })
		policy := []string{FeePolicyNet, FeePolicyGross}[r.IntN(2)]
		plan := createPlan(t, f.db, show, SourceAll, policy, t0, lines(chosen[:n], randomPlan(r, n)...))
		bps := make([]int, n)
		for i, l := range plan.Lines {
			bps[i] = l.BasisPoints
		}
		for k := range 10 {
			gross := 1 + r.Int64N([]int64{100, 100_000, 1 << 40}[r.IntN(3)])
			fee := r.Int64N(gross/10 + 1)
			if r.IntN(20) == 0 {
				fee = gross
			}
			cur := currencies[r.IntN(len(currencies))]
			id, err := PostPayment(ctx, f.db, Payment{Gross: gross, Fee: fee, Currency: cur, OccurredAt: t0.Add(time.Hour),
				Source: SourceDonations, IdempotencyKey: fmt.Sprintf("payment:%d:%d", s, k)}, plan)
			must(t, err)
			if r.IntN(4) == 0 {
				refundAll(t, f, id, gross, r)
				continue
			}
			base := gross - fee
			if policy == FeePolicyGross {
				base = gross
			}
			parts, err := Split(base, bps)
			must(t, err)
			for i, l := range plan.Lines {
				want[key{l.PartyID, cur}] += parts[i]
				if policy == FeePolicyGross && l.PartyID == f.distributor {
					want[key{l.PartyID, cur}] -= min(fee, parts[i])
				}
			}
		}
	}

	rows, err := f.db.Query(ctx, `SELECT currency, sum(amount)::text FROM postings GROUP BY currency HAVING sum(amount) <> 0`)
	must(t, err)
	for rows.Next() {
		var cur, sum string
		must(t, rows.Scan(&cur, &sum))
		t.Errorf("%s postings sum to %s", cur, sum)
	}
	must(t, rows.Err())
	for _, p := range parties {
		for _, cur := range currencies {
			if got := owed(t, f.db, p, cur); got != want[key{p, cur}] {
				t.Errorf("party %d is owed %d %s, Split gives %d", p, got, cur, want[key{p, cur}])
			}
		}
	}
}

// refundAll returns a payment in random pieces, checking after each that no party has given
// back more than the payment left it, and at the end that the payment leaves nobody anything.
func refundAll(t *testing.T, f fixture, entry, gross int64, r *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	net := func() map[int64]int64 {
		rows, err := f.db.Query(ctx, `
			SELECT a.party_id, sum(p.amount)::bigint FROM postings p
			JOIN journal_entries e ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id
			WHERE (e.id = $1 OR e.reverses_entry_id = $1) AND a.kind = 'party_payable'
			GROUP BY a.party_id`, entry)
		must(t, err)
		m := map[int64]int64{}
		for rows.Next() {
			var party, sum int64
			must(t, rows.Scan(&party, &sum))
			m[party] = -sum
		}
		must(t, rows.Err())
		return m
	}
	received := net()
	for i, left := 0, gross; left > 0; i++ {
		amount := 1 + r.Int64N(left)
		kind := []string{EntryRefund, EntryDispute}[r.IntN(2)]
		_, err := PostReversal(ctx, f.db, Reversal{EntryID: entry, Kind: kind, Amount: amount, Fee: r.Int64N(3),
			OccurredAt: t0.Add(2 * time.Hour), IdempotencyKey: fmt.Sprintf("reverse:%d:%d", entry, i)})
		must(t, err)
		left -= amount
		for party, n := range net() {
			if n < 0 || n > received[party] {
				t.Fatalf("entry %d: party %d is left %d of the %d it received", entry, party, n, received[party])
			}
			if left == 0 && n != 0 {
				t.Fatalf("entry %d fully returned still leaves party %d with %d", entry, party, n)
			}
		}
	}
}

func TestSplitByWeights(t *testing.T) {
	for _, tt := range []struct {
		amount  int64
		weights []int64
		want    []int64
	}{
		{400, []int64{750, 250}, []int64{300, 100}},
		{400, []int64{706, 235}, []int64{300, 100}},
		{1, []int64{1, 1, 1}, []int64{1, 0, 0}},
		{1, []int64{0, 5}, []int64{0, 1}},
		{0, []int64{0, 0}, []int64{0, 0}},
		{5, []int64{5}, []int64{5}},
		{1<<63 - 1, []int64{1<<62 - 1, 1 << 62}, []int64{1<<62 - 1, 1 << 62}},
	} {
		got, err := splitByWeights(tt.amount, tt.weights)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitByWeights(%d, %v) = %v, %v; want %v", tt.amount, tt.weights, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		amount  int64
		weights []int64
	}{{2, []int64{1}}, {-1, []int64{1}}, {1, []int64{-1, 2}}, {1, nil}, {1, []int64{1 << 62, 1 << 62}}} {
		if _, err := splitByWeights(bad.amount, bad.weights); !errors.Is(err, ErrInvalid) {
			t.Errorf("splitByWeights(%d, %v) = %v, want ErrInvalid", bad.amount, bad.weights, err)
		}
	}
}

// FuzzSplitByWeights checks what reversals rely on: the parts sum to the amount, none exceeds
// its weight, and each is within one unit of its exact share.
func FuzzSplitByWeights(f *testing.F) {
	f.Add(int64(400), uint64(1), uint8(2))
	f.Add(int64(1), uint64(9), uint8(7))
	f.Add(int64(1<<62), uint64(3), uint8(3))
	f.Add(int64(4611686018427387821), uint64(75), uint8(0)) // one weight, zero
	f.Fuzz(func(t *testing.T, amount int64, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		weights := make([]int64, int(n%16)+1)
		var total int64
		for i := range weights {
			weights[i] = r.Int64N(1 << 58)
			if r.IntN(4) == 0 {
				weights[i] = r.Int64N(3)
			}
			total += weights[i]
		}
		if amount < 0 {
			amount = -(amount + 1)
		}
		if total == 0 {
			amount = 0
		} else {
			amount %= total + 1
		}
		parts, err := splitByWeights(amount, weights)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for i, p := range parts {
			sum += p
			if p < 0 || p > weights[i] {
				t.Fatalf("part %d = %d, weight %d", i, p, weights[i])
			}
			if total == 0 {
				continue
			}
			// |p*total - amount*weight| < total
			diff := new(big.Int).Mul(big.NewInt(p), big.NewInt(total))
			diff.Sub(diff, new(big.Int).Mul(big.NewInt(amount), big.NewInt(weights[i])))
			if diff.CmpAbs(big.NewInt(total)) >= 0 {
				t.Fatalf("splitByWeights(%d, %v): part %d = %d is a unit or more from its share", amount, weights, i, p)
			}
		}
		if sum != amount {
			t.Fatalf("splitByWeights(%d, %v) = %v sums to %d", amount, weights, parts, sum)
		}
	})
}
