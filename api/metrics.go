package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of the HTTP layer, labelled by route pattern (never by
// raw path, which would grow without bound).
type metrics struct {
	gatherer prometheus.Gatherer
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// playbackBytes are the bytes players report, by source (peers, web_seed) and uploaded.
	playbackBytes *prometheus.CounterVec
	// webSeedBytes are the bytes the web seed sent, by who asked (player, browser, bittorrent).
	webSeedBytes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanseed_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fanseed_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		playbackBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanseed_playback_bytes_total", Help: "Bytes episode players report: received by source (peers, web_seed) and uploaded to other viewers.",
		}, []string{"source"}),
		webSeedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanseed_web_seed_bytes_total", Help: "Bytes the origin web seed sent, by who asked: the player, a plain browser element or link, a BitTorrent client.",
		}, []string{"to"}),
	}
	reg.MustRegister(m.requests, m.latency, m.playbackBytes, m.webSeedBytes)
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	return m
}

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := routePattern(r)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

func (m *metrics) handler() http.Handler {
	if m.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}
