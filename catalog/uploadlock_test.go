package catalog

import (
	"context"
	"errors"
	"testing"
	"time"

	tus "github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// Two serve processes (two lockers on one database) write an upload one at a time: the second
// asks the first to let go and gets the lock once it does; it times out if the first holds on;
// a lock left by a process that died frees itself when its lease runs out.
func TestUploadLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a, b := &UploadLocker{DB: db}, &UploadLocker{DB: db}
	ctx := context.Background()
	lock := func(l *UploadLocker, id string, within time.Duration, released chan<- struct{}) (tus.Lock, error) {
		k, _ := l.NewLock(id)
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return k, k.Lock(ctx, func() {
			select {
			case released <- struct{}{}:
			default:
			}
		})
	}

	askedA := make(chan struct{}, 1)
	ka, err := lock(a, "up1", time.Second, askedA)
	if err != nil {
		t.Fatal(err)
	}
	// B wants it: A is asked to let go; A holds on, so B times out.
	start := time.Now()
	if _, err := lock(b, "up1", 700*time.Millisecond, make(chan struct{}, 1)); !errors.Is(err, tus.ErrLockTimeout) {
		t.Fatalf("B took a held lock: %v", err)
	}
	select {
	case <-askedA:
	default:
		t.Fatalf("A was not asked to let go (B waited %s)", time.Since(start))
	}
	// A, asked once, finishes its request and lets go meanwhile: B gets the lock.
	go func() {
		time.Sleep(300 * time.Millisecond)
		ka.Unlock()
	}()
	kb, err := lock(b, "up1", 5*time.Second, make(chan struct{}, 1))
	if err != nil {
		t.Fatalf("B after A let go: %v", err)
	}
	// Another upload is not held up.
	kc, err := lock(a, "up2", time.Second, make(chan struct{}, 1))
	if err != nil {
		t.Fatalf("another upload: %v", err)
	}
	kc.Unlock()
	// A second request in the same process is handed the lock too, through the fast path.
	askedB := make(chan struct{}, 1)
	kb.Unlock()
	kb, err = lock(b, "up1", time.Second, askedB)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-askedB
		kb.Unlock()
	}()
	kb2, err := lock(b, "up1", 2*time.Second, make(chan struct{}, 1))
	if err != nil {
		t.Fatalf("a second request in the same process: %v", err)
	}
	// The process holding it dies: nothing renews the lease, and it runs out.
	kb2.(*uploadLock).stop()
	<-kb2.(*uploadLock).done
	start = time.Now()
	if _, err := lock(a, "up1", uploadLockLease+3*time.Second, make(chan struct{}, 1)); err != nil {
		t.Fatalf("a lock of a dead process never freed: %v", err)
	}
	if waited := time.Since(start); waited > uploadLockLease+time.Second {
		t.Fatalf("waited %s for a dead process's lock, want at most the %s lease", waited, uploadLockLease)
	}
}
