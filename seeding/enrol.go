package seeding

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// NodeSecretHeader carries a node's own secret on every call after it enrolled.
const NodeSecretHeader = "Fanseed-Node-Secret"

// NodeSecretFile is where, in its data directory, a node keeps its secret.
const NodeSecretFile = "node_secret"

// Errors of node identity, which the node API maps to statuses.
var (
	// ErrSecretRefused marks a call for a node id without that node's secret (wrong, missing or
	// revoked).
	ErrSecretRefused = errors.New("node secret refused")
	// ErrNameTaken marks an enrolment under a name another node holds, without its secret.
	ErrNameTaken = errors.New("node name taken")
	// ErrRemoved marks a call of a node an admin removed, until an admin re-admits it.
	ErrRemoved = errors.New("node removed")
)

// readmitHint tells whoever reads a refusal how an admin lets the node in again.
func readmitHint(name string) string {
	return fmt.Sprintf("an admin re-admits it with `fanseed seedbox readmit %s` or the Re-admit button on /admin/fleet", name)
}

// Enrolment is the answer to a registration: the node's id, and its secret when this
// registration issued one (its first, or its first after an admin re-admitted it). The secret is
// shown this once; the control plane keeps only its hash.
type Enrolment struct {
	ID     int64  `json:"id"`
	Secret string `json:"secret,omitempty"`
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// secretMatches compares in constant time; a node without a secret (revoked) matches nothing.
func secretMatches(hash []byte, secret string) bool {
	return len(hash) == sha256.Size && secret != "" && subtle.ConstantTimeCompare(hash, hashSecret(secret)) == 1
}

// Register enrols a node, or lets one that enrolled before register again (after a restart) with
// the secret it was given. A new name is enrolled and gets a secret. A name already enrolled is
// refused without its node's secret (ErrNameTaken), unless an admin re-admitted it: then the
// registration takes the name and gets a new secret. A removed node is refused (ErrRemoved) until
// re-admitted. A draining node stays draining; any other comes back up, with the replicas it kept
// while down (see keepReturningCopies).
func (f *Fleet) Register(ctx context.Context, n NodeInfo, secret string) (Enrolment, error) {
	if err := n.validate(); err != nil {
		return Enrolment{}, err
	}
	var e Enrolment
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		var hash []byte
		var status string
		var readmitted bool
		err := tx.QueryRow(ctx, `SELECT id, secret_hash, status, readmitted FROM nodes WHERE name = $1 FOR NO KEY UPDATE`,
			n.Name).Scan(&e.ID, &hash, &status, &readmitted)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			e.Secret = rand.Text()
			err := tx.QueryRow(ctx, `
				INSERT INTO nodes (name, listen_addr, public_addr, capacity_bytes, secret_hash, zone) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (name) DO NOTHING RETURNING id`,
				n.Name, n.ListenAddr, n.PublicAddr, n.CapacityBytes, hashSecret(e.Secret), n.Zone).Scan(&e.ID)
			if errors.Is(err, pgx.ErrNoRows) { // another node enrolled the name a moment ago
				return &reasonError{kind: ErrNameTaken, reason: fmt.Sprintf("node name %q is already enrolled", n.Name)}
			}
			return err
		case err != nil:
			return err
		case readmitted:
			e.Secret = rand.Text()
		case status == NodeRemoved:
			return &reasonError{kind: ErrRemoved, reason: fmt.Sprintf(
				"node %q was removed from the fleet and stays removed: %s", n.Name, readmitHint(n.Name))}
		case !secretMatches(hash, secret):
			return &reasonError{kind: ErrNameTaken, reason: fmt.Sprintf(
				"node name %q is already enrolled and this registration does not carry that node's secret (or it was revoked): "+
					"give this node another NODE_NAME, or, if it is that node and lost its secret, %s", n.Name, readmitHint(n.Name))}
		}
		newHash := []byte(nil)
		if e.Secret != "" {
			newHash = hashSecret(e.Secret)
		}
		// Proofs were made at the old address: at a new one, every replica is proven again.
		if _, err := tx.Exec(ctx, `UPDATE assignments a SET proven_at = NULL, proof_due = NULL FROM nodes n
			WHERE n.id = $1 AND a.node_id = n.id AND n.public_addr <> $2`, e.ID, n.PublicAddr); err != nil {
			return fmt.Errorf("void proofs made at the old address: %w", err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE nodes SET listen_addr = $2, public_addr = $3, capacity_bytes = $4, last_heartbeat = now(),
				secret_hash = coalesce($5, secret_hash), readmitted = false, zone = $6,
				status = CASE WHEN status = 'draining' THEN 'draining' ELSE 'up' END
			WHERE id = $1`, e.ID, n.ListenAddr, n.PublicAddr, n.CapacityBytes, newHash, n.Zone)
		if err == nil && status == NodeDown {
			// Back after being marked down (restarted): it verifies its data as it adds its
			// torrents again, and keeps the copies it was assigned.
			err = keepReturningCopies(ctx, tx, e.ID)
		}
		return err
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("register node %s: %w", n.Name, err)
	}
	return e, nil
}

// authenticate checks, in a heartbeat's transaction, that the caller holds the node's secret,
// and locks the node's row. It returns the node's status.
func authenticate(ctx context.Context, tx pgx.Tx, nodeID int64, secret string) (string, error) {
	var name, status string
	var hash []byte
	err := tx.QueryRow(ctx, `SELECT name, status, secret_hash FROM nodes WHERE id = $1 FOR NO KEY UPDATE`, nodeID).Scan(&name, &status, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", &reasonError{kind: ErrSecretRefused, reason: fmt.Sprintf(
			"node %d: the %s header is missing: send the secret the node was given when it enrolled", nodeID, NodeSecretHeader)}
	}
	if !secretMatches(hash, secret) {
		return "", &reasonError{kind: ErrSecretRefused, reason: fmt.Sprintf(
			"node %d: wrong or revoked node secret (register again with the node's secret; if it was revoked, %s)", nodeID, readmitHint(name))}
	}
	return status, nil
}

// NodeID finds a node by name, for the command line.
func (f *Fleet) NodeID(ctx context.Context, name string) (int64, error) {
	var id int64
	err := f.DB.QueryRow(ctx, `SELECT id FROM nodes WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("node %q: %w", name, ErrNotFound)
	}
	return id, err
}

// Revoke takes a node's secret away: its calls are refused, and it can enrol again only once an
// admin re-admits it. An up node is marked down at once, so its replicas stop counting.
func (f *Fleet) Revoke(ctx context.Context, nodeID int64) error {
	tag, err := f.DB.Exec(ctx, `UPDATE nodes SET secret_hash = NULL, readmitted = false,
		status = CASE WHEN status = 'up' THEN 'down' ELSE status END WHERE id = $1`, nodeID)
	if err != nil {
		return fmt.Errorf("revoke node %d: %w", nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
	}
	return nil
}

// Readmit lets the next registration under a node's name in with the fleet token alone: a node
// that lost its secret, whose secret was revoked, or that was removed comes back (removed and
// revoked nodes stay out until then). That registration gets a new secret; the old one works
// until it happens.
func (f *Fleet) Readmit(ctx context.Context, nodeID int64) error {
	tag, err := f.DB.Exec(ctx, `UPDATE nodes SET readmitted = true WHERE id = $1`, nodeID)
	if err != nil {
		return fmt.Errorf("re-admit node %d: %w", nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
	}
	return nil
}
