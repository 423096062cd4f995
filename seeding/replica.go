package seeding

// countedReplica is the one condition under which an assignment counts as a replica of its
// torrent, for the under-replicated count and the fleet's pages: the node seeds it, and the node
// is up or draining (a draining node's copy counts until the drain drops it, so a healthy drain
// does not make torrents look short). It is SQL over an assignment aliased a joined to its node
// aliased n.
const countedReplica = `(a.state = 'seeding' AND n.status IN ('up', 'draining'))`

// countedReplicas is the number of counted replicas of the torrent aliased t.
const countedReplicas = `(SELECT count(*) FROM assignments a JOIN nodes n ON n.id = a.node_id
	WHERE a.torrent_id = t.id AND ` + countedReplica + `)`
