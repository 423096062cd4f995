package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/seeding"
)

// uploadChunk is how the upload arrives: the tus handler hands over about this much at a time.
const uploadChunk = 1 << 20

// runHash times seeding.Hasher over the file, read in upload-sized chunks, against
// mktorrent -t 2 on the same file and piece length, and checks their piece hashes agree.
// A third line does the Hasher's work on one goroutine, to show what the second core buys.
func runHash(ctx context.Context, cfg config, file string, out io.Writer) error {
	pieceLength := seeding.PieceLength(cfg.size)
	log2 := bits.TrailingZeros64(uint64(pieceLength))
	fmt.Fprintf(out, "file %d bytes, piece length %d (2^%d), %d pieces, %d CPUs, GOMAXPROCS %d\n",
		cfg.size, pieceLength, log2, seeding.NumPieces(cfg.size, pieceLength),
		runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if log2 < 15 {
		return fmt.Errorf("piece length 2^%d is below mktorrent's minimum 2^15: use a larger -size", log2)
	}
	torrentFile := filepath.Join(filepath.Dir(file), "out.torrent")
	if _, err := exec.LookPath(cfg.mktorrent); err != nil && cfg.mktorrent == "mktorrent" {
		if err := benchkit.AptInstall(ctx, out, "mktorrent"); err != nil {
			return err
		}
	}

	var ours seeding.Hashes
	var best [4]float64
	fmt.Fprintf(out, "%-4s  %-36s  %-30s  %-30s  %s\n", "run",
		"fanseed Hasher (SHA-1+SHA-256)", "mktorrent -t 2 (SHA-1)", "one goroutine (SHA-1+SHA-256)", "fanseed pieces only (SHA-1)")
	for i := range cfg.runs {
		var rates [4]float64
		var err error
		start := time.Now()
		if ours, err = hashFile(file, pieceLength); err != nil {
			return err
		}
		rates[0] = mbps(cfg.size, time.Since(start))

		os.Remove(torrentFile)
		start = time.Now()
		cmd := exec.CommandContext(ctx, cfg.mktorrent, "-t", "2", "-l", strconv.Itoa(log2),
			"-a", "http://127.0.0.1/announce", "-o", torrentFile, file)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mktorrent: %w\n%s", err, b)
		}
		rates[1] = mbps(cfg.size, time.Since(start))

		start = time.Now()
		if _, err := hashFileSequential(file, pieceLength); err != nil {
			return err
		}
		rates[2] = mbps(cfg.size, time.Since(start))

		start = time.Now()
		pieces, err := hashFileWith(file, pieceLength, seeding.NewPieceHasher)
		if err != nil {
			return err
		}
		rates[3] = mbps(cfg.size, time.Since(start))
		if !bytes.Equal(pieces.Pieces, ours.Pieces) {
			return fmt.Errorf("the pieces-only hasher's piece hashes differ from the Hasher's")
		}

		for j := range rates {
			best[j] = max(best[j], rates[j])
		}
		fmt.Fprintf(out, "%-4d  %-36s  %-30s  %-30s  %s\n", i+1, rate(rates[0]), rate(rates[1]), rate(rates[2]), rate(rates[3]))
	}
	fmt.Fprintf(out, "%-4s  %-36s  %-30s  %-30s  %s\n", "best", rate(best[0]), rate(best[1]), rate(best[2]), rate(best[3]))
	fmt.Fprintf(out, "SHA-1 pieces alone: fanseed %s against mktorrent -t 2 %s (%.2fx)\n", rate(best[3]), rate(best[1]), best[3]/best[1])

	mi, err := metainfo.LoadFromFile(torrentFile)
	if err != nil {
		return fmt.Errorf("read mktorrent's output: %w", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return fmt.Errorf("read mktorrent's info: %w", err)
	}
	if info.PieceLength != ours.PieceLength || !bytes.Equal(info.Pieces, ours.Pieces) {
		return fmt.Errorf("piece hashes differ from mktorrent's (piece length %d vs %d)",
			ours.PieceLength, info.PieceLength)
	}
	fmt.Fprintf(out, "piece hashes agree with mktorrent: %d pieces; sha256 %x\n", len(ours.Pieces)/sha1.Size, ours.SHA256)

	// What two cores can do at best for the Hasher's work, from Go's SHA-1 and SHA-256 on one
	// core each, measured now: the work per byte is both digests, and SHA-256 of one file does
	// not split across cores.
	s1, s256 := digestRate(sha1.New), digestRate(sha256.New)
	bound := min(float64(runtime.NumCPU())/(1/s1+1/s256), s256)
	fmt.Fprintf(out, "one core: SHA-1 %s, SHA-256 %s; SHA-1+SHA-256 on %d cores at best %s (fanseed reaches %.0f%% of it)\n",
		rate(s1), rate(s256), runtime.NumCPU(), rate(bound), 100*best[0]/bound)
	// The SHA-256 of one file is one chain of blocks: no number of cores makes it faster than one
	// core. OpenSSL's rate is the independent check that Go's is not the limit.
	if r, err := opensslRate(ctx, "sha256"); err == nil {
		fmt.Fprintf(out, "one SHA-256 stream, one core: OpenSSL %s, Go %s, against %s for mktorrent -t 2\n", rate(r), rate(s256), rate(best[1]))
	}
	return nil
}

// opensslRate is `openssl speed` for a digest over 1 MiB blocks on one core, in MB/s.
func opensslRate(ctx context.Context, digest string) (float64, error) {
	b, err := exec.CommandContext(ctx, "openssl", "speed", "-seconds", "2", "-bytes", "1048576", "-evp", digest).Output()
	if err != nil {
		return 0, err
	}
	// The last line is the digest's name and its rate in thousands of bytes per second: "sha256 1695547.39k".
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 2 || f[0] != digest || !strings.HasSuffix(f[1], "k") {
		return 0, fmt.Errorf("openssl speed printed %q", lines[len(lines)-1])
	}
	k, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "k"), 64)
	return k / 1000, err
}

// digestRate is the best of three runs of a digest over 256 MiB held in memory, in MB/s.
func digestRate(newHash func() hash.Hash) float64 {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var best float64
	for range 3 {
		h := newHash()
		start := time.Now()
		for range 256 {
			h.Write(buf)
		}
		h.Sum(nil)
		best = max(best, mbps(256<<20, time.Since(start)))
	}
	return best
}

// hashFile feeds the file to a Hasher the way an upload arrives.
func hashFile(name string, pieceLength int64) (seeding.Hashes, error) {
	return hashFileWith(name, pieceLength, seeding.NewHasher)
}

// hashFileWith is hashFile with the Hasher newHasher makes.
func hashFileWith(name string, pieceLength int64, newHasher func(int64) (*seeding.Hasher, error)) (seeding.Hashes, error) {
	h, err := newHasher(pieceLength)
	if err != nil {
		return seeding.Hashes{}, err
	}
	if err := readChunks(name, func(b []byte) { h.Write(b) }); err != nil {
		return seeding.Hashes{}, err
	}
	return h.Sum(), nil
}

// hashFileSequential does the same work as Hasher on the calling goroutine only.
func hashFileSequential(name string, pieceLength int64) ([]byte, error) {
	whole, piece := sha256.New(), sha1.New()
	var fill int64
	var pieces []byte
	err := readChunks(name, func(b []byte) {
		whole.Write(b)
		for len(b) > 0 {
			k := min(int64(len(b)), pieceLength-fill)
			piece.Write(b[:k])
			fill, b = fill+k, b[k:]
			if fill == pieceLength {
				pieces, fill = piece.Sum(pieces), 0
				piece.Reset()
			}
		}
	})
	if fill > 0 {
		pieces = piece.Sum(pieces)
	}
	return append(pieces, whole.Sum(nil)...), err
}

func readChunks(name string, fn func([]byte)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, uploadChunk)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			fn(buf[:n])
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

func rate(r float64) string { return fmt.Sprintf("%7.1f MB/s", r) }
