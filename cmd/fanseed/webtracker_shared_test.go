package main

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestTwoServesRelayWebRTCSignals runs two `serve` processes on one database. A browser whose
// socket reaches the first and one whose socket reaches the second are in one swarm: the
// second's offers (one larger than a NOTIFY payload may be) reach the first, its answers come
// back, and either process counts both.
func TestTwoServesRelayWebRTCSignals(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	env := func() map[string]string {
		return map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "LOG_FORMAT": "text"}
	}
	baseA, _ := startServe(t, env())
	baseB, _ := startServe(t, env())

	ctx := context.Background()
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ih := sha1.Sum([]byte("relayed between replicas"))
	_, err = db.Exec(ctx, `
		WITH a AS (INSERT INTO accounts (email, name, password_hash, role) VALUES ('c@example.com', 'C', 'x', 'creator') RETURNING id),
		     s AS (INSERT INTO shows (owner_id, slug, title, currency) SELECT id, 'relay', 'Relay', 'USD' FROM a RETURNING id),
		     e AS (INSERT INTO episodes (show_id, title, status, published_at) SELECT id, 'Pilot', 'published', now() FROM s RETURNING id)
		INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo, status)
		SELECT id, $1, 'pilot.mp4', 1000, 16384, $2, 'video/mp4', '/nowhere', 'd4:infod}e', 'published' FROM e`,
		ih[:], make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}

	dial := func(base string) *websocket.Conn {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/announce", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	send := func(c *websocket.Conn, v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c *websocket.Conn) map[string]any {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ihText := testkit.Latin1(ih[:])
	aID, bID := testkit.Latin1([]byte("-WW0208-aaaaaaaaaaaa")), testkit.Latin1([]byte("-WW0208-bbbbbbbbbbbb"))
	a, b := dial(baseA), dial(baseB)

	// The published-torrent cache of each process learns of the torrent within a few seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		send(a, map[string]any{"action": "announce", "info_hash": ihText, "peer_id": aID, "left": 1000, "event": "started", "numwant": 0})
		m := read(a)
		if m["failure reason"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("announce to A: %v", m)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A's process writes that its socket joined the swarm a moment after answering it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM tracker_web_peers WHERE infohash = $1`, ih[:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's peer not in tracker_web_peers")
		}
	}
	bigSDP := "v=0\r\n" + strings.Repeat("a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host\r\n", 150) // ~8.5 KB
	offers := []any{
		map[string]any{"offer_id": testkit.Latin1([]byte("offer-00000000000001")), "offer": map[string]any{"type": "offer", "sdp": bigSDP}},
	}
	deadline = time.Now().Add(15 * time.Second)
	var m map[string]any
	for {
		send(b, map[string]any{"action": "announce", "info_hash": ihText, "peer_id": bID, "left": 1000, "event": "started", "numwant": 1, "offers": offers})
		if r := read(b); r["failure reason"] != nil {
			if time.Now().After(deadline) {
				t.Fatalf("announce to B: %v", r)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		break
	}
	m = read(a)
	offer, _ := m["offer"].(map[string]any)
	if m["peer_id"] != bID || m["info_hash"] != ihText || offer["sdp"] != bigSDP {
		t.Fatalf("A got %.300v, want B's offer", m)
	}
	send(a, map[string]any{"action": "announce", "info_hash": ihText, "peer_id": aID, "to_peer_id": bID, "offer_id": m["offer_id"],
		"answer": map[string]any{"type": "answer", "sdp": "v=0 answer from A"}})
	m = read(b)
	answer, _ := m["answer"].(map[string]any)
	if m["peer_id"] != aID || answer["sdp"] != "v=0 answer from A" || m["offer_id"] != "offer-00000000000001" {
		t.Fatalf("B got %v, want A's answer", m)
	}

	// A newcomer on A offers to B's browser too.
	c := dial(baseA)
	cID := testkit.Latin1([]byte("-WW0208-cccccccccccc"))
	send(c, map[string]any{"action": "announce", "info_hash": ihText, "peer_id": cID, "left": 1000, "numwant": 2,
		"offers": []any{
			map[string]any{"offer_id": testkit.Latin1([]byte("offer-0000000000000c")), "offer": map[string]any{"type": "offer", "sdp": "v=0 c1"}},
			map[string]any{"offer_id": testkit.Latin1([]byte("offer-0000000000000d")), "offer": map[string]any{"type": "offer", "sdp": "v=0 c2"}},
		}})
	read(c)
	for name, conn := range map[string]*websocket.Conn{"A": a, "B": b} {
		if m := read(conn); m["peer_id"] != cID || m["offer"] == nil {
			t.Errorf("%s got %v, want one of C's offers", name, m)
		}
	}

	// Both processes count the three browsers once they have shared their swarms (every 3 s).
	for name, conn := range map[string]*websocket.Conn{"A": a, "B": b} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			send(conn, map[string]any{"action": "scrape", "info_hash": ihText})
			m := read(conn)
			f, _ := m["files"].(map[string]any)[ihText].(map[string]any)
			if f["incomplete"] == float64(3) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's scrape %v, want 3 leechers", name, m)
			}
		}
	}
}
