package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
)

// With nothing answering on the probed address, dev creates a private cluster, serves a
// database from it and stops it; a second start reuses the data directory.
func TestDevDatabasePrivateCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	closed := "postgres://postgres@127.0.0.1:" + freePort(t) + "/postgres?sslmode=disable&connect_timeout=1"
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range 2 {
		url, stop, err := devDatabase(ctx, dir, closed, logger)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			stop()
			t.Fatalf("start %d: connect: %v", i, err)
		}
		if i == 0 {
			_, err = conn.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
		} else {
			var x int
			err = conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x)
			if err == nil && x != 42 {
				t.Errorf("kept = %d", x)
			}
		}
		conn.Close(ctx)
		stop()
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if _, err := pgx.Connect(ctx, url); err == nil {
			t.Fatalf("start %d: the cluster still answers after stop", i)
		}
	}
}

func freePort(t *testing.T) string {
	addr := freeAddr(t)
	return addr[len("127.0.0.1:"):]
}
