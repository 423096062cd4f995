package api

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// contentSecurityPolicy allows scripts and styles from this site's own files only (no inline
// script, style or event handler), media and images from the site (and the public URL the web
// seed is published under), and framing by the given ancestors.
func contentSecurityPolicy(frameAncestors string, origins ...string) string {
	own := "'self'"
	seen := map[string]bool{}
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" {
			continue
		}
		if origin := u.Scheme + "://" + u.Host; !seen[origin] {
			seen[origin] = true
			own += " " + origin
		}
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src " + own + " data:",
		"media-src " + own,
		"connect-src " + own + wsOrigins(own),
		"worker-src 'self'",
		"object-src 'none'",
		"base-uri 'self'",
		"frame-ancestors " + frameAncestors,
	}, "; ")
}

// securityHeaders sets, on every response, the policy above (no framing), nosniff and a
// referrer policy that sends other sites the origin only. The embed page replaces the policy
// with one that lets any site frame it.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}

// allowFraming lets any site frame the response (the embeddable donate button).
func (s *Server) allowFraming(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", s.embedCSP)
	w.Header().Del("X-Frame-Options")
}

// loopbackOnly is the default of Config.MetricsAllow: /metrics answers this machine only.
var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// guardMetrics lets /metrics answer only clients in the configured networks, or those that
// send the metrics token as a Bearer token; anyone else gets 404, as if there were nothing.
func (s *Server) guardMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metricsAllowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		s.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
	})
}

func (s *Server) metricsAllowed(r *http.Request) bool {
	if token := s.cfg.MetricsToken; token != "" {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1 {
			return true
		}
	}
	addr, err := netip.ParseAddr(clientAddr(r))
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.cfg.MetricsAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// wsOrigins are the WebSocket origins of the given origins (ws:// for http://, wss:// for
// https://), for the player's connections to the WebSocket tracker: some browsers do not take
// 'self' for them.
func wsOrigins(own string) string {
	var out []string
	for _, o := range strings.Fields(own) {
		if rest, ok := strings.CutPrefix(o, "https://"); ok {
			out = append(out, "wss://"+rest)
		} else if rest, ok := strings.CutPrefix(o, "http://"); ok {
			out = append(out, "ws://"+rest)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " " + strings.Join(out, " ")
}
