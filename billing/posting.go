package billing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Payment is money a fan or sponsor paid, as Stripe's balance transaction reports it.
type Payment struct {
	Gross          int64 // what the payer paid, in minor units
	Fee            int64 // what Stripe withheld
	Currency       string
	OccurredAt     time.Time // when the money was received; the plan must be in force then
	Source         string    // SourceDonations or SourceSponsorship
	IdempotencyKey string    // required: "payment:" + the charge id, say
	StripeObjectID string
	StripeEventID  string
	Description    string
}

// PostPayment posts a payment split by plan and returns the entry's id (with ErrDuplicate if
// its idempotency key was posted before). The postings are:
//
//	stripe_clearing  +gross
//	processor_fees   -fee
//	party_payable    -share, for each party: net policy splits gross-fee among the parties;
//	                 gross policy splits gross, and the distributor absorbs the fee out of its
//	                 share (+fee on its payable) up to that share, the rest of the fee being a
//	                 platform cost (+rest on platform_revenue).
func PostPayment(ctx context.Context, db DBTX, p Payment, plan Plan) (int64, error) {
	if _, err := p.validate(plan); err != nil {
		return 0, err
	}
	var id int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		id, err = postPayment(ctx, tx, p, plan, nil)
		return err
	})
	return id, err
}

// postPayment is PostPayment inside the caller's transaction, without a savepoint of its
// own, finding accounts through accounts when it is not nil.
func postPayment(ctx context.Context, tx pgx.Tx, p Payment, plan Plan, accounts *accountLookup) (int64, error) {
	e, err := paymentEntry(ctx, tx, p, plan, accounts)
	if err != nil {
		return 0, err
	}
	id, err := post(ctx, tx, e)
	if errors.Is(err, ErrDuplicate) {
		return id, err
	}
	if err != nil {
		return 0, fmt.Errorf("post payment %q: %w", p.IdempotencyKey, err)
	}
	return id, nil
}

// paymentEntry is the entry of a payment split by plan, as PostPayment posts it.
func paymentEntry(ctx context.Context, tx pgx.Tx, p Payment, plan Plan, accounts *accountLookup) (Entry, error) {
	cur, err := p.validate(plan)
	if err != nil {
		return Entry{}, err
	}
	base := p.Gross - p.Fee
	if plan.FeePolicy == FeePolicyGross {
		base = p.Gross
	}
	shares, err := SplitByPlan(base, plan)
	if err != nil {
		return Entry{}, err
	}
	b := postingBuilder{ctx: ctx, db: tx, currency: cur, accounts: accounts}
	b.add(StripeClearing, 0, p.Gross, RoleGross)
	b.add(ProcessorFees, 0, -p.Fee, RoleFee)
	absorbed := int64(0)
	for _, s := range shares {
		b.add(PartyPayable, s.PartyID, -s.Amount, RoleShare)
		if plan.FeePolicy == FeePolicyGross && s.PartyKind == PartyDistributor {
			absorbed = min(p.Fee, s.Amount)
			b.add(PartyPayable, s.PartyID, absorbed, RoleFeeAbsorbed)
		}
	}
	if plan.FeePolicy == FeePolicyGross {
		b.add(PlatformRevenue, 0, p.Fee-absorbed, RoleFeeAbsorbed)
	}
	if b.err != nil {
		return Entry{}, fmt.Errorf("post payment %q: %w", p.IdempotencyKey, b.err)
	}
	return Entry{
		Kind: EntryPayment, Description: p.Description, IdempotencyKey: p.IdempotencyKey,
		OccurredAt: p.OccurredAt, StripeObjectID: p.StripeObjectID, StripeEventID: p.StripeEventID,
		ShowID: plan.ShowID, Source: p.Source, SharePlanID: plan.ID, Postings: b.list,
	}, nil
}

func (p Payment) validate(plan Plan) (string, error) {
	cur, err := LookupCurrency(p.Currency)
	if err != nil {
		return "", err
	}
	switch {
	case p.Gross <= 0:
		return "", fmt.Errorf("%w: payment of %d", ErrInvalid, p.Gross)
	case p.Fee < 0 || p.Fee > p.Gross:
		return "", fmt.Errorf("%w: fee %d on a payment of %d", ErrInvalid, p.Fee, p.Gross)
	case p.IdempotencyKey == "":
		return "", fmt.Errorf("%w: payment has no idempotency key", ErrInvalid)
	case p.Source != SourceDonations && p.Source != SourceSponsorship && p.Source != SourceCampaigns:
		return "", fmt.Errorf("%w: payment source %q", ErrInvalid, p.Source)
	// A pledge's charge is split by the plan its campaign pinned: its own or the show's.
	case plan.ID == 0 || (p.Source != SourceCampaigns && plan.Source != SourceAll && plan.Source != p.Source):
		return "", fmt.Errorf("%w: plan %d (%s) does not split %s", ErrInvalid, plan.ID, plan.Source, p.Source)
	case plan.EffectiveAt.After(p.OccurredAt) && p.Source != SourceCampaigns: // a campaign pinned its plan at launch
		return "", fmt.Errorf("%w: plan %d takes effect after the payment", ErrInvalid, plan.ID)
	case plan.FeePolicy != FeePolicyNet && plan.FeePolicy != FeePolicyGross:
		return "", fmt.Errorf("%w: fee policy %q", ErrInvalid, plan.FeePolicy)
	}
	return cur.Code, nil
}

// Reversal is money taken back from a payment: a refund, or a dispute (chargeback).
type Reversal struct {
	EntryID        int64  // the payment entry
	Kind           string // EntryRefund or EntryDispute
	Amount         int64  // gross returned to the payer
	Fee            int64  // fee Stripe withheld for it, such as a dispute fee; the platform bears it. On a refund it may be negative: part of the payment's fee Stripe returned, which the platform keeps
	OccurredAt     time.Time
	IdempotencyKey string // required: "refund:" + the refund id, say
	StripeObjectID string
	StripeEventID  string
	Description    string
}

// PostReversal posts a refund or dispute of part or all of a payment and returns the entry's
// id (with ErrDuplicate if its idempotency key was posted before). The amount is divided by
// the largest-remainder method over what the payment left each party and the fee the
// distributor absorbed from its share (gross policy), less what earlier reversals of the
// payment took back. So no party ever gives back more than it received; under the gross
// policy each party gives back the refunded fraction of its part; under the net policy the
// parties bear the refund until nothing of the payment is left them. The part of the absorbed
// fee, whatever the parties cannot bear (the fee, when the whole payment is returned) and Fee
// are platform losses, on refunds or dispute_losses:
//
//	stripe_clearing          -amount
//	party_payable            +part, for each party
//	refunds/dispute_losses   +part of the absorbed fee, +what the parties cannot bear, +fee
//	processor_fees           -fee
//
// Reversals of one payment are serialised by a lock on the payment's entry. Amount is what
// Stripe took from the balance, which may be more than is left of the payment (a dispute of the
// whole charge after a partial refund, or a conversion at another rate): the parties then give
// back all they have left of it and the rest is the platform's loss.
func PostReversal(ctx context.Context, db DBTX, r Reversal) (int64, error) {
	loss := Refunds
	if r.Kind == EntryDispute {
		loss = DisputeLosses
	}
	switch {
	case r.Kind != EntryRefund && r.Kind != EntryDispute:
		return 0, fmt.Errorf("%w: reversal kind %q", ErrInvalid, r.Kind)
	case r.Amount <= 0 || (r.Fee < 0 && r.Kind != EntryRefund) || -r.Fee > r.Amount:
		return 0, fmt.Errorf("%w: reversal of %d with fee %d", ErrInvalid, r.Amount, r.Fee)
	case r.IdempotencyKey == "":
		return 0, fmt.Errorf("%w: reversal has no idempotency key", ErrInvalid)
	}
	var id int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var orig Entry
		err := tx.QueryRow(ctx, `
			SELECT kind, coalesce(show_id, 0), coalesce(source, ''), coalesce(share_plan_id, 0)
			FROM journal_entries WHERE id = $1 FOR UPDATE`,
			r.EntryID).Scan(&orig.Kind, &orig.ShowID, &orig.Source, &orig.SharePlanID)
		if err != nil {
			return dbError(err)
		}
		// A retry is answered before the checks below, which it would fail once applied; under
		// the lock, so that a retry racing the first attempt sees it.
		err = tx.QueryRow(ctx, `SELECT id FROM journal_entries WHERE idempotency_key = $1`, r.IdempotencyKey).Scan(&id)
		if err == nil {
			return ErrDuplicate
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return dbError(err)
		}
		if orig.Kind != EntryPayment {
			return fmt.Errorf("%w: entry %d is a %s, not a payment", ErrInvalid, r.EntryID, orig.Kind)
		}
		hist, err := loadReversalHistory(ctx, tx, r.EntryID)
		if err != nil {
			return err
		}
		// The weights are the parties' remainders, then the absorbed fee's.
		weights := make([]int64, len(hist.parties)+1)
		var sum int64
		for i, pt := range hist.parties {
			weights[i] = pt.received - pt.taken
			sum += weights[i]
		}
		weights[len(hist.parties)] = hist.absorbed - hist.absorbedTaken
		sum += weights[len(hist.parties)]
		take := min(r.Amount, sum)
		parts, err := splitByWeights(take, weights)
		if err != nil {
			return err
		}
		b := postingBuilder{ctx: ctx, db: tx, currency: hist.currency}
		b.add(StripeClearing, 0, -r.Amount, RoleGross)
		for i, pt := range hist.parties {
			b.add(PartyPayable, pt.id, parts[i], RoleShare)
		}
		b.add(loss, 0, parts[len(hist.parties)], RoleFeeAbsorbed)
		b.add(loss, 0, r.Amount-take, RoleLoss)
		b.add(ProcessorFees, 0, -r.Fee, RoleFee)
		b.add(loss, 0, r.Fee, RoleFee)
		if b.err != nil {
			return b.err
		}
		id, err = Post(ctx, tx, Entry{
			Kind: r.Kind, Description: r.Description, IdempotencyKey: r.IdempotencyKey,
			OccurredAt: r.OccurredAt, StripeObjectID: r.StripeObjectID, StripeEventID: r.StripeEventID,
			ShowID: orig.ShowID, Source: orig.Source, SharePlanID: orig.SharePlanID, ReversesEntryID: r.EntryID,
			Postings: b.list,
		})
		return err
	})
	if errors.Is(err, ErrDuplicate) {
		return id, fmt.Errorf("post %s %q: %w", r.Kind, r.IdempotencyKey, err)
	}
	if err != nil {
		return 0, fmt.Errorf("post %s of entry %d: %w", r.Kind, r.EntryID, err)
	}
	return id, nil
}

// reversalHistory is a payment entry and what earlier refunds and disputes took back from it
// (less what won disputes gave back).
type reversalHistory struct {
	currency      string
	gross         int64 // the payment's gross
	returned      int64 // gross returned by earlier reversals
	parties       []partyHistory
	absorbed      int64 // fee the distributor absorbed from its share
	absorbedTaken int64 // part of it earlier reversals booked as a loss
}

type partyHistory struct {
	id       int64
	received int64 // what the payment left the party: its share less any fee it absorbed
	taken    int64 // what earlier reversals took back
}

func loadReversalHistory(ctx context.Context, db DBTX, entryID int64) (reversalHistory, error) {
	type line struct {
		Original bool        `db:"original"`
		Role     string      `db:"role"`
		Kind     AccountKind `db:"kind"`
		PartyID  int64       `db:"party_id"`
		Currency string      `db:"currency"`
		Amount   int64       `db:"amount"`
	}
	rows, _ := db.Query(ctx, `
		SELECT e.id = $1 AS original, p.role, a.kind, coalesce(a.party_id, 0) AS party_id, p.currency, p.amount
		FROM journal_entries e
		JOIN postings p ON p.entry_id = e.id
		JOIN ledger_accounts a ON a.id = p.account_id
		WHERE e.id = $1 OR (e.reverses_entry_id = $1 AND e.kind IN ('refund', 'dispute'))
		   OR (e.kind IN ('dispute_won', 'refund_failed') AND e.reverses_entry_id IN
		       (SELECT id FROM journal_entries WHERE reverses_entry_id = $1 AND kind IN ('dispute', 'refund')))
		ORDER BY e.id, p.id`, entryID)
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByName[line])
	if err != nil {
		return reversalHistory{}, fmt.Errorf("history of entry %d: %w", entryID, dbError(err))
	}
	var h reversalHistory
	index := map[int64]int{}
	for _, l := range lines {
		switch {
		case l.Kind == StripeClearing && l.Role == RoleGross && l.Original:
			h.currency, h.gross = l.Currency, l.Amount
		case l.Kind == StripeClearing && l.Role == RoleGross:
			h.returned -= l.Amount
		case l.Kind == PartyPayable:
			i, ok := index[l.PartyID]
			if !ok {
				i = len(h.parties)
				index[l.PartyID] = i
				h.parties = append(h.parties, partyHistory{id: l.PartyID})
			}
			if l.Original {
				h.parties[i].received -= l.Amount
				if l.Role == RoleFeeAbsorbed {
					h.absorbed += l.Amount
				}
			} else {
				h.parties[i].taken += l.Amount
			}
		case l.Role == RoleFeeAbsorbed && !l.Original:
			h.absorbedTaken += l.Amount
		}
	}
	if h.gross <= 0 {
		return reversalHistory{}, fmt.Errorf("%w: entry %d has no gross to reverse", ErrInvalid, entryID)
	}
	return h, nil
}

// postingBuilder builds the postings of one entry in one currency, creating accounts as
// needed and leaving out zero amounts. The first error sticks.
type postingBuilder struct {
	ctx      context.Context
	db       DBTX
	currency string
	accounts *accountLookup // nil: each account is looked up
	list     []Posting
	err      error
}

func (b *postingBuilder) add(kind AccountKind, partyID, amount int64, role string) {
	if b.err != nil || amount == 0 {
		return
	}
	var id int64
	var err error
	if b.accounts != nil {
		id, err = b.accounts.id(b.ctx, b.db, kind, b.currency, partyID)
	} else {
		id, err = Account(b.ctx, b.db, kind, b.currency, partyID)
	}
	if err != nil {
		b.err = err
		return
	}
	b.list = append(b.list, Posting{AccountID: id, Amount: amount, Currency: b.currency, Role: role})
}

// splitByWeights divides amount (0 <= amount <= the sum of weights) in proportion to
// non-negative weights by the largest-remainder method, ties to the earlier weight, as Split
// does with basis points. The parts sum to amount and none exceeds its weight.
func splitByWeights(amount int64, weights []int64) ([]int64, error) {
	var total uint64
	for i, w := range weights {
		if w < 0 || uint64(w) > math.MaxInt64-total {
			return nil, fmt.Errorf("%w: weight %d is %d", ErrInvalid, i+1, w)
		}
		total += uint64(w)
	}
	if amount < 0 || uint64(amount) > total {
		return nil, fmt.Errorf("%w: cannot divide %d by weights summing to %d", ErrInvalid, amount, total)
	}
	parts := make([]int64, len(weights))
	if amount == 0 {
		return parts, nil
	}
	rems := make([]uint64, len(weights))
	var sum uint64
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(amount), uint64(w))
		q, r := bits.Div64(hi, lo, total) // hi < total since amount <= total
		parts[i], rems[i] = int64(q), r
		sum += q
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for k := uint64(0); k < uint64(amount)-sum; k++ {
		parts[order[k]]++
	}
	return parts, nil
}

// DisputeWon is a dispute closed in the platform's favour: Stripe gives the disputed amount
// back, and Fee is the fee it reports with the reinstatement (negative when it returns the
// dispute fee).
type DisputeWon struct {
	DisputeEntryID int64
	Amount         int64 // what Stripe gave back; 0 (or all the dispute withdrew) reinstates every line
	Fee            int64
	OccurredAt     time.Time
	IdempotencyKey string // required: "dispute_won:" + the dispute id, say
	StripeObjectID string
	StripeEventID  string
}

// PostDisputeWon reinstates a dispute: it posts the dispute entry's lines with the signs
// turned round (each party gets back exactly what the dispute took from it; when Stripe gave
// back only part, each line in proportion, by the largest-remainder method), except the
// dispute's fee lines, in whose place it posts the reinstatement's fee effect:
//
//	processor_fees  -fee
//	dispute_losses  +fee
func PostDisputeWon(ctx context.Context, db DBTX, d DisputeWon) (int64, error) {
	if d.IdempotencyKey == "" {
		return 0, fmt.Errorf("%w: reinstatement has no idempotency key", ErrInvalid)
	}
	var id int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var kind string
		var payID, showID, planID int64
		var source string
		err := tx.QueryRow(ctx, `SELECT kind, coalesce(reverses_entry_id, 0), coalesce(show_id, 0), coalesce(source, ''),
			coalesce(share_plan_id, 0) FROM journal_entries WHERE id = $1`, d.DisputeEntryID).Scan(&kind, &payID, &showID, &source, &planID)
		if err != nil {
			return dbError(err)
		}
		if kind != EntryDispute {
			return fmt.Errorf("%w: entry %d is a %s, not a dispute", ErrInvalid, d.DisputeEntryID, kind)
		}
		// Under the payment's lock, as reversals of it are.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM journal_entries WHERE id = $1 FOR UPDATE`, payID); err != nil {
			return dbError(err)
		}
		err = tx.QueryRow(ctx, `SELECT id FROM journal_entries WHERE idempotency_key = $1`, d.IdempotencyKey).Scan(&id)
		if err == nil {
			return ErrDuplicate
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return dbError(err)
		}
		rows, _ := tx.Query(ctx, `SELECT p.account_id, p.amount, p.currency, p.role FROM postings p
			WHERE p.entry_id = $1 ORDER BY p.id`, d.DisputeEntryID)
		lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Posting])
		if err != nil {
			return dbError(err)
		}
		list, currency, err := reinstatement(lines, d.Amount)
		if err != nil {
			return err
		}
		b := postingBuilder{ctx: ctx, db: tx, currency: currency, list: list}
		b.add(ProcessorFees, 0, -d.Fee, RoleFee)
		b.add(DisputeLosses, 0, d.Fee, RoleFee)
		if b.err != nil {
			return b.err
		}
		id, err = Post(ctx, tx, Entry{
			Kind: EntryDisputeWon, Description: "Dispute won", IdempotencyKey: d.IdempotencyKey, OccurredAt: d.OccurredAt,
			StripeObjectID: d.StripeObjectID, StripeEventID: d.StripeEventID, ShowID: showID, Source: source,
			SharePlanID: planID, ReversesEntryID: d.DisputeEntryID, Postings: b.list,
		})
		return err
	})
	if errors.Is(err, ErrDuplicate) {
		return id, fmt.Errorf("post dispute won %q: %w", d.IdempotencyKey, err)
	}
	if err != nil {
		return 0, fmt.Errorf("post dispute won of entry %d: %w", d.DisputeEntryID, err)
	}
	return id, nil
}

// reinstatement is the lines giving back amount of what a dispute entry's lines withdrew (all
// of it for 0), fee lines left out, signs turned round.
func reinstatement(lines []Posting, amount int64) ([]Posting, string, error) {
	if len(lines) == 0 {
		return nil, "", fmt.Errorf("%w: a dispute entry without postings", ErrInvalid)
	}
	var back []Posting
	var withdrawn int64
	var weights []int64 // what each line other than the gross took, in order
	for _, l := range lines {
		if l.Role == RoleFee {
			continue
		}
		if l.Role == RoleGross {
			withdrawn = -l.Amount
		} else {
			weights = append(weights, l.Amount)
		}
		back = append(back, Posting{AccountID: l.AccountID, Amount: -l.Amount, Currency: l.Currency, Role: l.Role})
	}
	currency := lines[0].Currency
	if amount == 0 || amount == withdrawn {
		return back, currency, nil
	}
	if amount < 0 || amount > withdrawn {
		return nil, "", fmt.Errorf("%w: %d to reinstate of a dispute that withdrew %d", ErrInvalid, amount, withdrawn)
	}
	parts, err := splitByWeights(amount, weights)
	if err != nil {
		return nil, "", err
	}
	list := make([]Posting, 0, len(back))
	k := 0
	for _, l := range back {
		if l.Role == RoleGross {
			l.Amount = amount
		} else {
			l.Amount = -parts[k]
			k++
		}
		if l.Amount != 0 {
			list = append(list, l)
		}
	}
	return list, currency, nil
}
