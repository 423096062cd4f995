package publishing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"time"
)

// errNoDuration is a file whose headers give no playing time.
var errNoDuration = errors.New("no duration in the file's headers")

// MediaDuration reads how long an episode's file plays from its headers, without decoding
// it: MP3 (the Xing, Info or VBRI header, else its constant bit rate), MP4 and M4A (mvhd, or
// mehd when fragmented), WebM and Matroska (the segment's Duration), Ogg Vorbis, Opus and FLAC
// (the last page's granule position), FLAC and WAV. contentType is the sniffed type
// (SniffMedia). It fails on anything else, or a file that does not say.
func MediaDuration(path, contentType string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return mediaDuration(media{r: f, size: st.Size()}, contentType)
}

func mediaDuration(m media, contentType string) (time.Duration, error) {
	switch contentType {
	case "audio/mpeg":
		return m.mp3()
	case "audio/mp4", "video/mp4":
		return m.mp4()
	case "video/webm", "audio/webm", "video/x-matroska":
		return m.matroska()
	case "application/ogg", "audio/ogg", "video/ogg":
		return m.ogg()
	case "audio/flac":
		return m.flac()
	case "audio/wave", "audio/wav", "audio/x-wav":
		return m.wav()
	}
	return 0, errNoDuration
}

type media struct {
	r    io.ReaderAt
	size int64
}

// at reads n bytes at off, or fails.
func (m media) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > m.size {
		return nil, errNoDuration
	}
	b := make([]byte, n)
	if _, err := m.r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

func seconds(n, rate uint64) (time.Duration, error) {
	if rate == 0 {
		return 0, errNoDuration
	}
	d := float64(n) / float64(rate) * float64(time.Second)
	if d <= 0 || d > float64(math.MaxInt64) {
		return 0, errNoDuration
	}
	return time.Duration(d), nil
}

// MP3: the frame header tables of MPEG audio layers I-III.
var (
	mp3Bitrates = map[[2]int][15]int{ // [MPEG-1?1:2][layer] -> kbit/s by index
		{1, 1}: {0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
		{1, 2}: {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
		{1, 3}: {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
		{2, 1}: {0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
		{2, 2}: {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		{2, 3}: {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	}
	mp3Rates = map[int][3]int{3: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 0: {11025, 12000, 8000}}
)

type mp3Frame struct {
	version, layer, bitrate, rate, spf, sideInfo int
}

func parseMP3Frame(h []byte) (mp3Frame, bool) {
	if len(h) < 4 || h[0] != 0xFF || h[1]&0xE0 != 0xE0 {
		return mp3Frame{}, false
	}
	version := int(h[1]>>3) & 3
	layer := 4 - int(h[1]>>1)&3 // 1, 2 or 3; 4 is reserved
	bi, ri := int(h[2]>>4), int(h[2]>>2)&3
	if version == 1 || layer == 4 || bi == 0 || bi == 15 || ri == 3 {
		return mp3Frame{}, false
	}
	v := 2
	if version == 3 {
		v = 1
	}
	f := mp3Frame{version: version, layer: layer, bitrate: mp3Bitrates[[2]int{v, layer}][bi] * 1000, rate: mp3Rates[version][ri]}
	switch {
	case layer == 1:
		f.spf = 384
	case layer == 2 || v == 1:
		f.spf = 1152
	default:
		f.spf = 576
	}
	mono := h[3]>>6 == 3
	switch {
	case v == 1 && !mono:
		f.sideInfo = 32
	case v == 1, !mono:
		f.sideInfo = 17
	default:
		f.sideInfo = 9
	}
	return f, true
}

func (m media) mp3() (time.Duration, error) {
	start := int64(0)
	if h, err := m.at(0, 10); err == nil && string(h[:3]) == "ID3" {
		size := int64(h[6]&0x7f)<<21 | int64(h[7]&0x7f)<<14 | int64(h[8]&0x7f)<<7 | int64(h[9]&0x7f)
		start = 10 + size
		if h[5]&0x10 != 0 {
			start += 10
		}
	}
	// The first frame header within 64 KiB of where the audio starts.
	window, err := m.at(start, int(min(64<<10, m.size-start)))
	if err != nil {
		return 0, err
	}
	var f mp3Frame
	i := 0
	for ; i+4 <= len(window); i++ {
		var ok bool
		if f, ok = parseMP3Frame(window[i:]); ok {
			break
		}
	}
	if i+4 > len(window) {
		return 0, errNoDuration
	}
	frame := start + int64(i)
	if f.layer == 3 {
		if b, err := m.at(frame+4+int64(f.sideInfo), 12); err == nil && (string(b[:4]) == "Xing" || string(b[:4]) == "Info") {
			if binary.BigEndian.Uint32(b[4:8])&1 != 0 {
				return seconds(uint64(binary.BigEndian.Uint32(b[8:12]))*uint64(f.spf), uint64(f.rate))
			}
		}
		if b, err := m.at(frame+4+32, 18); err == nil && string(b[:4]) == "VBRI" {
			return seconds(uint64(binary.BigEndian.Uint32(b[14:18]))*uint64(f.spf), uint64(f.rate))
		}
	}
	end := m.size
	if t, err := m.at(m.size-128, 3); err == nil && string(t) == "TAG" {
		end -= 128
	}
	return seconds(uint64(end-frame)*8, uint64(f.bitrate))
}

// mp4Box finds the first box of type typ among the boxes in [off, end).
func (m media) mp4Box(off, end int64, typ string) (start, size int64, err error) {
	for off+8 <= end {
		h, err := m.at(off, 16)
		if err != nil {
			if h, err = m.at(off, 8); err != nil {
				return 0, 0, err
			}
		}
		size, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		switch size {
		case 0:
			size = end - off
		case 1:
			if len(h) < 16 {
				return 0, 0, errNoDuration
			}
			size, hdr = int64(binary.BigEndian.Uint64(h[8:16])), 16
		}
		if size < hdr || off+size > end {
			return 0, 0, errNoDuration
		}
		if string(h[4:8]) == typ {
			return off + hdr, size - hdr, nil
		}
		off += size
	}
	return 0, 0, errNoDuration
}

func (m media) mp4() (time.Duration, error) {
	moov, moovSize, err := m.mp4Box(0, m.size, "moov")
	if err != nil {
		return 0, err
	}
	mvhd, _, err := m.mp4Box(moov, moov+moovSize, "mvhd")
	if err != nil {
		return 0, err
	}
	b, err := m.at(mvhd, 32)
	if err != nil {
		return 0, err
	}
	var scale, dur uint64
	if b[0] == 1 {
		scale, dur = uint64(binary.BigEndian.Uint32(b[20:24])), binary.BigEndian.Uint64(b[24:32])
	} else {
		scale, dur = uint64(binary.BigEndian.Uint32(b[12:16])), uint64(binary.BigEndian.Uint32(b[16:20]))
		if dur == math.MaxUint32 {
			dur = 0
		}
	}
	if dur == 0 || dur == math.MaxUint64 { // fragmented: the movie extends header says
		mvex, mvexSize, err := m.mp4Box(moov, moov+moovSize, "mvex")
		if err != nil {
			return 0, err
		}
		mehd, _, err := m.mp4Box(mvex, mvex+mvexSize, "mehd")
		if err != nil {
			return 0, err
		}
		h, err := m.at(mehd, 12)
		if err != nil {
			return 0, err
		}
		if h[0] == 1 {
			dur = binary.BigEndian.Uint64(h[4:12])
		} else {
			dur = uint64(binary.BigEndian.Uint32(h[4:8]))
		}
	}
	return seconds(dur, scale)
}

// ebml reads an EBML element header at off: its id (marker bits kept), the offset of its data
// and its size (-1 when unknown).
func (m media) ebml(off int64) (id uint32, data, size int64, err error) {
	b, err := m.at(off, int(min(12, m.size-off)))
	if err != nil || len(b) == 0 {
		return 0, 0, 0, errNoDuration
	}
	n := 1
	for n <= 4 && b[0]&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > 4 || len(b) < n+1 {
		return 0, 0, 0, errNoDuration
	}
	for _, c := range b[:n] {
		id = id<<8 | uint32(c)
	}
	s := b[n:]
	l := 1
	for l <= 8 && s[0]&(0x80>>(l-1)) == 0 {
		l++
	}
	if l > 8 || len(s) < l {
		return 0, 0, 0, errNoDuration
	}
	v := uint64(s[0] & (0xFF >> l))
	ones := v == uint64(0xFF>>l)
	for _, c := range s[1:l] {
		v = v<<8 | uint64(c)
		ones = ones && c == 0xFF
	}
	size = int64(v)
	if ones {
		size = -1
	}
	return id, off + int64(n+l), size, nil
}

func (m media) matroska() (time.Duration, error) {
	const (
		idEBML, idSegment, idInfo, idCluster = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x1F43B675
		idTimecodeScale, idDuration          = 0x2AD7B1, 0x4489
	)
	id, data, size, err := m.ebml(0)
	if err != nil || id != idEBML || size < 0 {
		return 0, errNoDuration
	}
	if id, data, _, err = m.ebml(data + size); err != nil || id != idSegment {
		return 0, errNoDuration
	}
	for off := data; off < m.size; {
		id, d, size, err := m.ebml(off)
		if err != nil || id == idCluster || size < 0 {
			return 0, errNoDuration
		}
		if id != idInfo {
			off = d + size
			continue
		}
		scale, dur := uint64(1_000_000), -1.0
		for o := d; o < d+size; {
			cid, cd, cs, err := m.ebml(o)
			if err != nil || cs < 0 {
				return 0, errNoDuration
			}
			o = cd + cs
			if cid != idTimecodeScale && cid != idDuration {
				continue
			}
			b, err := m.at(cd, int(min(cs, 8)))
			if err != nil {
				return 0, err
			}
			switch {
			case cid == idTimecodeScale:
				scale = 0
				for _, c := range b {
					scale = scale<<8 | uint64(c)
				}
			case cid == idDuration && cs == 4:
				dur = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
			case cid == idDuration && cs == 8:
				dur = math.Float64frombits(binary.BigEndian.Uint64(b))
			}
		}
		if dur <= 0 || math.IsNaN(dur) || math.IsInf(dur, 0) {
			return 0, errNoDuration
		}
		return seconds(uint64(dur*float64(scale)), uint64(time.Second))
	}
	return 0, errNoDuration
}

func (m media) ogg() (time.Duration, error) {
	first, err := m.at(0, int(min(512, m.size)))
	if err != nil || len(first) < 28 || string(first[:4]) != "OggS" {
		return 0, errNoDuration
	}
	serial := binary.LittleEndian.Uint32(first[14:18])
	if 27+int(first[26]) > len(first) {
		return 0, errNoDuration
	}
	packet := first[27+int(first[26]):]
	var rate, skip uint64
	switch {
	case len(packet) >= 16 && string(packet[:7]) == "\x01vorbis":
		rate = uint64(binary.LittleEndian.Uint32(packet[12:16]))
	case len(packet) >= 12 && string(packet[:8]) == "OpusHead":
		rate, skip = 48000, uint64(binary.LittleEndian.Uint16(packet[10:12]))
	case len(packet) >= 13+4+18+4 && string(packet[:5]) == "\x7fFLAC" && string(packet[9:13]) == "fLaC":
		si := packet[17:]
		rate = uint64(si[10])<<12 | uint64(si[11])<<4 | uint64(si[12])>>4
	default:
		return 0, errNoDuration
	}
	// The last page of the stream: pages are at most 65307 bytes, so the last one starts in
	// the file's last 64 KiB and a half.
	tailLen := min(m.size, 66000)
	tail, err := m.at(m.size-tailLen, int(tailLen))
	if err != nil {
		return 0, err
	}
	for i := bytes.LastIndex(tail, []byte("OggS")); i >= 0; i = bytes.LastIndex(tail[:i], []byte("OggS")) {
		p := tail[i:]
		if len(p) < 27 || binary.LittleEndian.Uint32(p[14:18]) != serial {
			continue
		}
		granule := binary.LittleEndian.Uint64(p[6:14])
		if granule == math.MaxUint64 || granule <= skip {
			continue
		}
		return seconds(granule-skip, rate)
	}
	return 0, errNoDuration
}

func (m media) flac() (time.Duration, error) {
	b, err := m.at(0, 8+34)
	if err != nil || string(b[:4]) != "fLaC" || b[4]&0x7f != 0 {
		return 0, errNoDuration
	}
	si := b[8:]
	rate := uint64(si[10])<<12 | uint64(si[11])<<4 | uint64(si[12])>>4
	total := uint64(si[13]&0x0f)<<32 | uint64(binary.BigEndian.Uint32(si[14:18]))
	return seconds(total, rate)
}

func (m media) wav() (time.Duration, error) {
	h, err := m.at(0, 12)
	if err != nil || string(h[:4]) != "RIFF" || string(h[8:12]) != "WAVE" {
		return 0, errNoDuration
	}
	var byteRate uint64
	for off := int64(12); off+8 <= m.size; {
		c, err := m.at(off, 8)
		if err != nil {
			return 0, err
		}
		size := int64(binary.LittleEndian.Uint32(c[4:8]))
		switch string(c[:4]) {
		case "fmt ":
			f, err := m.at(off+8, 12)
			if err != nil {
				return 0, err
			}
			byteRate = uint64(binary.LittleEndian.Uint32(f[8:12]))
		case "data":
			if byteRate == 0 {
				return 0, errNoDuration
			}
			return seconds(uint64(min(size, m.size-off-8)), byteRate)
		}
		off += 8 + size + size&1
	}
	return 0, errNoDuration
}
