package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/seeding"
)

// serveProcess is `fanseed serve` as a child process.
type serveProcess struct {
	cmd  *exec.Cmd
	base string
	logs *testkit.LogBuffer
}

func startServeProcess(t *testing.T, env ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(buildFanseed(t), "serve")
	cmd.Env = append(os.Environ(), env...)
	logs := &testkit.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, logs: logs}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, e := range env {
		if addr, ok := strings.CutPrefix(e, "ADDR="); ok {
			p.base = "http://" + addr
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeKilledMidUpload kills serve with SIGKILL while a PATCH is streaming, starts it
// again on the same data directory and database, and finishes the upload from the offset the
// server reports: the torrent's info is byte for byte the one a single pass over the file makes.
func TestServeKilledMidUpload(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	env := []string{"DATABASE_URL=" + dbURL, "ADDR=" + freeAddr(t), "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=warn"}
	srv := startServeProcess(t, env...)

	c := newClient()
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		resp, err := c.PostForm(srv.base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	post("/signup", url.Values{"name": {"K"}, "email": {"k@example.com"}, "password": {"a long enough password"}})
	post("/login", url.Values{"email": {"k@example.com"}, "password": {"a long enough password"}})
	resp := post("/shows", url.Values{"title": {"Kill"}, "slug": {"kill"}, "currency": {"USD"}})
	resp = post(strings.TrimSuffix(resp.Request.URL.Path, "/plan")+"/episodes", url.Values{"title": {"Pilot"}})
	m := regexp.MustCompile(`/episodes/(\d+)$`).FindStringSubmatch(resp.Request.URL.Path)
	if m == nil {
		t.Fatalf("no episode page: %s", resp.Request.URL)
	}
	data := make([]byte, 6<<20)
	rand.Read(data)
	copy(data, "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")

	req, _ := http.NewRequest("POST", srv.base+"/api/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	req.Header.Set("Upload-Metadata", "episode_id "+base64.StdEncoding.EncodeToString([]byte(m[1]))+",filename "+
		base64.StdEncoding.EncodeToString([]byte("pilot.mp4")))
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create upload: %v %v", resp.Status, err)
	}
	uploadURL := resp.Header.Get("Location")

	// Stream the file through a pipe, stop after 40%, and kill the server while it waits for more.
	pr, pw := io.Pipe()
	req, _ = http.NewRequest("PATCH", uploadURL, pr)
	req.ContentLength = int64(len(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	sent := len(data) * 4 / 10
	if _, err := pw.Write(data[:sent]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done

	srv = startServeProcess(t, env...)
	head, _ := http.NewRequest("HEAD", uploadURL, nil)
	head.Header.Set("Tus-Resumable", "1.0.0")
	resp, err = c.Do(head)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD after restart: %v %v", resp.Status, err)
	}
	offset, _ := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if offset <= 0 || offset > sent {
		t.Fatalf("offset after the kill %d, want 1..%d", offset, sent)
	}
	req, _ = http.NewRequest("PATCH", uploadURL, bytes.NewReader(data[offset:]))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.Itoa(offset))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err = c.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("resume: %v %v\n%s", resp.Status, err, srv.logs)
	}

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored []byte
	if err := conn.QueryRow(context.Background(), `SELECT metainfo FROM torrents WHERE episode_id = $1`, m[1]).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	h.Write(data)
	single, err := seeding.BuildTorrent(h.Sum(), seeding.TorrentOptions{Name: "pilot.mp4", TrackerURL: mi.Announce})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := metainfo.Load(bytes.NewReader(single.Bytes))
	if !bytes.Equal(mi.InfoBytes, ref.InfoBytes) {
		t.Fatal("the resumed upload's info dictionary differs from a single pass over the file")
	}
}
