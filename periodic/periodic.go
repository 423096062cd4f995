package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Loop is periodic work: Do runs every Every until the context ends.
type Loop struct {
	Name  string        // what the work is, in the log
	Every time.Duration // the interval between runs
	Now   bool          // run once at the start, before the first interval
	Final bool          // run once more when the context ends (to write what is in memory), within FinalTimeout
	Log   *slog.Logger
}

// FinalTimeout bounds the run a Loop with Final makes after its context ended.
const FinalTimeout = 5 * time.Second

// Run calls do until ctx ends. A failure is logged once, at WARN, with its error; failures in a
// row after it are counted, not logged, until do succeeds again, which is logged at INFO with
// how many runs failed: a database that is down gives two lines, not one a tick. An error once
// ctx has ended is the shutdown's, and not logged.
func (l Loop) Run(ctx context.Context, do func(context.Context) error) {
	failed := 0
	run := func(ctx context.Context) {
		err := do(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			if failed == 0 {
				l.Log.Warn(l.Name, slog.Any("error", err))
			}
			failed++
		case failed > 0:
			l.Log.Info(l.Name+": working again", slog.Int("runs_failed", failed))
			failed = 0
		}
	}
	if l.Now {
		run(ctx)
	}
	tick := time.NewTicker(l.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if l.Final {
				final, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinalTimeout)
				defer cancel()
				run(final)
			}
			return
		case <-tick.C:
			run(ctx)
		}
	}
}
