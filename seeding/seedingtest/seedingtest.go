// Package seedingtest starts seedbox nodes for tests and gives them an episode's file to serve,
// as a node that fetched and verified it would hold it. Only tests import it.
package seedingtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/seeding"
)

// Node starts a seedbox node without a control plane, on a loopback port, until the test ends.
func Node(t *testing.T, name string) *seeding.Node {
	t.Helper()
	node, err := seeding.NewNode(seeding.NodeConfig{Name: name, DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", CapacityBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	return node
}

// Hold gives node rec's file, data, and waits until it has verified it and seeds it.
func Hold(t *testing.T, node *seeding.Node, rec seeding.Record, data []byte) {
	t.Helper()
	mi, err := metainfo.Load(bytes.NewReader(rec.Metainfo))
	if err != nil {
		t.Fatal(err)
	}
	var ih [20]byte
	copy(ih[:], rec.InfoHash)
	dst := node.ContentPath(ih, rec.Name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := node.Add(mi, nil, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !node.Seeding(ih); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the node at %s did not verify the file in 30 s", node.Addr())
		}
	}
}
