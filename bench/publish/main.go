// Command publish benchmarks the publishing path on one machine: hashing an upload as it
// arrives (against mktorrent), and later ingest and seeding. Each part is a section chosen by
// flag; with no section flag every section runs.
//
//	go run ./bench/publish               # every section
//	go run ./bench/publish -hash-only
//	go run ./bench/publish -ingest-only
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	size      int64
	runs      int
	dir       string
	mktorrent string

	ingestSizes []int64
}

// section is one benchmark; new ones (ingest, seeding) are added to sections with a flag.
type section struct {
	name string
	run  func(ctx context.Context, cfg config, file string, out io.Writer) error
}

var sections = []section{
	{"hash", runHash},
	{"ingest", runIngest},
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	var cfg config
	fs.Int64Var(&cfg.size, "size", 1<<30, "size of the test file in bytes")
	fs.IntVar(&cfg.runs, "runs", 3, "timed runs of each contender")
	fs.StringVar(&cfg.dir, "dir", "", "directory for the test file (default: a new temporary directory)")
	fs.StringVar(&cfg.mktorrent, "mktorrent", "mktorrent", "mktorrent command")
	ingestSizes := fs.String("ingest-sizes", "536870912,2147483648", "comma-separated file sizes for the ingest section")
	only := map[string]*bool{}
	for _, s := range sections {
		only[s.name] = fs.Bool(s.name+"-only", false, "run only the "+s.name+" section")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*ingestSizes, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("-ingest-sizes: %q is not a positive size in bytes", f)
		}
		cfg.ingestSizes = append(cfg.ingestSizes, n)
	}
	if cfg.size <= 0 || cfg.runs <= 0 {
		return errors.New("-size and -runs must be positive")
	}
	var chosen []section
	for _, s := range sections {
		if *only[s.name] {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		chosen = sections
	}

	if cfg.dir == "" {
		dir, err := os.MkdirTemp("", "fanseed-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.dir = dir
	}
	file := filepath.Join(cfg.dir, "episode.bin")
	if err := writeRandomFile(file, cfg.size); err != nil {
		return err
	}
	for _, s := range chosen {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(out, "== %s\n", s.name)
		if err := s.run(ctx, cfg, file, out); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// writeRandomFile writes size incompressible bytes, so no layer below can shortcut the work.
func writeRandomFile(name string, size int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'f', 'a', 'n', 's', 'e', 'e', 'd'})
	if _, err := io.CopyN(f, rng, size); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}
