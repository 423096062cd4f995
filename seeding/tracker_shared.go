package seeding

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/fanseed/fanseed/periodic"
	"github.com/jackc/pgx/v5"
)

// Several serve processes behind a load balancer each see only the announces sent to them. They
// share their swarms through the tracker_peers table: each process writes the peers it heard
// from (and deletes those that left it) and reads the others', every few seconds (Share), and
// reads them at once for a swarm it has not shared yet, so that a client's first announce to a
// process is answered with the whole swarm. Scrapes report the completions every process has
// recorded (torrents.completed).

// ShareThrough makes the tracker share its swarms through db with the other processes doing
// the same. Call it before the first announce, then Share periodically (ShareEvery).
func (t *Tracker) ShareThrough(db DBTX) {
	t.shared, t.process = db, rand.Text()
}

// sharedSwarm is what the other processes hold of a swarm.
type sharedSwarm struct {
	peers     []remotePeer
	completed int64
}

// sharedChange is a peer this process heard from or lost since the last Share.
type sharedChange struct {
	ih     [20]byte
	addr   netip.AddrPort
	id     [20]byte // of a peer heard from
	seeder bool
	seen   time.Time // when it announced, or for a peer gone, when it was last seen
	gone   bool
}

// Share writes the peers this process heard from, or lost, since the last Share and reads the
// other processes' peers of every swarm it knows. Should writing fail, the changes are kept for
// the next Share.
func (t *Tracker) Share(ctx context.Context) error {
	if t.shared == nil {
		return nil
	}
	now := t.clock()
	cutoff := now.Add(-2 * t.interval())
	t.mu.Lock()
	var changes []sharedChange
	active := make([][20]byte, 0, len(t.swarms))
	for ih, s := range t.swarms {
		active = append(active, ih)
		for k := range s.changed {
			if p := s.peers[k]; p != nil {
				changes = append(changes, sharedChange{ih: ih, addr: k, id: p.id, seeder: p.seeder, seen: p.seen})
			}
		}
		for k, when := range s.gone {
			changes = append(changes, sharedChange{ih: ih, addr: k, seen: when, gone: true})
		}
		s.changed, s.gone = nil, nil
	}
	t.mu.Unlock()

	if err := t.writeShared(ctx, changes, cutoff); err != nil {
		t.mu.Lock()
		for _, c := range changes { // what was not noted again meanwhile
			if s := t.swarms[c.ih]; s != nil {
				if _, again := s.changed[c.addr]; !again {
					if _, again := s.gone[c.addr]; !again {
						s.noteChange(c.addr, c.gone, c.seen)
					}
				}
			}
		}
		t.mu.Unlock()
		return err
	}
	loaded, err := t.loadShared(ctx, active, cutoff)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ih := range active {
		if s := t.swarms[ih]; s != nil {
			s.install(loaded[ih], t.down)
		}
	}
	return nil
}

// writeShared upserts the peers heard from, deletes those gone (unless another process heard
// from them later) and forgets peers nobody has heard from since cutoff.
func (t *Tracker) writeShared(ctx context.Context, changes []sharedChange, cutoff time.Time) error {
	var ups, dels struct {
		ih, id, ip [][]byte
		port       []int32
		seeder     []bool
		seen       []time.Time
	}
	for _, c := range changes {
		b := &ups
		if c.gone {
			b = &dels
		}
		ip := c.addr.Addr().As16()
		b.ih, b.id, b.ip = append(b.ih, c.ih[:]), append(b.id, c.id[:]), append(b.ip, ip[:])
		b.port, b.seeder, b.seen = append(b.port, int32(c.addr.Port())), append(b.seeder, c.seeder), append(b.seen, c.seen)
	}
	batch := &pgx.Batch{}
	if len(ups.ih) > 0 {
		batch.Queue(`
			INSERT INTO tracker_peers AS p (infohash, peer_id, ip, port, seeder, process, seen)
			SELECT u.ih, u.id, u.ip, u.port, u.seeder, $7, u.seen
			FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int[], $5::bool[], $6::timestamptz[]) AS u(ih, id, ip, port, seeder, seen)
			ON CONFLICT (infohash, ip, port) DO UPDATE SET peer_id = EXCLUDED.peer_id, seeder = EXCLUDED.seeder, process = EXCLUDED.process, seen = EXCLUDED.seen
			WHERE p.seen <= EXCLUDED.seen`,
			ups.ih, ups.id, ups.ip, ups.port, ups.seeder, ups.seen, t.process)
	}
	if len(dels.ih) > 0 {
		batch.Queue(`
			DELETE FROM tracker_peers p
			USING unnest($1::bytea[], $2::bytea[], $3::int[], $4::timestamptz[]) AS d(ih, ip, port, seen)
			WHERE p.infohash = d.ih AND p.ip = d.ip AND p.port = d.port AND p.seen <= d.seen`,
			dels.ih, dels.ip, dels.port, dels.seen)
	}
	batch.Queue(`DELETE FROM tracker_peers WHERE seen < $1`, cutoff)
	if err := t.shared.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("share tracker peers: %w", err)
	}
	return nil
}

// loadShared reads what the other processes hold of the given swarms: their peers heard from
// since cutoff, and the completions recorded by every process.
func (t *Tracker) loadShared(ctx context.Context, hashes [][20]byte, cutoff time.Time) (map[[20]byte]sharedSwarm, error) {
	out := make(map[[20]byte]sharedSwarm, len(hashes))
	if len(hashes) == 0 {
		return out, nil
	}
	keys := make([][]byte, len(hashes))
	for i := range hashes {
		keys[i] = hashes[i][:]
		out[hashes[i]] = sharedSwarm{}
	}
	rows, err := t.shared.Query(ctx, `
		SELECT infohash, peer_id, ip, port, seeder FROM tracker_peers
		WHERE infohash = ANY($1) AND process <> $2 AND seen >= $3`, keys, t.process, cutoff)
	if err != nil {
		return nil, fmt.Errorf("load shared tracker peers: %w", err)
	}
	var ihb, id, ip []byte
	var port int32
	var seeder bool
	_, err = pgx.ForEachRow(rows, []any{&ihb, &id, &ip, &port, &seeder}, func() error {
		var ih [20]byte
		var r remotePeer
		if len(ihb) != 20 || len(id) != 20 || len(ip) != 16 {
			return nil
		}
		copy(ih[:], ihb)
		copy(r.id[:], id)
		r.addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip)).Unmap(), uint16(port))
		r.seeder = seeder
		sh := out[ih]
		sh.peers = append(sh.peers, r)
		out[ih] = sh
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load shared tracker peers: %w", err)
	}
	rows, err = t.shared.Query(ctx, `SELECT infohash, completed FROM torrents WHERE infohash = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("load torrent completions: %w", err)
	}
	var completed int64
	_, err = pgx.ForEachRow(rows, []any{&ihb, &completed}, func() error {
		var ih [20]byte
		copy(ih[:], ihb)
		if sh, ok := out[ih]; ok {
			sh.completed = max(sh.completed, completed)
			out[ih] = sh
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load torrent completions: %w", err)
	}
	return out, nil
}

// ShareEvery shares the tracker's swarms every interval until ctx ends.
func (t *Tracker) ShareEvery(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	periodic.Loop{Name: "share tracker peers", Every: interval, Log: logger}.Run(ctx, t.Share)
}

// FollowDownNodes tells the tracker, every interval until ctx ends, the peer ids of the seedbox
// nodes marked down or removed (see Tracker.SetDownPeers).
func FollowDownNodes(ctx context.Context, db DBTX, t *Tracker, interval time.Duration, logger *slog.Logger) {
	periodic.Loop{Name: "read down seedbox nodes", Every: interval, Log: logger}.Run(ctx, func(ctx context.Context) error {
		rows, _ := db.Query(ctx, `SELECT peer_id FROM nodes WHERE status IN ('down', 'removed') AND peer_id IS NOT NULL`)
		ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([20]byte, error) {
			var b []byte
			err := row.Scan(&b)
			return [20]byte(b), err // the column holds 20 bytes
		})
		if err != nil {
			return err
		}
		t.SetDownPeers(ids)
		return nil
	})
}
