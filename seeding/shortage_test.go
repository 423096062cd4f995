package seeding

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/internal/testkit"
)

// When no up node has room for a torrent's replicas, the fleet says so: the shortage (torrents,
// replicas and bytes missing) is stored for the page and the metrics, and logged once when it
// starts and once when it ends, not at every reconcile.
func TestCapacityShortageIsToldOnce(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	var logs testkit.LogBuffer
	f.fleet.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	f.node("n1", 3<<20)
	f.node("n2", 3<<20)
	fits := f.torrent(2 << 20)
	big := f.torrent(2 << 20) // 1 MiB left on each node
	for range 3 {
		f.reconcile()
	}
	h, err := f.fleet.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := h.Shortage; !slices.Equal(s.Torrents, []int64{big.ID}) || s.Replicas != 2 || s.Bytes != 4<<20 || s.Since.IsZero() {
		t.Fatalf("shortage %+v, want torrent %d missing 2 replicas, 4 MiB", s, big.ID)
	}
	o, err := f.fleet.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range o.UnderReplicated {
		if u.NoRoom != (u.ID == big.ID) {
			t.Errorf("under-replicated %d (fits is %d): no room %v", u.ID, fits.ID, u.NoRoom)
		}
	}
	f.node("n3", 10<<20)
	f.reconcile() // one replica placed, one still missing
	if h, _ := f.fleet.Health(ctx); h.Shortage.Replicas != 1 || h.Shortage.Bytes != 2<<20 {
		t.Errorf("shortage with n3: %+v, want 1 replica, 2 MiB", h.Shortage)
	}
	f.node("n4", 10<<20)
	f.reconcile()
	f.reconcile()
	if h, _ := f.fleet.Health(ctx); h.Shortage.Short() || len(h.Shortage.Torrents) != 0 || h.Shortage.Bytes != 0 {
		t.Errorf("shortage once n4 has room: %+v, want none", h.Shortage)
	}
	if n := strings.Count(logs.String(), "capacity shortage started"); n != 1 {
		t.Errorf("%d lines for the shortage starting, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "capacity shortage ended"); n != 1 {
		t.Errorf("%d lines for the shortage ending, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "bytes_missing=4194304") {
		t.Errorf("the start line lacks what is missing:\n%s", logs.String())
	}
}

// The under-replicated count is of published torrents only, and a healthy drain does not move
// it: the draining node's seeding replica counts until the drain drops it, which it does only
// once another node seeds the torrent.
func TestUnderReplicatedCountsPublishedAndDraining(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	under := func() int64 {
		t.Helper()
		h, err := f.fleet.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h.UnderReplicated
	}
	n1, n2 := f.node("n1", 1<<30), f.node("n2", 1<<30)
	rec := f.torrent(1 << 20)
	processing := f.torrent(1 << 20) // never reported: stays in processing
	f.heartbeat(n1, seedingReport(rec), fetchingReport(processing))
	f.heartbeat(n2, seedingReport(rec), fetchingReport(processing))
	if ts, _, _ := f.status(rec); ts != StatusPublished {
		t.Fatalf("torrent %s, want published", ts)
	}
	if got := under(); got != 0 {
		t.Fatalf("under-replicated = %d with the published torrent on 2 nodes and one in processing, want 0", got)
	}
	n3 := f.node("n3", 1<<30)
	if err := f.fleet.Drain(ctx, n1); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.heartbeat(n3, fetchingReport(rec), fetchingReport(processing))
	if got := under(); got != 0 {
		t.Errorf("under-replicated = %d while n1 drains and still seeds, want 0", got)
	}
	if o, _ := f.fleet.Overview(ctx); slices.ContainsFunc(o.UnderReplicated, func(u UnderReplicated) bool { return u.ID == rec.ID }) {
		t.Errorf("the fleet page lists the draining node's torrent as under-replicated")
	}
	f.heartbeat(n3, seedingReport(rec), fetchingReport(processing))
	f.reconcile()
	f.heartbeat(n1)
	if got := under(); got != 0 {
		t.Errorf("under-replicated = %d once n3 seeds and n1 dropped it, want 0", got)
	}
	f.silence(n2)
	f.reconcile()
	if got := under(); got != 1 {
		t.Errorf("under-replicated = %d with n2 down, want 1", got)
	}
}
