// Package seeding is torrents: piece hashing and metainfo, the tracker and swarm statistics, the
// fleet of seedbox nodes and the node itself. It owns torrents, nodes, assignments,
// fleet_shortage, replica_moves, tracker_peers, swarm_stats and the torrent_* counters; it tells its Episodes
// hook, never the episodes table, what happened to a torrent. It imports only money of Fanseed's
// packages.
package seeding
