package testkit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Netns is a network namespace joined to the host by a veth pair: the host side has HostIP, the
// namespace side PeerIP, on a /24 of their own. Clients that neither dial nor serve loopback
// peers (Transmission), or that gather no loopback ICE candidates (pion, Chromium), run inside
// it, or beside it on the host side, against servers on HostIP.
type Netns struct {
	Name, HostIP, PeerIP string
	host                 string // the host side's link
}

var netnsSeq atomic.Int64

// NewNetns creates a namespace and its veth pair; it needs root (CI runs as root). Close removes
// them.
func NewNetns() (*Netns, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("making a network namespace (a veth pair) needs root")
	}
	name := fmt.Sprintf("fs%d-%d", os.Getpid()%100000, netnsSeq.Add(1))
	n := &Netns{Name: name, host: "vh" + name[2:]}
	var subnet string
	for range 50 {
		candidate := fmt.Sprintf("10.%d.%d", 100+rand.IntN(100), rand.IntN(256))
		if !subnetInUse(candidate) {
			subnet = candidate
			break
		}
	}
	if subnet == "" {
		return nil, errors.New("no free 10.x.y.0/24 for the network namespace")
	}
	n.HostIP, n.PeerIP = subnet+".1", subnet+".2"
	peer := "vp" + name[2:]
	for _, args := range [][]string{
		{"netns", "add", name},
		{"link", "add", n.host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", name},
		{"addr", "add", n.HostIP + "/24", "dev", n.host},
		{"link", "set", n.host, "up"},
		{"-n", name, "addr", "add", n.PeerIP + "/24", "dev", peer},
		{"-n", name, "link", "set", peer, "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			n.Close()
			return nil, fmt.Errorf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return n, nil
}

// Command runs a program inside the namespace.
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close removes the namespace and the veth pair.
func (n *Netns) Close() {
	exec.Command("ip", "link", "del", n.host).Run()
	exec.Command("ip", "netns", "del", n.Name).Run()
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
