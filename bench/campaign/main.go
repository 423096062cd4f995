// Command campaign benchmarks closing a campaign: a keep-what-it-raises campaign of N pledges
// crosses its deadline and its River jobs charge every pledge off-session, against Stripe's
// mock server (stripe-mock answers every payment intent as still needing a payment method, so
// each pledge ends needing the backer's action: the round trip to Stripe and the state change,
// without posting) and in offline test mode (each charge posted to the ledger and split, the
// whole path). Beside them, the same number of plain PaymentIntent creations made one by one
// against the same stripe-mock in the same run.
//
//	go run ./bench/campaign                 # 10000 pledges, 16 workers
//	go run ./bench/campaign -pledges 2000 -workers 8
//
// The database server is FANSEED_BENCH_DATABASE_URL, or PostgreSQL on 127.0.0.1:5432.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/billing/stripetest"
	"github.com/fanseed/fanseed/migrations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "campaign:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("campaign", flag.ContinueOnError)
	pledges := fs.Int("pledges", 10000, "pledges of the campaign")
	workers := fs.Int("workers", 16, "River workers of the campaign queue (and single Stripe events)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pledges <= 0 || *workers <= 0 {
		return errors.New("-pledges and -workers must be positive")
	}
	base, err := stripetest.Start()
	if err != nil {
		return fmt.Errorf("stripe-mock: %w", err)
	}
	fmt.Fprintf(out, "closing a campaign of %d pledges, %d workers, stripe-mock at %s\n\n", *pledges, *workers, base)

	for _, mode := range []string{"stripe-mock", "offline"} {
		var st *billing.Stripe
		if mode == "stripe-mock" {
			st = billing.NewStripe("sk_test_bench", base, &http.Client{Timeout: 30 * time.Second})
		}
		elapsed, ended, err := closeCampaign(ctx, st, *pledges, *workers)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		fmt.Fprintf(out, "%-12s time to close %8.2fs   %8.0f pledges charged/s   %s\n", mode, elapsed.Seconds(),
			float64(*pledges)/elapsed.Seconds(), ended)
	}

	// The reference: plain PaymentIntent creations, one by one, against the same stripe-mock.
	api := &client.API{}
	api.Init("sk_test_bench", &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(base), HTTPClient: &http.Client{Timeout: 30 * time.Second},
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})})
	start := time.Now()
	for i := range *pledges {
		p := &stripe.PaymentIntentParams{Amount: stripe.Int64(1000), Currency: stripe.String("usd"), Customer: stripe.String("cus_bench"),
			PaymentMethod: stripe.String("pm_bench"), OffSession: stripe.Bool(true), Confirm: stripe.Bool(true)}
		p.Context = ctx
		p.SetIdempotencyKey("bench:" + strconv.Itoa(i))
		if _, err := api.PaymentIntents.New(p); err != nil {
			return fmt.Errorf("plain payment intent: %w", err)
		}
	}
	elapsed := time.Since(start)
	fmt.Fprintf(out, "%-12s %d PaymentIntents one by one in %.2fs: %.0f/s\n", "reference", *pledges, elapsed.Seconds(),
		float64(*pledges)/elapsed.Seconds())
	return nil
}

// closeCampaign loads a live campaign of n pledges on a fresh database, moves the service's
// clock past its deadline, closes it and waits until no pledge is left charging.
func closeCampaign(ctx context.Context, st *billing.Stripe, n, workers int) (time.Duration, string, error) {
	dbURL, drop, err := benchkit.CreateDatabase(ctx, "bench_campaign")
	if err != nil {
		return 0, "", err
	}
	defer drop()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return 0, "", err
	}
	cfg.MaxConns = int32(workers + 8)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrations.Up(ctx, db, logger); err != nil {
		return 0, "", err
	}
	if _, err := billing.MigrateJobs(ctx, db); err != nil {
		return 0, "", err
	}
	var clock atomic.Pointer[time.Time]
	now := time.Now()
	clock.Store(&now)
	svc := &billing.Service{DB: db, Stripe: st, WebhookSecret: "whsec_bench", Log: logger, Now: func() time.Time { return *clock.Load() }}
	jobs, err := billing.NewJobClient(svc, billing.JobOptions{Work: true, Workers: workers})
	if err != nil {
		return 0, "", err
	}
	if err := jobs.Start(ctx); err != nil {
		return 0, "", err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobs.Stop(stopCtx)
	}()

	var owner, show, creator, distributor int64
	if err := db.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role) VALUES ('b@example.com', 'B', 'x', 'creator')
		RETURNING id`).Scan(&owner); err != nil {
		return 0, "", err
	}
	if err := db.QueryRow(ctx, `INSERT INTO shows (owner_id, slug, title, currency) VALUES ($1, 'bench', 'Bench', 'USD') RETURNING id`,
		owner).Scan(&show); err != nil {
		return 0, "", err
	}
	if err := db.QueryRow(ctx, `INSERT INTO parties (kind, name, email) VALUES ('creator', 'B', 'b@example.com') RETURNING id`).Scan(&creator); err != nil {
		return 0, "", err
	}
	if err := db.QueryRow(ctx, `SELECT id FROM parties WHERE kind = 'distributor'`).Scan(&distributor); err != nil {
		return 0, "", err
	}
	c, err := svc.CreateCampaign(ctx, show, billing.CampaignInput{Title: "Bench", Goal: 100, Currency: "USD",
		Deadline: now.Add(time.Hour), TimeZone: "UTC", AllOrNothing: false,
		OwnPlan: []billing.PlanLine{{PartyID: creator, BasisPoints: 7500}, {PartyID: distributor, BasisPoints: 2500}}}, nil)
	if err != nil {
		return 0, "", err
	}
	if _, err := svc.LaunchCampaign(ctx, c.ID); err != nil {
		return 0, "", err
	}
	if _, err := db.Exec(ctx, `INSERT INTO pledges (campaign_id, amount, currency, backer_email, status, token, passkey,
			customer_id, payment_method_id)
		SELECT $1, 1000 + i % 500, 'USD', 'backer' || i || '@example.com', 'active', 'pl_bench_' || i, 'pk_bench_' || i,
			'cus_bench_' || i, 'pm_test_fanseed_ok_' || i
		FROM generate_series(1, $2) AS i`, c.ID, n); err != nil {
		return 0, "", err
	}
	later := c.Deadline.Add(time.Second)
	clock.Store(&later)
	start := time.Now()
	if _, err := svc.CloseCampaign(ctx, c.ID); err != nil {
		return 0, "", err
	}
	for {
		var charging int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pledges WHERE campaign_id = $1 AND status = 'charging'`, c.ID).Scan(&charging); err != nil {
			return 0, "", err
		}
		if charging == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	states, err := billing.PledgeStates(ctx, db, c.ID)
	if err != nil {
		return 0, "", err
	}
	var entries int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM journal_entries WHERE source = 'campaigns'`).Scan(&entries); err != nil {
		return 0, "", err
	}
	return elapsed, fmt.Sprintf("(pledges %v, %d ledger entries)", states, entries), nil
}
