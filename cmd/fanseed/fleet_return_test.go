package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestReturningSeedboxKeepsItsVerifiedCopy runs serve and three `fanseed seedbox` processes in
// three zones. A node seeding an episode is frozen (SIGSTOP) until it is marked down and another
// node seeds the episode in its place; thawed (SIGCONT), it keeps its file, verifies it again, and
// its copy counts again: the replacement is the surplus the fleet drops, not the returning copy.
func TestReturningSeedboxKeepsItsVerifiedCopy(t *testing.T) {
	t.Parallel()
	bin := buildFanseed(t)
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL, "NODE_TOKEN": testNodeToken, "DATA_DIR": t.TempDir(),
		"LOG_FORMAT": "text", "RECONCILE_EVERY": "300ms", "NODE_DOWN_AFTER": "2s"})
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	nodes := map[string]*seedboxProc{}
	for i, name := range []string{"n1", "n2", "n3"} {
		nodes[name] = startSeedbox(t, bin, base, name, t.TempDir(), "NODE_ZONE=zone-"+string(rune('a'+i)))
	}
	dumpLogs := func() {
		for _, n := range nodes {
			t.Logf("--- %s:\n%s", n.name, n.logs)
		}
	}
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				dumpLogs()
				t.Fatalf("%s: not within %s", what, within)
			}
		}
	}
	waitFor("three nodes up", 20*time.Second, func() bool {
		var up int
		db.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE status = 'up' AND zone LIKE 'zone-_'`).Scan(&up)
		return up == 3
	})

	data := mediaFile(7, 4<<20+777)
	creator, episodePath := uploadEpisode(t, base, "pilot.mp4", data)
	waitPublished(t, creator, episodePath, 60*time.Second)
	m := regexp.MustCompile(`/t/([0-9a-f]{40})\.torrent`).FindStringSubmatch(string(creator.get(episodePath)))
	if m == nil {
		t.Fatal("episode page has no .torrent link")
	}
	ih, _ := hex.DecodeString(m[1])
	// holders lists the nodes whose copy is in a state, by name.
	holders := func(where string) []string {
		rows, _ := db.Query(ctx, `SELECT n.name FROM assignments a JOIN nodes n ON n.id = a.node_id JOIN torrents t ON t.id = a.torrent_id
			WHERE t.infohash = $1 AND `+where+` ORDER BY n.name`, ih)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	// Under load a replica may be proven late, so that the fleet assigned a third node meanwhile;
	// it drops the surplus once both count.
	seeding := holders("a.state = 'seeding'")
	for deadline := time.Now().Add(60 * time.Second); len(seeding) != 2 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		seeding = holders("a.state = 'seeding'")
	}
	if len(seeding) != 2 {
		t.Fatalf("published with %v seeding 60 s on, want 2", seeding)
	}
	victim, spare := nodes[seeding[0]], ""
	for name := range nodes {
		if name != seeding[0] && name != seeding[1] {
			spare = name
		}
	}
	file := filepath.Join(victim.dir, "torrents", m[1], "pilot.mp4")
	before, err := os.Stat(file)
	if err != nil {
		t.Fatalf("%s holds no file: %v", victim.name, err)
	}

	victim.cmd.Process.Signal(syscall.SIGSTOP)
	waitFor(spare+" seeds in place of the frozen "+victim.name, 60*time.Second, func() bool {
		var status string
		db.QueryRow(ctx, `SELECT status FROM nodes WHERE name = $1`, victim.name).Scan(&status)
		return status == "down" && strings.Contains(strings.Join(holders("a.state = 'seeding'"), ","), spare)
	})
	if got := holders("a.state <> 'dropping'"); len(got) != 3 {
		t.Fatalf("holders while %s is down: %v, want its copy kept beside the two seeding", victim.name, got)
	}

	victim.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(victim.name+" back and seeding, the surplus dropped", 60*time.Second, func() bool {
		got := holders("a.state = 'seeding' AND n.status = 'up'")
		return len(got) == 2 && strings.Contains(strings.Join(got, ","), victim.name) && len(holders("a.state <> 'dropping'")) == 2
	})
	if !strings.Contains(victim.logs.String(), "verifying the data held again") {
		t.Errorf("%s did not say it verified its data again:\n%s", victim.name, victim.logs)
	}
	if got := holders("a.state <> 'dropping'"); strings.Contains(strings.Join(got, ","), spare) {
		t.Errorf("holders %v at the end, want the replacement on %s dropped rather than the returning copy", got, spare)
	}
	after, err := os.Stat(file)
	if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("%s's file was replaced while it was down and back (%v)", victim.name, err)
	}
	if b, err := os.ReadFile(file); err != nil || sha256.Sum256(b) != sha256.Sum256(data) {
		t.Fatalf("%s's file differs from the episode: %v", victim.name, err)
	}
}
