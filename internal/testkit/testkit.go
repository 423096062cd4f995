// Package testkit holds the small helpers the tests of several packages share: a log several
// goroutines write while the test reads it, a small file system that fills up, a loopback
// listener that hands each connection to a function, a network namespace joined by a veth pair.
// It imports nothing of Fanseed's, so that any package's tests may use it; only tests and the
// benchmarks import it.
package testkit

import (
	"bytes"
	"net"
	"os/exec"
	"sync"
	"testing"
)

// LogBuffer is a log (or a process's output) that several goroutines write while the test
// reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SmallDisk mounts a tmpfs of the given size (such as "1m") for the test and returns its path
// (the tests run as root, as CI does).
func SmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs (the tests need root): %v: %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Serve listens on a loopback port until the test ends, hands each connection to serve in a
// goroutine of its own, and returns the address.
func Serve(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}

// Latin1 writes bytes as the WebTorrent protocol's binary strings: each byte one rune.
func Latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
