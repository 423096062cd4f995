package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/catalog"
)

func createAccount(ctx context.Context, pool *pgxpool.Pool, email, name, password, role string) (catalog.Account, error) {
	return catalog.CreateAccount(ctx, pool, catalog.SignUp{Email: email, Name: name, Password: password, Role: role, Verified: true})
}
