package publishing

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/seeding"
)

// A process that dies after writing bytes but before saving the hash state leaves the state
// behind the file; the next process hashes the gap from the file and the result is the same as
// one pass over the whole file.
func TestUploadStoreStateBehindFile(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 3_000_000)
	rand.Read(data)
	copy(data, "ID3\x04\x00")
	store, err := NewUploadStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up, err := store.NewUpload(ctx, handler.FileInfo{ID: "0123456789abcdef0123456789abcdef", Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	write := func(u handler.Upload, from, to int) {
		t.Helper()
		n, err := u.WriteChunk(ctx, int64(from), bytes.NewReader(data[from:to]))
		if err != nil || n != int64(to-from) {
			t.Fatalf("WriteChunk(%d..%d) = %d, %v", from, to, n, err)
		}
	}
	write(up, 0, 1_000_001)
	early, err := os.ReadFile(store.statePath("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	write(up, 1_000_001, 2_200_000)
	// The crash: the file has 2.2 MB, the saved state stands for 1 MB.
	if err := os.WriteFile(store.statePath("0123456789abcdef0123456789abcdef"), early, 0o640); err != nil {
		t.Fatal(err)
	}
	restarted, _ := NewUploadStore(store.dir)
	up2, err := restarted.GetUpload(ctx, "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	write(up2, 2_200_000, len(data))
	got, err := restarted.Hashes(ctx, "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	h.Write(data)
	want := h.Sum()
	if got.Length != want.Length || !bytes.Equal(got.Pieces, want.Pieces) || got.SHA256 != want.SHA256 {
		t.Fatal("hashes after a lost state save differ from one pass")
	}
}

func TestSniffMedia(t *testing.T) {
	ok := map[string][]byte{
		"mp4":  []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00"),
		"mp3":  []byte("ID3\x03\x00\x00\x00\x00\x00\x00"),
		"flac": []byte("fLaC\x00\x00\x00\x22"),
		"mkv":  {0x1A, 0x45, 0xDF, 0xA3, 0x01},
		"ogg":  []byte("OggS\x00\x02\x00\x00"),
		"zip":  []byte("PK\x03\x04\x14\x00"),
		"gzip": {0x1f, 0x8b, 0x08, 0x00},
		"wav":  []byte("RIFF\x24\x00\x00\x00WAVEfmt "),
	}
	for name, head := range ok {
		if _, err := SniffMedia(head); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for name, head := range map[string][]byte{
		"text": []byte("hello, this is plain text\n"), "html": []byte("<!doctype html><html>"),
		"png": []byte("\x89PNG\r\n\x1a\n\x00\x00"), "elf": []byte("\x7fELF\x02\x01\x01"), "empty": nil,
	} {
		if _, err := SniffMedia(head); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// peekReader calls at once, when n bytes have been read through it.
type peekReader struct {
	r    *bytes.Reader
	n    int64
	read int64
	at   func()
}

func (p *peekReader) Read(b []byte) (int, error) {
	if p.at != nil && p.read >= p.n {
		p.at()
		p.at = nil
	}
	k, err := p.r.Read(b[:min(int64(len(b)), max(p.n-p.read, 1<<10))])
	p.read += int64(k)
	return k, err
}

// A long request saves the hash state as it goes, without waiting for the hashing in flight:
// the state saved midway stands for bytes the file has, and a process resuming from it ends
// with the hashes of one pass.
func TestUploadStoreSavesStateDuringLongRequest(t *testing.T) {
	ctx := context.Background()
	const id = "fedcba9876543210fedcba9876543210"
	data := make([]byte, 3*stateEvery)
	rand.Read(data)
	copy(data, "ID3\x04\x00")
	store, err := NewUploadStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up, err := store.NewUpload(ctx, handler.FileInfo{ID: id, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	var midway []byte
	src := &peekReader{r: bytes.NewReader(data), n: 5 * stateEvery / 2, at: func() {
		midway, _ = os.ReadFile(store.statePath(id))
	}}
	if n, err := up.WriteChunk(ctx, 0, src); err != nil || n != int64(len(data)) {
		t.Fatalf("WriteChunk = %d, %v", n, err)
	}
	h, err := seeding.RestoreHasher(midway)
	if err != nil {
		t.Fatalf("state read midway: %v", err)
	}
	if h.Len() < stateEvery || h.Len() > src.n {
		t.Fatalf("the state saved after %d bytes read stands for %d bytes, want between %d and %d", src.n, h.Len(), stateEvery, src.n)
	}
	// The crash: the whole file is there, the saved state is the one from midway.
	if err := os.WriteFile(store.statePath(id), midway, 0o640); err != nil {
		t.Fatal(err)
	}
	restarted, _ := NewUploadStore(store.dir)
	got, err := restarted.Hashes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := seeding.NewHasher(seeding.PieceLength(int64(len(data))))
	one.Write(data)
	want := one.Sum()
	if got.Length != want.Length || !bytes.Equal(got.Pieces, want.Pieces) || got.SHA256 != want.SHA256 {
		t.Fatal("hashes resumed from the state saved midway differ from one pass")
	}
}
