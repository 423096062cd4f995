// Command statements benchmarks partner payout statements: a party with a million payments
// (flag -payments) over a year, its statement as HTML, JSON and CSV through the real HTTP
// handler, beside plain PostgreSQL reading the same rows in the same run for reference.
//
//	go run ./bench/statements                      # 1,000,000 payments
//	go run ./bench/statements -payments 100000
//	go run ./bench/statements -keep                # then -database NAME measures it again
//	go run ./bench/statements -database NAME -cpuprofile csv.pprof
//
// It creates a database of its own on the test server (FANSEED_TEST_DATABASE_URL, or
// PostgreSQL on 127.0.0.1:5432 as postgres) and drops it at the end unless -keep; -database
// measures one kept before, without loading it again.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/migrations"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "statements:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("statements", flag.ContinueOnError)
	payments := fs.Int("payments", 1_000_000, "payments to the benchmarked party")
	runs := fs.Int("runs", 3, "timed runs of each request")
	keep := fs.Bool("keep", false, "keep the benchmark database")
	reuse := fs.String("database", "", "measure this database kept by an earlier -keep run instead of loading one")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole-year CSV requests to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *payments < 1000 || *runs < 1 {
		return fmt.Errorf("-payments must be at least 1000 and -runs at least 1")
	}
	server := os.Getenv("FANSEED_TEST_DATABASE_URL")
	if server == "" {
		server = dbtest.DefaultURL
	}
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	name := *reuse
	if name == "" {
		b := make([]byte, 6)
		rand.Read(b)
		name = "fanseed_bench_statements_" + hex.EncodeToString(b)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return err
		}
		if !*keep {
			defer admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	} else if !strings.HasPrefix(name, "fanseed_bench_statements_") {
		return fmt.Errorf("-database %q is not a benchmark database (fanseed_bench_statements_...)", name)
	}
	u, _ := url.Parse(server)
	u.Path = "/" + name
	db, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db, nil); err != nil {
		return err
	}
	if *reuse != "" {
		fx, err := loaded(ctx, db)
		if err != nil {
			return fmt.Errorf("-database %s: %w", name, err)
		}
		fmt.Fprintf(out, "reusing %d payments (%s to %s) in database %s\n", fx.payments,
			fx.first.Format(time.DateOnly), fx.last.Format(time.DateOnly), name)
		return measure(ctx, db, fx, *runs, *profile, out)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	fx, err := load(ctx, db, *payments, start)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded %d payments (%s to %s) in %s; database %s\n", fx.payments,
		fx.first.Format(time.DateOnly), fx.last.Format(time.DateOnly), time.Since(t0).Round(time.Millisecond), name)
	t0 = time.Now()
	if err := billing.RollupStatementDays(ctx, db, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(out, "summed the closed days into party_days in %s (serve does this every 10 minutes)\n", time.Since(t0).Round(time.Millisecond))
	return measure(ctx, db, fx, *runs, *profile, out)
}
