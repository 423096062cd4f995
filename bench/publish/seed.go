package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/seeding"
)

// The seed section: one seedbox node (seeding.Node, as `fanseed seedbox` runs it) serving an
// episode to concurrent aria2c leechers, against libtorrent-rasterbar (Debian's
// python3-libtorrent) in seed mode serving the same .torrent to the same leechers, one after the
// other in each run, through our tracker on loopback with DHT, LPD and PEX off.
//
//	go run ./bench/publish -seed-only -runs 3
func init() {
	sections = append(sections, section{"seed", runSeed})
}

const (
	seedEpisodeSize = 512 << 20
	seedLeechers    = 4
	systemPython    = "/usr/bin/python3" // Debian's python3-libtorrent is built for it, not for a python3 earlier on PATH
)

// libtorrentSeeder is a dozen lines of Python: libtorrent in seed mode on loopback, allowing
// several connections from one address (all the leechers are 127.0.0.1).
const libtorrentSeeder = `import sys, time, libtorrent as lt
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
    "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
    "alert_mask": 0})
ti = lt.torrent_info(sys.argv[1])
h = ses.add_torrent({"ti": ti, "save_path": sys.argv[2], "flags": lt.torrent_flags.seed_mode})
print("libtorrent", lt.__version__, "port", ses.listen_port(), flush=True)
sys.stdin.read()
`

// ensureSeedTools installs aria2 and python3-libtorrent with apt-get when they are missing.
func ensureSeedTools(ctx context.Context, out io.Writer) error {
	_, ariaErr := exec.LookPath("aria2c")
	ltErr := exec.CommandContext(ctx, systemPython, "-c", "import libtorrent").Run()
	if ariaErr == nil && ltErr == nil {
		return nil
	}
	return benchkit.AptInstall(ctx, out, "aria2", "python3-libtorrent")
}

// benchTracker is our tracker behind a handler whose tracker can be replaced between phases, so
// that each seeder's leechers find only that seeder.
type benchTracker struct {
	cur atomic.Pointer[seeding.Tracker]
}

func (b *benchTracker) reset(ih [20]byte) *seeding.Tracker {
	t := &seeding.Tracker{Interval: 10 * time.Second, AnnouncesPerMinute: -1, Allowed: func(h [20]byte) bool { return h == ih }}
	b.cur.Store(t)
	return t
}

func (b *benchTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b.cur.Load().AnnounceBody(r.URL.RawQuery, net.ParseIP(host), false))
}

func runSeed(ctx context.Context, cfg config, _ string, out io.Writer) error {
	if err := ensureSeedTools(ctx, out); err != nil {
		return err
	}
	dir := filepath.Join(cfg.dir, "seed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, "episode.mp4")
	if err := writeRandomFile(file, seedEpisodeSize); err != nil {
		return err
	}
	hashes, err := hashFile(file, seeding.PieceLength(seedEpisodeSize))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	trackers := &benchTracker{}
	srv := &http.Server{Handler: trackers}
	go srv.Serve(ln)
	defer srv.Close()
	tor, err := seeding.BuildTorrent(hashes, seeding.TorrentOptions{Name: "episode.mp4", TrackerURL: "http://" + ln.Addr().String() + "/announce"})
	if err != nil {
		return err
	}
	torrentFile := filepath.Join(dir, "episode.torrent")
	if err := os.WriteFile(torrentFile, tor.Bytes, 0o644); err != nil {
		return err
	}
	mi, err := metainfo.Load(bytes.NewReader(tor.Bytes))
	if err != nil {
		return err
	}
	ltVersion, _ := exec.CommandContext(ctx, systemPython, "-c", "import libtorrent; print(libtorrent.__version__)").Output()
	ariaVersion, _ := exec.CommandContext(ctx, "aria2c", "--version").Output()
	fmt.Fprintf(out, "episode %d MiB, piece length %d KiB, %d aria2c leechers (%s), loopback, tracker only (DHT, LPD, PEX off)\n",
		seedEpisodeSize>>20, hashes.PieceLength>>10, seedLeechers, strings.TrimSpace(strings.SplitN(string(ariaVersion), "\n", 2)[0]))
	fmt.Fprintf(out, "%-4s  %-34s  %-34s\n", "run", "fanseed seedbox node (anacrolix)", "libtorrent-rasterbar "+strings.TrimSpace(string(ltVersion)))

	var ours, theirs []float64
	node := func() (phaseResult, error) {
		r, err := seedPhase(ctx, dir, torrentFile, tor, hashes.SHA256, trackers, func(ctx context.Context) (func(), func() time.Duration, error) {
			return startNodeSeeder(dir, file, tor, mi)
		})
		if err != nil {
			err = fmt.Errorf("fanseed node: %w", err)
		}
		return r, err
	}
	lib := func() (phaseResult, error) {
		r, err := seedPhase(ctx, dir, torrentFile, tor, hashes.SHA256, trackers, func(ctx context.Context) (func(), func() time.Duration, error) {
			return startLibtorrentSeeder(ctx, dir, torrentFile)
		})
		if err != nil {
			err = fmt.Errorf("libtorrent: %w", err)
		}
		return r, err
	}
	for i := range cfg.runs {
		// The seeders take turns going first, so neither always meets the other's leftovers
		// (page cache, sockets in TIME_WAIT, a warmer CPU).
		first, second := node, lib
		if i%2 == 1 {
			first, second = lib, node
		}
		x, err := first()
		if err != nil {
			return err
		}
		y, err := second()
		if err != nil {
			return err
		}
		a, b := x, y
		if i%2 == 1 {
			a, b = y, x
		}
		ours, theirs = append(ours, a.mibps), append(theirs, b.mibps)
		fmt.Fprintf(out, "%-4d  %-34s  %-34s\n", i+1, a, b)
	}
	mo, mt := median(ours), median(theirs)
	fmt.Fprintf(out, "%-4s  %-34s  %-34s\n", "med", aggregate(mo), aggregate(mt))
	fmt.Fprintf(out, "aggregate throughput to %d leechers, ours / libtorrent = %.2f\n", seedLeechers, mo/mt)
	fmt.Fprintf(out, "(cpu: seconds of CPU the seeder / the %d aria2c leechers used while they downloaded)\n", seedLeechers)
	return nil
}

func aggregate(mibps float64) string { return fmt.Sprintf("%8.1f MiB/s aggregate", mibps) }

// phaseResult is one seeder's phase: the leechers' aggregate throughput and the CPU time the
// seeder and the leechers used meanwhile (on a machine whose cores they share).
type phaseResult struct {
	mibps                  float64
	seederCPU, leechersCPU time.Duration
}

func (r phaseResult) String() string {
	return fmt.Sprintf("%8.1f MiB/s, cpu %.1f/%.1f s", r.mibps, r.seederCPU.Seconds(), r.leechersCPU.Seconds())
}

// selfCPU is the CPU time this process has used: the node seeding in it, and little else while
// the leechers download.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// startNodeSeeder runs a seedbox node holding the episode, and waits until it has verified it.
func startNodeSeeder(dir, file string, tor seeding.Torrent, mi *metainfo.MetaInfo) (func(), func() time.Duration, error) {
	node, err := seeding.NewNode(seeding.NodeConfig{Name: "bench", DataDir: filepath.Join(dir, "node"), ListenAddr: "127.0.0.1:0",
		CapacityBytes: 1 << 40, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, nil, err
	}
	dst := node.ContentPath(tor.InfoHash, tor.Name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		node.Close()
		return nil, nil, err
	}
	if _, err := os.Stat(dst); err != nil {
		if err := os.Link(file, dst); err != nil {
			node.Close()
			return nil, nil, err
		}
	}
	if err := node.Add(mi, nil, true); err != nil {
		node.Close()
		return nil, nil, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !node.Seeding(tor.InfoHash) {
		if time.Now().After(deadline) {
			node.Close()
			return nil, nil, fmt.Errorf("node did not verify the episode in 5 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return node.Close, selfCPU, nil
}

// startLibtorrentSeeder runs the Python seeder with Debian's interpreter.
func startLibtorrentSeeder(ctx context.Context, dir, torrentFile string) (func(), func() time.Duration, error) {
	script := filepath.Join(dir, "seed.py")
	if err := os.WriteFile(script, []byte(libtorrentSeeder), 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, systemPython, script, torrentFile, dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "libtorrent") {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("python seeder did not start: %q %v", line, err)
	}
	return func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }, func() time.Duration { return benchkit.ProcCPU(cmd.Process.Pid) }, nil
}

// seedPhase starts a seeder, waits until our tracker has it as the swarm's seeder, then has the
// leechers fetch the episode at once and returns their aggregate throughput in MiB/s. Every
// leecher's file is checked against the upload's SHA-256.
func seedPhase(ctx context.Context, dir, torrentFile string, tor seeding.Torrent, sum [32]byte, trackers *benchTracker,
	start func(context.Context) (func(), func() time.Duration, error)) (phaseResult, error) {
	tr := trackers.reset(tor.InfoHash)
	stop, seederCPU, err := start(ctx)
	if err != nil {
		return phaseResult{}, err
	}
	defer stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := tr.Snapshot(); len(s) == 1 && s[0].Seeders == 1 {
			break
		}
		if time.Now().After(deadline) {
			return phaseResult{}, fmt.Errorf("the seeder did not announce within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	leechDirs := make([]string, seedLeechers)
	for i := range leechDirs {
		leechDirs[i] = filepath.Join(dir, "leech"+strconv.Itoa(i))
		os.RemoveAll(leechDirs[i])
	}
	defer func() {
		for _, d := range leechDirs {
			os.RemoveAll(d)
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, seedLeechers)
	leechCPU := make([]time.Duration, seedLeechers)
	cpu0 := seederCPU()
	began := time.Now()
	for i, d := range leechDirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "aria2c", "--dir="+d, "--seed-time=0", "--enable-dht=false", "--enable-dht6=false",
				"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
				"--listen-port="+strconv.Itoa(47000+i), "--file-allocation=none", "--summary-interval=0",
				"--console-log-level=error", "--bt-stop-timeout=300", "--bt-tracker-interval=5", torrentFile)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("aria2c %d: %w\n%s", i, err, b)
			}
			if st := cmd.ProcessState; st != nil {
				leechCPU[i] = st.UserTime() + st.SystemTime()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	res := phaseResult{seederCPU: seederCPU() - cpu0}
	for _, c := range leechCPU {
		res.leechersCPU += c
	}
	for _, err := range errs {
		if err != nil {
			return phaseResult{}, err
		}
	}
	for _, d := range leechDirs {
		f, err := os.Open(filepath.Join(d, tor.Name))
		if err != nil {
			return phaseResult{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return phaseResult{}, err
		}
		if [32]byte(h.Sum(nil)) != sum {
			return phaseResult{}, fmt.Errorf("a leecher's file differs from the episode")
		}
	}
	res.mibps = float64(seedLeechers) * float64(seedEpisodeSize) / (1 << 20) / elapsed.Seconds()
	return res, nil
}
