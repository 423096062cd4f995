package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestSeedboxIdentityAndRemoval runs serve and `fanseed seedbox` processes as an operator would:
// a process taking an enrolled node's name without its secret is refused and stops;
// `seedbox remove` drains a node, whose process is then told it is removed and exits cleanly;
// restarted, it is refused and stays removed until `seedbox readmit`; `seedbox revoke` makes
// a running node refused (it stops), and re-admitted it enrols again.
func TestSeedboxIdentityAndRemoval(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "DATA_DIR": t.TempDir(),
		"LOG_FORMAT": "text", "RECONCILE_EVERY": "500ms"})
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	admin := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		env := map[string]string{"DATABASE_URL": dbURL, "LOG_FORMAT": "text"}
		if err := run(context.Background(), append([]string{"fanseed", "seedbox"}, args...), func(k string) string { return env[k] }, &out, io.Discard); err != nil {
			t.Fatalf("seedbox %v: %v", args, err)
		}
		return out.String()
	}
	status := func(name string) (status string, beating bool) {
		t.Helper()
		db.QueryRow(context.Background(), `SELECT status, last_heartbeat > now() - interval '3 seconds' FROM nodes WHERE name = $1`, name).Scan(&status, &beating)
		return status, beating
	}
	waitUp := func(p *seedboxProc) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if st, beating := status(p.name); st == "up" && beating {
				return
			}
			if time.Now().After(deadline) {
				st, _ := status(p.name)
				t.Fatalf("%s is %q 20 s after starting:\n%s", p.name, st, p.logs)
			}
		}
	}
	// waitExit waits for a process to stop by itself and returns its exit code.
	waitExit := func(p *seedboxProc, within time.Duration) int {
		t.Helper()
		select {
		case <-p.done:
			return p.cmd.ProcessState.ExitCode()
		case <-time.After(within):
			t.Fatalf("%s still runs %s later:\n%s", p.name, within, p.logs)
		}
		return 0
	}

	dir1, dir2 := t.TempDir(), t.TempDir()
	n1, n2 := startSeedbox(t, bin, base, "n1", dir1), startSeedbox(t, bin, base, "n2", dir2)
	waitUp(n1)
	waitUp(n2)
	secret1, err := os.ReadFile(filepath.Join(dir1, "node_secret"))
	if fi, _ := os.Stat(filepath.Join(dir1, "node_secret")); err != nil || len(bytes.TrimSpace(secret1)) < 26 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("n1 keeps no secret readable by its owner alone in its data directory: %q, %v", secret1, err)
	}
	if strings.Contains(n1.logs.String(), strings.TrimSpace(string(secret1))) {
		t.Error("n1 logged its secret")
	}

	impostor := startSeedbox(t, bin, base, "n1", t.TempDir())
	if code := waitExit(impostor, 20*time.Second); code == 0 || !strings.Contains(impostor.logs.String(), "already enrolled") ||
		!strings.Contains(impostor.logs.String(), "fanseed seedbox readmit n1") {
		t.Fatalf("a second process named n1 exited with %d, want an error saying the name is enrolled and how to re-admit:\n%s", code, impostor.logs)
	}
	time.Sleep(2500 * time.Millisecond)
	if st, beating := status("n1"); st != "up" || !beating {
		t.Fatalf("the real n1 is %s (heartbeating: %v) after the impostor tried", st, beating)
	}

	if out := admin("remove", "n1"); !strings.Contains(out, "draining") {
		t.Errorf("seedbox remove said %q", out)
	}
	if code := waitExit(n1, 20*time.Second); code != 0 || !strings.Contains(n1.logs.String(), "removed from the fleet: the seedbox node stops") {
		t.Fatalf("removed n1 exited with %d, want 0 with a line saying why:\n%s", code, n1.logs)
	}
	n1 = startSeedbox(t, bin, base, "n1", dir1)
	if code := waitExit(n1, 20*time.Second); code == 0 || !strings.Contains(n1.logs.String(), "was removed from the fleet") {
		t.Fatalf("restarted removed n1 exited with %d, want an error saying it was removed:\n%s", code, n1.logs)
	}
	if st, _ := status("n1"); st != "removed" {
		t.Fatalf("n1 is %s after restarting, want still removed", st)
	}
	if out := admin("readmit", "n1"); !strings.Contains(out, "re-admitted") {
		t.Errorf("seedbox readmit said %q", out)
	}
	n1 = startSeedbox(t, bin, base, "n1", dir1)
	waitUp(n1)
	if again, _ := os.ReadFile(filepath.Join(dir1, "node_secret")); bytes.Equal(again, secret1) || len(again) == 0 {
		t.Error("re-admitted n1 did not get a new secret")
	}

	if out := admin("revoke", "n2"); !strings.Contains(out, "revoked") {
		t.Errorf("seedbox revoke said %q", out)
	}
	if code := waitExit(n2, 20*time.Second); code == 0 || !strings.Contains(n2.logs.String(), "revoked") {
		t.Fatalf("revoked n2 exited with %d, want an error saying its secret was refused:\n%s", code, n2.logs)
	}
	if st, _ := status("n2"); st != "down" {
		t.Errorf("revoked n2 is %s, want down", st)
	}
	admin("readmit", "n2")
	n2 = startSeedbox(t, bin, base, "n2", dir2)
	waitUp(n2)
	for _, series := range []string{"fanseed_fleet_shortage_torrents", "fanseed_fleet_shortage_bytes", "fanseed_torrents_under_replicated"} {
		if v, ok := metricValue(t, base, series); !ok || v != 0 {
			t.Errorf("/metrics %s = %v (found %v), want 0", series, v, ok)
		}
	}
}
