package seeding

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// A live page's socket opens its stream's swarms (hashes the tracker never published) while
// the stream is on, up to MaxLiveSwarmsPerSocket; other sockets may join them, a socket of no
// live stream may not open one, and when the stream ends its swarms are refused.
func TestWebTrackerLiveSwarms(t *testing.T) {
	t.Parallel()
	w, tr := newWebTracker(t)
	var on atomic.Bool
	on.Store(true)
	w.LiveOn = func(id int64) bool { return id == 7 && on.Load() }
	tr.Allowed = func(ih [20]byte) bool { return ih == published || w.LiveSwarm(ih) }
	var swarm [20]byte
	copy(swarm[:], "live-swarm-of-stream")

	plain := openPeer(t, w, "192.0.2.1", 1)
	plain.send(t, plain.announce(swarm, 100, "started", 0))
	if m := plain.next(t); m["failure reason"] != "torrent is not published on this tracker" {
		t.Fatalf("a socket of no live stream opened a swarm: %v", m)
	}

	viewer := openPeer(t, w, "192.0.2.2", 2)
	viewer.sock.SetLive(7)
	viewer.send(t, viewer.announce(swarm, 100, "started", 0))
	if m := viewer.next(t); m["failure reason"] != nil || m["action"] != "announce" {
		t.Fatalf("the live page's socket could not open its stream's swarm: %v", m)
	}
	if !tr.Allowed(swarm) {
		t.Error("the HTTP tracker's Allowed does not know the live swarm")
	}
	other := openPeer(t, w, "192.0.2.3", 3)
	other.sock.SetLive(8) // another stream's page
	other.send(t, other.announce(swarm, 100, "started", 0))
	if m := other.next(t); m["failure reason"] != "torrent is not published on this tracker" {
		t.Errorf("another stream's socket joined this stream's swarm: %v", m)
	}
	second := openPeer(t, w, "192.0.2.4", 4)
	second.sock.SetLive(7)
	second.send(t, second.announce(swarm, 100, "started", 1))
	if m := second.next(t); m["failure reason"] != nil {
		t.Fatalf("a second viewer could not join: %v", m)
	}
	if m := viewer.next(t); m["offer"] == nil {
		t.Fatalf("the first viewer did not get the second one's offer: %v", m)
	}

	for i := 1; i < MaxLiveSwarmsPerSocket; i++ {
		var ih [20]byte
		copy(ih[:], fmt.Sprintf("live-swarm-number-%02d", i))
		viewer.send(t, viewer.announce(ih, 100, "started", 0))
		if m := viewer.next(t); m["failure reason"] != nil {
			t.Fatalf("live swarm %d of %d refused: %v", i+1, MaxLiveSwarmsPerSocket, m)
		}
	}
	var extra [20]byte
	copy(extra[:], "one-swarm-too-many!!")
	viewer.send(t, viewer.announce(extra, 100, "started", 0))
	if m := viewer.next(t); m["failure reason"] != "torrent is not published on this tracker" {
		t.Errorf("swarm %d of one socket: %v", MaxLiveSwarmsPerSocket+1, m)
	}

	on.Store(false)
	if tr.Allowed(swarm) {
		t.Error("the stream ended and its swarm is still allowed")
	}
	late := openPeer(t, w, "192.0.2.5", 5)
	late.sock.SetLive(7)
	late.send(t, late.announce(swarm, 100, "started", 0))
	if m := late.next(t); m["failure reason"] != "torrent is not published on this tracker" {
		t.Errorf("a viewer joined after the stream ended: %v", m)
	}
}
