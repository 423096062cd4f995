// Package periodic is the one loop the processes' periodic work runs on (the fleet's reconcile and
// rebalancing, the tracker's sharing, swarm stats, statement rollups, upload expiry, a node's heartbeat): the
// same interval, shutdown and error handling for all. It owns no tables and imports nothing of
// Fanseed's.
package periodic
