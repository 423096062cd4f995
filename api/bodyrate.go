package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// A client that sends a request body one byte every few seconds holds a connection and a
// handler (an upload lock, a database connection) for as long as it likes, since the server
// has no ReadTimeout: one would cut honest uploads of large files. Instead each request body
// must keep arriving. It gets BodyTimeout of credit to start with; every byte read earns
// 1/minBodyRate seconds more, up to BodyTimeout ahead. A body arriving at minBodyRate or faster
// never runs out, whatever its length; a trickle runs out soon after BodyTimeout.

// DefaultBodyTimeout is Config.BodyTimeout when it is zero.
const DefaultBodyTimeout = 30 * time.Second

// minBodyRate is the slowest a request body may arrive on average, in bytes per second: far
// below any real connection, far above a trickle.
const minBodyRate = 1024

// errBodyTooSlow is what a handler reading a body that ran out of time gets.
var errBodyTooSlow = errors.New("request body arrived too slowly")

func (s *Server) bodyTimeout() time.Duration {
	if s.cfg.BodyTimeout > 0 {
		return s.cfg.BodyTimeout
	}
	return DefaultBodyTimeout
}

// limitBodyRate puts the deadline described above on every request body.
func (s *Server) limitBodyRate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		window := s.bodyTimeout()
		rc := http.NewResponseController(w)
		d := &bodyDeadline{rc: rc, window: window, deadline: time.Now().Add(window)}
		if rc.SetReadDeadline(d.deadline) != nil {
			next.ServeHTTP(w, r) // a writer that cannot take deadlines (not a network connection)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, d: d}
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, d: d}, r)
	})
}

// bodyDeadline is the read deadline of one request's connection.
type bodyDeadline struct {
	rc     *http.ResponseController
	window time.Duration

	mu        sync.Mutex
	deadline  time.Time // what the body's rate has earned
	requested time.Time // a later deadline a handler asked for (tus does, after every read)
	done      bool      // the whole body is read: the handler's work after it is not limited
}

// earn moves the deadline on for n bytes read.
func (d *bodyDeadline) earn(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.deadline = d.deadline.Add(time.Duration(n) * time.Second / minBodyRate)
	if limit := now.Add(d.window); d.deadline.After(limit) {
		d.deadline = limit
	}
	d.apply()
}

// finish lifts the earned deadline once the body is read, so that a handler working on after
// it does not have its request cancelled by a read deadline passing.
func (d *bodyDeadline) finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
	d.apply()
}

// apply sets the connection's deadline: the earlier of the earned one and any a handler asked.
func (d *bodyDeadline) apply() error {
	if d.done {
		return d.rc.SetReadDeadline(d.requested)
	}
	t := d.deadline
	if !d.requested.IsZero() && d.requested.Before(t) {
		t = d.requested
	}
	return d.rc.SetReadDeadline(t)
}

type deadlineBody struct {
	io.ReadCloser
	d *bodyDeadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.d.earn(n)
	}
	if err == io.EOF {
		b.d.finish()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errors.Join(errBodyTooSlow, err)
	}
	return n, err
}

// deadlineWriter lets handlers (tus) set read deadlines of their own without lifting the
// body's: http.ResponseController finds SetReadDeadline here first.
type deadlineWriter struct {
	http.ResponseWriter
	d *bodyDeadline
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.d.requested = t
	return w.d.apply()
}

func (w *deadlineWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
