package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/catalog"
)

func createAccount(ctx context.Context, pool *pgxpool.Pool, email, name, password, role string) (catalog.Account, error) {
	return catalog.CreateAccount(ctx, pool, catalog.SignUp{Email: email, Name: name, Password: password, Role: role, Verified: true})
}

func randomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
