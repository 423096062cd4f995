package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what billing queries run on: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx. Begin is
// there so that a function writing several rows makes them one transaction (a savepoint when
// db is already a transaction), and so that callers can put billing calls in their own.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// dbError is the one place database errors become this package's sentinels: no row is
// ErrNotFound, a unique violation ErrConflict, a failed check or foreign key ErrInvalid.
// The original error stays in the chain.
func dbError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "23503", "23514", "23502": // foreign_key_violation, check_violation, not_null_violation
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return err
}

// findOne loads the one row query returns as a T: no row is ErrNotFound, and either error is
// named what.
func findOne[T any](ctx context.Context, db DBTX, what, query string, args ...any) (T, error) {
	rows, _ := db.Query(ctx, query, args...)
	v, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[T])
	if err != nil {
		var zero T
		return zero, wrapNotFound(err, what)
	}
	return v, nil
}

// findAll loads the rows query returns as Ts; an error is named what.
func findAll[T any](ctx context.Context, db DBTX, what, query string, args ...any) ([]T, error) {
	rows, _ := db.Query(ctx, query, args...)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[T])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, dbError(err))
	}
	return list, nil
}
