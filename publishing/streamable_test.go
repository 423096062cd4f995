package publishing

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Files ffmpeg makes: an MP4 with its moov at the end (ffmpeg's default) and one with
// +faststart, a WebM with cues (a seekable output) and one written as a live stream (none).
func TestStreamable(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	src := []string{"-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "3"}
	tests := []struct {
		name, file, ctype string
		args              []string
		wantFix           string // "" for a streamable file
	}{
		{"MP4MoovLast", "late.mp4", "video/mp4", []string{"-c:v", "libx264"}, "-movflags +faststart"},
		{"MP4FastStart", "fast.mp4", "video/mp4", []string{"-c:v", "libx264", "-movflags", "+faststart"}, ""},
		{"M4AMoovLast", "late.m4a", "audio/mp4", []string{"-f", "lavfi", "-i", "sine=frequency=440", "-map", "1:a", "-t", "3", "-c:a", "aac"}, "-movflags +faststart"},
		{"WebMCues", "cues.webm", "video/webm", []string{"-c:v", "libvpx"}, ""},
		{"WebMLiveNoCues", "live.webm", "video/webm", []string{"-c:v", "libvpx", "-f", "webm", "-live", "1"}, "-cues_to_front 1"},
		{"MP3", "a.mp3", "audio/mpeg", []string{"-f", "lavfi", "-i", "sine=frequency=440", "-map", "1:a", "-t", "3"}, ""},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			args := append(append(append([]string{}, src...), tt.args...), "-y", path)
			if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			p, err := Streamable(path, tt.ctype)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantFix == "" && p != nil:
				t.Errorf("Streamable = %+v, want streamable", p)
			case tt.wantFix != "" && p == nil:
				t.Errorf("Streamable = streamable, want a fix with %q", tt.wantFix)
			case tt.wantFix != "" && !strings.Contains(p.Fix, tt.wantFix):
				t.Errorf("Fix = %q, want it to contain %q", p.Fix, tt.wantFix)
			}
			if tt.wantFix == "" {
				return
			}
			// The fix it gives does make the file streamable.
			fixed := filepath.Join(dir, "fixed-"+tt.file)
			fix := strings.Fields(p.Fix)
			for i, a := range fix {
				switch {
				case strings.HasPrefix(a, "in."):
					fix[i] = path
				case strings.HasPrefix(a, "out."):
					fix[i] = fixed
				}
			}
			if out, err := exec.Command("ffmpeg", append([]string{"-loglevel", "error", "-y"}, fix[1:]...)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", p.Fix, err, out)
			}
			if got, err := Streamable(fixed, tt.ctype); err != nil || got != nil {
				t.Errorf("after %q: Streamable = %+v, %v; want streamable", p.Fix, got, err)
			}
		})
	}
}
