package seeding

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// The fleet token only enrols: a node's later calls need the secret its enrolment gave it. A
// name already enrolled is refused without that secret; a heartbeat for another node's id is
// refused; a revoked node is refused until re-admitted; a removed node stays removed, however
// often it registers, until an admin re-admits it.
func TestNodeIdentity(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	ctx := context.Background()
	info := func(name, addr string) NodeInfo {
		return NodeInfo{Name: name, ListenAddr: addr, PublicAddr: addr, CapacityBytes: 1 << 30}
	}
	status := func(id int64) (status, addr string, hash []byte) {
		t.Helper()
		if err := f.db.QueryRow(ctx, `SELECT status, public_addr, secret_hash FROM nodes WHERE id = $1`, id).Scan(&status, &addr, &hash); err != nil {
			t.Fatal(err)
		}
		return status, addr, hash
	}
	n1 := f.node("n1", 1<<30)
	s1 := f.secret(n1)
	if len(s1) < 26 {
		t.Fatalf("enrolment gave the secret %q, want a random one", s1)
	}
	if _, _, hash := status(n1); !bytes.Equal(hash, func() []byte { h := sha256.Sum256([]byte(s1)); return h[:] }()) {
		t.Errorf("stored %x, want the secret's SHA-256 and never the secret", hash)
	}

	t.Run("ErrNameTaken", func(t *testing.T) {
		for _, secret := range []string{"", "wrong-secret-0123456789ab", f.secret(n1) + "x"} {
			_, err := f.fleet.Register(ctx, info("n1", "203.0.113.9:6881"), secret)
			if !errors.Is(err, ErrNameTaken) || !strings.Contains(FailureReason(err), "fanseed seedbox readmit n1") {
				t.Errorf("taking n1's name with secret %q: %v, want ErrNameTaken saying how an admin re-admits", secret, err)
			}
		}
		if _, addr, _ := status(n1); addr == "203.0.113.9:6881" {
			t.Error("a refused registration changed n1's address")
		}
		e, err := f.fleet.Register(ctx, info("n1", "127.0.0.1:7101"), s1)
		if err != nil || e.ID != n1 || e.Secret != "" {
			t.Fatalf("n1 registering again with its secret: %+v, %v; want id %d and no new secret", e, err, n1)
		}
		if _, addr, _ := status(n1); addr != "127.0.0.1:7101" {
			t.Errorf("n1's address after registering again: %s", addr)
		}
	})

	n2 := f.node("n2", 1<<30)
	t.Run("ErrSecretRefused", func(t *testing.T) {
		for _, secret := range []string{"", s1, "x"} {
			_, err := f.fleet.Heartbeat(ctx, n2, secret, Heartbeat{DiskUsed: 999})
			if !errors.Is(err, ErrSecretRefused) {
				t.Errorf("heartbeat as n2 with secret %q: %v, want ErrSecretRefused", secret, err)
			}
			if secret == "" && !strings.Contains(FailureReason(err), NodeSecretHeader) {
				t.Errorf("heartbeat without a secret: %q does not name the header", FailureReason(err))
			}
		}
		var disk int64
		f.db.QueryRow(ctx, `SELECT disk_used FROM nodes WHERE id = $1`, n2).Scan(&disk)
		if disk != 0 {
			t.Errorf("a refused heartbeat recorded disk_used %d", disk)
		}
		if o, err := f.fleet.Heartbeat(ctx, n2, f.secret(n2), Heartbeat{}); err != nil || o.Status != NodeUp {
			t.Errorf("n2's own heartbeat: %+v, %v", o, err)
		}
	})

	t.Run("revoke and re-admit", func(t *testing.T) {
		if err := f.fleet.Revoke(ctx, n1); err != nil {
			t.Fatal(err)
		}
		if st, _, hash := status(n1); st != NodeDown || hash != nil {
			t.Errorf("revoked n1 is %s with secret hash %x, want down with none", st, hash)
		}
		if _, err := f.fleet.Heartbeat(ctx, n1, s1, Heartbeat{}); !errors.Is(err, ErrSecretRefused) {
			t.Errorf("revoked node's heartbeat: %v, want ErrSecretRefused", err)
		}
		if _, err := f.fleet.Register(ctx, info("n1", "127.0.0.1:7101"), s1); !errors.Is(err, ErrNameTaken) {
			t.Errorf("revoked node registering: %v, want ErrNameTaken", err)
		}
		if o, err := f.fleet.Overview(ctx); err != nil || len(o.Nodes) != 2 || !o.Nodes[0].Revoked || o.Nodes[1].Revoked {
			t.Errorf("overview after revoking n1: %+v, %v", o.Nodes, err)
		}
		if err := f.fleet.Readmit(ctx, n1); err != nil {
			t.Fatal(err)
		}
		e, err := f.fleet.Register(ctx, info("n1", "127.0.0.1:7101"), "")
		if err != nil || e.ID != n1 || e.Secret == "" || e.Secret == s1 {
			t.Fatalf("re-admitted n1 registering: %+v, %v; want id %d with a new secret", e, err, n1)
		}
		if o, err := f.fleet.Heartbeat(ctx, n1, e.Secret, Heartbeat{}); err != nil || o.Status != NodeUp {
			t.Errorf("re-admitted n1's heartbeat: %+v, %v", o, err)
		}
		if _, err := f.fleet.Register(ctx, info("n1", "127.0.0.1:7101"), ""); !errors.Is(err, ErrNameTaken) {
			t.Errorf("a second registration after one re-admission: %v, want ErrNameTaken", err)
		}
		if err := f.fleet.Revoke(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking an unknown node: %v", err)
		}
	})

	t.Run("removed stays removed", func(t *testing.T) {
		if err := f.fleet.Drain(ctx, n2); err != nil {
			t.Fatal(err)
		}
		f.reconcile() // it holds nothing: removed at once
		if st, _, _ := status(n2); st != NodeRemoved {
			t.Fatalf("drained n2 is %s", st)
		}
		o, err := f.fleet.Heartbeat(ctx, n2, f.secret(n2), Heartbeat{DiskUsed: 5})
		if err != nil || o.Status != NodeRemoved || len(o.Torrents) != 0 {
			t.Fatalf("removed node's heartbeat: %+v, %v; want to be told it is removed", o, err)
		}
		for _, secret := range []string{f.secret(n2), ""} {
			_, err := f.fleet.Register(ctx, info("n2", "127.0.0.1:7102"), secret)
			if !errors.Is(err, ErrRemoved) || !strings.Contains(FailureReason(err), "fanseed seedbox readmit n2") {
				t.Errorf("removed node registering again (secret %q): %v, want ErrRemoved saying how to re-admit", secret, err)
			}
		}
		if st, _, _ := status(n2); st != NodeRemoved {
			t.Fatalf("n2 is %s after registering again, want still removed", st)
		}
		if o, err := f.fleet.Overview(ctx); err != nil || len(o.Removed) != 1 || o.Removed[0].Name != "n2" {
			t.Errorf("overview lists removed nodes %+v (%v), want n2", o.Removed, err)
		}
		if err := f.fleet.Readmit(ctx, n2); err != nil {
			t.Fatal(err)
		}
		e, err := f.fleet.Register(ctx, info("n2", "127.0.0.1:7102"), f.secret(n2))
		if err != nil || e.ID != n2 || e.Secret == "" {
			t.Fatalf("re-admitted n2 registering: %+v, %v", e, err)
		}
		if st, _, _ := status(n2); st != NodeUp {
			t.Errorf("re-admitted n2 is %s, want up", st)
		}
	})
}
