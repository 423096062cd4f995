package seeding

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// This file is a small BitTorrent peer-wire client (BEP 3, with the fast extension of BEP 6 so
// that a seeder says "have all" and rejects what it will not send), just enough for the control
// plane to fetch chosen pieces from a node and check them: it never uploads, never keeps data
// and speaks to one peer at a time.

// blockSize is what BitTorrent clients request at a time, and the most many seeders send.
const blockSize = 16 << 10

// maxPipeline is how many block requests are outstanding at once.
const maxPipeline = 32

// Peer-wire message ids.
const (
	msgChoke      = 0
	msgUnchoke    = 1
	msgInterested = 2
	msgHave       = 4
	msgBitfield   = 5
	msgRequest    = 6
	msgPiece      = 7
	msgHaveAll    = 0x0e
	msgHaveNone   = 0x0f
	msgReject     = 0x10
)

// ProofError is why a node failed a proof, in words for the fleet page.
type ProofError struct {
	Kind   string // refused, timeout, handshake, missing, wrong data, protocol
	Reason string
}

func (e *ProofError) Error() string { return e.Kind + ": " + e.Reason }

// Kinds of ProofError.
const (
	ProofRefused   = "refused"    // no connection
	ProofTimeout   = "timeout"    // the node did not send the pieces in time
	ProofHandshake = "handshake"  // it does not speak BitTorrent or does not serve this torrent
	ProofMissing   = "missing"    // it does not have a piece asked for, or would not send it
	ProofWrongData = "wrong data" // a piece it sent does not match the piece's hash
	ProofProtocol  = "protocol"   // it broke the protocol
)

func proofErr(kind, format string, args ...any) error {
	return &ProofError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// FetchPieces connects to addr as a BitTorrent peer with peerID, asks for the whole of each of
// the given pieces of the torrent described by info (infoHash is its hash), and checks each
// against its SHA-1 in info. It returns nil only if every piece arrived and matched; otherwise a
// *ProofError says why (a context ending is a timeout). It sends nothing back to the peer but
// requests, and keeps no data.
func FetchPieces(ctx context.Context, addr string, infoHash [20]byte, peerID [20]byte, info *metainfo.Info, pieces []int) error {
	n := info.NumPieces()
	for _, p := range pieces {
		if p < 0 || p >= n {
			return fmt.Errorf("piece %d of a torrent of %d pieces", p, n)
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return proofErr(ProofTimeout, "no connection to %s in time", addr)
		}
		return proofErr(ProofRefused, "cannot connect to %s: %v", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = (&wire{conn: conn, info: info}).fetch(infoHash, peerID, pieces)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return proofErr(ProofTimeout, "%s did not send %s in time", addr, plural(len(pieces), "piece", "pieces"))
	}
	if err != nil && ctx.Err() != nil {
		return proofErr(ProofTimeout, "%s did not send %s in time", addr, plural(len(pieces), "piece", "pieces"))
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// wire is one peer connection of FetchPieces.
type wire struct {
	conn    net.Conn
	info    *metainfo.Info
	choked  bool
	haveAll bool
	have    []byte // the peer's bitfield
	talked  bool   // it sent a message after the handshake
	buf     []byte
}

func (w *wire) fetch(infoHash, peerID [20]byte, pieces []int) error {
	hs := make([]byte, 0, 68)
	hs = append(hs, 19)
	hs = append(hs, "BitTorrent protocol"...)
	reserved := [8]byte{}
	reserved[7] |= 0x04 // fast extension
	hs = append(hs, reserved[:]...)
	hs = append(hs, infoHash[:]...)
	hs = append(hs, peerID[:]...)
	if _, err := w.conn.Write(hs); err != nil {
		return w.readErr(err, ProofHandshake, "send the handshake")
	}
	var got [68]byte
	if _, err := io.ReadFull(w.conn, got[:]); err != nil {
		return w.readErr(err, ProofHandshake, "read the handshake (the node closed the connection or does not serve this torrent)")
	}
	if got[0] != 19 || string(got[1:20]) != "BitTorrent protocol" {
		return proofErr(ProofHandshake, "the node does not speak BitTorrent")
	}
	if !bytes.Equal(got[28:48], infoHash[:]) {
		return proofErr(ProofHandshake, "the node answered for another torrent (%x)", got[28:48])
	}
	fast := got[27]&0x04 != 0
	w.choked = true
	if err := w.send(msgInterested, nil); err != nil {
		return w.readErr(err, ProofHandshake, "send interested")
	}
	for _, p := range pieces {
		if err := w.piece(p, fast); err != nil {
			return err
		}
	}
	return nil
}

// readErr turns a read or write error into a ProofError, leaving timeouts for FetchPieces.
func (w *wire) readErr(err error, kind, what string) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return proofErr(kind, "%s: %v", what, err)
}

func (w *wire) send(id byte, payload []byte) error {
	msg := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(msg, uint32(1+len(payload)))
	msg[4] = id
	_, err := w.conn.Write(append(msg, payload...))
	return err
}

func (w *wire) hasPiece(p int) bool {
	if w.haveAll {
		return true
	}
	return p/8 < len(w.have) && w.have[p/8]&(0x80>>(p%8)) != 0
}

// piece fetches one whole piece, block by block, and checks its hash.
func (w *wire) piece(p int, fast bool) error {
	pi := w.info.Piece(p)
	length := pi.V1Length()
	data := make([]byte, length)
	received := make([]bool, (length+blockSize-1)/blockSize)
	left := len(received)
	next := 0    // the next block to request
	pending := 0 // requested and not received
	request := func() error {
		for pending < maxPipeline && next < len(received) {
			if received[next] {
				next++
				continue
			}
			begin := int64(next) * blockSize
			l := min(int64(blockSize), length-begin)
			var b [12]byte
			binary.BigEndian.PutUint32(b[0:], uint32(p))
			binary.BigEndian.PutUint32(b[4:], uint32(begin))
			binary.BigEndian.PutUint32(b[8:], uint32(l))
			if err := w.send(msgRequest, b[:]); err != nil {
				return w.readErr(err, ProofProtocol, "send a request")
			}
			next++
			pending++
		}
		return nil
	}
	for left > 0 {
		if !w.choked && (w.haveAll || w.have != nil) {
			if !w.hasPiece(p) {
				return proofErr(ProofMissing, "the node says it does not have piece %d", p)
			}
			if err := request(); err != nil {
				return err
			}
		}
		id, payload, err := w.read()
		var ne net.Error
		switch {
		case err == nil:
			w.talked = true
		case errors.As(err, &ne) && ne.Timeout():
			return err
		case !w.talked:
			// Clients echo the handshake before looking the torrent up, then hang up.
			return proofErr(ProofHandshake, "the node hung up after the handshake, before saying what it has (it does not serve this torrent): %v", err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
			return proofErr(ProofMissing, "the node closed the connection before sending piece %d", p)
		default:
			var pe *ProofError
			if errors.As(err, &pe) {
				return err
			}
			return proofErr(ProofProtocol, "reading from the node: %v", err)
		}
		switch id {
		case msgChoke:
			// A choke cancels what was requested (BEP 3), unless the fast extension is on, where
			// every request is answered by a piece or a reject.
			w.choked = true
			if !fast {
				next, pending = firstMissing(received), 0
			}
		case msgUnchoke:
			w.choked = false
		case msgHave:
			if len(payload) != 4 {
				return proofErr(ProofProtocol, "have message of %d bytes", len(payload))
			}
			i := int(binary.BigEndian.Uint32(payload))
			if i < w.info.NumPieces() {
				if w.have == nil {
					w.have = make([]byte, (w.info.NumPieces()+7)/8)
				}
				w.have[i/8] |= 0x80 >> (i % 8)
			}
		case msgBitfield:
			if len(payload) != (w.info.NumPieces()+7)/8 {
				return proofErr(ProofProtocol, "bitfield of %d bytes for %d pieces", len(payload), w.info.NumPieces())
			}
			w.have = payload
		case msgHaveAll:
			w.haveAll = true
		case msgHaveNone:
			w.have = make([]byte, (w.info.NumPieces()+7)/8)
			w.haveAll = false
		case msgReject:
			if len(payload) == 12 && int(binary.BigEndian.Uint32(payload)) == p {
				return proofErr(ProofMissing, "the node refused to send piece %d", p)
			}
		case msgPiece:
			if len(payload) < 8 {
				return proofErr(ProofProtocol, "piece message of %d bytes", len(payload))
			}
			idx, begin := int(binary.BigEndian.Uint32(payload)), int64(binary.BigEndian.Uint32(payload[4:]))
			block := payload[8:]
			if idx != p || begin%blockSize != 0 || begin >= length || int64(len(block)) != min(int64(blockSize), length-begin) {
				continue // not what was asked for (a late answer to a cancelled request)
			}
			if b := begin / blockSize; !received[b] && b < int64(next) {
				copy(data[begin:], block)
				received[b] = true
				left--
				pending--
			}
		}
	}
	if sha1.Sum(data) != pi.V1Hash().Unwrap() {
		return proofErr(ProofWrongData, "piece %d does not match its hash in the torrent", p)
	}
	return nil
}

func firstMissing(received []bool) int {
	for i, r := range received {
		if !r {
			return i
		}
	}
	return len(received)
}

// read reads one message, skipping keep-alives; it bounds what it accepts to what a piece
// message of one block or a bitfield can be.
func (w *wire) read() (byte, []byte, error) {
	limit := max(blockSize+9, (w.info.NumPieces()+7)/8+1, 1<<16)
	for {
		var l [4]byte
		if _, err := io.ReadFull(w.conn, l[:]); err != nil {
			return 0, nil, err
		}
		n := int(binary.BigEndian.Uint32(l[:]))
		if n == 0 {
			continue
		}
		if n > limit {
			return 0, nil, proofErr(ProofProtocol, "message of %d bytes", n)
		}
		if cap(w.buf) < n {
			w.buf = make([]byte, n)
		}
		msg := w.buf[:n]
		if _, err := io.ReadFull(w.conn, msg); err != nil {
			return 0, nil, err
		}
		if msg[0] == msgBitfield {
			return msg[0], bytes.Clone(msg[1:]), nil // kept after the next read
		}
		return msg[0], msg[1:], nil
	}
}
