package main

import (
	"net"
	"testing"

	"github.com/fanseed/fanseed/internal/testkit"
)

// newNetns creates a network namespace joined to the host by a veth pair (testkit.Netns),
// removed when the test ends. It needs root, as CI has: the test fails, rather than skips,
// without it.
func newNetns(t *testing.T) *testkit.Netns {
	t.Helper()
	n, err := testkit.NewNetns()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// freeAddrOn is a free TCP port on ip, as host:port.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
