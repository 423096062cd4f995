package seeding

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fanseed/fanseed/periodic"
	"github.com/jackc/pgx/v5"
)

// Node statuses: up while it heartbeats, down after missing heartbeats, draining once an operator
// removes it (it seeds until its torrents have replicas elsewhere), removed when drained.
const (
	NodeUp       = "up"
	NodeDown     = "down"
	NodeDraining = "draining"
	NodeRemoved  = "removed"
)

// Assignment states: a node is asked to hold a torrent (assigned), reports fetching and then
// seeding; dropping rows wait for the node to confirm it let the torrent go.
const (
	StateAssigned = "assigned"
	StateFetching = "fetching"
	StateSeeding  = "seeding"
	StateDropping = "dropping"
)

// Defaults of the Fleet's settings, as the Publishing issue states them.
const (
	DefaultReplicas       = 2
	DefaultDownAfter      = 30 * time.Second
	DefaultPublishTimeout = 30 * time.Minute
)

// fleetLockKey is the advisory lock that lets one control-plane process reconcile at a time.
const fleetLockKey = 7366156620

// underFleetLock runs fn in a transaction holding the fleet lock and the node locks, unless
// another process holds the fleet lock: then it skips fn and reports skipped.
func (f *Fleet) underFleetLock(ctx context.Context, fn func(tx pgx.Tx) error) (skipped bool, err error) {
	err = pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, fleetLockKey).Scan(&locked); err != nil {
			return err
		}
		if skipped = !locked; skipped {
			return nil
		}
		if err := lockNodes(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
	return skipped, err
}

// Fleet is the control plane's side of the seedbox fleet: registration, heartbeats, replica
// assignment, failover, draining, and publishing torrents once R nodes seed them. Every method
// is safe with several control-plane processes on one database.
type Fleet struct {
	DB interface {
		DBTX
		Begin(ctx context.Context) (pgx.Tx, error)
	}
	Replicas       int           // R: nodes that must seed a torrent; DefaultReplicas when zero
	DownAfter      time.Duration // a node without a heartbeat for this long is down; DefaultDownAfter when zero
	PublishTimeout time.Duration // a torrent not published by then fails; DefaultPublishTimeout when zero
	Published      *Published    // this process's tracker set, invalidated after publishing; may be nil
	Episodes       Episodes      // told of torrents published or failed; nil for a fleet that only reads or drains
	Log            *slog.Logger

	// Demand adds replicas to busy torrents (see demand.go); none when Demand.Max <= R.
	Demand Demand
	// RebalanceBytesPerMinute bounds the bytes of the replicas the rebalancer starts moving in a
	// minute; DefaultRebalanceBytesPerMinute when zero, no rebalancing when negative.
	RebalanceBytesPerMinute int64
}

// Episodes hears, in the transaction that publishes or fails torrents, which episodes those
// torrents belong to, so that each episode follows its torrent atomically: neither is ever public
// without the other. The torrent rows are locked by then, so an implementation that updates the
// episodes takes its locks in the order every writer does: torrent first, then episode.
type Episodes interface {
	TorrentsPublished(ctx context.Context, tx pgx.Tx, episodeIDs []int64) error
	TorrentFailed(ctx context.Context, tx pgx.Tx, episodeID int64, reason string) error
}

func (f *Fleet) replicas() int {
	if f.Replicas > 0 {
		return f.Replicas
	}
	return DefaultReplicas
}

func (f *Fleet) downAfter() time.Duration { return orDefault(f.DownAfter, DefaultDownAfter) }

func (f *Fleet) publishTimeout() time.Duration {
	return orDefault(f.PublishTimeout, DefaultPublishTimeout)
}

// NodeInfo is what a node says about itself when it registers.
type NodeInfo struct {
	Name          string `json:"name"`
	ListenAddr    string `json:"listen_addr"`    // host:port of its BitTorrent listener
	PublicAddr    string `json:"public_addr"`    // host:port peers dial
	CapacityBytes int64  `json:"capacity_bytes"` // how much content it may hold
	Zone          string `json:"zone,omitempty"` // NODE_ZONE: no two replicas of a torrent go to one zone while others have room
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (n NodeInfo) validate() error {
	if !nodeNameRE.MatchString(n.Name) {
		return invalidf("node name %q must be 1 to 63 letters, digits, dots, dashes or underscores", n.Name)
	}
	for what, a := range map[string]string{"listen address": n.ListenAddr, "public address": n.PublicAddr} {
		if err := checkHostPort(what, a); err != nil {
			return err
		}
	}
	if n.CapacityBytes <= 0 {
		return invalidf("capacity must be a positive number of bytes")
	}
	if n.Zone != "" && !nodeNameRE.MatchString(n.Zone) {
		return invalidf("zone %q must be 1 to 63 letters, digits, dots, dashes or underscores", n.Zone)
	}
	return nil
}

func checkHostPort(what, a string) error {
	host, port, err := net.SplitHostPort(a)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		return invalidf("%s %q must be host:port with a port from 1 to 65535", what, a)
	}
	return nil
}

// Report is a node's account of one torrent it holds, sent with each heartbeat.
type Report struct {
	InfoHash string `json:"infohash"` // 40 hex digits
	State    string `json:"state"`    // fetching or seeding
	Uploaded int64  `json:"uploaded"` // payload bytes sent to peers since the node started
	// UploadedToNodes is the part of Uploaded sent to other seedbox nodes: the fleet copying the
	// torrent, not fans downloading it.
	UploadedToNodes int64  `json:"uploaded_to_nodes,omitempty"`
	Peers           int    `json:"peers"`
	Seeders         int    `json:"seeders"`
	Leechers        int    `json:"leechers"`
	Error           string `json:"error,omitempty"`
}

// Heartbeat is what a node sends every few seconds.
type Heartbeat struct {
	// Session names the node's run: its upload counters start from zero with a new session.
	Session string `json:"session"`
	// PeerID is the node's BitTorrent peer id in this run (40 hex digits), so that the tracker
	// can forget the node's peers once it is down.
	PeerID   string   `json:"peer_id,omitempty"`
	DiskUsed int64    `json:"disk_used"`
	Torrents []Report `json:"torrents"`
	// OnDisk are the infohashes (hex) of torrents whose data the node has on disk but does not
	// hold, as after a restart: the control plane may give them back to verify and seed.
	OnDisk []string `json:"on_disk,omitempty"`
	// LiveEdgeURL is where the node serves live segments to viewers (its Edge); "" for none.
	LiveEdgeURL string `json:"live_edge_url,omitempty"`
}

// Want is a torrent the control plane wants a node to hold.
type Want struct {
	InfoHash  string   `json:"infohash"`
	Metainfo  []byte   `json:"metainfo,omitempty"` // the .torrent; left out when the node already reports it
	Published bool     `json:"published"`          // announce to the tracker (it refuses unpublished torrents)
	Peers     []string `json:"peers"`              // the other nodes holding it (not suspect ones), to fetch from directly
}

// Orders is the answer to a heartbeat: the node's status and every torrent it should hold.
// A node drops any torrent not listed.
type Orders struct {
	Status   string `json:"status"`
	Torrents []Want `json:"torrents"`
	// Verify asks the node to hash the data of every torrent it holds again before it reports
	// them seeding: it was marked down, and its copies count again only once verified.
	Verify bool `json:"verify,omitempty"`
}

// Heartbeat records a node's reports and returns what it should hold. The caller must hold the
// node's secret (ErrSecretRefused otherwise); a removed node is told so and nothing is recorded.
// A node that was down comes back up with the assignments it kept while down: it is told to
// verify their data again (Orders.Verify), and they count again once it reports them seeding.
// Other nodes took its torrents meanwhile; the copies beyond each torrent's target are dropped
// only once every torrent has its replicas (see dropSurplus). Data a node seeds or finds on disk
// (OnDisk) that it is not assigned is taken back the same way, to be verified again.
func (f *Fleet) Heartbeat(ctx context.Context, nodeID int64, secret string, hb Heartbeat) (Orders, error) {
	hashes := make([][]byte, 0, len(hb.Torrents))
	var states, errs []string
	var offerHashes [][]byte // replicas the node offers back (see above)
	var offerStates []string
	var uploaded, toNodes []int64
	var peers, seeders, leechers []int32
	for _, r := range hb.Torrents {
		ih, err := hex.DecodeString(r.InfoHash)
		if err != nil || len(ih) != 20 {
			return Orders{}, invalidf("infohash %q is not 40 hex digits", r.InfoHash)
		}
		if r.State != StateFetching && r.State != StateSeeding {
			return Orders{}, invalidf("state %q must be fetching or seeding", r.State)
		}
		if r.Uploaded < 0 || r.Peers < 0 || r.Seeders < 0 || r.Leechers < 0 {
			return Orders{}, invalidf("counters must not be negative")
		}
		if r.UploadedToNodes < 0 || r.UploadedToNodes > r.Uploaded {
			return Orders{}, invalidf("uploaded_to_nodes %d must be from 0 to uploaded (%d)", r.UploadedToNodes, r.Uploaded)
		}
		toNodes = append(toNodes, r.UploadedToNodes)
		if len(r.Error) > 500 {
			r.Error = r.Error[:500]
		}
		hashes = append(hashes, ih)
		states, errs, uploaded = append(states, r.State), append(errs, r.Error), append(uploaded, r.Uploaded)
		if r.State == StateSeeding {
			offerHashes, offerStates = append(offerHashes, ih), append(offerStates, StateSeeding)
		}
		peers, seeders, leechers = append(peers, int32(r.Peers)), append(seeders, int32(r.Seeders)), append(leechers, int32(r.Leechers))
	}
	if hb.DiskUsed < 0 {
		return Orders{}, invalidf("disk_used must not be negative")
	}
	if len(hb.OnDisk) > 100000 {
		return Orders{}, invalidf("on_disk lists more than 100000 torrents")
	}
	for _, h := range hb.OnDisk {
		ih, err := hex.DecodeString(h)
		if err != nil || len(ih) != 20 {
			return Orders{}, invalidf("on_disk infohash %q is not 40 hex digits", h)
		}
		offerHashes, offerStates = append(offerHashes, ih), append(offerStates, StateAssigned)
	}
	if len(hb.Session) > 64 {
		return Orders{}, invalidf("session must be at most 64 characters")
	}
	var peerID []byte
	if hb.PeerID != "" {
		id, err := hex.DecodeString(hb.PeerID)
		if err != nil || len(id) != 20 {
			return Orders{}, invalidf("peer_id %q is not 40 hex digits", hb.PeerID)
		}
		peerID = id
	}
	if u := hb.LiveEdgeURL; u != "" && (len(u) > 300 || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"))) {
		return Orders{}, invalidf("live_edge_url must be an http or https URL of at most 300 characters")
	}
	var orders Orders
	published := 0
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		status, err := authenticate(ctx, tx, nodeID, secret)
		if err != nil {
			return err
		}
		if status == NodeRemoved {
			orders.Status = NodeRemoved
			return nil
		}
		returning := status == NodeDown
		if err := tx.QueryRow(ctx, `
			UPDATE nodes SET last_heartbeat = now(), disk_used = $2, peer_id = coalesce($3, peer_id), live_edge_url = $4,
				status = CASE WHEN status = 'down' THEN 'up' ELSE status END
			WHERE id = $1 RETURNING status`, nodeID, hb.DiskUsed, peerID, strings.TrimRight(hb.LiveEdgeURL, "/")).Scan(&orders.Status); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE assignments a SET state = CASE WHEN a.state = 'dropping' THEN 'dropping' ELSE u.state END,
				proven_at = CASE WHEN u.state = 'seeding' THEN a.proven_at END, -- a replica not seeding must be proven again
				proof_due = CASE WHEN u.state = 'seeding' THEN a.proof_due END,
				reverify = a.reverify AND u.state <> 'seeding',
				uploaded = u.uploaded, peers = u.peers, seeders = u.seeders, leechers = u.leechers, error = u.error,
				updated_at = now()
			FROM unnest($2::bytea[], $3::text[], $4::bigint[], $5::int[], $6::int[], $7::int[], $8::text[])
				AS u(infohash, state, uploaded, peers, seeders, leechers, error)
			JOIN torrents t ON t.infohash = u.infohash
			WHERE a.node_id = $1 AND a.torrent_id = t.id`,
			nodeID, hashes, states, uploaded, peers, seeders, leechers, errs); err != nil {
			return fmt.Errorf("record reports: %w", err)
		}
		// Bytes served grow by what each counter grew since the last report in the same session
		// (a counter that went down restarted: the torrent was added again).
		if _, err := tx.Exec(ctx, `
			INSERT INTO torrent_served AS s (torrent_id, node_id, session, last_uploaded, bytes, last_to_nodes, to_nodes)
			SELECT t.id, $1, $4, u.uploaded, u.uploaded, u.to_nodes, u.to_nodes
			FROM unnest($2::bytea[], $3::bigint[], $5::bigint[]) AS u(infohash, uploaded, to_nodes)
			JOIN torrents t ON t.infohash = u.infohash
			JOIN assignments a ON a.torrent_id = t.id AND a.node_id = $1
			ON CONFLICT (torrent_id, node_id) DO UPDATE SET
				bytes = s.bytes + CASE WHEN s.session = EXCLUDED.session AND EXCLUDED.last_uploaded >= s.last_uploaded
					THEN EXCLUDED.last_uploaded - s.last_uploaded ELSE EXCLUDED.last_uploaded END,
				to_nodes = s.to_nodes + CASE WHEN s.session = EXCLUDED.session AND EXCLUDED.last_uploaded >= s.last_uploaded
					THEN greatest(EXCLUDED.last_to_nodes - s.last_to_nodes, 0) ELSE EXCLUDED.last_to_nodes END,
				session = EXCLUDED.session, last_uploaded = EXCLUDED.last_uploaded, last_to_nodes = EXCLUDED.last_to_nodes
			WHERE s.session <> EXCLUDED.session OR s.last_uploaded <> EXCLUDED.last_uploaded OR s.last_to_nodes <> EXCLUDED.last_to_nodes`,
			nodeID, hashes, uploaded, hb.Session, toNodes); err != nil {
			return fmt.Errorf("record bytes served: %w", err)
		}
		// Replicas an up node offers back: those it seeds, and those it found on disk, of torrents
		// still live that it is not assigned (it was down meanwhile). An assignment already there,
		// dropping ones included, stays as it is.
		if orders.Status == NodeUp {
			if _, err := tx.Exec(ctx, `
				INSERT INTO assignments (torrent_id, node_id, state)
				SELECT t.id, $1, u.state FROM unnest($2::bytea[], $3::text[]) AS u(infohash, state)
				JOIN torrents t ON t.infohash = u.infohash
				WHERE t.status IN ('processing', 'published') AND u.state IN ('seeding', 'assigned')
				ON CONFLICT (torrent_id, node_id) DO NOTHING`,
				nodeID, offerHashes, offerStates); err != nil {
				return fmt.Errorf("take back replicas: %w", err)
			}
		}
		if returning && orders.Status == NodeUp {
			if err := keepReturningCopies(ctx, tx, nodeID); err != nil {
				return err
			}
			orders.Verify = true
		}
		// A torrent being dropped that the node no longer reports is gone from it.
		if _, err := tx.Exec(ctx, `
			DELETE FROM assignments a WHERE a.node_id = $1 AND a.state = 'dropping'
			AND NOT EXISTS (SELECT 1 FROM torrents t WHERE t.id = a.torrent_id AND t.infohash = ANY($2::bytea[]))`,
			nodeID, hashes); err != nil {
			return fmt.Errorf("confirm drops: %w", err)
		}
		if published, err = f.publishReady(ctx, tx); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			SELECT t.infohash, CASE WHEN t.infohash = ANY($2::bytea[]) THEN NULL ELSE t.metainfo END,
				t.status = 'published',
				ARRAY(SELECT n.public_addr FROM assignments o JOIN nodes n ON n.id = o.node_id
					WHERE o.torrent_id = t.id AND o.node_id <> $1 AND o.state <> 'dropping'
					AND n.status IN ('up', 'draining') AND `+trustedNode+` ORDER BY n.id)
			FROM assignments a JOIN torrents t ON t.id = a.torrent_id
			WHERE a.node_id = $1 AND a.state <> 'dropping' AND t.status IN ('processing', 'published')
			ORDER BY t.id`, nodeID, hashes)
		var ih []byte
		var w Want
		_, err = pgx.ForEachRow(rows, []any{&ih, &w.Metainfo, &w.Published, &w.Peers}, func() error {
			w.InfoHash = hex.EncodeToString(ih)
			orders.Torrents = append(orders.Torrents, w)
			w = Want{}
			return nil
		})
		return err
	})
	if err != nil {
		return Orders{}, fmt.Errorf("heartbeat of node %d: %w", nodeID, err)
	}
	if published > 0 && f.Published != nil {
		f.Published.Invalidate()
	}
	return orders, nil
}

// lockNodes takes the nodes' row locks in id order before anything touches assignments, so that
// capacity is counted by one transaction at a time and concurrent transactions cannot deadlock.
func lockNodes(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT id FROM nodes WHERE status <> 'removed' ORDER BY id FOR UPDATE`)
	return err
}

// Assign gives a new torrent its R replicas, in the transaction that creates it (the Publisher's
// Assigned hook). Too few nodes is not an error: reconciling adds replicas as nodes appear.
func (f *Fleet) Assign(ctx context.Context, tx pgx.Tx, t Record) error {
	if err := lockNodes(ctx, tx); err != nil {
		return err
	}
	_, err := f.assign(ctx, tx, t.ID, t.Length, f.replicas())
	return err
}

// publishReady publishes every torrent in processing with R counted (proven) replicas, and tells
// Episodes of them in the same transaction.
func (f *Fleet) publishReady(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, _ := tx.Query(ctx, `
		WITH ready AS (
			SELECT t.id FROM torrents t
			WHERE t.status = 'processing' AND `+countedReplicas+` >= $1
			FOR NO KEY UPDATE OF t SKIP LOCKED
		)
		UPDATE torrents t SET status = 'published', published_at = now() FROM ready WHERE t.id = ready.id
		RETURNING t.episode_id`, f.replicas())
	episodes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("publish ready torrents: %w", err)
	}
	if len(episodes) > 0 && f.Episodes != nil {
		if err := f.Episodes.TorrentsPublished(ctx, tx, episodes); err != nil {
			return 0, fmt.Errorf("publish the episodes of ready torrents: %w", err)
		}
	}
	return len(episodes), nil
}

// ReconcileResult counts what one Reconcile changed, for logs and tests.
type ReconcileResult struct {
	Skipped   bool // another process holds the fleet lock
	Down      int  // nodes marked down
	Assigned  int  // replicas added
	Dropped   int  // surplus counted replicas dropped (see dropSurplus)
	Published int  // torrents published
	Failed    int  // torrents failed
	// Shortage is what could not be placed for want of room after this reconcile.
	Shortage Shortage
}

// Reconcile brings the fleet to where it should be: marks silent nodes down (their replicas
// stop counting), drops deleted and failed torrents, drains draining nodes, follows demand, tops
// every live torrent up to its target by the placement rule (placement.go), drops surplus
// replicas once every torrent has its own, publishes what R nodes seed and fails what could not
// be published in time. One
// process at a time does it (an advisory lock); the others skip.
func (f *Fleet) Reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	var shortageBegan time.Time
	var err error
	res.Skipped, err = f.underFleetLock(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE nodes SET status = 'down' WHERE status = 'up' AND last_heartbeat < now() - $1::bigint * interval '1 millisecond'`, f.downAfter().Milliseconds())
		if err != nil {
			return fmt.Errorf("mark nodes down: %w", err)
		}
		res.Down = int(tag.RowsAffected())
		steps := []struct {
			what, sql string
			args      []any
		}{
			// A down node keeps its replicas (they stop counting while it is down, and it verifies
			// them again when it returns), but not those it was dropping: back, it drops whatever its
			// orders leave out. A silent draining node's replicas, which were leaving, are let go.
			{"forget replicas of removed nodes", `DELETE FROM assignments WHERE node_id IN (
				SELECT id FROM nodes WHERE status = 'removed'
				OR (status = 'draining' AND last_heartbeat < now() - $1::bigint * interval '1 millisecond'))
				OR (state = 'dropping' AND node_id IN (SELECT id FROM nodes WHERE status = 'down'))`,
				[]any{f.downAfter().Milliseconds()}},
			{"drop unpublished torrents", `UPDATE assignments SET state = 'dropping', updated_at = now()
				WHERE state <> 'dropping' AND torrent_id IN (SELECT id FROM torrents WHERE status IN ('deleted', 'failed'))`, nil},
			{"drain nodes", `UPDATE assignments d SET state = 'dropping', updated_at = now()
				WHERE d.state <> 'dropping' AND d.node_id IN (SELECT id FROM nodes WHERE status = 'draining')
				AND (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
				     WHERE a.torrent_id = d.torrent_id AND ` + countedReplica + ` AND n.status = 'up') >= $1`,
				[]any{f.replicas()}},
			// A fetch is not needed once its torrent has its target of counted replicas, but a
			// returning node's kept copy and the new copy of a move are.
			{"drop surplus fetches", `UPDATE assignments x SET state = 'dropping', updated_at = now()
				WHERE x.state IN ('assigned', 'fetching') AND NOT x.reverify
				AND NOT EXISTS (SELECT 1 FROM replica_moves m WHERE m.torrent_id = x.torrent_id AND m.to_node = x.node_id
				     AND m.finished_at IS NULL)
				AND (SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
				     WHERE a.torrent_id = x.torrent_id AND n.status = 'up' AND ` + countedReplica + `)
				    >= $1 + (SELECT t.extra_replicas FROM torrents t WHERE t.id = x.torrent_id)`,
				[]any{f.replicas()}},
			{"remove drained nodes", `UPDATE nodes SET status = 'removed' WHERE status = 'draining'
				AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.node_id = nodes.id)`, nil},
		}
		if err := f.followDemand(ctx, tx); err != nil {
			return err
		}
		for _, s := range steps {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
		}
		if res.Assigned, err = f.placeShort(ctx, tx); err != nil {
			return err
		}
		if res.Dropped, err = f.dropSurplus(ctx, tx); err != nil {
			return err
		}
		if res.Published, err = f.publishReady(ctx, tx); err != nil {
			return err
		}
		if res.Failed, err = f.failStale(ctx, tx); err != nil {
			return err
		}
		res.Shortage, shortageBegan, err = f.recordShortage(ctx, tx)
		return err
	})
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile fleet: %w", err)
	}
	if !res.Skipped {
		f.logShortage(res.Shortage, shortageBegan)
	}
	if res.Published > 0 && f.Published != nil {
		f.Published.Invalidate()
	}
	return res, nil
}

// failStale fails torrents still in processing after the publish timeout, with a reason the
// creator reads on the episode page.
func (f *Fleet) failStale(ctx context.Context, tx pgx.Tx) (int, error) {
	type stale struct {
		id, episodeID, seeding, held, unproven int64
		nodeErr                                string
	}
	rows, _ := tx.Query(ctx, `
		SELECT t.id, t.episode_id,
			`+countedReplicas+`,
			(SELECT count(*) FROM assignments a WHERE a.torrent_id = t.id AND a.state <> 'dropping'),
			(SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
			 WHERE a.torrent_id = t.id AND a.state = 'seeding' AND NOT `+countedReplica+`),
			coalesce((SELECT a.error FROM assignments a WHERE a.torrent_id = t.id AND a.error <> '' LIMIT 1), '')
		FROM torrents t WHERE t.status = 'processing' AND t.created_at < now() - $1::bigint * interval '1 millisecond'
		FOR NO KEY UPDATE OF t SKIP LOCKED`, f.publishTimeout().Milliseconds())
	var s stale
	var all []stale
	if _, err := pgx.ForEachRow(rows, []any{&s.id, &s.episodeID, &s.seeding, &s.held, &s.unproven, &s.nodeErr}, func() error {
		all = append(all, s)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("find stale torrents: %w", err)
	}
	for _, s := range all {
		reason := fmt.Sprintf("Publishing did not finish within %s: %d of the %d seedbox nodes needed could fetch and verify the file.",
			f.publishTimeout(), s.seeding, f.replicas())
		if s.held < int64(f.replicas()) {
			reason = fmt.Sprintf("Publishing did not finish within %s: only %d of the %d seedbox nodes needed had room for the file.",
				f.publishTimeout(), s.held, f.replicas())
		}
		if s.nodeErr != "" {
			reason += " A node reported: " + s.nodeErr
		}
		if s.unproven > 0 {
			who := fmt.Sprintf("%d nodes said they seed it, but their copies have", s.unproven)
			if s.unproven == 1 {
				who = "1 node said it seeds it, but its copy has"
			}
			reason += " " + who + " not passed the control plane's check (the pieces asked for were not sent, or were wrong)."
		}
		reason += " Upload the file again, or ask the operator."
		// As in publishReady, the episode's status follows its torrent's in the same transaction.
		if _, err := tx.Exec(ctx, `UPDATE torrents SET status = 'failed' WHERE id = $1`, s.id); err != nil {
			return 0, fmt.Errorf("fail torrent %d: %w", s.id, err)
		}
		if f.Episodes != nil {
			if err := f.Episodes.TorrentFailed(ctx, tx, s.episodeID, reason); err != nil {
				return 0, fmt.Errorf("fail the episode of torrent %d: %w", s.id, err)
			}
		}
	}
	return len(all), nil
}

// Run reconciles every interval until ctx ends.
func (f *Fleet) Run(ctx context.Context, every time.Duration) {
	periodic.Loop{Name: "reconcile fleet", Every: every, Log: f.Log}.Run(ctx, func(ctx context.Context) error {
		res, err := f.Reconcile(ctx)
		if err == nil && res.Down+res.Assigned+res.Dropped+res.Published+res.Failed > 0 {
			f.Log.Info("fleet reconciled", slog.Int("nodes_down", res.Down), slog.Int("replicas_assigned", res.Assigned),
				slog.Int("surplus_dropped", res.Dropped),
				slog.Int("published", res.Published), slog.Int("failed", res.Failed))
		}
		return err
	})
}

// Drain removes a node the safe way: it keeps seeding until its torrents have R replicas on
// other nodes, then drops them, then is marked removed.
func (f *Fleet) Drain(ctx context.Context, nodeID int64) error {
	tag, err := f.DB.Exec(ctx, `UPDATE nodes SET status = 'draining' WHERE id = $1 AND status IN ('up', 'down')`, nodeID)
	if err != nil {
		return fmt.Errorf("drain node %d: %w", nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("node %d (or it is already draining or removed): %w", nodeID, ErrNotFound)
	}
	return nil
}

// DrainByName is Drain for the command line, which knows nodes by name.
func (f *Fleet) DrainByName(ctx context.Context, name string) error {
	var id int64
	if err := f.DB.QueryRow(ctx, `SELECT id FROM nodes WHERE name = $1`, name).Scan(&id); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("node %q: %w", name, ErrNotFound)
		}
		return err
	}
	return f.Drain(ctx, id)
}

// NodeView is a node as the admin fleet page shows it.
type NodeView struct {
	ID            int64     `db:"id"`
	Name          string    `db:"name"`
	PublicAddr    string    `db:"public_addr"`
	Status        string    `db:"status"`
	CapacityBytes int64     `db:"capacity_bytes"`
	DiskUsed      int64     `db:"disk_used"`
	LastHeartbeat time.Time `db:"last_heartbeat"`
	Revoked       bool      `db:"revoked"`    // an admin revoked its secret: it is refused until re-admitted
	Readmitted    bool      `db:"readmitted"` // its next enrolment is let in without its old secret
	Torrents      int64     `db:"torrents"`
	Seeding       int64     `db:"seeding"`
	Proven        int64     `db:"proven"` // seeding replicas the control plane proved (see proof.go)
	Uploaded      int64     `db:"uploaded"`
	// SuspectSince is when the node failed a proof, for SuspectReason; nil while it is trusted.
	SuspectSince  *time.Time `db:"suspect_at"`
	SuspectReason string     `db:"suspect_reason"`
}

// UnderReplicated is a live torrent with fewer than R counted replicas (see countedReplica).
type UnderReplicated struct {
	ID       int64  `db:"id"`
	Name     string `db:"name"`
	InfoHash []byte `db:"infohash"`
	Status   string `db:"status"`
	Seeding  int64  `db:"seeding"`
	Assigned int64  `db:"assigned"`
	NoRoom   bool   `db:"-"` // it is in the capacity shortage: no up node has room for another replica
}

// Overview is the fleet's health for the admin page.
type Overview struct {
	Replicas        int
	DownAfter       time.Duration // NODE_DOWN_AFTER: a node silent this long is marked down
	Nodes           []NodeView    // every node that is not removed
	Removed         []NodeView    // removed nodes, which an admin may re-admit
	UnderReplicated []UnderReplicated
	Shortage        Shortage
}

// Overview reads the fleet's health: every node with what it holds, the torrents short of R
// counted replicas, and the capacity shortage the last reconcile found.
func (f *Fleet) Overview(ctx context.Context) (Overview, error) {
	o := Overview{Replicas: f.replicas(), DownAfter: f.downAfter()}
	rows, _ := f.DB.Query(ctx, `
		SELECT n.id, n.name, n.public_addr, n.status, n.capacity_bytes, n.disk_used, n.last_heartbeat,
			n.secret_hash IS NULL AND NOT n.readmitted AS revoked, n.readmitted,
			count(a.torrent_id) FILTER (WHERE a.state <> 'dropping') AS torrents,
			count(a.torrent_id) FILTER (WHERE a.state = 'seeding') AS seeding,
			count(a.torrent_id) FILTER (WHERE a.state = 'seeding' AND a.proven_at IS NOT NULL) AS proven,
			n.suspect_at, n.suspect_reason,
			coalesce(sum(a.uploaded), 0)::bigint AS uploaded
		FROM nodes n LEFT JOIN assignments a ON a.node_id = n.id
		GROUP BY n.id ORDER BY n.name`)
	nodes, err := pgx.CollectRows(rows, pgx.RowToStructByName[NodeView])
	if err != nil {
		return o, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Status == NodeRemoved {
			o.Removed = append(o.Removed, n)
		} else {
			o.Nodes = append(o.Nodes, n)
		}
	}
	rows, _ = f.DB.Query(ctx, `
		SELECT * FROM (
			SELECT t.id, t.name, t.infohash, t.status, `+countedReplicas+` AS seeding,
				(SELECT count(*) FROM assignments a WHERE a.torrent_id = t.id AND a.state <> 'dropping') AS assigned
			FROM torrents t WHERE t.status IN ('processing', 'published')) x
		WHERE seeding < $1 ORDER BY id`, f.replicas())
	if o.UnderReplicated, err = pgx.CollectRows(rows, pgx.RowToStructByName[UnderReplicated]); err != nil {
		return o, fmt.Errorf("list under-replicated torrents: %w", err)
	}
	if o.Shortage, err = readShortage(ctx, f.DB); err != nil {
		return o, err
	}
	noRoom := map[int64]bool{}
	for _, id := range o.Shortage.Torrents {
		noRoom[id] = true
	}
	for i := range o.UnderReplicated {
		o.UnderReplicated[i].NoRoom = noRoom[o.UnderReplicated[i].ID]
	}
	return o, nil
}

// Health is the fleet in numbers, for monitoring: nodes by status, the published torrents short
// of R counted replicas, and the capacity shortage.
type Health struct {
	Nodes           map[string]int64
	Suspect         int64 // nodes not removed that failed a proof and are not trusted again yet
	UnderReplicated int64
	Shortage        Shortage
}

// Health counts the fleet's nodes by status and its under-replicated torrents, and reads the
// capacity shortage.
func (f *Fleet) Health(ctx context.Context) (Health, error) {
	h := Health{Nodes: map[string]int64{NodeUp: 0, NodeDown: 0, NodeDraining: 0}}
	rows, _ := f.DB.Query(ctx, `SELECT status, count(*) FROM nodes WHERE status <> 'removed' GROUP BY status`)
	var status string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { h.Nodes[status] = n; return nil }); err != nil {
		return h, fmt.Errorf("count nodes: %w", err)
	}
	if err := f.DB.QueryRow(ctx, `SELECT count(*) FROM nodes n WHERE status <> 'removed' AND NOT `+trustedNode).Scan(&h.Suspect); err != nil {
		return h, fmt.Errorf("count suspect nodes: %w", err)
	}
	err := f.DB.QueryRow(ctx, `
		SELECT count(*) FROM torrents t WHERE t.status = 'published' AND `+countedReplicas+` < $1`, f.replicas()).Scan(&h.UnderReplicated)
	if err != nil {
		return h, fmt.Errorf("count under-replicated torrents: %w", err)
	}
	h.Shortage, err = readShortage(ctx, f.DB)
	return h, err
}

// LiveEdges are the URLs of the up nodes that serve live segments, for the live page.
func LiveEdges(ctx context.Context, db DBTX) ([]string, error) {
	rows, _ := db.Query(ctx, `SELECT live_edge_url FROM nodes WHERE status = 'up' AND live_edge_url <> '' ORDER BY id`)
	urls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("live edges: %w", err)
	}
	return urls, nil
}
