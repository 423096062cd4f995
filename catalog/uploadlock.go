package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	tus "github.com/tus/tusd/v2/pkg/handler"
)

// Upload lock timing: a lock is a lease renewed every uploadLockTick while its request runs, so
// that one left by a process that died is free again after uploadLockLease; the renewal also
// tells the holder when another request asked for the upload.
const (
	uploadLockLease = 5 * time.Second
	uploadLockTick  = 250 * time.Millisecond
)

// UploadLocker is tusd's Locker over PostgreSQL: one request at a time writes an upload, across
// every serve process sharing the uploads directory. As with tusd's memory locker, a request
// that wants a locked upload asks the holder to let go (a client resuming after a dropped
// connection takes over from the request stuck on it) and waits for it.
type UploadLocker struct {
	DB DBTX

	mu   sync.Mutex
	held map[string]func() // this process's locks: upload id to the holder's release request
}

// UseIn makes the locker the composer's.
func (l *UploadLocker) UseIn(c *tus.StoreComposer) { c.UseLocker(l) }

// NewLock returns the lock of one upload; it is taken by Lock.
func (l *UploadLocker) NewLock(id string) (tus.Lock, error) {
	return &uploadLock{locker: l, id: id, token: rand.Text()}, nil
}

type uploadLock struct {
	locker *UploadLocker
	id     string
	token  string
	stop   context.CancelFunc
	done   chan struct{}
}

// Lock takes the upload's lease, asking whoever holds it to let go, until ctx ends
// (tus.ErrLockTimeout).
func (k *uploadLock) Lock(ctx context.Context, requestRelease func()) error {
	l := k.locker
	for asked := false; ; {
		var mine bool
		err := l.DB.QueryRow(ctx, `
			INSERT INTO upload_locks AS u (upload_id, token, expires_at) VALUES ($1, $2, now() + $3::interval)
			ON CONFLICT (upload_id) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at,
				release_requested = false
			WHERE u.expires_at < now()
			RETURNING token = $2`, k.id, k.token, uploadLockLease).Scan(&mine)
		switch {
		case err == nil && mine:
			l.mu.Lock()
			if l.held == nil {
				l.held = map[string]func(){}
			}
			l.held[k.id] = requestRelease
			l.mu.Unlock()
			keep, stop := context.WithCancel(context.Background())
			k.stop, k.done = stop, make(chan struct{})
			go k.keep(keep, requestRelease)
			return nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			if ctx.Err() != nil {
				return tus.ErrLockTimeout
			}
			return fmt.Errorf("lock upload %s: %w", k.id, err)
		}
		if !asked { // held by another request: ask it to let go, here at once, elsewhere through the row
			asked = true
			l.mu.Lock()
			release := l.held[k.id]
			l.mu.Unlock()
			if release != nil {
				release()
			}
			if _, err := l.DB.Exec(ctx, `UPDATE upload_locks SET release_requested = true WHERE upload_id = $1`, k.id); err != nil && ctx.Err() == nil {
				return fmt.Errorf("ask for upload %s: %w", k.id, err)
			}
		}
		select {
		case <-ctx.Done():
			return tus.ErrLockTimeout
		case <-time.After(uploadLockTick / 5):
		}
	}
}

// keep renews the lease until the lock is released, and passes on a request to let go. Should
// renewing fail, the holder is asked to stop: its lease may run out.
func (k *uploadLock) keep(ctx context.Context, requestRelease func()) {
	defer close(k.done)
	tick := time.NewTicker(uploadLockTick)
	defer tick.Stop()
	asked := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var release bool
		err := k.locker.DB.QueryRow(ctx, `UPDATE upload_locks SET expires_at = now() + $3::interval
			WHERE upload_id = $1 AND token = $2 RETURNING release_requested`, k.id, k.token, uploadLockLease).Scan(&release)
		if ctx.Err() != nil {
			return
		}
		if (err != nil || release) && !asked {
			asked = true
			requestRelease()
		}
	}
}

// Unlock gives the upload back.
func (k *uploadLock) Unlock() error {
	if k.stop != nil {
		k.stop()
		<-k.done
	}
	l := k.locker
	l.mu.Lock()
	delete(l.held, k.id)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.DB.Exec(ctx, `DELETE FROM upload_locks WHERE upload_id = $1 AND token = $2`, k.id, k.token); err != nil {
		return fmt.Errorf("unlock upload %s: %w", k.id, err)
	}
	return nil
}
