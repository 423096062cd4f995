package publishing

import (
	"bytes"
	"testing"
)

// Whatever bytes a file holds, reading its duration ends, without a panic, in an error or a
// positive duration.
func FuzzMediaDuration(f *testing.F) {
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x10\xff\xfb\x90\x00"), "audio/mpeg")
	f.Add([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x10moov\x00\x00\x00\x08mvhd"), "video/mp4")
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0xFF, 0x15, 0x49, 0xA9, 0x66, 0x84, 0x44, 0x89, 0x84, 0, 0, 0, 0}, "video/webm")
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x02\x38\x01"), "application/ogg")
	f.Add([]byte("fLaC\x00\x00\x00\x22"), "audio/flac")
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), "audio/wave")
	f.Fuzz(func(t *testing.T, b []byte, typ string) {
		d, err := mediaDuration(media{r: bytes.NewReader(b), size: int64(len(b))}, typ)
		if err == nil && d <= 0 {
			t.Fatalf("duration %v without an error", d)
		}
	})
}
