package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/seeding"
)

// opsCollector reports what an operator watches besides HTTP, read when /metrics is scraped:
// the Stripe event backlog, the fleet's nodes and under-replicated torrents, and the tracker.
type opsCollector struct {
	db      *pgxpool.Pool
	fleet   *seeding.Fleet
	tracker *seeding.Tracker
	log     *slog.Logger

	events, nodes, suspect, underReplicated, shortTorrents, shortBytes, swarms, peers *prometheus.Desc
}

func newOpsCollector(db *pgxpool.Pool, fleet *seeding.Fleet, tracker *seeding.Tracker, log *slog.Logger) *opsCollector {
	return &opsCollector{db: db, fleet: fleet, tracker: tracker, log: log,
		events: prometheus.NewDesc("fanseed_stripe_events_unapplied",
			"Stripe events received and not applied yet, by state: pending (for a batch), waiting (for another event), alone (in a job of its own, retrying or given up).",
			[]string{"state"}, nil),
		nodes:           prometheus.NewDesc("fanseed_seedbox_nodes", "Seedbox nodes by status.", []string{"status"}, nil),
		suspect:         prometheus.NewDesc("fanseed_seedbox_nodes_suspect", "Seedbox nodes that failed a proof (did not send pieces of a torrent they report seeding, or sent wrong ones) and are not trusted again yet.", nil, nil),
		underReplicated: prometheus.NewDesc("fanseed_torrents_under_replicated", "Published torrents with fewer counted replicas (proven, seeding on an up or draining node that is not suspect) than REPLICAS.", nil, nil),
		shortTorrents:   prometheus.NewDesc("fanseed_fleet_shortage_torrents", "Live torrents that need a replica no up node has room for, at the last reconcile.", nil, nil),
		shortBytes:      prometheus.NewDesc("fanseed_fleet_shortage_bytes", "Bytes of the replicas that no up node has room for, at the last reconcile.", nil, nil),
		swarms:          prometheus.NewDesc("fanseed_tracker_swarms", "Swarms this process's tracker knows.", nil, nil),
		peers:           prometheus.NewDesc("fanseed_tracker_peers", "Peers in them, this process's and those others shared.", nil, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.nodes, c.suspect, c.underReplicated, c.shortTorrents, c.shortBytes, c.swarms, c.peers} {
		ch <- d
	}
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if b, err := billing.Backlog(ctx, c.db); err != nil {
		c.log.Warn("metrics", slog.Any("error", err))
	} else {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(b.Pending), "pending")
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(b.Waiting), "waiting")
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(b.Alone), "alone")
	}
	if h, err := c.fleet.Health(ctx); err != nil {
		c.log.Warn("metrics", slog.Any("error", err))
	} else {
		for status, n := range h.Nodes {
			ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(n), status)
		}
		ch <- prometheus.MustNewConstMetric(c.suspect, prometheus.GaugeValue, float64(h.Suspect))
		ch <- prometheus.MustNewConstMetric(c.underReplicated, prometheus.GaugeValue, float64(h.UnderReplicated))
		ch <- prometheus.MustNewConstMetric(c.shortTorrents, prometheus.GaugeValue, float64(len(h.Shortage.Torrents)))
		ch <- prometheus.MustNewConstMetric(c.shortBytes, prometheus.GaugeValue, float64(h.Shortage.Bytes))
	}
	swarms, peers := c.tracker.Counts()
	ch <- prometheus.MustNewConstMetric(c.swarms, prometheus.GaugeValue, float64(swarms))
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(peers))
}
