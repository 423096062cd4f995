package live

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// newShow makes a creator and a show, and returns the show's id.
func newShow(t *testing.T, db *pgxpool.Pool, slug string) int64 {
	t.Helper()
	var id int64
	err := db.QueryRow(context.Background(), `
		WITH a AS (INSERT INTO accounts (email, name, password_hash, role) VALUES ($1 || '@example.com', 'C', 'x', 'creator') RETURNING id)
		INSERT INTO shows (owner_id, slug, title, currency) SELECT id, $1, 'Night', 'USD' FROM a RETURNING id`, slug).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startIngest runs a Service on a loopback port and returns its RTMP base URL.
func startIngest(t *testing.T, svc *Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "rtmp://" + ln.Addr().String() + "/live/"
}

// push runs ffmpeg sending a test picture and tone to url, for seconds (0: until killed).
func push(t *testing.T, url string, seconds int) *exec.Cmd {
	t.Helper()
	args := []string{"-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"}
	if seconds > 0 {
		args = append(args, "-t", itoa(seconds))
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url)
	cmd := exec.Command("ffmpeg", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func itoa(n int) string { return strconv.Itoa(n) }

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

// ffmpeg pushes a stream: segments of about 2 s appear with their SHA-256 in the list, a wrong
// key and a second connection are refused, and when ffmpeg stops the stream ends and its
// recording, one mp4 with its moov first, is handed to Publish.
func TestIngestSegmentsAndRecording(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	show := newShow(t, db, "night")
	key, err := CreateKey(ctx, db, show)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var published []byte
	svc := &Service{DB: db, Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Publish: func(ctx context.Context, s Stream, file string) (int64, error) {
			b, err := os.ReadFile(file)
			mu.Lock()
			published = b
			mu.Unlock()
			return 0, err
		}}
	base := startIngest(t, svc)

	wrong := push(t, base+"not-the-key", 3)
	if err := wrong.Wait(); err == nil {
		t.Fatal("ffmpeg with a wrong key: it exited 0, the ingest took the stream")
	}

	ff := push(t, base+key.StreamKey, 0)
	var st Stream
	waitFor(t, "the stream goes live", 20*time.Second, func() bool {
		st, err = LiveStream(ctx, db, show)
		return err == nil
	})
	second := push(t, base+key.StreamKey, 3)
	if err := second.Wait(); err == nil {
		t.Fatal("a second connection with the same key was taken while the first one sends")
	}
	hashesFile, _ := svc.File(st.ID, "hashes.json")
	var list struct {
		Segments []Segment `json:"segments"`
	}
	waitFor(t, "three segments", 30*time.Second, func() bool {
		b, err := os.ReadFile(hashesFile)
		return err == nil && json.Unmarshal(b, &list) == nil && len(list.Segments) >= 3
	})
	for _, g := range list.Segments[:2] {
		if g.Duration < 1.9 || g.Duration > 2.1 {
			t.Errorf("segment %s lasts %.3f s, want about 2 s (a key frame every 2 s)", g.Name, g.Duration)
		}
		path, err := svc.File(st.ID, g.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != g.SHA256 {
			t.Errorf("segment %s: SHA-256 %x, the list says %s", g.Name, sum, g.SHA256)
		}
	}
	playlist, _ := svc.File(st.ID, "index.m3u8")
	if b, _ := os.ReadFile(playlist); !strings.Contains(string(b), `#EXT-X-MAP:URI="init.mp4"`) || !strings.Contains(string(b), list.Segments[0].Name) {
		t.Errorf("playlist:\n%s", b)
	}

	ff.Process.Kill()
	ff.Wait()
	waitFor(t, "the recording is handed over", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return published != nil
	})
	ended, err := FindStream(ctx, db, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ended.Live() || ended.EndReason != "disconnected" {
		t.Errorf("stream after ffmpeg stopped: live %v, reason %q", ended.Live(), ended.EndReason)
	}
	mu.Lock()
	rec := published
	mu.Unlock()
	if moov, mdat := boxAt(rec, "moov"), boxAt(rec, "mdat"); moov < 0 || mdat < 0 || moov > mdat {
		t.Errorf("recording: moov at %d, mdat at %d; want moov first", moov, mdat)
	}
	recFile := filepath.Join(t.TempDir(), "rec.mp4")
	if err := os.WriteFile(recFile, rec, 0o600); err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "csv=p=0", recFile).CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "h264") || !strings.Contains(string(probe), "aac") {
		t.Errorf("ffprobe of the recording: %v\n%s", err, probe)
	}
	if _, err := StartStream(ctx, db, Key{ID: key.ID, ShowID: show}, true); err != nil {
		t.Errorf("a new stream after the first ended: %v", err)
	}
	if _, err := FindKey(ctx, db, "not-the-key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindKey of a wrong key: %v", err)
	}
}

// boxAt is the offset of the first top-level box of type typ in an mp4, or -1.
func boxAt(b []byte, typ string) int {
	for off := 0; off+8 <= len(b); {
		size := int(b[off])<<24 | int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		if string(b[off+4:off+8]) == typ {
			return off
		}
		if size < 8 {
			return -1
		}
		off += size
	}
	return -1
}
