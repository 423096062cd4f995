package seeding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Several serve processes behind a load balancer each hold some of the sockets. A browser on one
// and a seedbox node on another are in one swarm: each process writes which of its sockets' peers
// are in which swarm to tracker_web_peers and tells the others at once with a NOTIFY on a shared
// channel; an offer or answer for a peer of another process goes to that process's own channel.
// A NOTIFY payload holds at most 8000 bytes and an offer with its SDP may come close, so a larger
// message waits in tracker_relay and the notification carries its id.

const (
	webBroadcast      = "fanseed_webtracker"
	maxNotifyPayload  = 7900
	webPeersFreshFor  = 2 * time.Minute // a process refreshes its rows every webRelayRefresh
	webRelayRefresh   = 30 * time.Second
	relayQueue        = 8192
	relayBatch        = 512
	relayListenRetry  = time.Second
	relayQueryTimeout = 2 * time.Second
)

type webRelay struct {
	db      *pgxpool.Pool
	process string
	channel string
	log     *slog.Logger
	out     chan relayOut
	dropped atomic.Int64
}

// relayOut is a change or a message waiting to be written.
type relayOut struct {
	kind    string // join, leave, send
	ih, id  [20]byte
	seeder  bool
	channel string // of send
	payload []byte // of send
}

// relayMessage is a notification's payload.
type relayMessage struct {
	Kind   string          `json:"k"` // join, leave, send, ref
	From   string          `json:"from"`
	IH     string          `json:"ih,omitempty"` // hex
	ID     string          `json:"id,omitempty"` // hex: the peer that joined or left, or that a frame is for
	Seeder bool            `json:"seeder,omitempty"`
	Frame  json.RawMessage `json:"frame,omitempty"`
	Ref    int64           `json:"ref,omitempty"` // a tracker_relay row holding the message
}

func processChannel(process string) string { return "fanseed_wt_" + strings.ToLower(process) }

// RelayThrough makes the WebSocket tracker relay offers and answers through db to and from
// the other serve processes doing the same, until ctx ends. Call it before the first socket.
func (w *WebTracker) RelayThrough(ctx context.Context, db *pgxpool.Pool, logger *slog.Logger) {
	process := w.Tracker.process
	if process == "" {
		process = rand.Text()
	}
	r := &webRelay{db: db, process: process, channel: processChannel(process), log: logger, out: make(chan relayOut, relayQueue)}
	w.relay = r
	go r.write(ctx, w)
	go r.listen(ctx, w)
}

func (r *webRelay) queue(o relayOut) {
	select {
	case r.out <- o:
	default:
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Warn("tracker relay queue full: messages dropped", slog.Int64("dropped", r.dropped.Load()))
		}
	}
}

func (r *webRelay) joined(ih, id [20]byte, seeder bool) {
	if r != nil {
		r.queue(relayOut{kind: "join", ih: ih, id: id, seeder: seeder})
	}
}

func (r *webRelay) left(ih, id [20]byte) {
	if r != nil {
		r.queue(relayOut{kind: "leave", ih: ih, id: id})
	}
}

func (r *webRelay) send(process string, ih, to [20]byte, frame []byte) {
	if r == nil || process == "" {
		return
	}
	b, err := json.Marshal(relayMessage{Kind: "send", From: r.process, IH: hex.EncodeToString(ih[:]), ID: hex.EncodeToString(to[:]), Frame: frame})
	if err == nil {
		r.queue(relayOut{kind: "send", channel: processChannel(process), payload: b})
	}
}

// write writes what is queued, as it comes, in batches; and refreshes this process's rows.
func (r *webRelay) write(ctx context.Context, w *WebTracker) {
	tick := time.NewTicker(webRelayRefresh)
	defer tick.Stop()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), relayQueryTimeout)
		defer cancel()
		r.db.Exec(ctx, `DELETE FROM tracker_web_peers WHERE process = $1`, r.process)
	}()
	batch := make([]relayOut, 0, relayBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.refresh(ctx, w)
		case o := <-r.out:
			batch = append(batch[:0], o)
		more:
			for len(batch) < relayBatch {
				select {
				case o := <-r.out:
					batch = append(batch, o)
				default:
					break more
				}
			}
			if err := r.flush(ctx, batch); err != nil && ctx.Err() == nil {
				r.log.Warn("tracker relay", slog.Any("error", err))
			}
		}
	}
}

func (r *webRelay) flush(ctx context.Context, batch []relayOut) error {
	ctx, cancel := context.WithTimeout(ctx, relayQueryTimeout)
	defer cancel()
	var joinIH, joinID, leaveIH, leaveID [][]byte
	var joinSeeder []bool
	var channels, payloads []string
	for _, o := range batch {
		switch o.kind {
		case "join", "leave":
			ih, id := o.ih, o.id
			if o.kind == "join" {
				joinIH, joinID, joinSeeder = append(joinIH, ih[:]), append(joinID, id[:]), append(joinSeeder, o.seeder)
			} else {
				leaveIH, leaveID = append(leaveIH, ih[:]), append(leaveID, id[:])
			}
			b, _ := json.Marshal(relayMessage{Kind: o.kind, From: r.process, IH: hex.EncodeToString(ih[:]), ID: hex.EncodeToString(id[:]), Seeder: o.seeder})
			channels, payloads = append(channels, webBroadcast), append(payloads, string(b))
		case "send":
			payload := string(o.payload)
			if len(payload) > maxNotifyPayload {
				var ref int64
				if err := r.db.QueryRow(ctx, `INSERT INTO tracker_relay (payload) VALUES ($1) RETURNING id`, payload).Scan(&ref); err != nil {
					return fmt.Errorf("store relayed message: %w", err)
				}
				b, _ := json.Marshal(relayMessage{Kind: "ref", From: r.process, Ref: ref})
				payload = string(b)
			}
			channels, payloads = append(channels, o.channel), append(payloads, payload)
		}
	}
	b := &pgx.Batch{}
	if len(leaveIH) > 0 {
		b.Queue(`DELETE FROM tracker_web_peers p USING unnest($1::bytea[], $2::bytea[]) AS u(ih, id)
			WHERE p.infohash = u.ih AND p.peer_id = u.id AND p.process = $3`, leaveIH, leaveID, r.process)
	}
	if len(joinIH) > 0 {
		b.Queue(`INSERT INTO tracker_web_peers (infohash, peer_id, process, seeder)
			SELECT DISTINCT ON (ih, id) ih, id, $3, seeder FROM unnest($1::bytea[], $2::bytea[], $4::bool[]) WITH ORDINALITY AS u(ih, id, seeder, n)
			ORDER BY ih, id, n DESC
			ON CONFLICT (infohash, peer_id) DO UPDATE SET process = EXCLUDED.process, seeder = EXCLUDED.seeder, seen = now()`,
			joinIH, joinID, r.process, joinSeeder)
	}
	if len(channels) > 0 {
		b.Queue(`SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(c, p, n) ORDER BY n`, channels, payloads)
	}
	if err := r.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("relay tracker messages: %w", err)
	}
	return nil
}

// refresh marks this process's rows fresh, forgets stale rows and relayed messages nobody read,
// and reads the other processes' peers of the swarms this process has sockets in again.
func (r *webRelay) refresh(ctx context.Context, w *WebTracker) {
	ctx, cancel := context.WithTimeout(ctx, relayQueryTimeout)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`UPDATE tracker_web_peers SET seen = now() WHERE process = $1`, r.process)
	b.Queue(`DELETE FROM tracker_web_peers WHERE seen < now() - $1::interval`, webPeersFreshFor)
	b.Queue(`DELETE FROM tracker_relay WHERE created_at < now() - interval '1 minute'`)
	if err := r.db.SendBatch(ctx, b).Close(); err != nil {
		r.log.Warn("refresh tracker web peers", slog.Any("error", err))
	}
	r.reload(ctx, w)
}

// reload replaces what this process knows of the other processes' peers in its swarms.
func (r *webRelay) reload(ctx context.Context, w *WebTracker) {
	w.mu.Lock()
	hashes := make([][]byte, 0, len(w.swarms))
	for ih, s := range w.swarms {
		if s.local == 0 {
			delete(w.swarms, ih)
			continue
		}
		hashes = append(hashes, append([]byte(nil), ih[:]...))
	}
	w.mu.Unlock()
	if len(hashes) == 0 {
		return
	}
	peers, err := r.peers(ctx, hashes)
	if err != nil {
		r.log.Warn("read tracker web peers", slog.Any("error", err))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hashes {
		s := w.swarms[[20]byte(h)]
		if s == nil {
			continue
		}
		for _, e := range s.entries {
			if e.sock == nil {
				s.del(e)
			}
		}
		for _, p := range peers[[20]byte(h)] {
			if s.entries[p.id] == nil {
				s.put(p)
			}
		}
		s.loaded = true
	}
}

// peers reads the other processes' fresh peers of the given swarms.
func (r *webRelay) peers(ctx context.Context, hashes [][]byte) (map[[20]byte][]*webEntry, error) {
	rows, _ := r.db.Query(ctx, `SELECT infohash, peer_id, process, seeder FROM tracker_web_peers
		WHERE infohash = ANY($1) AND process <> $2 AND seen > now() - $3::interval`, hashes, r.process, webPeersFreshFor)
	out := map[[20]byte][]*webEntry{}
	var ih, id []byte
	var process string
	var seeder bool
	_, err := pgx.ForEachRow(rows, []any{&ih, &id, &process, &seeder}, func() error {
		out[[20]byte(ih)] = append(out[[20]byte(ih)], &webEntry{id: [20]byte(id), process: process, seeder: seeder})
		return nil
	})
	return out, err
}

// load reads the other processes' peers of a swarm this process has not read yet, so that a
// socket's first offers here reach peers of other processes too.
func (r *webRelay) load(w *WebTracker, ih [20]byte) {
	if r == nil {
		return
	}
	w.mu.Lock()
	s := w.swarms[ih]
	done := s != nil && s.loaded
	w.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayQueryTimeout)
	defer cancel()
	peers, err := r.peers(ctx, [][]byte{ih[:]})
	if err != nil {
		r.log.Warn("read tracker web peers", slog.Any("error", err))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s = w.swarm(ih)
	if s.loaded {
		return
	}
	for _, p := range peers[ih] {
		if s.entries[p.id] == nil {
			s.put(p)
		}
	}
	s.loaded = true
}

// listen takes the notifications for this process and the shared channel, connecting again
// whenever the connection is lost (and then reading the other processes' peers again).
func (r *webRelay) listen(ctx context.Context, w *WebTracker) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, w)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("tracker relay listener", slog.Any("error", err))
		select {
		case <-ctx.Done():
		case <-time.After(relayListenRetry):
		}
	}
}

func (r *webRelay) listenOnce(ctx context.Context, w *WebTracker) error {
	conn, err := pgx.ConnectConfig(ctx, r.db.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{webBroadcast, r.channel} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	r.reload(ctx, w)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		r.receive(ctx, w, n.Payload)
	}
}

func (r *webRelay) receive(ctx context.Context, w *WebTracker, payload string) {
	var m relayMessage
	if json.Unmarshal([]byte(payload), &m) != nil || m.From == r.process {
		return
	}
	if m.Kind == "ref" {
		ctx, cancel := context.WithTimeout(ctx, relayQueryTimeout)
		defer cancel()
		var stored string
		if err := r.db.QueryRow(ctx, `DELETE FROM tracker_relay WHERE id = $1 RETURNING payload`, m.Ref).Scan(&stored); err != nil {
			return
		}
		m = relayMessage{}
		if json.Unmarshal([]byte(stored), &m) != nil {
			return
		}
	}
	ihb, err1 := hex.DecodeString(m.IH)
	idb, err2 := hex.DecodeString(m.ID)
	if err1 != nil || err2 != nil || len(ihb) != 20 || len(idb) != 20 {
		return
	}
	ih, id := [20]byte(ihb), [20]byte(idb)
	switch m.Kind {
	case "send":
		w.deliverLocal(ih, id, m.Frame)
	case "join", "leave":
		w.mu.Lock()
		defer w.mu.Unlock()
		s := w.swarms[ih]
		if s == nil || !s.loaded { // read in full when a socket here joins it
			return
		}
		e := s.entries[id]
		if e != nil && e.sock != nil {
			return // the peer's socket is here now
		}
		if m.Kind == "leave" && (e == nil || e.process != m.From) {
			return // it joined another process since
		}
		if e != nil {
			s.del(e)
		}
		if m.Kind == "join" {
			s.put(&webEntry{id: id, process: m.From, seeder: m.Seeder})
		}
	}
}
