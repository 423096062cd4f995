package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/seeding"
)

func wsDial(t *testing.T, ts *testServer, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/announce", &websocket.DialOptions{HTTPHeader: h})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func wsSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

func wsRead(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
		t.Fatalf("frame %q is not a JSON text frame", b)
	}
	return m
}

// The WebSocket tracker on /announce: pages of the site and of its embed origins only; two
// browsers exchange an offer and its answer; garbage gets a failure reason, an oversized frame
// closes the socket, and the HTTP tracker on the same path is unchanged.
func TestWebTrackerEndpoint(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, func(c *api.Config) {
		c.BaseURL = &url.URL{Scheme: "https", Host: "fanseed.test"}
		c.EmbedOrigins = []string{"https://blog.example"}
		c.WebTracker = &seeding.WebTracker{Tracker: c.Tracker}
	}, io.Discard)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(t.Context(), ts.db, owner.ID, catalog.ShowInput{Slug: "ws", Title: "WS", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	_, rec := ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	ih := testkit.Latin1(rec.InfoHash)

	t.Run("ErrOriginRefused", func(t *testing.T) {
		_, resp, err := wsDial(t, ts, "https://evil.example")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from another origin: %v, %v", resp, err)
		}
	})

	a, _, err := wsDial(t, ts, "https://fanseed.test")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := wsDial(t, ts, "https://blog.example")
	if err != nil {
		t.Fatal(err)
	}
	aID, bID := testkit.Latin1([]byte("-WW0208-aaaaaaaaaaaa")), testkit.Latin1([]byte("-WW0208-bbbbbbbbbbbb"))
	offerID := testkit.Latin1([]byte("offer-00000000000001"))
	wsSend(t, a, map[string]any{"action": "announce", "info_hash": ih, "peer_id": aID, "left": 100, "event": "started", "numwant": 0})
	if m := wsRead(t, a); m["incomplete"] != float64(1) || m["interval"] != float64(120) {
		t.Fatalf("announce answered %v", m)
	}
	wsSend(t, b, map[string]any{"action": "announce", "info_hash": ih, "peer_id": bID, "left": 100, "event": "started", "numwant": 1,
		"offers": []any{map[string]any{"offer_id": offerID, "offer": map[string]any{"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}}})
	if m := wsRead(t, b); m["incomplete"] != float64(2) {
		t.Fatalf("second announce answered %v", m)
	}
	m := wsRead(t, a)
	if m["offer"] == nil || m["peer_id"] != bID || m["offer_id"] != offerID || m["info_hash"] != ih {
		t.Fatalf("a got %v, want b's offer", m)
	}
	wsSend(t, a, map[string]any{"action": "announce", "info_hash": ih, "peer_id": aID, "to_peer_id": bID, "offer_id": offerID,
		"answer": map[string]any{"type": "answer", "sdp": "v=0 answer"}})
	if m := wsRead(t, b); m["answer"] == nil || m["peer_id"] != aID || m["offer_id"] != offerID {
		t.Fatalf("b got %v, want a's answer", m)
	}

	t.Run("ErrGarbage", func(t *testing.T) {
		for _, frame := range []string{"garbage", `{"action":"announce","info_hash":"short"}`} {
			if err := b.Write(t.Context(), websocket.MessageText, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			if m := wsRead(t, b); m["failure reason"] == nil {
				t.Errorf("%q answered %v, want a failure reason", frame, m)
			}
		}
		if err := b.Write(t.Context(), websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if m := wsRead(t, b); m["failure reason"] != "frame is not UTF-8 text" {
			t.Errorf("binary frame answered %v", m)
		}
	})

	t.Run("ErrOversizedFrameCloses", func(t *testing.T) {
		c, _, err := wsDial(t, ts, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Write(t.Context(), websocket.MessageText, []byte(`{"x":"`+strings.Repeat("a", seeding.MaxWebFrameBytes)+`"}`))
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, _, err = c.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
			t.Errorf("after an oversized frame: %v, want close 1009", err)
		}
	})

	// Closing a socket takes its peer out of the swarm.
	a.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		wsSend(t, b, map[string]any{"action": "announce", "info_hash": ih, "peer_id": bID, "left": 100, "numwant": 0})
		m := wsRead(t, b)
		if m["incomplete"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's peer still counted after its socket closed: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The HTTP tracker on the same path counts the browser too.
	q := url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {"-TR3000-cccccccccccc"}, "port": {"6881"},
		"uploaded": {"16384"}, "downloaded": {"0"}, "left": {"0"}, "compact": {"1"}}
	body := readBody(t, ts.do(t, nil, "GET", "/announce?"+trackerQuery(q), nil))
	if !strings.Contains(body, "10:incompletei1e") {
		t.Errorf("HTTP announce %q does not count the browser", body)
	}
}
