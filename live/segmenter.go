package live

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Segment is one fMP4 media segment of a stream's HLS playlist.
type Segment struct {
	Seq      int       `json:"seq"`
	Name     string    `json:"name"`
	Duration float64   `json:"duration"` // seconds
	Size     int       `json:"size"`
	SHA256   string    `json:"sha256"` // hex; players check segments from peers against it
	Start    time.Time `json:"program_date_time"`
}

const (
	videoTrack     = 1
	audioTrack     = 2
	videoTimescale = 90000
	// playlistWindow is how many segments the live playlist lists; hashWindow how many the
	// SHA-256 list and the disk keep (a viewer a little behind still finds its segment).
	playlistWindow = 8
	hashWindow     = 30
)

// segmenter remuxes one stream's H.264 and AAC access units into fMP4 segments of about target
// length, cut at key frames, without transcoding. It writes the init segment, the segments, the
// playlist and the SHA-256 list into dir (files replaced atomically, so any process sharing the
// directory can serve them), and appends everything to a fragmented recording.
type segmenter struct {
	dir    string
	target time.Duration

	mu       sync.Mutex
	sps, pps []byte
	audio    *mpeg4audio.AudioSpecificConfig
	rec      *os.File
	started  bool
	base     time.Duration // DTS of the first key frame: time zero of both tracks
	wall     time.Time     // when the first key frame arrived
	segStart time.Duration // DTS at which the open segment starts
	video    []mp4.FullSample
	pending  *mp4.FullSample // the last video sample, whose duration the next one gives
	audioQ   []mp4.FullSample
	segments []Segment
	seq      int
	ended    bool
	// onSegment hears of each segment once it is on disk (for the stream's liveness).
	onSegment func(Segment)
}

func newSegmenter(dir string, target time.Duration, sps, pps []byte, audio *mpeg4audio.AudioSpecificConfig) (*segmenter, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("live segment directory: %w", err)
	}
	rec, err := os.OpenFile(filepath.Join(dir, "recording.fmp4"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("live recording: %w", err)
	}
	s := &segmenter{dir: dir, target: target, sps: sps, pps: pps, audio: audio, rec: rec}
	init, err := s.initSegment()
	if err != nil {
		rec.Close()
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, "init.mp4"), init); err != nil {
		rec.Close()
		return nil, err
	}
	if _, err := rec.Write(init); err != nil {
		rec.Close()
		return nil, fmt.Errorf("live recording: %w", err)
	}
	return s, nil
}

// initSegment is the fMP4 init segment: the video track (avcC from the SPS and PPS) and the
// audio track (esds with the stream's own AudioSpecificConfig) when there is one.
func (s *segmenter) initSegment() ([]byte, error) {
	init := mp4.CreateEmptyInit()
	init.AddEmptyTrack(videoTimescale, "video", "und")
	if err := init.Moov.Traks[0].SetAVCDescriptor("avc1", [][]byte{s.sps}, [][]byte{s.pps}, true); err != nil {
		return nil, fmt.Errorf("live: the stream's H.264 parameters: %w", err)
	}
	if s.audio != nil {
		init.AddEmptyTrack(uint32(s.audio.SampleRate), "audio", "und")
		asc, err := s.audio.Marshal()
		if err != nil {
			return nil, fmt.Errorf("live: the stream's AAC configuration: %w", err)
		}
		channels := uint16(s.audio.ChannelConfig)
		if channels == 0 || channels > 8 {
			channels = 2
		}
		init.Moov.Traks[1].Mdia.Minf.Stbl.Stsd.AddChild(
			mp4.CreateAudioSampleEntryBox("mp4a", channels, 16, uint16(s.audio.SampleRate), mp4.CreateEsdsBox(asc)))
	}
	var b bytes.Buffer
	if err := init.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func ticks(d time.Duration, timescale int) int64 {
	return int64(math.Round(d.Seconds() * float64(timescale)))
}

// writeH264 takes one access unit. Nothing is kept before the first key frame.
func (s *segmenter) writeH264(pts, dts time.Duration, au [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	idr := h264.IsRandomAccess(au)
	if !s.started {
		if !idr {
			return nil
		}
		s.started, s.base, s.segStart, s.wall = true, dts, dts, time.Now()
	}
	var data []byte
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS:
			continue
		}
		data = append(data, byte(len(nalu)>>24), byte(len(nalu)>>16), byte(len(nalu)>>8), byte(len(nalu)))
		data = append(data, nalu...)
	}
	if len(data) == 0 {
		return nil
	}
	decode := ticks(dts-s.base, videoTimescale)
	if s.pending != nil {
		s.pending.Dur = uint32(max(decode-int64(s.pending.DecodeTime), 1))
		s.video = append(s.video, *s.pending)
		s.pending = nil
	}
	if idr && len(s.video) > 0 && dts-s.segStart >= s.target {
		if err := s.flush(dts); err != nil {
			return err
		}
	}
	flags := mp4.NonSyncSampleFlags
	if idr {
		flags = mp4.SyncSampleFlags
	}
	s.pending = &mp4.FullSample{
		Sample:     mp4.Sample{Flags: flags, Size: uint32(len(data)), CompositionTimeOffset: int32(ticks(pts-dts, videoTimescale))},
		DecodeTime: uint64(decode), Data: data,
	}
	return nil
}

// writeAAC takes one AAC access unit (1024 samples).
func (s *segmenter) writeAAC(pts time.Duration, au []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || !s.started || s.audio == nil || pts < s.base {
		return nil
	}
	decode := ticks(pts-s.base, s.audio.SampleRate)
	if n := len(s.audioQ); n > 0 && uint64(decode) <= s.audioQ[n-1].DecodeTime {
		decode = int64(s.audioQ[n-1].DecodeTime) + mpeg4audio.SamplesPerAccessUnit
	}
	s.audioQ = append(s.audioQ, mp4.FullSample{
		Sample:     mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: mpeg4audio.SamplesPerAccessUnit, Size: uint32(len(au))},
		DecodeTime: uint64(decode), Data: append([]byte(nil), au...),
	})
	return nil
}

// flush closes the open segment at DTS end: its video samples and the audio before end.
func (s *segmenter) flush(end time.Duration) error {
	if len(s.video) == 0 {
		return nil
	}
	var audio []mp4.FullSample
	if s.audio != nil {
		cut := uint64(ticks(end-s.base, s.audio.SampleRate))
		i := 0
		for i < len(s.audioQ) && s.audioQ[i].DecodeTime < cut {
			i++
		}
		audio, s.audioQ = s.audioQ[:i], append([]mp4.FullSample(nil), s.audioQ[i:]...)
	}
	ids := []uint32{videoTrack}
	if len(audio) > 0 {
		ids = append(ids, audioTrack)
	}
	frag, err := mp4.CreateMultiTrackFragment(uint32(s.seq+1), ids)
	if err != nil {
		return err
	}
	for _, v := range s.video {
		if err := frag.AddFullSampleToTrack(v, videoTrack); err != nil {
			return err
		}
	}
	for _, a := range audio {
		if err := frag.AddFullSampleToTrack(a, audioTrack); err != nil {
			return err
		}
	}
	seg := mp4.NewMediaSegment()
	seg.AddFragment(frag)
	var b bytes.Buffer
	if err := seg.Encode(&b); err != nil {
		return err
	}
	sum := sha256.Sum256(b.Bytes())
	info := Segment{Seq: s.seq, Name: strconv.Itoa(s.seq) + ".m4s", Duration: (end - s.segStart).Seconds(), Size: b.Len(),
		SHA256: hex.EncodeToString(sum[:]), Start: s.wall.Add(s.segStart - s.base)}
	if err := writeAtomic(filepath.Join(s.dir, info.Name), b.Bytes()); err != nil {
		return err
	}
	if _, err := s.rec.Write(b.Bytes()); err != nil {
		return fmt.Errorf("live recording: %w", err)
	}
	s.video, s.segStart = s.video[:0], end
	s.seq++
	s.segments = append(s.segments, info)
	if len(s.segments) > hashWindow {
		os.Remove(filepath.Join(s.dir, s.segments[0].Name))
		s.segments = s.segments[1:]
	}
	if err := s.writeIndex(false); err != nil {
		return err
	}
	if s.onSegment != nil {
		s.onSegment(info)
	}
	return nil
}

// close ends the stream: the last samples become a segment, the playlist gets its
// EXT-X-ENDLIST, and the recording is complete. It returns the recording's path.
func (s *segmenter) close() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.rec.Name(), nil
	}
	s.ended = true
	var err error
	if s.pending != nil {
		dur := uint32(videoTimescale / 30)
		if n := len(s.video); n > 0 {
			dur = s.video[n-1].Dur
		}
		s.pending.Dur = dur
		s.video = append(s.video, *s.pending)
		end := s.base + time.Duration(float64(s.pending.DecodeTime+uint64(dur))/videoTimescale*float64(time.Second))
		s.pending = nil
		err = s.flush(end)
	}
	if s.started {
		err = errors.Join(err, s.writeIndex(true))
	}
	return s.rec.Name(), errors.Join(err, s.rec.Close())
}

// writeIndex rewrites the playlist (the last playlistWindow segments) and the SHA-256 list.
func (s *segmenter) writeIndex(ended bool) error {
	win := s.segments[max(0, len(s.segments)-playlistWindow):]
	if len(win) == 0 {
		return nil
	}
	target := 1
	for _, g := range win {
		target = max(target, int(math.Ceil(g.Duration)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n", target, win[0].Seq)
	for _, g := range win {
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:%.3f,\n%s\n", g.Start.UTC().Format("2006-01-02T15:04:05.000Z"), g.Duration, g.Name)
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	hashes, err := json.Marshal(struct {
		Segments []Segment `json:"segments"`
		Ended    bool      `json:"ended"`
	}{s.segments, ended})
	if err != nil {
		return err
	}
	// The list first: a player that sees a segment in the playlist finds its hash.
	if err := writeAtomic(filepath.Join(s.dir, "hashes.json"), hashes); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, "index.m3u8"), []byte(b.String()))
}

// writeAtomic replaces name with data, so that readers see the old file or the new one.
func writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("live: write %s: %w", filepath.Base(name), err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("live: write %s: %w", filepath.Base(name), err)
	}
	return nil
}
