package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// localServer is where `fanseed dev` looks for a PostgreSQL that already runs.
const localServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=2"

// devDatabase finds a database for `fanseed dev`: a PostgreSQL answering on 127.0.0.1:5432,
// or else a private cluster under dataDir/pg, created with the server binaries on the machine
// and stopped by the returned function.
func devDatabase(ctx context.Context, dataDir, probeURL string, logger *slog.Logger) (string, func(), error) {
	if url, err := useLocalServer(ctx, probeURL); err == nil {
		logger.Info("using the PostgreSQL on 127.0.0.1:5432", slog.String("database", "fanseed"))
		return url, func() {}, nil
	}
	bin, err := findPostgresBin()
	if err != nil {
		return "", nil, err
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "pg"))
	if err != nil {
		return "", nil, err
	}
	c := &cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), logger: logger}
	if err := c.init(ctx); err != nil {
		return "", nil, err
	}
	port, err := c.start(ctx)
	if err != nil {
		return "", nil, err
	}
	server := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := createDatabase(ctx, server, "fanseed"); err != nil {
		c.stop()
		return "", nil, err
	}
	logger.Info("started a private PostgreSQL", slog.String("dir", c.data), slog.Int("port", port))
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/fanseed?sslmode=disable", port), c.stop, nil
}

func useLocalServer(ctx context.Context, probeURL string) (string, error) {
	if err := createDatabase(ctx, probeURL, "fanseed"); err != nil {
		return "", err
	}
	u, err := url.Parse(probeURL)
	if err != nil {
		return "", err
	}
	u.Path = "/fanseed"
	return u.String(), nil
}

func createDatabase(ctx context.Context, serverURL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}

// findPostgresBin finds the directory holding initdb and pg_ctl: on PATH, or the newest of
// Debian's /usr/lib/postgresql/N/bin.
func findPostgresBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL found: nothing answers on 127.0.0.1:5432 and initdb/pg_ctl are not installed.\n" +
		"Install the server (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to a database you have")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// cluster is a private PostgreSQL data directory. PostgreSQL refuses to run as root, so as
// root it runs as the postgres user.
type cluster struct {
	bin, dir, data string
	logger         *slog.Logger
}

func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

func (c *cluster) init(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("running as root, PostgreSQL needs a postgres user to run as: install the postgresql package or run as another user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return err
		}
		// The postgres user must be able to reach the directory.
		for d := filepath.Dir(c.dir); d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	c.logger.Info("initialising a private PostgreSQL cluster", slog.String("dir", c.data))
	out, err := c.command(ctx, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *cluster) start(ctx context.Context) (int, error) {
	if port, ok := c.runningPort(); ok {
		return port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s", port, c.dir)
	out, err := c.command(ctx, "pg_ctl", "-D", c.data, "-l", filepath.Join(c.dir, "postgres.log"), "-o", opts, "-w", "start").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pg_ctl start: %w: %s (see %s)", err, strings.TrimSpace(string(out)), filepath.Join(c.dir, "postgres.log"))
	}
	return port, nil
}

// runningPort reads the port of a cluster left running by an earlier run.
func (c *cluster) runningPort() (int, bool) {
	if err := c.command(context.Background(), "pg_ctl", "-D", c.data, "status").Run(); err != nil {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port, err == nil
}

func (c *cluster) stop() {
	out, err := c.command(context.Background(), "pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		c.logger.Warn("stop private PostgreSQL", slog.Any("error", err), slog.String("output", strings.TrimSpace(string(out))))
		return
	}
	c.logger.Info("stopped the private PostgreSQL")
}
