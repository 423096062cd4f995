package seeding

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// The edge fetches each segment once from the origin, however many viewers ask at once, serves
// it byte for byte, passes the origin's 404 on without keeping it, and serves nothing else.
func TestEdgeFetchesEachSegmentOnce(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Path == "/live/7/9.m4s" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("segment " + r.URL.Path))
	}))
	defer origin.Close()
	edge := &Edge{Origin: origin.URL}
	srv := httptest.NewServer(edge)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("X-Cache")
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code, body, _ := get("/live/7/3.m4s"); code != 200 || body != "segment /live/7/3.m4s" {
				t.Errorf("segment from the edge: %d %q", code, body)
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Errorf("20 viewers at once made the edge ask the origin %d times, want once", n)
	}
	if _, _, cache := get("/live/7/3.m4s"); cache != "hit" {
		t.Errorf("X-Cache of a kept segment = %q, want hit", cache)
	}
	for range 2 {
		if code, _, _ := get("/live/7/9.m4s"); code != http.StatusNotFound {
			t.Errorf("a segment the origin does not have: %d, want 404", code)
		}
	}
	if n := asked.Load(); n != 3 {
		t.Errorf("origin asked %d times, want 3 (a 404 is not kept)", n)
	}
	for _, path := range []string{"/live/7/index.m3u8", "/live/7/../../etc/passwd", "/seed/x"} {
		if code, _, _ := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s from the edge: %d, want 404", path, code)
		}
	}
}
