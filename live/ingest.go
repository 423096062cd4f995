package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Service runs the RTMP ingest and keeps the streams' HLS files. It remuxes each stream into
// fMP4 segments under Dir/<stream id>/, and when a stream ends hands its recording to Publish.
type Service struct {
	DB  Beginner
	Dir string // where each stream's segments, playlist and recording are kept
	Log *slog.Logger
	// Silence is how long a stream may send nothing before it ends (10 s by default).
	Silence time.Duration
	// SegmentTarget is the segments' length, cut at the next key frame after it (2 s by default).
	SegmentTarget time.Duration
	// Publish makes the recording (one mp4, moov first) an episode of the stream's show and
	// returns its id; nil leaves recordings unpublished.
	Publish func(ctx context.Context, s Stream, file string) (episodeID int64, err error)
	// FFmpeg is the ffmpeg the recording is remuxed with ("ffmpeg" on PATH by default).
	FFmpeg string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (s *Service) silence() time.Duration {
	if s.Silence > 0 {
		return s.Silence
	}
	return 10 * time.Second
}

func (s *Service) target() time.Duration {
	if s.SegmentTarget > 0 {
		return s.SegmentTarget
	}
	return 2 * time.Second
}

// Serve accepts RTMP connections on ln until ctx ends, then ends the streams and waits for
// their recordings to be handed over.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(ctx, c)
		})
	}
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("live ingest: %w", err)
}

// errRefused is a connection turned away: a wrong or revoked key, or a show live already.
var errRefused = errors.New("refused")

func (s *Service) handle(ctx context.Context, c net.Conn) {
	log := s.Log.With(slog.String("remote", c.RemoteAddr().String()))
	c.SetDeadline(time.Now().Add(s.silence()))
	sc := &gortmplib.ServerConn{RW: c}
	if err := sc.Initialize(); err != nil {
		log.Info("live: RTMP handshake failed", slog.Any("error", err))
		return
	}
	if err := sc.AcceptConn(); err != nil {
		log.Info("live: RTMP connect failed", slog.Any("error", err))
		return
	}
	stream, err := s.admit(ctx, sc)
	if err != nil {
		// Never the key itself: it is a secret.
		log.Warn("live: connection refused", slog.Any("error", err))
		sc.RejectAction()
		return
	}
	log = log.With(slog.Int64("stream_id", stream.ID), slog.Int64("show_id", stream.ShowID))
	log.Info("live: stream started")
	reason, seg := s.ingest(ctx, c, sc, stream, log)
	file := ""
	if seg != nil {
		var err error
		if file, err = seg.close(); err != nil {
			log.Error("live: closing the stream's segments", slog.Any("error", err))
		}
	}
	ended, err := EndStream(context.WithoutCancel(ctx), s.DB, stream.ID, reason)
	if err != nil {
		log.Error("live: end stream", slog.Any("error", err))
		return
	}
	log.Info("live: stream ended", slog.String("reason", reason), slog.Int("segments", ended.Segments))
	if ended.Recording == "recording" {
		if seg == nil || ended.Segments == 0 {
			SetRecording(context.WithoutCancel(ctx), s.DB, ended.ID, "failed", 0, "Nothing was received to record.")
		} else {
			s.wg.Go(func() { s.record(context.WithoutCancel(ctx), ended, file, log) })
		}
	}
	// Viewers a little behind still fetch the last segments; then the files go.
	time.AfterFunc(2*time.Minute, func() { os.RemoveAll(s.streamDir(stream.ID)) })
}

// admit checks the key of a publish request and starts the stream.
func (s *Service) admit(ctx context.Context, sc *gortmplib.ServerConn) (Stream, error) {
	if !sc.Publish {
		return Stream{}, fmt.Errorf("%w: only publishing is served, not playing over RTMP", errRefused)
	}
	dir, key := path.Split(sc.URL.Path)
	if strings.Trim(dir, "/") != "live" || key == "" {
		return Stream{}, fmt.Errorf("%w: the address is not rtmp://host/live/KEY", errRefused)
	}
	k, err := FindKey(ctx, s.DB, key)
	if err != nil {
		return Stream{}, fmt.Errorf("%w: wrong or revoked stream key: %w", errRefused, err)
	}
	settings, err := FindSettings(ctx, s.DB, k.ShowID)
	if err != nil {
		return Stream{}, err
	}
	st, err := StartStream(ctx, s.DB, k, settings.Record && s.Publish != nil)
	if err != nil {
		return Stream{}, fmt.Errorf("%w: %w", errRefused, err)
	}
	return st, nil
}

// ingest reads the stream until it stops, and says why it ended.
func (s *Service) ingest(ctx context.Context, c net.Conn, sc *gortmplib.ServerConn, st Stream, log *slog.Logger) (string, *segmenter) {
	r := &gortmplib.Reader{Conn: sc}
	if err := r.Initialize(); err != nil {
		return endReason(ctx, err), nil
	}
	var video, audio *gortmplib.Track
	for _, t := range r.Tracks() {
		switch t.Codec.(type) {
		case *codecs.H264:
			video = t
		case *codecs.MPEG4Audio:
			audio = t
		}
	}
	if video == nil {
		log.Warn("live: the stream has no H.264 video")
		return "no H.264 video", nil
	}
	h := video.Codec.(*codecs.H264)
	var aac *codecs.MPEG4Audio
	if audio != nil {
		aac = audio.Codec.(*codecs.MPEG4Audio)
	}
	seg, err := newSegmenter(s.streamDir(st.ID), s.target(), h.SPS, h.PPS, audioConfig(aac))
	if err != nil {
		log.Error("live: segmenter", slog.Any("error", err))
		return "server error", nil
	}
	seg.onSegment = func(Segment) {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := TouchStream(tctx, s.DB, st.ID); err != nil {
			log.Warn("live: touch stream", slog.Any("error", err))
		}
	}
	var writeErr error
	r.OnDataH264(video, func(pts, dts time.Duration, au [][]byte) {
		if err := seg.writeH264(pts, dts, au); err != nil && writeErr == nil {
			writeErr = err
		}
	})
	if audio != nil {
		r.OnDataMPEG4Audio(audio, func(pts time.Duration, au []byte) {
			if err := seg.writeAAC(pts, au); err != nil && writeErr == nil {
				writeErr = err
			}
		})
	}
	for {
		c.SetReadDeadline(time.Now().Add(s.silence()))
		if err := r.Read(); err != nil {
			return endReason(ctx, err), seg
		}
		if writeErr != nil {
			log.Error("live: writing segments", slog.Any("error", writeErr))
			return "server error", seg
		}
	}
}

func audioConfig(a *codecs.MPEG4Audio) *mpeg4audio.AudioSpecificConfig {
	if a == nil {
		return nil
	}
	return a.Config
}

func endReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return "shutdown"
	case errors.As(err, &ne) && ne.Timeout():
		return "silent"
	}
	return "disconnected"
}

var fileName = regexp.MustCompile(`^(index\.m3u8|hashes\.json|init\.mp4|[0-9]{1,9}\.m4s)$`)

// File is the path of one of a stream's HLS files (index.m3u8, hashes.json, init.mp4, N.m4s),
// or ErrNotFound for any other name.
func (s *Service) File(streamID int64, name string) (string, error) {
	if !fileName.MatchString(name) {
		return "", fmt.Errorf("live file %q: %w", name, ErrNotFound)
	}
	return filepath.Join(s.streamDir(streamID), name), nil
}

func (s *Service) streamDir(id int64) string { return filepath.Join(s.Dir, strconv.FormatInt(id, 10)) }

// record remuxes the fragmented recording into one mp4 with its moov first and publishes it.
func (s *Service) record(ctx context.Context, st Stream, fragmented string, log *slog.Logger) {
	fail := func(msg string, err error) {
		log.Error("live: recording", slog.String("step", msg), slog.Any("error", err))
		SetRecording(ctx, s.DB, st.ID, "failed", 0, msg)
	}
	if err := SetRecording(ctx, s.DB, st.ID, "publishing", 0, ""); err != nil {
		log.Error("live: recording", slog.Any("error", err))
	}
	ffmpeg := s.FFmpeg
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	out := filepath.Join(filepath.Dir(fragmented), "live-"+st.StartedAt.UTC().Format("2006-01-02-1504")+".mp4")
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", fragmented,
		"-c", "copy", "-movflags", "+faststart", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		fail("The recording could not be remuxed into an mp4.", fmt.Errorf("%w: %s", err, b))
		return
	}
	defer os.Remove(out)
	os.Remove(fragmented)
	episodeID, err := s.Publish(ctx, st, out)
	if err != nil {
		fail("The recording could not be published.", err)
		return
	}
	if err := SetRecording(ctx, s.DB, st.ID, "episode", episodeID, ""); err != nil {
		log.Error("live: recording", slog.Any("error", err))
		return
	}
	log.Info("live: recording handed to publishing", slog.Int64("episode_id", episodeID))
}
