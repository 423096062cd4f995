package publishing

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The duration of files ffmpeg makes, in each format an episode may be, is read from their
// headers to within a frame or two of what was encoded.
func TestMediaDuration(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	const want = 7300 * time.Millisecond
	sine := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=7.3"}
	video := []string{"-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=7.3"}
	cases := []struct {
		name, file string
		args       []string
		typ        string
	}{
		{"mp3 CBR with Info header", "cbr.mp3", append(sine, "-c:a", "libmp3lame", "-b:a", "128k"), "audio/mpeg"},
		{"mp3 VBR with Xing header", "vbr.mp3", append(sine, "-c:a", "libmp3lame", "-q:a", "4"), "audio/mpeg"},
		{"mp3 CBR without a header", "bare.mp3", append(sine, "-c:a", "libmp3lame", "-b:a", "96k", "-write_xing", "0", "-id3v2_version", "0"), "audio/mpeg"},
		{"mp3 at 22.05 kHz (MPEG-2)", "low.mp3", append(sine, "-c:a", "libmp3lame", "-ar", "22050", "-b:a", "32k"), "audio/mpeg"},
		{"m4a", "audio.m4a", append(sine, "-c:a", "aac", "-b:a", "96k"), "audio/mp4"},
		{"mp4 with moov first", "faststart.mp4", append(append(video, sine...), "-c:v", "mpeg4", "-c:a", "aac", "-movflags", "+faststart"), "video/mp4"},
		{"mp4 with moov last", "video.mp4", append(append(video, sine...), "-c:v", "mpeg4", "-c:a", "aac"), "video/mp4"},
		{"webm", "video.webm", append(append(video, sine...), "-c:v", "libvpx", "-c:a", "libopus"), ""},
		{"webm audio", "audio.webm", append(sine, "-c:a", "libopus"), ""},
		{"ogg vorbis", "audio.ogg", append(sine, "-c:a", "libvorbis"), "application/ogg"},
		{"ogg opus", "audio.opus", append(sine, "-c:a", "libopus"), "application/ogg"},
		{"flac", "audio.flac", append(sine, "-c:a", "flac"), "audio/flac"},
		{"wav", "audio.wav", append(sine, "-c:a", "pcm_s16le"), "audio/wave"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, c.file)
			args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, c.args...)
			if out, err := exec.Command("ffmpeg", append(args, path)...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			head := make([]byte, 512)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := f.Read(head)
			f.Close()
			typ, err := SniffMedia(head[:n])
			if err != nil {
				t.Fatalf("sniff: %v", err)
			}
			if c.typ != "" && typ != c.typ {
				t.Errorf("sniffed %s, want %s", typ, c.typ)
			}
			got, err := MediaDuration(path, typ)
			if err != nil {
				t.Fatalf("duration of %s (%s): %v", c.file, typ, err)
			}
			if d := got - want; d < -60*time.Millisecond || d > 120*time.Millisecond {
				t.Errorf("duration %v, want %v", got, want)
			}
		})
	}
}

// A file whose headers say nothing about time, or that lies about its sizes, gives an error
// rather than a made-up duration or a panic.
func TestMediaDurationUnknown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"zip":          []byte("PK\x03\x04rest of an archive"),
		"mp4 no moov":  []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08free"),
		"mp4 too long": []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\xff\xff\xff\xffmoov"),
		"mkv cut":      {0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x86, 0x81, 0x01, 0x18, 0x53, 0x80, 0x67, 0x01},
		"ogg cut":      []byte("OggS\x00\x02"),
		"mp3 noise":    make([]byte, 2000),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"application/zip", "video/mp4", "video/x-matroska", "application/ogg", "audio/mpeg"} {
			if d, err := MediaDuration(path, typ); err == nil {
				t.Errorf("%s as %s: duration %v, want an error", name, typ, d)
			}
		}
	}
}
