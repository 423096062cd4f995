package publishing

import (
	"bytes"
	"encoding/binary"
	"os"
)

// StreamProblem is why a browser cannot play a file while it arrives (or seek in it), and the
// command that fixes it without re-encoding.
type StreamProblem struct {
	Problem string
	Fix     string
}

// Streamable checks that a browser can stream an episode's file: an MP4 needs its index (moov)
// before the media data (mdat), and a WebM or Matroska file needs cues for seeking. It returns
// nil for a streamable file and for types it does not check, and an error when the file cannot
// be read.
func Streamable(path, contentType string) (*StreamProblem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m := media{r: f, size: st.Size()}
	switch contentType {
	case "audio/mp4", "video/mp4":
		if m.mp4MoovLate() {
			return &StreamProblem{
				Problem: "The file's index (the moov atom) comes after the media, so browsers must fetch the whole file before they can play it.",
				Fix:     "ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4",
			}, nil
		}
	case "video/webm", "audio/webm", "video/x-matroska":
		if !m.matroskaHasCues() {
			return &StreamProblem{
				Problem: "The file has no cues (its seek index, often missing from recordings made in a browser), so players cannot seek in it.",
				Fix:     "ffmpeg -i in.webm -c copy -cues_to_front 1 out.webm",
			}, nil
		}
	}
	return nil, nil
}

// mp4MoovLate reports a media data box (mdat) before the movie box (moov) among the top-level
// boxes. A fragmented file's fragments carry their own index and are fine.
func (m media) mp4MoovLate() bool {
	for off := int64(0); off+8 <= m.size; {
		h, err := m.at(off, 8)
		if err != nil {
			return false
		}
		size, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		switch size {
		case 0:
			size = m.size - off
		case 1:
			b, err := m.at(off+8, 8)
			if err != nil {
				return false
			}
			size, hdr = int64(binary.BigEndian.Uint64(b)), 16
		}
		if size < hdr {
			return false
		}
		switch string(h[4:8]) {
		case "moov", "moof":
			return false
		case "mdat":
			return true
		}
		off += size
	}
	return false
}

// matroskaHasCues reports whether a WebM or Matroska segment has cues: a Cues element among
// its top-level elements, or one its SeekHead points to. A file it cannot read says no.
func (m media) matroskaHasCues() bool {
	const (
		idEBML, idSegment, idSeekHead, idCues, idCluster = 0x1A45DFA3, 0x18538067, 0x114D9B74, 0x1C53BB6B, 0x1F43B675
		idSeek, idSeekID                                 = 0x4DBB, 0x53AB
	)
	cuesID := []byte{0x1C, 0x53, 0xBB, 0x6B}
	id, data, size, err := m.ebml(0)
	if err != nil || id != idEBML || size < 0 {
		return false
	}
	if id, data, _, err = m.ebml(data + size); err != nil || id != idSegment {
		return false
	}
	for off := data; off < m.size; {
		id, d, size, err := m.ebml(off)
		if err != nil {
			return false
		}
		switch id {
		case idCues:
			return true
		case idSeekHead:
			for o := d; size >= 0 && o < d+size; {
				sid, sd, ss, err := m.ebml(o)
				if err != nil || ss < 0 {
					break
				}
				o = sd + ss
				if sid != idSeek {
					continue
				}
				for p := sd; p < sd+ss; {
					cid, cd, cs, err := m.ebml(p)
					if err != nil || cs < 0 {
						break
					}
					p = cd + cs
					if cid == idSeekID {
						if b, err := m.at(cd, int(min(cs, 8))); err == nil && bytes.Equal(b, cuesID) {
							return true
						}
					}
				}
			}
		case idCluster:
			if size < 0 { // a live recording's cluster of unknown size: nothing after it can be found
				return false
			}
		}
		if size < 0 {
			return false
		}
		off = d + size
	}
	return false
}
