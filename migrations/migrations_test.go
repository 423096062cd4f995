package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// Two processes starting together must not both migrate: the advisory lock serialises them
// and the second finds nothing left to apply.
func TestUpConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := emptyDatabase(t)
	const n = 4
	applied := make([][]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = migrations.Up(ctx, pool, nil)
		}()
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM goose_db_version WHERE version_id > 0").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if total != rows || rows == 0 {
		t.Fatalf("migrators applied %d migrations in all, version table has %d rows", total, rows)
	}
	pending, err := migrations.Pending(ctx, pool)
	if err != nil || pending {
		t.Fatalf("Pending = %v, %v after Up", pending, err)
	}
}

// emptyDatabase gives a database without any schema: a test database with its tables dropped.
func emptyDatabase(t *testing.T) string {
	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	return url
}
