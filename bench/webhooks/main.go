// Command webhooks benchmarks the Stripe webhook path of a real `fanseed serve` on loopback:
// signed checkout.session.completed events are posted concurrently until every one is applied
// to the ledger (stored, queued, split and posted by the River workers), and it prints events
// per second fully applied and the response latency, beside pgbench's TPC-B-like transactions
// per second on the same database in the same run.
//
//	go run ./bench/webhooks                      # 20000 events, 32 senders
//	go run ./bench/webhooks -events 5000 -senders 16
//
// The database server is FANSEED_BENCH_DATABASE_URL, or PostgreSQL on 127.0.0.1:5432.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/billing"
)

const secret = "whsec_bench_secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	events := fs.Int("events", 20000, "signed events to post")
	senders := fs.Int("senders", 32, "concurrent HTTP clients")
	workers := fs.Int("workers", 16, "EVENT_WORKERS of serve")
	batchWorkers := fs.Int("batch-workers", 2, "EVENT_BATCH_WORKERS of serve")
	pool := fs.Int("pool", 16, "pool_max_conns of serve's database pool")
	pgbenchSecs := fs.Int("pgbench-seconds", 15, "how long pgbench runs")
	pgbenchClients := fs.Int("pgbench-clients", 8, "pgbench clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events <= 0 || *senders <= 0 {
		return errors.New("-events and -senders must be positive")
	}
	dir, bin, dbURL, cleanup, err := benchkit.Prepare(ctx, "webhooks")
	if err != nil {
		return err
	}
	defer cleanup()
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(*pool))
	u.RawQuery = q.Encode()
	serve, err := benchkit.StartServe(ctx, bin, "DATABASE_URL="+u.String(), "DATA_DIR="+filepath.Join(dir, "data"),
		"LOG_LEVEL=warn", "STRIPE_WEBHOOK_SECRET="+secret, "EVENT_WORKERS="+strconv.Itoa(*workers),
		"EVENT_BATCH_WORKERS="+strconv.Itoa(*batchWorkers))
	if err != nil {
		return err
	}
	defer serve.Stop()
	srv := &serveProc{base: serve.Base}
	showID, err := srv.setUp()
	if err != nil {
		return err
	}

	// Sign every event up front (well within Stripe's 5-minute tolerance) so that the senders
	// measure the server, not HMAC.
	md := map[string]string{billing.MetaKind: billing.KindDonation, billing.MetaShowID: strconv.FormatInt(showID, 10)}
	type signed struct {
		body []byte
		sig  string
	}
	all := make([]signed, *events)
	now := time.Now()
	for i := range all {
		ch := fmt.Sprintf("ch_bench_%07d", i)
		gross := int64(500 + 100*(i%20))
		body := billing.EventJSON(fmt.Sprintf("evt_bench_%07d", i), "checkout.session.completed", now,
			billing.CheckoutSessionObject(fmt.Sprintf("cs_bench_%07d", i), billing.ChargeObject(ch, gross, billing.TestFee(gross, "USD"), "USD", now),
				"", gross, "USD", md), nil, "")
		all[i] = signed{body, billing.SignEvent(body, secret)}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *senders}}
	latencies := make([]time.Duration, len(all))
	var failed sync.Map
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for range *senders {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/webhooks/stripe", bytes.NewReader(all[i].body))
				req.Header.Set("Stripe-Signature", all[i].sig)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				latencies[i] = time.Since(t0)
				if err != nil {
					failed.Store(i, err)
				}
			}
		})
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	posted := time.Since(start)
	var firstErr error
	failed.Range(func(_, v any) bool { firstErr = v.(error); return false })
	if firstErr != nil {
		return fmt.Errorf("posting events: %w", firstErr)
	}
	applied, err := waitApplied(ctx, dbURL, len(all))
	if err != nil {
		return err
	}
	elapsed := applied.Sub(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }

	tps, err := pgbench(ctx, dbURL, *pgbenchClients, *pgbenchSecs)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "machine: %d CPUs (GOMAXPROCS %d); serve EVENT_WORKERS=%d EVENT_BATCH_WORKERS=%d pool_max_conns=%d; %d senders\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), *workers, *batchWorkers, *pool, *senders)
	fmt.Fprintf(out, "%-44s %10s\n", "", "result")
	fmt.Fprintf(out, "%-44s %10d\n", "events posted (signed, each a payment)", len(all))
	fmt.Fprintf(out, "%-44s %10.0f\n", "events/s answered 2xx", float64(len(all))/posted.Seconds())
	fmt.Fprintf(out, "%-44s %10.0f\n", "events/s fully applied to the ledger", float64(len(all))/elapsed.Seconds())
	fmt.Fprintf(out, "%-44s %10.1f\n", "response latency p50 (ms)", ms(pct(0.50)))
	fmt.Fprintf(out, "%-44s %10.1f\n", "response latency p99 (ms)", ms(pct(0.99)))
	fmt.Fprintf(out, "%-44s %10.0f\n", fmt.Sprintf("pgbench TPC-B-like tps (%d clients, %ds)", *pgbenchClients, *pgbenchSecs), tps)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// waitApplied polls until n events are applied and returns when that was first seen.
func waitApplied(ctx context.Context, dbURL string, n int) (time.Time, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var applied, entries int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM stripe_events WHERE applied_at IS NOT NULL),
			(SELECT count(*) FROM journal_entries WHERE kind = 'payment')`).Scan(&applied, &entries); err != nil {
			return time.Time{}, err
		}
		if applied >= n {
			if entries != n {
				return time.Time{}, fmt.Errorf("%d events applied but %d payments posted", applied, entries)
			}
			return time.Now(), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, errors.New("events not applied after 10 minutes")
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs the standard TPC-B-like pgbench on the same database.
func pgbench(ctx context.Context, dbURL string, clients, secs int) (float64, error) {
	init := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "10", dbURL)
	if out, err := init.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench -i (is pgbench installed? Debian: postgresql-client): %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(secs), dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// serveProc is the running control plane the events are posted to.
type serveProc struct {
	base string
}

// setUp signs up and logs in, creates a show with a 75/25 share plan and returns the show's id.
func (p *serveProc) setUp() (int64, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path string, form url.Values) (*http.Response, error) {
		resp, err := c.PostForm(p.base+path, form)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	if _, err := post("/signup", url.Values{"name": {"Bench"}, "email": {"bench@example.com"}, "password": {"a long bench password"}}); err != nil {
		return 0, err
	}
	// Sign-up asks to confirm the address; an account not confirmed yet may log in and make shows.
	if _, err := post("/login", url.Values{"email": {"bench@example.com"}, "password": {"a long bench password"}}); err != nil {
		return 0, err
	}
	resp, err := post("/shows", url.Values{"title": {"Bench"}, "slug": {"bench"}, "currency": {"USD"}})
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`^/shows/(\d+)/plan$`).FindStringSubmatch(resp.Request.URL.Path)
	if m == nil {
		return 0, fmt.Errorf("creating the show landed on %s", resp.Request.URL)
	}
	if _, err := post("/shows/"+m[1]+"/plan", url.Values{"name": {"Fanseed (distributor)", "Bench"}, "email": {"", "bench@example.com"},
		"percent": {"25", "75"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}}); err != nil {
		return 0, err
	}
	time.Sleep(1100 * time.Millisecond) // the plan is in force from its second on
	return strconv.ParseInt(m[1], 10, 64)
}
