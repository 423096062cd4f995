// Command pages measures a fan page under load: wrk against `fanseed serve` showing a show with
// 50 episodes and 10,000 supporters, and in the same run wrk against a plain Go handler that
// writes the same bytes from memory, the ceiling for HTTP on this machine.
//
//	go run ./bench/pages
package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pages:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pages", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Second, "how long wrk runs against each target")
	conns := fs.Int("connections", 50, "wrk connections")
	episodes := fs.Int("episodes", 50, "published episodes on the show")
	supporters := fs.Int("supporters", 10000, "paid donations on the show")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		if err := benchkit.AptInstall(ctx, out, "wrk"); err != nil {
			return err
		}
	}
	dir, bin, dbURL, cleanup, err := benchkit.Prepare(ctx, "pages")
	if err != nil {
		return err
	}
	defer cleanup()
	serve, err := benchkit.StartServe(ctx, bin, "DATABASE_URL="+dbURL, "DATA_DIR="+dir, "LOG_LEVEL=warn")
	if err != nil {
		return err
	}
	defer serve.Stop()
	base := serve.Base
	if err := seed(ctx, dbURL, *episodes, *supporters); err != nil {
		return err
	}
	page := base + "/s/bench"
	body, err := get(page)
	if err != nil {
		return err
	}
	if n := strings.Count(body, `class="links"`); n != *episodes {
		return fmt.Errorf("the page lists %d episodes, want %d", n, *episodes)
	}

	static := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go static.Serve(ln)
	defer static.Close()

	fmt.Fprintf(out, "show page: %d episodes, %d supporters, %d bytes; wrk -t2 -c%d -d%s\n", *episodes, *supporters, len(body), *conns, *duration)
	fmt.Fprintf(out, "%-34s  %12s  %10s\n", "target", "requests/s", "p99")
	for _, t := range []struct{ name, url string }{
		{"fanseed /s/{slug}", page},
		{"static Go handler, same bytes", "http://" + ln.Addr().String() + "/"},
	} {
		rps, p99, err := wrk(ctx, t.url, *conns, *duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-34s  %12.0f  %10s\n", t.name, rps, p99)
	}
	fmt.Fprintln(out, "target: at least 5000 requests/s and p99 under 20ms on 2 cores")
	return nil
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99RE = regexp.MustCompile(`\n\s+99%\s+(\S+)`)
)

func wrk(ctx context.Context, target string, conns int, d time.Duration) (float64, string, error) {
	out, err := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", conns), "-d"+d.String(), "--latency", target).CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m, l := rpsRE.FindSubmatch(out), p99RE.FindSubmatch(out)
	if m == nil || l == nil {
		return 0, "", fmt.Errorf("cannot read wrk's output:\n%s", out)
	}
	var rps float64
	fmt.Sscan(string(m[1]), &rps)
	if strings.Contains(string(out), "Non-2xx") {
		return 0, "", fmt.Errorf("wrk saw error responses:\n%s", out)
	}
	return rps, string(l[1]), nil
}

// seed writes the show straight into the database: an owner, the show, published episodes with
// torrents, and paid donations with names and messages.
func seed(ctx context.Context, dbURL string, episodes, supporters int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var owner, show int64
	if err := conn.QueryRow(ctx, `INSERT INTO accounts (email, name, password_hash, role) VALUES ('bench@example.com', 'Bench', 'x', 'creator') RETURNING id`).Scan(&owner); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `INSERT INTO shows (owner_id, slug, title, description, currency, funding_goal)
		VALUES ($1, 'bench', 'Bench Show', 'A show for measuring.', 'USD', 500000) RETURNING id`, owner).Scan(&show); err != nil {
		return err
	}
	for i := range episodes {
		var ep int64
		if err := conn.QueryRow(ctx, `INSERT INTO episodes (show_id, title, description, status, published_at)
			VALUES ($1, $2, 'An episode.', 'published', now() - make_interval(days => $3)) RETURNING id`, show, fmt.Sprintf("Episode %d", i+1), i).Scan(&ep); err != nil {
			return err
		}
		ih := sha1.Sum([]byte(fmt.Sprint("bench", i)))
		if _, err := conn.Exec(ctx, `INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type,
			content_path, metainfo, status, published_at, completed)
			VALUES ($1, $2, $3, 734003200, 1048576, $4, 'video/mp4', '/nonexistent', $5, 'published', now(), $6)`,
			ep, ih[:], fmt.Sprintf("episode-%02d.mp4", i+1), make([]byte, 32), make([]byte, 20000), 1000+i); err != nil {
			return err
		}
	}
	_, err = conn.Exec(ctx, `INSERT INTO donations (show_id, amount, currency, monthly, display_name, message, anonymous, status, paid_at)
		SELECT $1, 500 + g % 5000, 'USD', g % 7 = 0, 'Fan ' || g, 'Message number ' || g, g % 10 = 0, 'paid', now() - make_interval(mins => g)
		FROM generate_series(1, $2) g`, show, supporters)
	return err
}

func get(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(bufio.NewReader(resp.Body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), err
}
