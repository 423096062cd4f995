package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// netns is a network namespace the test creates, joined to the host by a veth pair: the host
// side has HostIP, the namespace side PeerIP, on a /24 of their own. Clients that neither dial
// nor serve loopback peers (Transmission), or that gather no loopback ICE candidates (pion),
// run inside it against servers listening on HostIP.
type netns struct {
	Name, HostIP, PeerIP string
}

var netnsSeq atomic.Int64

// newNetns creates a namespace and its veth pair, removed when the test ends. It needs root, as
// CI has: the test fails, rather than skips, without it.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and needs root (CI runs as root)")
	}
	seq := netnsSeq.Add(1)
	name := fmt.Sprintf("fs%d-%d", os.Getpid()%100000, seq)
	host, peer := "vh"+name[2:], "vp"+name[2:]
	var subnet string
	for range 50 {
		candidate := fmt.Sprintf("10.%d.%d", 100+rand.IntN(100), rand.IntN(256))
		if !subnetInUse(candidate) {
			subnet = candidate
			break
		}
	}
	if subnet == "" {
		t.Fatal("no free 10.x.y.0/24 for the network namespace")
	}
	n := &netns{Name: name, HostIP: subnet + ".1", PeerIP: subnet + ".2"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	run("link", "set", peer, "netns", name)
	run("addr", "add", n.HostIP+"/24", "dev", host)
	run("link", "set", host, "up")
	run("-n", name, "addr", "add", n.PeerIP+"/24", "dev", peer)
	run("-n", name, "link", "set", peer, "up")
	run("-n", name, "link", "set", "lo", "up")
	return n
}

// subnetInUse reports whether any address of the host is in 10.a.b.0/24.
func subnetInUse(prefix string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), prefix+".") {
			return true
		}
	}
	return false
}

// Command runs a program inside the namespace.
func (n *netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
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
