package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// measure times the statement through the real HTTP handler in this process, as a partner
// would fetch it, and the reference queries beside it; with a profile file, it writes a CPU
// profile of the whole-year CSV requests there.
func measure(ctx context.Context, db *pgxpool.Pool, fx fixture, runs int, profile string, out io.Writer) error {
	dir, err := os.MkdirTemp("", "fanseed-bench-statements-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	uploads, err := publishing.NewUploadStore(dir)
	if err != nil {
		return err
	}
	published := &seeding.Published{DB: db}
	money := &billing.Service{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookSecret: "whsec_bench_statements"}
	if _, err := billing.NewJobClient(money, billing.JobOptions{}); err != nil {
		return err
	}
	h, err := api.NewServer(api.Config{UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published, Money: money,
		Publisher: &publishing.Publisher{DB: db, Store: uploads, BaseURL: "http://fanseed.bench"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed}},
		db, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	session, err := catalog.CreateSession(ctx, db, fx.partner.ID)
	if err != nil {
		return err
	}
	var accountID int64
	if err := db.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE kind = 'party_payable' AND party_id = $1`, fx.party.ID).Scan(&accountID); err != nil {
		return err
	}
	var entries, postings int64
	db.QueryRow(ctx, `SELECT count(*) FROM party_entries WHERE account_id = $1`, accountID).Scan(&entries)
	db.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&postings)
	year := fmt.Sprintf("from=%s&to=%s", fx.first.Format(time.DateOnly), fx.last.Format(time.DateOnly))
	month := "period=" + fx.first.AddDate(0, 5, 0).Format("2006-01")
	fmt.Fprintf(out, "party %d: %d ledger entries (payments, refunds, payouts) over the year; %d postings in the ledger\n",
		fx.party.ID, entries, postings)
	fmt.Fprintf(out, "machine: %d CPUs, GOMAXPROCS %d; %d timed runs each, median shown\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runs)

	type result struct {
		name     string
		times    []time.Duration
		bytes    int64
		peakHeap uint64
		baseHeap uint64
	}
	var results []result
	get := func(name, path string) error {
		r := result{name: name}
		for i := 0; i < runs; i++ {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			var peak atomic.Uint64
			done := make(chan struct{})
			go func() { // sample the heap while the request runs
				t := time.NewTicker(2 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						if m.HeapInuse > peak.Load() {
							peak.Store(m.HeapInuse)
						}
					}
				}
			}()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			req.AddCookie(&http.Cookie{Name: "fanseed_session", Value: session})
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				close(done)
				return err
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			elapsed := time.Since(start)
			close(done)
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
			}
			r.times = append(r.times, elapsed)
			r.bytes = n
			r.peakHeap = max(r.peakHeap, peak.Load()-min(peak.Load(), base))
			r.baseHeap = base
		}
		results = append(results, r)
		return nil
	}
	ref := func(name, sql string, args ...any) error {
		r := result{name: name}
		for i := 0; i < runs; i++ {
			start := time.Now()
			var n int64
			if err := db.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
				return err
			}
			r.times = append(r.times, time.Since(start))
			r.bytes = n
		}
		results = append(results, r)
		return nil
	}
	copyRef := func(name, sql string) error {
		r := result{name: name}
		conn, err := db.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		for i := 0; i < runs; i++ {
			start := time.Now()
			tag, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, sql)
			if err != nil {
				return err
			}
			r.times = append(r.times, time.Since(start))
			r.bytes = tag.RowsAffected()
		}
		results = append(results, r)
		return nil
	}
	p := fmt.Sprintf("/statements/%d", fx.party.ID)
	steps := []func() error{
		func() error {
			return ref("reference: SELECT count(*), sum over the party's postings", `SELECT count(*) FROM (SELECT sum(amount) OVER () FROM postings WHERE account_id = $1) x`, accountID)
		},
		func() error {
			return ref("reference: SELECT count(*) over the party's statement rows (year)", `SELECT count(*) FROM party_entries WHERE account_id = $1 AND day BETWEEN $2 AND $3`, accountID, fx.first, fx.last)
		},
		func() error {
			return copyRef("reference: COPY the party's statement rows (year) TO STDOUT", fmt.Sprintf(
				`COPY (SELECT * FROM party_entries WHERE account_id = %d AND day BETWEEN '%s' AND '%s' ORDER BY day, occurred_at, entry_id) TO STDOUT`,
				accountID, fx.first.Format(time.DateOnly), fx.last.Format(time.DateOnly)))
		},
		func() error { return get("HTML statement, whole year", p+"?"+year) },
		func() error { return get("JSON statement, whole year", p+".json?"+year) },
		func() error {
			return get("JSON API statement, whole year", fmt.Sprintf("/api/v1/statements/%d?%s", fx.party.ID, year))
		},
		func() error { return get("CSV statement, one month", p+".csv?"+month) },
		func() error {
			if profile == "" {
				return get("CSV statement, whole year", p+".csv?"+year)
			}
			f, err := os.Create(profile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
			return get("CSV statement, whole year", p+".csv?"+year)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%-62s %10s %10s %14s %16s\n", "what", "median", "min", "bytes/rows", "peak heap growth")
	for _, r := range results {
		sort.Slice(r.times, func(i, j int) bool { return r.times[i] < r.times[j] })
		heap := "-"
		if r.baseHeap != 0 {
			heap = fmt.Sprintf("%.1f MiB", float64(r.peakHeap)/(1<<20))
		}
		fmt.Fprintf(out, "%-62s %10s %10s %14d %16s\n", r.name, r.times[len(r.times)/2].Round(time.Millisecond),
			r.times[0].Round(time.Millisecond), r.bytes, heap)
	}
	// The whole-year CSV against COPY of the same rows, as a speed ratio (1x: as fast as COPY).
	copyRows, csvYear := results[2], results[len(results)-1]
	fmt.Fprintf(out, "\n%s: %.2fx the speed of COPY (median %s against %s)\n", csvYear.name,
		float64(copyRows.times[len(copyRows.times)/2])/float64(csvYear.times[len(csvYear.times)/2]),
		csvYear.times[len(csvYear.times)/2].Round(time.Millisecond), copyRows.times[len(copyRows.times)/2].Round(time.Millisecond))
	return nil
}
