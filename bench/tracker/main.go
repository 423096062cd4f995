// Command tracker measures Fanseed's trackers beside references on the same load, in one run:
// the HTTP tracker under wrk (distinct peers announcing to one published torrent, compact,
// numwant 50) beside Debian's opentracker, and the WebSocket tracker driven by simulated peers
// (each a socket announcing with an offer, then updating) beside the bittorrent-tracker npm
// server.
//
//	go run ./bench/tracker [-peers 10000] [-duration 10s]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/migrations"
)

func main() {
	peers := flag.Int("peers", 10000, "simulated WebSocket peers")
	duration := flag.Duration("duration", 10*time.Second, "how long wrk runs against each HTTP tracker")
	flag.Parse()
	if err := run(context.Background(), *peers, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "bench/tracker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, peers int, duration time.Duration) error {
	for _, tool := range []string{"wrk", "opentracker"} {
		if _, err := exec.LookPath(tool); err != nil {
			if err := benchkit.AptInstall(ctx, os.Stderr, "wrk", "opentracker"); err != nil {
				return err
			}
			break
		}
	}
	dir, bin, dbURL, cleanup, err := benchkit.Prepare(ctx, "tracker")
	if err != nil {
		return err
	}
	defer cleanup()
	ih := sha1.Sum([]byte("bench tracker"))
	if err := publish(ctx, dbURL, ih); err != nil {
		return err
	}
	serve, err := benchkit.StartServe(ctx, bin, "DATABASE_URL="+dbURL, "DATA_DIR="+filepath.Join(dir, "data"), "LOG_LEVEL=warn",
		"TRACKER_ANNOUNCES_PER_MINUTE=0", "TRACKER_SOCKETS_PER_IP=0")
	if err != nil {
		return err
	}
	defer serve.Stop()

	// HTTP: wrk, ours then opentracker's.
	script := filepath.Join(dir, "announce.lua")
	if err := os.WriteFile(script, []byte(wrkScript(ih)), 0o600); err != nil {
		return err
	}
	if err := waitAllowed(ctx, serve.Base, ih); err != nil {
		return err
	}
	ours, err := wrk(ctx, serve.Base, script, duration, serve.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	otAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	_, otPort, _ := strings.Cut(otAddr, ":")
	ot := exec.CommandContext(ctx, "opentracker", "-i", "127.0.0.1", "-p", otPort, "-P", otPort)
	ot.Stderr = os.Stderr
	if err := ot.Start(); err != nil {
		return fmt.Errorf("opentracker: %w", err)
	}
	defer func() { ot.Process.Kill(); ot.Wait() }()
	time.Sleep(500 * time.Millisecond)
	ref, err := wrk(ctx, "http://"+otAddr, script, duration, ot.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("HTTP tracker, wrk -t2 -c64 %s, distinct peers, one torrent, compact, numwant 50\n", duration)
	fmt.Printf("  fanseed      %9.0f announces/s  p99 %7.2f ms  %9.0f announces per CPU-second\n", ours.rate, ours.p99ms, ours.perCPUSecond())
	fmt.Printf("  opentracker  %9.0f announces/s  p99 %7.2f ms  %9.0f announces per CPU-second\n", ref.rate, ref.p99ms, ref.perCPUSecond())
	fmt.Printf("  ratio %.2fx, per CPU-second %.2fx (goal at least 1.0x with p99 under 10 ms)\n\n", ours.rate/ref.rate, ours.perCPUSecond()/ref.perCPUSecond())

	// WebSocket: our tracker, then bittorrent-tracker's server.
	wsOurs, err := drive(ctx, "ws"+strings.TrimPrefix(serve.Base, "http")+"/announce", ih, peers, serve.Cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("fanseed WebSocket tracker: %w", err)
	}
	fmt.Printf("WebSocket tracker, %d peers in one swarm, each: announce with an offer, then 2 updates, 256 in flight;\n", peers)
	fmt.Printf("then %d updates a second for %s, one peer after another (p99 at that load)\n", pacedRate, pacedFor)
	fmt.Printf("  fanseed             %9.0f announces/s  p99 %7.2f ms  paced p99 %6.2f ms  %9.0f per CPU-second  (%d offers relayed)\n", wsOurs.rate, wsOurs.p99ms, wsOurs.pacedP99ms, wsOurs.perCPUSecond(), wsOurs.relayed)
	wsAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	node, err := startReference(ctx, wsAddr)
	if err != nil {
		return err
	}
	defer func() { node.Process.Kill(); node.Wait() }()
	wsRef, err := drive(ctx, "ws://"+wsAddr, ih, peers, node.Process.Pid)
	if err != nil {
		return fmt.Errorf("bittorrent-tracker: %w", err)
	}
	fmt.Printf("  bittorrent-tracker  %9.0f announces/s  p99 %7.2f ms  paced p99 %6.2f ms  %9.0f per CPU-second  (%d offers relayed)\n", wsRef.rate, wsRef.p99ms, wsRef.pacedP99ms, wsRef.perCPUSecond(), wsRef.relayed)
	fmt.Printf("  ratio %.2fx, per CPU-second %.2fx (goal at least 2x with p99 under 20 ms)\n", wsOurs.rate/wsRef.rate, wsOurs.perCPUSecond()/wsRef.perCPUSecond())
	return nil
}

// publish makes a published torrent the trackers serve, straight in the database.
func publish(ctx context.Context, dbURL string, ih [20]byte) error {
	conn, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := migrations.Up(ctx, conn, nil); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `
		WITH a AS (INSERT INTO accounts (email, name, password_hash, role) VALUES ('bench@example.com', 'B', 'x', 'creator') RETURNING id),
		     s AS (INSERT INTO shows (owner_id, slug, title, currency) SELECT id, 'bench', 'Bench', 'USD' FROM a RETURNING id),
		     e AS (INSERT INTO episodes (show_id, title, status, published_at) SELECT id, 'Pilot', 'published', now() FROM s RETURNING id)
		INSERT INTO torrents (episode_id, infohash, name, length, piece_length, sha256, content_type, content_path, metainfo, status)
		SELECT id, $1, 'pilot.mp4', 1000, 16384, $2, 'video/mp4', '/nowhere', 'd4:infod}e', 'published' FROM e`, ih[:], make([]byte, 32))
	return err
}

func waitAllowed(ctx context.Context, base string, ih [20]byte) error {
	for range 100 {
		out, _ := exec.CommandContext(ctx, "curl", "-s", base+"/announce?info_hash="+url.QueryEscape(string(ih[:]))+
			"&peer_id=-WK0001-000000000000&port=1&uploaded=0&downloaded=0&left=1&compact=1").Output()
		if len(out) > 0 && !strings.Contains(string(out), "failure reason") {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the tracker does not serve the bench torrent")
}

func wrkScript(ih [20]byte) string {
	return fmt.Sprintf(`local ih = %q
local n = 0
request = function()
  n = n + 1
  local id = string.format("-WK0001-%%06d%%06d", math.random(0, 999999), n %% 1000000)
  local port = math.random(1, 65535)
  return wrk.format("GET", "/announce?info_hash=" .. ih .. "&peer_id=" .. id .. "&port=" .. port ..
    "&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50&event=started")
end
`, url.QueryEscape(string(ih[:])))
}

type figure struct {
	rate, p99ms float64
	pacedP99ms  float64 // WebSocket: p99 at pacedRate announces a second
	relayed     int64
	cpu         time.Duration // the tracker process's CPU time over the run
	announces   int64         // answered in the run
}

var (
	wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99  = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
)

func wrk(ctx context.Context, base, script string, d time.Duration, pid int) (figure, error) {
	cpu0 := benchkit.ProcCPU(pid)
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c64", "-d"+d.String(), "--latency", "-s", script, base).CombinedOutput()
	if err != nil {
		return figure{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	r, p := wrkRate.FindSubmatch(out), wrkP99.FindSubmatch(out)
	if r == nil || p == nil {
		return figure{}, fmt.Errorf("wrk's output has no rate or p99:\n%s", out)
	}
	var f figure
	f.rate, _ = strconv.ParseFloat(string(r[1]), 64)
	f.p99ms, _ = strconv.ParseFloat(string(p[1]), 64)
	switch string(p[2]) {
	case "us":
		f.p99ms /= 1000
	case "s":
		f.p99ms *= 1000
	}
	f.cpu, f.announces = benchkit.ProcCPU(pid)-cpu0, int64(f.rate*d.Seconds())
	return f, nil
}

// perCPUSecond is the announces the tracker answered per second of its own CPU time: what it
// would carry with a core to itself, where the load generator shares the machine's cores.
func (f figure) perCPUSecond() float64 {
	if f.cpu <= 0 {
		return 0
	}
	return float64(f.announces) / f.cpu.Seconds()
}

// startReference runs bittorrent-tracker's server (installed under bench/tracker with npm ci).
func startReference(ctx context.Context, addr string) (*exec.Cmd, error) {
	here := filepath.Join("bench", "tracker")
	if _, err := os.Stat(filepath.Join(here, "node_modules", "bittorrent-tracker")); err != nil {
		install := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		install.Dir, install.Stdout, install.Stderr = here, os.Stderr, os.Stderr
		if err := install.Run(); err != nil {
			return nil, fmt.Errorf("npm ci in %s: %w", here, err)
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.CommandContext(ctx, "node", "reference.mjs", host, port)
	cmd.Dir, cmd.Stderr = here, os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening") {
		cmd.Process.Kill()
		return nil, fmt.Errorf("bittorrent-tracker did not start: %q %v", line, err)
	}
	return cmd, nil
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// drive connects peers sockets, then each announces with one offer and updates twice, at most
// 256 announces in flight, and measures the rate and each announce's time to its answer.
func drive(ctx context.Context, wsURL string, ih [20]byte, peers, pid int) (figure, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type peer struct {
		c       *websocket.Conn
		id      string
		answers chan struct{}
	}
	var relayed atomic.Int64
	list := make([]*peer, peers)
	var wg sync.WaitGroup
	dialSem := make(chan struct{}, 64)
	errc := make(chan error, 1)
	for i := range list {
		wg.Add(1)
		dialSem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-dialSem }()
			c, _, err := websocket.Dial(ctx, wsURL, nil)
			if err != nil {
				select {
				case errc <- err:
				default:
				}
				return
			}
			c.SetReadLimit(1 << 20)
			p := &peer{c: c, id: latin1([]byte(fmt.Sprintf("-WW0208-%012d", i))), answers: make(chan struct{}, 4)}
			list[i] = p
			go func() {
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						return
					}
					// As little work as telling the frames apart takes, so that the client costs
					// less than the trackers it measures.
					if bytes.Contains(b, []byte(`"offer":`)) {
						relayed.Add(1)
					} else if bytes.Contains(b, []byte(`"interval":`)) || bytes.Contains(b, []byte(`"failure reason":`)) {
						p.answers <- struct{}{}
					}
				}
			}()
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return figure{}, fmt.Errorf("dial: %w", err)
	default:
	}
	defer func() {
		for _, p := range list {
			p.c.CloseNow()
		}
	}()
	ihText := latin1(ih[:])
	// Every frame made before the clock starts.
	frames := make([][3][]byte, len(list))
	for i, p := range list {
		for round := range 3 {
			m := map[string]any{"action": "announce", "info_hash": ihText, "peer_id": p.id, "numwant": 1,
				"uploaded": 0, "downloaded": 0, "left": 1000}
			if round == 0 {
				m["event"] = "started"
				m["offers"] = []any{map[string]any{"offer_id": latin1([]byte(fmt.Sprintf("offer-%014d", i))),
					"offer": map[string]any{"type": "offer", "sdp": "v=0\r\no=- " + strconv.Itoa(i) + " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"}}}
			} else {
				m["offers"] = []any{}
			}
			frames[i][round], _ = json.Marshal(m)
		}
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, 3*peers)
	// timed sends one announce and adds the time to its answer to lat; false when it got none.
	timed := func(p *peer, frame []byte) bool {
		t0 := time.Now()
		if err := p.c.Write(ctx, websocket.MessageText, frame); err != nil {
			return false
		}
		select {
		case <-p.answers:
		case <-time.After(10 * time.Second):
			return false
		}
		d := time.Since(t0)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		return true
	}
	sem := make(chan struct{}, 256)
	cpu0 := benchkit.ProcCPU(pid)
	start := time.Now()
	for i, p := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for round := range 3 {
				if !timed(p, frames[i][round]) {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) < 3*peers*9/10 {
		return figure{}, fmt.Errorf("only %d of %d announces answered", len(lat), 3*peers)
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	closedRate := float64(len(lat)) / elapsed.Seconds()
	cpu, answered := benchkit.ProcCPU(pid)-cpu0, int64(len(lat))

	// Latency at a load both trackers carry: with 256 announces in flight the p99 above is
	// mostly the queue (Little's law: 256 / rate); here updates come at pacedRate a second, one
	// peer after another, each answered before that peer's next.
	lat = lat[:0]
	n := int(pacedRate * pacedFor.Seconds())
	tick := time.NewTicker(time.Second / pacedRate)
	defer tick.Stop()
	for k := range n {
		<-tick.C
		p := list[k%len(list)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			timed(p, frames[k%len(list)][2])
		}()
	}
	wg.Wait()
	if len(lat) < n*9/10 {
		return figure{}, fmt.Errorf("only %d of %d paced announces answered", len(lat), n)
	}
	slices.Sort(lat)
	pacedP99 := lat[len(lat)*99/100]
	time.Sleep(200 * time.Millisecond)
	return figure{rate: closedRate, p99ms: float64(p99.Microseconds()) / 1000,
		pacedP99ms: float64(pacedP99.Microseconds()) / 1000, relayed: relayed.Load(), cpu: cpu, announces: answered}, nil
}

// The paced phase of the WebSocket drive: announces a second, for how long.
const (
	pacedRate = 1000
	pacedFor  = 10 * time.Second
)
