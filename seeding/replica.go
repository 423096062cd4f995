package seeding

// countedReplica is the one condition under which an assignment counts as a replica of its
// torrent, for publishing, the replica target, the under-replicated count and the fleet's pages:
// the node says it seeds it, the control plane proved it does (a successful proof of this
// assignment, fetched as a peer and checked against the piece hashes, not invalidated since;
// see proof.go), the node is up or draining (a draining node's copy counts until the drain
// drops it, so a healthy drain does not make torrents look short) and the node is not suspect
// (it failed a proof and has not passed enough since). It is SQL over an assignment aliased a
// joined to its node aliased n.
const countedReplica = `(a.state = 'seeding' AND a.proven_at IS NOT NULL AND n.status IN ('up', 'draining') AND ` + trustedNode + `)`

// countedReplicas is the number of counted replicas of the torrent aliased t.
const countedReplicas = `(SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
	WHERE a.torrent_id = t.id AND ` + countedReplica + `)`

// trustedNode is true of a node aliased n that is not suspect: one that failed a proof is given
// no new torrents and its replicas do not count until it passes proofs again.
const trustedNode = `(n.suspect_at IS NULL)`
