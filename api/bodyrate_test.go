package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
)

// trickle sends head, then body one byte every interval on a raw connection, and returns how
// long after the start the server answered or hung up. It gives up after limit.
func trickle(t *testing.T, addr, head string, body []byte, interval, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, b := range body {
			time.Sleep(interval)
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(start.Add(limit))
	_, err = bufio.NewReader(conn).ReadByte() // a response, or EOF when the server hangs up
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// slowReader hands out its bytes chunk by chunk, one chunk every interval.
type slowReader struct {
	data     []byte
	chunk    int
	interval time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.interval)
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// A request body that trickles in a byte at a time is cut soon after the body timeout, for a
// form and for an upload, while an honest upload slower than the timeout goes through whole.
func TestTricklingBodiesAreCut(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	ts := newTestServerWith(t, func(c *api.Config) { c.BodyTimeout = timeout }, io.Discard)
	addr := strings.TrimPrefix(ts.URL, "http://")
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)

	t.Run("Form", func(t *testing.T) {
		body := []byte(strings.Repeat("name=slow&", 20))
		head := "POST /signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		took, ended := trickle(t, addr, head, body, 300*time.Millisecond, 8*time.Second)
		if !ended {
			t.Fatalf("the server still waits for a trickling form after %s", took)
		}
		t.Logf("trickling form cut after %s", took.Round(time.Millisecond))
	})

	t.Run("Upload", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "trickled")
		data := mediaBytes(t, 64<<10)
		path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "slow.mp4"})
		if path == "" {
			t.Fatalf("create: %d", resp.StatusCode)
		}
		head := "PATCH " + path + " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n" +
			"Upload-Offset: 0\r\nCookie: fanseed_session=" + owner.token + "\r\nContent-Length: " + strconv.Itoa(len(data)) + "\r\n\r\n"
		took, ended := trickle(t, addr, head, data, 300*time.Millisecond, 8*time.Second)
		if !ended {
			t.Fatalf("the server still waits for a trickling upload after %s", took)
		}
		t.Logf("trickling upload cut after %s", took.Round(time.Millisecond))

		// The same upload, resumed at an honest speed slower than the timeout allows a whole
		// body to take: 12 KiB/s for about five seconds.
		var off int64
		deadline := time.Now().Add(10 * time.Second)
		for { // the cut request lets go of the upload's lock once its handler returns
			if off = ts.tusOffset(t, &owner, path); off >= 0 {
				req, _ := http.NewRequest("PATCH", ts.URL+path, &slowReader{data: data[off:], chunk: 1024, interval: 80 * time.Millisecond})
				req.ContentLength = int64(len(data)) - off
				req.Header.Set("Tus-Resumable", "1.0.0")
				req.Header.Set("Content-Type", "application/offset+octet-stream")
				req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
				start := time.Now()
				resp := ts.send(t, &owner, req)
				if resp.StatusCode == http.StatusNoContent {
					t.Logf("honest slow upload of %d bytes took %s", len(data)-int(off), time.Since(start).Round(time.Millisecond))
					break
				}
				if resp.StatusCode != http.StatusLocked && resp.StatusCode != http.StatusConflict || time.Now().After(deadline) {
					t.Fatalf("slow PATCH at %d: %d: %s", off, resp.StatusCode, readBody(t, resp))
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := ts.tusOffset(t, &owner, path); got != int64(len(data)) {
			t.Fatalf("offset %d after the slow upload, want %d", got, len(data))
		}
		checkTorrent(t, ts, ep.ID, "slow.mp4", data)
	})
}
