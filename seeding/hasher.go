package seeding

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"sync"
)

// Piece length bounds: 16 KiB is the BitTorrent block size, 16 MiB is the most clients accept.
const (
	MinPieceLength = 16 << 10
	MaxPieceLength = 16 << 20
)

// maxPieces is where PieceLength doubles: it aims for 1024 to 2047 pieces, as mktorrent users
// and anacrolix's ChoosePieceLength do, so .torrent files stay small and pieces verify quickly.
const maxPieces = 2048

// batchSize is how much a Hasher buffers before handing bytes to its hashing goroutines (at
// least one piece: a batch holds whole pieces after the one it completes), and inFlight how
// many batches it hashes at once while Write fills the next.
const (
	batchSize = 4 << 20
	inFlight  = 3
)

// PieceLength picks the piece length for a file of size bytes: a power of two between
// MinPieceLength and MaxPieceLength giving 1024 to 2047 pieces when the bounds allow.
func PieceLength(size int64) int64 {
	l := int64(MinPieceLength)
	for l < MaxPieceLength && size/l >= maxPieces {
		l <<= 1
	}
	return l
}

func validPieceLength(l int64) bool {
	return l >= MinPieceLength && l <= MaxPieceLength && l&(l-1) == 0
}

// Hashes is what a finished upload needs for its torrent and for verifying its stored bytes.
type Hashes struct {
	PieceLength int64
	Length      int64
	Pieces      []byte // SHA-1 of each piece, 20 bytes each, in order (BitTorrent v1)
	SHA256      [sha256.Size]byte
}

// NumPieces is the number of pieces a file of length bytes has.
func NumPieces(length, pieceLength int64) int64 {
	if length <= 0 || pieceLength <= 0 {
		return 0
	}
	return (length + pieceLength - 1) / pieceLength
}

// Hasher hashes an upload as its bytes arrive, so publishing needs no second pass over the
// file: SHA-1 per piece for the torrent and SHA-256 of the whole file for integrity. Write
// copies the bytes into batches; up to inFlight batches are hashed at once while Write fills
// the next. Workers, one per core, share every batch's work: the SHA-256 of the oldest batch
// that lacks it, when no worker is on the SHA-256 already (one chain of blocks, which no number
// of cores splits), else a whole piece's SHA-1. So the SHA-256 chain always has a core while it
// has bytes, and the other cores, and that one when the chain waits, hash pieces: the work is
// shared whichever digest is the slower. A Hasher is not safe for concurrent use; its state
// survives a restart through MarshalBinary and UnmarshalBinary.
type Hasher struct {
	pieceLength int64
	n           int64  // bytes accepted by Write
	dispatched  int64  // bytes handed to the workers
	cur         []byte // filled by Write
	noWhole     bool   // pieces only (NewPieceHasher)

	// batches are those being hashed, oldest first; free holds buffers to fill again.
	batches []*batch
	free    [][]byte
	// whole is the SHA-256 of every byte handed to the workers, used by one at a time.
	whole hash.Hash
	// piece is the SHA-1 of the current piece, which holds fill bytes; only Write's goroutine
	// uses it.
	piece hash.Hash
	fill  int64
	// pieces holds the SHA-1 of every finished piece, with room reserved for those of the
	// batches in flight, copied in when each is done.
	pieces []byte
	// retired is the state after the newest batch done, for Checkpoint.
	retired *batch

	mu sync.Mutex // guards what the workers share: the fields below and the batches' tasks
	// work holds the batches with tasks not taken yet, oldest first.
	work      []*batch
	workers   int  // running
	chainBusy bool // a worker is on the SHA-256
	exited    sync.WaitGroup
}

// batch is a buffer being hashed; done is closed when its last task is.
type batch struct {
	buf  []byte
	body []byte // its whole pieces
	done chan struct{}
	sums []byte // the SHA-1 of its whole pieces, for pieces[at:]
	at   int
	// Under Hasher.mu: the SHA-256 taken, the next piece to take, the tasks not finished.
	taken256 bool
	next     int
	left     int
	// The state once it is hashed: the bytes covered, the open piece's SHA-1 (marshalled when
	// it is dispatched) and the SHA-256 (marshalled by its worker).
	end              int64
	state1, state256 []byte
}

// hashed reports, without waiting, whether every task of the batch is finished.
func (b *batch) hashed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// NewHasher returns a Hasher for pieces of pieceLength bytes (see PieceLength).
func NewHasher(pieceLength int64) (*Hasher, error) {
	if !validPieceLength(pieceLength) {
		return nil, invalidf("piece length %d is not a power of two between %d and %d",
			pieceLength, MinPieceLength, MaxPieceLength)
	}
	return &Hasher{pieceLength: pieceLength, whole: sha256.New(), piece: sha1.New()}, nil
}

// NewPieceHasher returns a Hasher that computes the piece hashes only (its SHA256 stays zero):
// for bytes whose whole-file digest is known already.
func NewPieceHasher(pieceLength int64) (*Hasher, error) {
	h, err := NewHasher(pieceLength)
	if h != nil {
		h.noWhole = true
	}
	return h, err
}

// RestoreHasher returns a Hasher from MarshalBinary's output, to resume an upload after a restart.
func RestoreHasher(state []byte) (*Hasher, error) {
	h := new(Hasher)
	if err := h.UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return h, nil
}

// errNoHasher is what a zero Hasher returns instead of panicking.
var errNoHasher = errors.New("seeding: Hasher used without NewHasher or RestoreHasher")

// Len is the number of bytes written so far: the upload offset this state stands for.
func (h *Hasher) Len() int64 { return h.n }

// PieceLength is the piece length the Hasher was made with.
func (h *Hasher) PieceLength() int64 { return h.pieceLength }

// batchCap is the size of a batch: batchSize, or one piece when pieces are larger.
func (h *Hasher) batchCap() int { return int(max(batchSize, h.pieceLength)) }

// Write hashes the next bytes of the upload. It copies p and never fails once the Hasher is set up.
func (h *Hasher) Write(p []byte) (int, error) {
	if h.pieceLength == 0 {
		return 0, errNoHasher
	}
	written := len(p)
	for len(p) > 0 {
		if h.cur == nil {
			h.cur = h.buffer()
		}
		k := copy(h.cur[len(h.cur):cap(h.cur)], p)
		h.cur = h.cur[:len(h.cur)+k]
		p = p[k:]
		if len(h.cur) == cap(h.cur) {
			h.dispatch()
		}
	}
	h.n += int64(written)
	return written, nil
}

// buffer returns an empty batch buffer: a free one, a new one while fewer than inFlight
// batches are out, or the oldest batch's once it is hashed.
func (h *Hasher) buffer() []byte {
	if len(h.free) == 0 && len(h.batches) >= inFlight {
		h.retire()
	}
	if k := len(h.free); k > 0 {
		b := h.free[k-1]
		h.free = h.free[:k-1]
		return b[:0]
	}
	return make([]byte, 0, h.batchCap())
}

// retire waits for the oldest batch in flight, puts its piece hashes in place and frees its buffer.
func (h *Hasher) retire() {
	b := h.batches[0]
	<-b.done // its tasks' writes happen before

	copy(h.pieces[b.at:], b.sums)
	h.batches[0] = nil
	h.batches = h.batches[1:]
	h.free = append(h.free, b.buf)
	b.buf, b.sums = nil, nil
	h.retired = b
}

// dispatch hands the filled buffer to the hashing goroutines and clears it for Write.
func (h *Hasher) dispatch() {
	buf := h.cur
	h.cur = nil
	// The piece the previous batch left open is finished in order; the whole pieces after it
	// go to the workers; the rest opens the next piece. Batches start at multiples of the piece
	// length, except the first after a restore, so the open piece is usually empty.
	head := min(int64(len(buf)), (h.pieceLength-h.fill)%h.pieceLength)
	body := buf[head:]
	whole := int64(len(body)) / h.pieceLength
	tail := body[whole*h.pieceLength:]
	body = body[:whole*h.pieceLength]
	b := &batch{buf: buf, body: body, sums: make([]byte, whole*sha1.Size), done: make(chan struct{}), end: h.dispatched + int64(len(buf))}
	h.dispatched = b.end
	b.left = int(whole) + 1 // its pieces, and this goroutine until the batch is set up
	if h.noWhole {
		b.taken256, b.state256 = true, marshalDigest(h.whole)
	} else {
		b.left++
	}
	h.mu.Lock()
	h.work = append(h.work, b)
	for h.workers < runtime.GOMAXPROCS(0) {
		h.workers++
		h.exited.Add(1)
		go h.hash()
	}
	h.mu.Unlock()
	// On this goroutine: the open piece's end and the next one's start, small next to a batch.
	if head > 0 {
		h.piece.Write(buf[:head])
		h.fill += head
		if h.fill == h.pieceLength {
			h.pieces = h.piece.Sum(h.pieces)
			h.piece.Reset()
			h.fill = 0
		}
	}
	b.at = len(h.pieces)
	h.pieces = slices.Grow(h.pieces, len(b.sums))[:b.at+len(b.sums)] // room for the workers' sums, copied in by retire
	h.batches = append(h.batches, b)
	if len(tail) > 0 {
		h.piece.Write(tail)
		h.fill = int64(len(tail))
	}
	b.state1 = marshalDigest(h.piece)
	h.mu.Lock()
	h.finished(b)
	h.mu.Unlock()
}

// hash is a worker: it takes tasks until none is left, the SHA-256 first.
func (h *Hasher) hash() {
	defer h.exited.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		b, piece := h.take()
		if b == nil {
			h.workers--
			return
		}
		h.mu.Unlock()
		if piece < 0 {
			h.whole.Write(b.buf)
			b.state256 = marshalDigest(h.whole)
		} else {
			sum := sha1.Sum(b.body[int64(piece)*h.pieceLength : int64(piece+1)*h.pieceLength])
			copy(b.sums[piece*sha1.Size:], sum[:])
		}
		h.mu.Lock()
		if piece < 0 {
			h.chainBusy = false
		}
		h.finished(b)
	}
}

// take picks the next task under h.mu: the SHA-256 of the oldest batch lacking it (piece -1)
// if no worker is on the chain, else the next piece of the oldest batch with pieces left.
func (h *Hasher) take() (b *batch, piece int) {
	if !h.chainBusy {
		for _, w := range h.work {
			if !w.taken256 {
				w.taken256, h.chainBusy = true, true
				h.prune()
				return w, -1
			}
		}
	}
	for _, w := range h.work {
		if w.next < len(w.sums)/sha1.Size {
			w.next++
			h.prune()
			return w, w.next - 1
		}
	}
	h.prune()
	return nil, 0
}

// prune drops from h.work the oldest batches with no task left to take.
func (h *Hasher) prune() {
	for len(h.work) > 0 && h.work[0].taken256 && h.work[0].next == len(h.work[0].sums)/sha1.Size {
		h.work[0] = nil
		h.work = h.work[1:]
	}
}

// finished ends one of the batch's tasks, under h.mu.
func (h *Hasher) finished(b *batch) {
	if b.left--; b.left == 0 {
		close(b.done)
	}
}

// marshalDigest is the state of a SHA-1 or SHA-256, whose encoding cannot fail.
func marshalDigest(d hash.Hash) []byte {
	b, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// flush hashes whatever Write has buffered and waits, so the digests cover all Len bytes.
func (h *Hasher) flush() {
	if len(h.cur) > 0 {
		h.dispatch()
	}
	for len(h.batches) > 0 {
		h.retire()
	}
}

// Sum returns the hashes of everything written so far; the last piece may be short. The Hasher
// can keep going after it.
func (h *Hasher) Sum() Hashes {
	out := Hashes{PieceLength: h.pieceLength, Length: h.n}
	if h.pieceLength == 0 {
		return out
	}
	h.flush()
	out.Pieces = make([]byte, len(h.pieces), len(h.pieces)+sha1.Size)
	copy(out.Pieces, h.pieces)
	if h.fill > 0 {
		out.Pieces = h.piece.Sum(out.Pieces)
	}
	if !h.noWhole {
		h.whole.Sum(out.SHA256[:0])
	}
	return out
}

// stateMagic starts a marshalled Hasher; the last byte is the format version.
const stateMagic = "fanseed-hasher\x01"

// MarshalBinary saves the state after Len bytes: the finished piece hashes, the SHA-1 of the
// partial piece and the SHA-256 so far, using the digests' own encodings. Store it with the
// upload offset; it holds up to one piece's worth of input in the clear.
func (h *Hasher) MarshalBinary() ([]byte, error) {
	if h.pieceLength == 0 {
		return nil, errNoHasher
	}
	h.flush()
	return h.marshal(h.n, h.pieces, marshalDigest(h.piece), marshalDigest(h.whole)), nil
}

// Checkpoint is MarshalBinary without waiting for the hashing in flight: the state after the
// first at bytes, those of the newest batch hashed (at may be less than Len). ok is false when no
// batch has been hashed since the Hasher was made or restored. The upload store saves it during
// a long request, so that saving never stops the hashing.
func (h *Hasher) Checkpoint() (state []byte, at int64, ok bool) {
	for len(h.batches) > 0 && h.batches[0].hashed() {
		h.retire()
	}
	b := h.retired
	if b == nil {
		return nil, 0, false
	}
	pieces := h.pieces[:b.end/h.pieceLength*sha1.Size]
	return h.marshal(b.end, pieces, b.state1, b.state256), b.end, true
}

// marshal encodes a state after n bytes with its piece hashes and digest states.
func (h *Hasher) marshal(n int64, pieces, pieceState, wholeState []byte) []byte {
	b := make([]byte, 0, len(stateMagic)+16+3*binary.MaxVarintLen64+
		len(pieces)+len(pieceState)+len(wholeState))
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.pieceLength))
	b = binary.BigEndian.AppendUint64(b, uint64(n))
	for _, part := range [][]byte{pieces, pieceState, wholeState} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b
}

// UnmarshalBinary restores a state from MarshalBinary, checking it is whole and consistent.
func (h *Hasher) UnmarshalBinary(data []byte) error {
	if h.pieceLength != 0 {
		h.flush()
		h.exited.Wait() // no worker may still use the old state
	}
	r := stateReader{b: data}
	if string(r.next(len(stateMagic))) != stateMagic {
		return fmt.Errorf("%w: hasher state: unknown format", ErrInvalid)
	}
	pieceLength, n := r.uint64(), r.uint64()
	pieces, pieceState, wholeState := r.part(), r.part(), r.part()
	if r.err != nil || len(r.b) != 0 {
		return fmt.Errorf("%w: hasher state: truncated or trailing bytes", ErrInvalid)
	}
	if pieceLength > MaxPieceLength || !validPieceLength(int64(pieceLength)) {
		return fmt.Errorf("%w: hasher state: bad piece length %d", ErrInvalid, pieceLength)
	}
	if n > 1<<62 || uint64(len(pieces)) != n/pieceLength*sha1.Size {
		return fmt.Errorf("%w: hasher state: %d piece hash bytes for %d bytes", ErrInvalid, len(pieces), n)
	}
	piece, whole := sha1.New(), sha256.New()
	if err := piece.(encoding.BinaryUnmarshaler).UnmarshalBinary(pieceState); err != nil {
		return fmt.Errorf("%w: hasher state: sha1: %w", ErrInvalid, err)
	}
	if err := whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(wholeState); err != nil {
		return fmt.Errorf("%w: hasher state: sha256: %w", ErrInvalid, err)
	}
	*h = Hasher{
		pieceLength: int64(pieceLength),
		n:           int64(n),
		dispatched:  int64(n),
		whole:       whole,
		piece:       piece,
		fill:        int64(n % pieceLength),
		pieces:      append([]byte(nil), pieces...),
	}
	return nil
}

// stateReader reads MarshalBinary's fields, remembering the first error.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) next(k int) []byte {
	if r.err != nil || k < 0 || k > len(r.b) {
		r.err = errors.New("short")
		return nil
	}
	out := r.b[:k]
	r.b = r.b[k:]
	return out
}

func (r *stateReader) uint64() uint64 {
	b := r.next(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *stateReader) part() []byte {
	k, w := binary.Uvarint(r.b)
	if w <= 0 || k > uint64(len(r.b)-w) {
		r.err = errors.New("short")
		return nil
	}
	r.b = r.b[w:]
	return r.next(int(k))
}
