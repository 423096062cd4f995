package periodic

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/internal/testkit"
)

// A run of failures is logged once, and the recovery once, with the count; the first run comes
// at once with Now, a last one after the context ends with Final, and nothing is logged for an
// error the shutdown caused.
func TestLoop(t *testing.T) {
	var logs testkit.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	calls := 0
	finalSeen := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop{Name: "work", Every: time.Millisecond, Now: true, Final: true, Log: slog.New(slog.NewTextHandler(&logs, nil))}.Run(ctx,
			func(ctx context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				switch {
				case calls == 1:
					return nil
				case calls <= 6:
					return errors.New("database is down")
				case calls == 20:
					cancel()
					return errors.New("stopped mid-run")
				default:
					if calls > 20 {
						finalSeen = true
					}
					return nil
				}
			})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not end after its context")
	}
	out := logs.String()
	if n := strings.Count(out, "database is down"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "work: working again") || !strings.Contains(out, "runs_failed=5") {
		t.Fatalf("no recovery line with 5 failed runs:\n%s", out)
	}
	if strings.Contains(out, "stopped mid-run") {
		t.Fatalf("an error of the shutdown was logged:\n%s", out)
	}
	if !finalSeen {
		t.Fatal("no final run after the context ended")
	}
}
