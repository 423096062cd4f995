// Package dbtest gives each test its own PostgreSQL database, cloned from a template database
// that holds the current schema, so that tests on the real database run in parallel.
//
// The server is FANSEED_TEST_DATABASE_URL, or PostgreSQL on 127.0.0.1:5432 as user postgres.
package dbtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations"
)

// DefaultURL is the server used when FANSEED_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

func serverURL() string {
	if u := os.Getenv("FANSEED_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// withDatabase returns the server URL with its database name replaced.
func withDatabase(server, name string) string {
	u, err := url.Parse(server)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad server URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

// NewURL creates an empty database with the current schema and returns its URL. The database
// is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(context.Background()) })
	if templateErr != nil {
		tb.Fatalf("dbtest: template database: %v", templateErr)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		tb.Fatalf("dbtest: connect to %s: %v (is PostgreSQL running?)", redact(serverURL()), err)
	}
	defer admin.Close(ctx)
	name := "fanseed_test_" + strings.ToLower(rand.Text()) // unquoted names are folded to lower case
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateName); err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL())
		if err != nil {
			tb.Errorf("dbtest: drop database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("dbtest: drop database: %v", err)
		}
	})
	return withDatabase(serverURL(), name)
}

// New returns a pool on a fresh database of its own with the current schema.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), NewURL(tb))
	if err != nil {
		tb.Fatalf("dbtest: open pool: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the database is dropped
	return pool
}

// ensureTemplate creates the template database for the current migrations once per server:
// test binaries of several packages race here, so the work happens under an advisory lock
// and the template appears under its final name only when complete.
func ensureTemplate(ctx context.Context) (string, error) {
	name := "fanseed_tpl_" + migrations.Fingerprint()[:16]
	admin, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w (is PostgreSQL running?)", redact(serverURL()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7366156601)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(7366156601)")

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, withDatabase(serverURL(), building))
	if err != nil {
		return "", err
	}
	_, err = migrations.Up(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", err
	}
	return name, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
