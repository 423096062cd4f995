package seeding

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/fanseed/fanseed/internal/testkit"
)

// allComplete is a piece completion store that says every piece is complete, so that an
// anacrolix client serves whatever its files hold without hashing them: a seeder that lies.
type allComplete struct{}

func (allComplete) Get(metainfo.PieceKey) (storage.Completion, error) {
	return storage.Completion{Ok: true, Complete: true}, nil
}
func (allComplete) Set(metainfo.PieceKey, bool) error { return nil }
func (allComplete) Close() error                      { return nil }

// anacrolixSeeder runs a real anacrolix client seeding content under the torrent mi; with lie it
// takes the file as complete without hashing it. It returns the address it listens on.
func anacrolixSeeder(t *testing.T, mi *metainfo.MetaInfo, name string, content []byte, lie bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := torrent.TestingConfig(t)
	cfg.DataDir = dir
	cfg.Seed = true
	cfg.DisableIPv6 = true
	cfg.MaxAllocPeerRequestDataPerConn = torrent.NewDefaultClientConfig().MaxAllocPeerRequestDataPerConn
	if lie {
		cfg.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: dir, PieceCompletion: allComplete{},
			UsePartFiles: g.Some(false)})
	}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	tt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	if !lie {
		waitComplete(t, tt, "seeder")
	}
	return cl.ListenAddrs()[0].String()
}

func proofTorrent(t *testing.T, data []byte, pieceLength int64) (Torrent, *metainfo.MetaInfo, *metainfo.Info) {
	t.Helper()
	return buildTorrent(t, hashAll(t, data, pieceLength), TorrentOptions{Name: "proof.mp4", TrackerURL: "http://127.0.0.1:1/announce"})
}

// buildTorrent builds a torrent of hashes and reads its .torrent back, as a client would.
func buildTorrent(t *testing.T, hashes Hashes, opts TorrentOptions) (Torrent, *metainfo.MetaInfo, *metainfo.Info) {
	t.Helper()
	tor, err := BuildTorrent(hashes, opts)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(tor.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	return tor, mi, &info
}

func proofKind(err error) string {
	var pe *ProofError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return "not a ProofError"
}

var testProverID = [20]byte{'-', 'F', 'S', '0', '1', '0', '0', '-', 't', 'e', 's', 't'}

// FetchPieces against real anacrolix seeders: one with the data passes, for every piece (the
// last one short); one that serves wrong bytes as if they were right fails with "wrong data";
// one without the torrent, a port that says nothing, one that answers garbage and a closed port
// fail each with their own kind.
func TestFetchPiecesFromAnacrolix(t *testing.T) {
	t.Parallel()
	// 64 KiB pieces of 4 blocks, and a last piece of one and a half blocks.
	data := randomBytes(41, 5*64<<10+24<<10)
	tor, mi, info := proofTorrent(t, data, 64<<10)
	good := anacrolixSeeder(t, mi, tor.Name, data, false)
	ctx := t.Context()
	all := []int{0, 1, 2, 3, 4, 5}
	timed := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 30*time.Second) }

	c, cancel := timed()
	if err := FetchPieces(c, good, tor.InfoHash, testProverID, info, all); err != nil {
		t.Fatalf("a seeder with the data failed: %v", err)
	}
	cancel()

	// The same length of bytes, one byte changed in piece 3 only: pieces 0 to 2 pass, 3 fails.
	wrong := bytes.Clone(data)
	wrong[3*64<<10+5000] ^= 0xff
	liar := anacrolixSeeder(t, mi, tor.Name, wrong, true)
	c, cancel = timed()
	if err := FetchPieces(c, liar, tor.InfoHash, testProverID, info, []int{0, 1, 2}); err != nil {
		t.Fatalf("pieces the lying seeder has right failed: %v", err)
	}
	err := FetchPieces(c, liar, tor.InfoHash, testProverID, info, []int{3})
	cancel()
	if proofKind(err) != ProofWrongData {
		t.Fatalf("a seeder serving a wrong piece: %v, want %s", err, ProofWrongData)
	}
	// All zeros, as a node that made a file of the right size without the data.
	zeros := anacrolixSeeder(t, mi, tor.Name, make([]byte, len(data)), true)
	c, cancel = timed()
	err = FetchPieces(c, zeros, tor.InfoHash, testProverID, info, []int{5})
	cancel()
	if proofKind(err) != ProofWrongData {
		t.Fatalf("a seeder of zeros: %v, want %s", err, ProofWrongData)
	}

	// A client that does not have this torrent drops the handshake.
	other := randomBytes(42, 100_000)
	otor, omi, _ := proofTorrent(t, other, 16<<10)
	elsewhere := anacrolixSeeder(t, omi, otor.Name, other, false)
	c, cancel = timed()
	err = FetchPieces(c, elsewhere, tor.InfoHash, testProverID, info, []int{0})
	cancel()
	if proofKind(err) != ProofHandshake {
		t.Fatalf("a client without the torrent: %v, want %s", err, ProofHandshake)
	}

	// A port that accepts and says nothing: a timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	c, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	err = FetchPieces(c, silent.Addr().String(), tor.InfoHash, testProverID, info, []int{0})
	cancel()
	if proofKind(err) != ProofTimeout {
		t.Fatalf("a silent port: %v, want %s", err, ProofTimeout)
	}

	// A fake seeder: the right handshake and "have all", then garbage for every request.
	fake := fakeSeeder(t, tor.InfoHash)
	c, cancel = timed()
	err = FetchPieces(c, fake, tor.InfoHash, testProverID, info, []int{2})
	cancel()
	if proofKind(err) != ProofWrongData {
		t.Fatalf("a fake seeder: %v, want %s", err, ProofWrongData)
	}

	// Nothing listening.
	closed := silent.Addr().String()
	silent.Close()
	c, cancel = timed()
	err = FetchPieces(c, closed, tor.InfoHash, testProverID, info, []int{0})
	cancel()
	if proofKind(err) != ProofRefused {
		t.Fatalf("a closed port: %v, want %s", err, ProofRefused)
	}
}

// fakeSeeder speaks the peer wire as a seeder of infoHash would (handshake, have all, unchoke)
// and answers every request with a block of the right size of made-up bytes.
func fakeSeeder(t *testing.T, infoHash [20]byte) string {
	t.Helper()
	return testkit.Serve(t, func(c net.Conn) { serveGarbage(c, infoHash) })
}

func serveGarbage(c net.Conn, infoHash [20]byte) {
	defer c.Close()
	var hs [68]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil {
		return
	}
	reply := append([]byte{19}, "BitTorrent protocol"...)
	reply = append(reply, 0, 0, 0, 0, 0, 0, 0, 0x04)
	reply = append(reply, infoHash[:]...)
	reply = append(reply, "-XX0000-garbagegarba"...)
	reply = append(reply, 0, 0, 0, 1, msgHaveAll, 0, 0, 0, 1, msgUnchoke)
	if _, err := c.Write(reply); err != nil {
		return
	}
	for {
		var l [4]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		n := int(l[0])<<24 | int(l[1])<<16 | int(l[2])<<8 | int(l[3])
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		if n != 13 || msg[0] != msgRequest {
			continue
		}
		length := int(msg[9])<<24 | int(msg[10])<<16 | int(msg[11])<<8 | int(msg[12])
		out := []byte{byte((9 + length) >> 24), byte((9 + length) >> 16), byte((9 + length) >> 8), byte(9 + length), msgPiece}
		out = append(out, msg[1:9]...)
		out = append(out, bytes.Repeat([]byte{0xab}, length)...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
