package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

func TestLoginDelay(t *testing.T) {
	for _, tt := range []struct {
		failures, free int
		want           time.Duration
	}{
		{0, 5, 0},
		{4, 5, 0},
		{5, 5, 30 * time.Second},
		{6, 5, time.Minute},
		{9, 5, 8 * time.Minute},
		{10, 5, LoginMaxDelay}, // 16 minutes, capped at 15
		{1000, 5, LoginMaxDelay},
		{20, 20, 30 * time.Second},
	} {
		if got := LoginDelay(tt.failures, tt.free); got != tt.want {
			t.Errorf("LoginDelay(%d, %d) = %s, want %s", tt.failures, tt.free, got, tt.want)
		}
	}
}

// Guesses sent all at once get no more password checks than guesses sent one by one: each
// attempt is counted before its password is checked.
func TestConcurrentGuessesAreCounted(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := CreateAccount(ctx, db, SignUp{Email: "ann@example.com", Name: "Ann", Password: "a long enough password"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = Authenticate(ctx, db, Login{Email: "ann@example.com", Password: fmt.Sprint("guess ", i), Addr: fmt.Sprint("192.0.2.", i)})
		})
	}
	wg.Wait()
	checked := 0
	for _, err := range errs {
		var te *ThrottledError
		switch {
		case errors.Is(err, ErrUnauthorized):
			checked++
		case errors.As(err, &te) && errors.Is(err, ErrRateLimited) && te.Wait > 0:
		default:
			t.Fatalf("a guess: %v", err)
		}
	}
	if checked != LoginFreeFailuresPerEmail {
		t.Fatalf("%d of %d guesses sent at once had their password checked, want %d", checked, n, LoginFreeFailuresPerEmail)
	}
	// The right password from a new browser waits too; the account is not locked for good.
	if _, err := Authenticate(ctx, db, Login{Email: "ann@example.com", Password: "a long enough password", Addr: "198.51.100.1"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("the right password while throttled: %v, want ErrRateLimited", err)
	}
}
