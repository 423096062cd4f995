// Package stripetest runs Stripe's mock server (stripe-mock, a tool of this module) for tests.
package stripetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	once     sync.Once
	baseURL  string
	startErr error
)

// URL returns the base URL of a stripe-mock server shared by the tests of this process, building
// and starting it on free loopback ports the first time. It dies with the test process.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { baseURL, startErr = start() })
	if startErr != nil {
		tb.Fatalf("stripe-mock: %v", startErr)
	}
	return baseURL
}

// Start is URL for programs that are not tests (the benchmarks): the same shared server, or
// why it did not start.
func Start() (string, error) {
	once.Do(func() { baseURL, startErr = start() })
	return baseURL, startErr
}

func start() (string, error) {
	dir, err := os.MkdirTemp("", "stripe-mock-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "stripe-mock")
	build := exec.Command("go", "build", "-o", bin, "github.com/stripe/stripe-mock")
	build.Dir = moduleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build stripe-mock: %v\n%s", err, out)
	}
	httpAddr, httpsAddr, err := freeAddr(), freeAddr(), error(nil)
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig fires when the thread that started the child ends: start it from a goroutine
	// that keeps its thread locked and waits on the child for the life of the process.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		select {} // never unlock: ending this thread would kill the child
	}()
	if err = <-started; err != nil {
		return "", err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + httpAddr, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	return "", fmt.Errorf("not listening on %s after 60s:\n%s", httpAddr, b)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// moduleRoot is the directory of go.mod, found from this file's place in the module.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
