package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/fanseed/fanseed/seeding"
)

// Settings of the WebSocket tracker's sockets.
const (
	webSendQueue    = 256 // frames waiting for a slow peer before its socket is closed
	webPingEvery    = 30 * time.Second
	webWriteTimeout = 10 * time.Second
)

// isWebSocket reports whether a request asks to upgrade to a WebSocket.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// webOriginAllowed reports whether a page of origin may use the WebSocket tracker: the site
// itself and the configured embed origins. A request with no Origin is no browser page's
// (BitTorrent clients such as the seedbox nodes send none) and is let in.
func (s *Server) webOriginAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	origin = strings.ToLower(strings.TrimRight(origin, "/"))
	if b := s.cfg.BaseURL; b != nil && origin == strings.ToLower(b.Scheme+"://"+b.Host) {
		return true
	}
	for _, o := range s.cfg.EmbedOrigins {
		if origin == o {
			return true
		}
	}
	return false
}

// handleWebTracker is the WebSocket tracker (the WebTorrent protocol) on /announce: JSON text
// frames, each answered by seeding.WebSocket.Handle; the socket leaves every swarm it joined
// when it closes. Frames larger than seeding.MaxWebFrameBytes close the socket (1009).
func (s *Server) handleWebTracker(w http.ResponseWriter, r *http.Request) {
	if s.webTracker == nil {
		http.Error(w, "no WebSocket tracker here", http.StatusNotFound)
		return
	}
	if !s.webOriginAllowed(r.Header.Get("Origin")) {
		http.Error(w, "this tracker serves pages of its own site and of its embed origins only", http.StatusForbidden)
		return
	}
	addr, err := netip.ParseAddr(clientAddr(r))
	if err != nil {
		http.Error(w, "cannot tell the client's address", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	out := make(chan []byte, webSendQueue)
	tooSlow := errors.New("the peer reads too slowly")
	sock, err := s.webTracker.Open(addr, func(b []byte) bool {
		select {
		case out <- b:
			return true
		default:
			cancel(tooSlow)
			return false
		}
	})
	if errors.Is(err, seeding.ErrTooManySockets) {
		http.Error(w, "too many tracker connections from your address", http.StatusTooManyRequests)
		return
	}
	defer sock.Close()
	// A live page's player names its stream (/announce?live=ID): it may open that stream's swarms.
	if id, err := strconv.ParseInt(r.URL.Query().Get("live"), 10, 64); err == nil && id > 0 {
		sock.SetLive(id)
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // Origin checked above
	if err != nil {
		return // Accept answered the request
	}
	defer c.CloseNow()
	c.SetReadLimit(seeding.MaxWebFrameBytes)
	go func() { // writes and pings; a failure ends the socket
		ping := time.NewTicker(webPingEvery)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-out:
				wctx, done := context.WithTimeout(ctx, webWriteTimeout)
				err := c.Write(wctx, websocket.MessageText, b)
				done()
				if err != nil {
					cancel(err)
					return
				}
			case <-ping.C:
				go func() {
					pctx, done := context.WithTimeout(ctx, webWriteTimeout)
					defer done()
					if err := c.Ping(pctx); err != nil && ctx.Err() == nil {
						cancel(err)
					}
				}()
			}
		}
	}()
	for {
		typ, frame, err := c.Read(ctx)
		if err != nil {
			if errors.Is(context.Cause(ctx), tooSlow) {
				c.Close(websocket.StatusPolicyViolation, "reading too slowly")
			}
			return
		}
		if typ != websocket.MessageText {
			frame = []byte("\xff") // answered as not being text
		}
		sock.Handle(frame)
	}
}
