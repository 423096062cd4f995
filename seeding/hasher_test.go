package seeding

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPieceLength(t *testing.T) {
	const (
		KiB = 1 << 10
		MiB = 1 << 20
		GiB = 1 << 30
	)
	tests := []struct {
		size, want int64
	}{
		{-1, 16 * KiB},
		{0, 16 * KiB},
		{1, 16 * KiB},
		{16*KiB*2048 - 1, 16 * KiB},
		{16 * KiB * 2048, 32 * KiB},
		{700 * MiB, 512 * KiB},
		{GiB, MiB},
		{4 * GiB, 4 * MiB},
		{32 * GiB, 16 * MiB},
		{math.MaxInt64, 16 * MiB},
	}
	for _, tt := range tests {
		got := PieceLength(tt.size)
		if got != tt.want {
			t.Errorf("PieceLength(%d) = %d, want %d", tt.size, got, tt.want)
		}
		if n := NumPieces(tt.size, got); tt.size >= 16*KiB*2048 && tt.size <= 16*MiB*2048 && (n < 1024 || n > 2048) {
			t.Errorf("PieceLength(%d) = %d gives %d pieces, want 1024..2048", tt.size, got, n)
		}
	}
}

func TestNewHasher(t *testing.T) {
	for _, l := range []int64{0, -16384, 1000, 8 << 10, 3 * 16 << 10, 32 << 20} {
		if _, err := NewHasher(l); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewHasher(%d) error = %v, want ErrInvalid", l, err)
		}
	}
	for _, l := range []int64{MinPieceLength, 1 << 20, MaxPieceLength} {
		if _, err := NewHasher(l); err != nil {
			t.Errorf("NewHasher(%d): %v", l, err)
		}
	}
}

// referenceHashes computes Hashes the obvious way, independently of Hasher.
func referenceHashes(data []byte, pieceLength int64) Hashes {
	h := Hashes{PieceLength: pieceLength, Length: int64(len(data)), SHA256: sha256.Sum256(data)}
	for off := int64(0); off < int64(len(data)); off += pieceLength {
		sum := sha1.Sum(data[off:min(off+pieceLength, int64(len(data)))])
		h.Pieces = append(h.Pieces, sum[:]...)
	}
	return h
}

func equalHashes(a, b Hashes) bool {
	return a.PieceLength == b.PieceLength && a.Length == b.Length &&
		bytes.Equal(a.Pieces, b.Pieces) && a.SHA256 == b.SHA256
}

// feed writes data to a new Hasher in chunks of the sizes next returns and, when restartEvery
// is positive, marshals the state and restores it into a fresh Hasher about that often, as a
// restarted process resuming an upload would. With checkpoint it saves the state with
// Checkpoint, which may stand for fewer bytes, and writes again from there, as the upload store
// rehashes what the file holds past the saved state.
// It returns the hashes and how many times it restored a state.
func feed(t *testing.T, data []byte, pieceLength int64, next func() int, restartEvery int, checkpoint bool) (Hashes, int) {
	t.Helper()
	h, err := NewHasher(pieceLength)
	if err != nil {
		t.Fatal(err)
	}
	sinceRestart, restores := 0, 0
	for off := 0; off < len(data); {
		k := min(next(), len(data)-off)
		n, err := h.Write(data[off : off+k])
		if err != nil || n != k {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, k)
		}
		off += k
		sinceRestart += k
		if restartEvery > 0 && sinceRestart >= restartEvery {
			sinceRestart = 0
			var state []byte
			if checkpoint {
				at, ok := int64(0), false
				state, at, ok = h.Checkpoint()
				for !ok && len(h.batches) > 0 { // a batch is in flight: its state comes soon
					time.Sleep(100 * time.Microsecond)
					state, at, ok = h.Checkpoint()
				}
				if !ok {
					continue
				}
				if at > int64(off) || at%pieceLength != 0 && at != h.Len() {
					t.Fatalf("Checkpoint at %d after %d bytes written", at, off)
				}
				off = int(at)
			} else if state, err = h.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
			if h, err = RestoreHasher(state); err != nil {
				t.Fatal(err)
			}
			restores++
			if h.Len() != int64(off) {
				t.Fatalf("restored Len = %d, want %d", h.Len(), off)
			}
		}
	}
	return h.Sum(), restores
}

func TestHasher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*batchSize+5*MinPieceLength+17)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, MinPieceLength - 1, MinPieceLength, MinPieceLength + 1, batchSize, len(data)}
	modes := []struct {
		name         string
		next         func() int
		restartEvery int
		checkpoint   bool
	}{
		{"OnePass", func() int { return len(data) }, 0, false},
		{"RandomChunks", func() int { return 1 + rng.IntN(70_000) }, 0, false},
		{"TinyChunks", func() int { return 1 + rng.IntN(7) }, 0, false},
		{"RestartMidUpload", func() int { return 1 + rng.IntN(300_000) }, 700_000, false},
		{"RestartEveryChunk", func() int { return 1 + rng.IntN(50_000) }, 1, false},
		{"CheckpointMidUpload", func() int { return 1 + rng.IntN(300_000) }, 700_000, true},
		{"CheckpointEveryChunk", func() int { return 1 + rng.IntN(600_000) }, 1, true},
	}
	for _, pieceLength := range []int64{MinPieceLength, 2 << 20} {
		for _, size := range sizes {
			want := referenceHashes(data[:size], pieceLength)
			for _, m := range modes {
				if m.name == "TinyChunks" && size > batchSize {
					continue // slow and adds nothing over RandomChunks
				}
				got, restores := feed(t, data[:size], pieceLength, m.next, m.restartEvery, m.checkpoint)
				if m.checkpoint && size > 2*batchSize && restores == 0 {
					t.Errorf("piece length %d, size %d, %s: no checkpoint was taken", pieceLength, size, m.name)
				}
				if !equalHashes(got, want) {
					t.Errorf("piece length %d, size %d, %s: hashes differ from a plain computation",
						pieceLength, size, m.name)
				}
			}
		}
	}
}

func TestHasherSumThenContinue(t *testing.T) {
	data := bytes.Repeat([]byte("fanseed"), 10_000)
	h, _ := NewHasher(MinPieceLength)
	h.Write(data[:30_000])
	if got, want := h.Sum(), referenceHashes(data[:30_000], MinPieceLength); !equalHashes(got, want) {
		t.Fatal("Sum midway differs from a plain computation")
	}
	h.Write(data[30_000:])
	if got, want := h.Sum(), referenceHashes(data, MinPieceLength); !equalHashes(got, want) {
		t.Fatal("Sum after continuing differs from a plain computation")
	}
}

func TestHasherZeroValue(t *testing.T) {
	var h Hasher
	if _, err := h.Write([]byte("x")); err == nil {
		t.Error("Write on a zero Hasher succeeded")
	}
	if _, err := h.MarshalBinary(); err == nil {
		t.Error("MarshalBinary on a zero Hasher succeeded")
	}
}

func TestRestoreHasherRejects(t *testing.T) {
	h, _ := NewHasher(MinPieceLength)
	h.Write(make([]byte, 2*MinPieceLength+5))
	good, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreHasher(good); err != nil {
		t.Fatalf("RestoreHasher(good): %v", err)
	}
	for i := range len(good) {
		if _, err := RestoreHasher(good[:i]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("RestoreHasher(first %d bytes) error = %v, want ErrInvalid", i, err)
		}
	}
	if _, err := RestoreHasher(append(good, 0)); !errors.Is(err, ErrInvalid) {
		t.Errorf("trailing byte: error = %v, want ErrInvalid", err)
	}
	// The length field must agree with the number of finished piece hashes.
	lengthAt := len(stateMagic) + 8
	for _, tt := range []struct {
		length uint64
		ok     bool
	}{
		{2*MinPieceLength + 5, true},
		{MinPieceLength + 5, false},
		{3 * MinPieceLength, false},
		{1 << 63, false},
	} {
		bad := bytes.Clone(good)
		binary.BigEndian.PutUint64(bad[lengthAt:], tt.length)
		if _, err := RestoreHasher(bad); (err == nil) != tt.ok {
			t.Errorf("length %d: error = %v, want ok=%v", tt.length, err, tt.ok)
		}
	}
}

func FuzzRestoreHasher(f *testing.F) {
	h, _ := NewHasher(MinPieceLength)
	h.Write(make([]byte, MinPieceLength+3))
	good, _ := h.MarshalBinary()
	f.Add(good)
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, state []byte) {
		h, err := RestoreHasher(state)
		if err != nil {
			return
		}
		if NumPieces(h.Len(), h.PieceLength()) < h.Len()/h.PieceLength() {
			t.Fatal("restored state has fewer pieces than its length")
		}
		h.Write([]byte("more"))
		h.Sum()
	})
}

// BenchmarkHasher feeds 1 MiB writes, as an upload arrives; compare with -cpu 1,2.
func BenchmarkHasher(b *testing.B) {
	chunk := randomBytes(5, 1<<20)
	b.SetBytes(int64(len(chunk)))
	h, _ := NewHasher(1 << 20)
	for b.Loop() {
		h.Write(chunk)
	}
	h.Sum()
}

// A pieces-only Hasher gives the same piece hashes and no SHA-256.
func TestPieceHasher(t *testing.T) {
	data := randomBytes(9, 3*batchSize+MinPieceLength+3)
	h, err := NewPieceHasher(MinPieceLength)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100_000 {
		h.Write(data[off:min(off+100_000, len(data))])
	}
	got, want := h.Sum(), referenceHashes(data, MinPieceLength)
	if !bytes.Equal(got.Pieces, want.Pieces) || got.SHA256 != ([32]byte{}) || got.Length != int64(len(data)) {
		t.Fatalf("pieces-only hashes differ, or carry a SHA-256")
	}
}
