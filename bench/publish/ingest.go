package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// runIngest uploads files of growing size through the tus endpoint of a real `fanseed serve`
// on loopback, and prints for each: throughput, the peak RSS of serve, and the time from the
// last byte sent to the answer that the torrent is ready. Beside it, the same bytes PUT to a
// plain Go handler that only writes them to disk: the ceiling for loopback HTTP plus a disk
// write on this machine.
func runIngest(ctx context.Context, cfg config, _ string, out io.Writer) error {
	bin := filepath.Join(cfg.dir, "fanseed")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fanseed")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build fanseed: %w", err)
	}
	dbURL, drop, err := benchDatabase(ctx)
	if err != nil {
		return err
	}
	defer drop()

	fmt.Fprintf(out, "%-10s  %-14s  %-16s  %-22s  %s\n", "size", "fanseed tus", "serve peak RSS", "last byte -> torrent", "plain Go PUT to disk")
	for _, size := range cfg.ingestSizes {
		file := filepath.Join(cfg.dir, fmt.Sprintf("ingest-%d.bin", size))
		if err := writeMediaFile(file, size); err != nil {
			return err
		}
		srv, err := startServe(ctx, bin, dbURL, cfg.dir)
		if err != nil {
			return err
		}
		rate, ready, err := srv.upload(ctx, file, size)
		rss := srv.peakRSS()
		srv.stop()
		if err != nil {
			return err
		}
		plain, err := plainPut(file, size, cfg.dir)
		if err != nil {
			return err
		}
		os.Remove(file)
		fmt.Fprintf(out, "%-10s  %-14s  %-16s  %-22s  %s\n", humanSize(size), rateText(rate), humanSize(rss),
			ready.Round(time.Millisecond).String(), rateText(plain))
	}
	fmt.Fprintln(out, "targets: peak RSS under 150 MiB and last byte -> torrent under 1 s, neither growing with the size")
	return nil
}

func rateText(mbps float64) string { return fmt.Sprintf("%.1f MB/s", mbps) }

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// writeMediaFile writes random bytes behind an MP4 header, so the upload passes the sniffing.
func writeMediaFile(name string, size int64) error {
	if err := writeRandomFile(name, size); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchDatabase creates an empty database on the local server (FANSEED_BENCH_DATABASE_URL, or
// PostgreSQL on 127.0.0.1:5432) and returns its URL and a function that drops it.
func benchDatabase(ctx context.Context) (string, func(), error) {
	server := os.Getenv("FANSEED_BENCH_DATABASE_URL")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL (set FANSEED_BENCH_DATABASE_URL): %w", err)
	}
	name := fmt.Sprintf("fanseed_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u, _ := url.Parse(server)
	u.Path = "/" + name
	drop := func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	}
	return u.String(), drop, nil
}

type serveProc struct {
	cmd  *exec.Cmd
	base string
}

func startServe(ctx context.Context, bin, dbURL, dir string) (*serveProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dataDir, err := os.MkdirTemp(dir, "data-")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "ADDR="+addr, "DATA_DIR="+dataDir,
		"UPLOAD_MAX_BYTES=107374182400", "LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd, base: "http://" + addr}
	for range 300 {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, errors.New("fanseed serve did not become ready")
}

func (p *serveProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// peakRSS is the process's high-water resident set size (VmHWM).
func (p *serveProc) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// upload signs up, makes a show and an episode, and sends the file in one PATCH as a tus client
// with an unbounded chunk size does.
func (p *serveProc) upload(ctx context.Context, file string, size int64) (rate float64, ready time.Duration, err error) {
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
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // each run signs up afresh in the shared database
	if _, err := post("/signup", url.Values{"name": {"Bench"}, "email": {"bench-" + run + "@example.com"}, "password": {"a long bench password"}}); err != nil {
		return 0, 0, err
	}
	resp, err := post("/shows", url.Values{"title": {"Bench"}, "slug": {"bench-" + run}, "currency": {"USD"}})
	if err != nil {
		return 0, 0, err
	}
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	if resp, err = post(showPath+"/episodes", url.Values{"title": {"Ingest"}}); err != nil {
		return 0, 0, err
	}
	m := regexp.MustCompile(`/episodes/(\d+)$`).FindStringSubmatch(resp.Request.URL.Path)
	if m == nil {
		return 0, 0, fmt.Errorf("no episode page after creating one (at %s)", resp.Request.URL)
	}

	req, _ := http.NewRequestWithContext(ctx, "POST", p.base+"/api/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", "episode_id "+base64.StdEncoding.EncodeToString([]byte(m[1]))+
		",filename "+base64.StdEncoding.EncodeToString([]byte("episode.mp4")))
	if resp, err = c.Do(req); err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return 0, 0, fmt.Errorf("create upload: %s", resp.Status)
	}
	loc, _ := resp.Location()

	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	body := &timedReader{r: f}
	req, _ = http.NewRequestWithContext(ctx, "PATCH", loc.String(), body)
	req.ContentLength = size
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	start := time.Now()
	if resp, err = c.Do(req); err != nil {
		return 0, 0, err
	}
	answered := time.Now()
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return 0, 0, fmt.Errorf("upload: %s", resp.Status)
	}
	return mbps(size, answered.Sub(start)), answered.Sub(body.eof), nil
}

// timedReader notes when its last byte was read, that is, handed to the connection.
type timedReader struct {
	r   io.Reader
	eof time.Time
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = time.Now()
	}
	return n, err
}

// plainPut sends the file to a minimal Go server that copies the body to a file.
func plainPut(file string, size int64, dir string) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	target := filepath.Join(dir, "plain.out")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(target)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.Copy(f, r.Body)
		f.Close()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	defer os.Remove(target)
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	req, _ := http.NewRequest("PUT", "http://"+ln.Addr().String()+"/", f)
	req.ContentLength = size
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return mbps(size, time.Since(start)), nil
}
