// Package benchkit is what the benchmarks share: a fresh database, the fanseed binary built
// from this checkout, and `fanseed serve` as a child process on loopback.
package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the PostgreSQL server benchmarks create their databases on:
// FANSEED_BENCH_DATABASE_URL, or the local server on 127.0.0.1:5432.
func ServerURL() string {
	if s := os.Getenv("FANSEED_BENCH_DATABASE_URL"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// CreateDatabase makes an empty database named after prefix and returns its URL and a
// function that drops it.
func CreateDatabase(ctx context.Context, prefix string) (string, func(), error) {
	server := ServerURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL (set FANSEED_BENCH_DATABASE_URL): %w", err)
	}
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u, err := url.Parse(server)
	if err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		conn.Close(context.Background())
	}, nil
}

// BuildFanseed builds the fanseed command of this checkout into dir.
func BuildFanseed(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "fanseed")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fanseed")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build fanseed: %w", err)
	}
	return bin, nil
}

// FreeAddr is a loopback address nothing listens on.
func FreeAddr() (string, error) { return FreeAddrOn("127.0.0.1") }

// FreeAddrOn is an address of ip nothing listens on.
func FreeAddrOn(ip string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Serve is `fanseed serve` running as a child process.
type Serve struct {
	Cmd  *exec.Cmd
	Base string // http://127.0.0.1:port
}

// StartServe runs `bin serve` with the environment plus env (which must not set ADDR) and
// waits until it is ready.
func StartServe(ctx context.Context, bin string, env ...string) (*Serve, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	return StartServeAt(ctx, bin, addr, env...)
}

// StartServeAt is StartServe listening on addr (host:port).
func StartServeAt(ctx context.Context, bin, addr string, env ...string) (*Serve, error) {
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = append(append(os.Environ(), env...), "ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Serve{Cmd: cmd, Base: "http://" + addr}
	for range 300 {
		if resp, err := http.Get(s.Base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return nil, errors.New("fanseed serve did not become ready")
}

// Stop asks serve to shut down and waits for it.
func (s *Serve) Stop() {
	s.Cmd.Process.Signal(os.Interrupt)
	s.Cmd.Wait()
}

// PeakRSS is the process's high-water resident set size (VmHWM), in bytes.
func (s *Serve) PeakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
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

// AptInstall installs Debian packages, for benchmarks whose reference tools (wrk, mktorrent,
// aria2, libtorrent) a fresh machine lacks.
func AptInstall(ctx context.Context, out io.Writer, pkgs ...string) error {
	fmt.Fprintf(out, "installing %s with apt-get\n", strings.Join(pkgs, " "))
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	for _, args := range [][]string{{"apt-get", "update", "-qq"}, append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...)} {
		args = append(sudo, args...)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, b)
		}
	}
	return nil
}

// Prepare gives a benchmark a temporary directory, the fanseed binary built into it and a fresh
// database named after name; cleanup removes them all.
func Prepare(ctx context.Context, name string) (dir, bin, dbURL string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "fanseed-"+name+"-")
	if err != nil {
		return "", "", "", nil, err
	}
	if bin, err = BuildFanseed(ctx, dir); err != nil {
		os.RemoveAll(dir)
		return "", "", "", nil, err
	}
	dbURL, drop, err := CreateDatabase(ctx, "fanseed_bench_"+name)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", "", nil, err
	}
	return dir, bin, dbURL, func() { drop(); os.RemoveAll(dir) }, nil
}

// ProcCPU is the CPU time process pid has used, from /proc/pid/stat (utime and stime, in clock
// ticks of 1/100 s on Linux).
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
