package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// mediaBytes is n bytes that sniff as an MP4 video.
func mediaBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	copy(b, "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
	return b
}

// tusCreate starts an upload and returns its URL path, or the response when it was refused.
func (ts *testServer) tusCreate(t *testing.T, u *user, size int64, meta map[string]string) (string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+"/api/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	var pairs []string
	for k, v := range meta {
		pairs = append(pairs, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req.Header.Set("Upload-Metadata", strings.Join(pairs, ","))
	resp := ts.send(t, u, req)
	if resp.StatusCode != http.StatusCreated {
		return "", resp
	}
	loc := resp.Header.Get("Location")
	if i := strings.Index(loc, "/api/uploads/"); i >= 0 {
		loc = loc[i:]
	}
	return loc, resp
}

func (ts *testServer) tusPatch(t *testing.T, u *user, path string, offset int64, chunk []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("PATCH", ts.URL+path, bytes.NewReader(chunk))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	return ts.send(t, u, req)
}

func (ts *testServer) tusOffset(t *testing.T, u *user, path string) int64 {
	t.Helper()
	req, _ := http.NewRequest("HEAD", ts.URL+path, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp := ts.send(t, u, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s: status %d", path, resp.StatusCode)
	}
	n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (ts *testServer) send(t *testing.T, u *user, req *http.Request) *http.Response {
	t.Helper()
	if u != nil {
		req.AddCookie(&http.Cookie{Name: "fanseed_session", Value: u.token})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// newEpisode makes a show and a draft episode owned by u.
func (ts *testServer) newEpisode(t *testing.T, u user, slug string) catalog.Episode {
	t.Helper()
	ctx := context.Background()
	show, err := catalog.CreateShow(ctx, ts.db, u.ID, catalog.ShowInput{Slug: slug, Title: slug, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := catalog.CreateEpisode(ctx, ts.db, show.ID, catalog.EpisodeInput{Title: "Pilot"})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func episodeStatus(t *testing.T, ts *testServer, id int64) (string, string) {
	t.Helper()
	var status, reason string
	if err := ts.db.QueryRow(context.Background(), `SELECT status, failure_reason FROM episodes WHERE id = $1`, id).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	return status, reason
}

// checkTorrent compares the stored torrent with hashes computed here, independently, over data.
func checkTorrent(t *testing.T, ts *testServer, episodeID int64, name string, data []byte) seeding.Record {
	t.Helper()
	rec, err := seeding.TorrentForEpisode(context.Background(), ts.db, episodeID)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(rec.Metainfo))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != name || info.Length != int64(len(data)) {
		t.Fatalf("torrent name %q length %d, want %q %d", info.Name, info.Length, name, len(data))
	}
	var pieces []byte
	for off := 0; off < len(data); off += int(info.PieceLength) {
		sum := sha1.Sum(data[off:min(off+int(info.PieceLength), len(data))])
		pieces = append(pieces, sum[:]...)
	}
	if !bytes.Equal(info.Pieces, pieces) {
		t.Fatal("piece hashes differ from an independent computation")
	}
	if whole := sha256.Sum256(data); !bytes.Equal(rec.SHA256, whole[:]) {
		t.Fatal("sha256 differs")
	}
	if mi.HashInfoBytes().HexString() != rec.InfoHashHex() {
		t.Fatal("stored infohash is not the metainfo's")
	}
	// url-list is the file's own URL (webtorrent needs it; BEP 19 clients take it too).
	if len(mi.UrlList) != 1 || !strings.HasSuffix(mi.UrlList[0], "/seed/"+rec.InfoHashHex()+"/"+url.PathEscape(rec.Name)) || !strings.HasSuffix(mi.Announce, "/announce") {
		t.Fatalf("url-list %v announce %q", mi.UrlList, mi.Announce)
	}
	return rec
}

func TestUpload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	other := ts.newUser(t, "other@example.com", catalog.RoleCreator)
	partner := ts.newUser(t, "partner@example.com", catalog.RolePartner)

	t.Run("OK", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "ok-show")
		data := mediaBytes(t, 700_000) // several 16 KiB pieces and a short last one
		path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "../dir/Pilot\x07.mp4"})
		if path == "" {
			t.Fatalf("create: status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		if st, _ := episodeStatus(t, ts, ep.ID); st != catalog.EpisodeUploading {
			t.Fatalf("episode %s after create, want uploading", st)
		}
		// Uneven chunks, with a HEAD between each as a resuming client does.
		for off, step := 0, 123_457; off < len(data); off += step {
			if got := ts.tusOffset(t, &owner, path); got != int64(off) {
				t.Fatalf("HEAD offset %d, want %d", got, off)
			}
			if resp := ts.tusPatch(t, &owner, path, int64(off), data[off:min(off+step, len(data))]); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("PATCH at %d: status %d: %s", off, resp.StatusCode, readBody(t, resp))
			}
		}
		if st, _ := episodeStatus(t, ts, ep.ID); st != catalog.EpisodeProcessing {
			t.Fatalf("episode %s after the last byte, want processing", st)
		}
		rec := checkTorrent(t, ts, ep.ID, "Pilot.mp4", data)
		// Not published yet: nothing reaches the tracker or the public .torrent link.
		if resp := ts.do(t, nil, "GET", "/t/"+rec.InfoHashHex()+".torrent", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf(".torrent of an unpublished episode: status %d, want 404", resp.StatusCode)
		}
		// The web seed serves ranges of the stored bytes (the fleet fetches from it).
		req, _ := http.NewRequest("GET", ts.URL+"/seed/"+rec.InfoHashHex()+"/Pilot.mp4", nil)
		req.Header.Set("Range", "bytes=100-199")
		resp = ts.send(t, nil, req)
		if body := readBody(t, resp); resp.StatusCode != http.StatusPartialContent || body != string(data[100:200]) {
			t.Errorf("web seed range: status %d, %d bytes", resp.StatusCode, len(body))
		}
		// Other accounts cannot touch the upload.
		if resp := ts.tusPatch(t, &other, path, int64(len(data)), []byte("x")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("PATCH by another creator: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("ErrOtherCreatorsEpisode", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "mine")
		_, resp := ts.tusCreate(t, &other, 10, map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "x.mp4"})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		if st, _ := episodeStatus(t, ts, ep.ID); st != catalog.EpisodeDraft {
			t.Fatalf("episode became %s", st)
		}
	})
	t.Run("ErrAnonymousAndPartner", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "anon")
		meta := map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "x.mp4"}
		if _, resp := ts.tusCreate(t, nil, 10, meta); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous: status %d, want 401", resp.StatusCode)
		}
		if _, resp := ts.tusCreate(t, &partner, 10, meta); resp.StatusCode != http.StatusForbidden {
			t.Errorf("partner: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "big")
		_, resp := ts.tusCreate(t, &owner, 1<<20+1, map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "x.mp4"})
		if body := readBody(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "the limit is 1.0 MiB") {
			t.Fatalf("status %d %q, want 413 naming the limit", resp.StatusCode, body)
		}
	})
	// A refused creation is a 400 with a plain message naming what is wrong.
	for _, tc := range []struct {
		name, slug string
		size       int64
		filename   string
		want       string
	}{
		{"ErrEmpty", "empty", 0, "x.mp4", "empty"},
		{"ErrBadName", "badname", 10, "../\x01/..", "filename"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := ts.newEpisode(t, owner, tc.slug)
			_, resp := ts.tusCreate(t, &owner, tc.size, map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": tc.filename})
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d %q, want 400 saying %q", resp.StatusCode, body, tc.want)
			}
			noInternalWords(t, tc.name, body)
		})
	}
	t.Run("ErrNotMedia", func(t *testing.T) {
		ep := ts.newEpisode(t, owner, "text")
		data := []byte(strings.Repeat("just some text, not a video\n", 100))
		path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "video.mp4"})
		if path == "" {
			t.Fatalf("create: status %d", resp.StatusCode)
		}
		resp = ts.tusPatch(t, &owner, path, 0, data)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "not audio, video or an archive") {
			t.Fatalf("status %d %q, want 415", resp.StatusCode, body)
		}
		noInternalWords(t, "not media", body)
		if st, reason := episodeStatus(t, ts, ep.ID); st != catalog.EpisodeFailed || reason == "" {
			t.Fatalf("episode %s %q, want failed with a reason", st, reason)
		}
		if _, err := seeding.TorrentForEpisode(context.Background(), ts.db, ep.ID); err == nil {
			t.Fatal("a torrent was made of a refused file")
		}
	})
}

// TestUploadResumesAfterRestart cuts a PATCH off halfway, replaces the server with a new one on
// the same storage and database (as after a crash), and finishes the upload: the torrent is the
// one a single pass over the file gives.
func TestUploadResumesAfterRestart(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	ep := ts.newEpisode(t, owner, "restart")
	data := mediaBytes(t, 900_000)
	path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(ep.ID), "filename": "long.mp4"})
	if path == "" {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	// Send headers for the whole rest of the file but only half of the bytes, then hang up.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"+
		"Upload-Offset: 0\r\nContent-Length: %d\r\nCookie: fanseed_session=%s\r\n\r\n", path, len(data), owner.token)
	conn.Write(data[:450_001])
	conn.Close()

	// A new process: new store and handler over the same directory and database.
	restarted := ts.restart(t)
	var offset int64
	for range 50 { // the first server may still be writing what it read
		if offset = restarted.tusOffset(t, &owner, path); offset > 0 {
			break
		}
	}
	if offset <= 0 || offset > 450_001 {
		t.Fatalf("offset after the cut %d, want 1..450001", offset)
	}
	ts.Close()
	if resp := restarted.tusPatch(t, &owner, path, offset, data[offset:]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("resume PATCH: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	rec := checkTorrent(t, restarted, ep.ID, "long.mp4", data)

	// The same torrent as hashing the whole file in one pass.
	h, _ := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	h.Write(data)
	one, err := seeding.BuildTorrent(h.Sum(), seeding.TorrentOptions{Name: "long.mp4", TrackerURL: "http://fanseed.test/announce"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", one.InfoHash) != rec.InfoHashHex() {
		t.Fatalf("resumed upload's infohash %s, single pass %x", rec.InfoHashHex(), one.InfoHash)
	}
}

// restart builds a second server over the same upload directory and database.
func (ts *testServer) restart(t *testing.T) *testServer {
	t.Helper()
	uploads, err := publishing.NewUploadStore(ts.uploadDir)
	if err != nil {
		t.Fatal(err)
	}
	published := &seeding.Published{DB: ts.db}
	cfg := api.Config{UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published,
		Publisher: &publishing.Publisher{DB: ts.db, Store: uploads, BaseURL: "http://fanseed.test"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed}, Money: offlineMoney(t, ts.db)}
	h, err := api.NewServer(cfg, ts.db, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, db: ts.db, uploadDir: ts.uploadDir}
}
