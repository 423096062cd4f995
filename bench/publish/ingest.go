package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fanseed/fanseed/bench/internal/benchkit"
	"github.com/fanseed/fanseed/seeding"
)

// runIngest uploads files of growing size through the tus endpoint of a real `fanseed serve`
// on loopback, and prints for each: throughput, the peak RSS of serve, and the time from the
// last byte sent to the answer that the torrent is ready. Beside it, the same bytes PUT to a
// plain Go handler that only writes them to disk: the ceiling for loopback HTTP plus a disk
// write on this machine; and the same handler hashing the bytes with seeding.Hasher as they
// pass, which is the work an upload cannot skip: where the disk takes bytes faster than the
// cores hash them, that, not the plain PUT, is the ceiling. They take turns, cfg.runs times each, with the disk synced before
// every run so that neither pays for the other's dirty pages; each prints its best run.
func runIngest(ctx context.Context, cfg config, _ string, out io.Writer) error {
	bin, err := benchkit.BuildFanseed(ctx, cfg.dir)
	if err != nil {
		return err
	}
	dbURL, drop, err := benchkit.CreateDatabase(ctx, "fanseed_bench_ingest")
	if err != nil {
		return err
	}
	defer drop()

	fmt.Fprintf(out, "%-10s  %-14s  %-16s  %-22s  %-22s  %-16s  %-24s  %s\n", "size", "fanseed tus", "serve peak RSS", "last byte -> torrent",
		"plain Go PUT to disk", "fanseed / plain", "plain PUT + Hasher", "fanseed / plain+Hasher")
	for _, size := range cfg.ingestSizes {
		file := filepath.Join(cfg.dir, fmt.Sprintf("ingest-%d.bin", size))
		if err := writeMediaFile(file, size); err != nil {
			return err
		}
		dataDir, err := os.MkdirTemp(cfg.dir, "data-")
		if err != nil {
			return err
		}
		srv, err := benchkit.StartServe(ctx, bin, "DATABASE_URL="+dbURL, "DATA_DIR="+dataDir,
			"UPLOAD_MAX_BYTES=107374182400", "LOG_LEVEL=warn")
		if err != nil {
			return err
		}
		var best, bestPlain, bestHashed float64
		var slowestReady time.Duration
		for run := range cfg.runs {
			// Each run's file differs (a published episode's bytes are never taken twice).
			if err := stampFile(file, run); err != nil {
				srv.Stop()
				return err
			}
			syscall.Sync()
			rate, ready, err := upload(ctx, srv.Base, file, size)
			if err != nil {
				srv.Stop()
				return err
			}
			best, slowestReady = max(best, rate), max(slowestReady, ready)
			syscall.Sync()
			plain, err := plainPut(file, size, cfg.dir, false)
			if err != nil {
				srv.Stop()
				return err
			}
			bestPlain = max(bestPlain, plain)
			syscall.Sync()
			hashed, err := plainPut(file, size, cfg.dir, true)
			if err != nil {
				srv.Stop()
				return err
			}
			bestHashed = max(bestHashed, hashed)
		}
		rss := srv.PeakRSS()
		srv.Stop()
		os.RemoveAll(dataDir)
		os.Remove(file)
		fmt.Fprintf(out, "%-10s  %-14s  %-16s  %-22s  %-22s  %-16s  %-24s  %.2fx\n", humanSize(size), rateText(best), humanSize(rss),
			slowestReady.Round(time.Millisecond).String(), rateText(bestPlain), fmt.Sprintf("%.2fx", best/bestPlain),
			rateText(bestHashed), best/bestHashed)
	}
	fmt.Fprintln(out, "targets: fanseed at 0.95x the plain PUT or better, peak RSS under 150 MiB and last byte -> torrent under 1 s, neither growing with the size")
	return nil
}

func rateText(mbps float64) string { return fmt.Sprintf("%.1f MB/s", mbps) }

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// writeMediaFile writes random bytes behind an MP4 header, so the upload passes the sniffing.
func writeMediaFile(name string, size int64) error {
	if err := writeRandomFile(name, size); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stampFile writes the run number into the file past its media header, so that each run uploads
// other bytes.
func stampFile(name string, run int) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(io.NewOffsetWriter(f, 64), "run %08d", run)
	return errors.Join(err, f.Close())
}

// upload sends the file through the tus endpoint as a new episode: the throughput of the PATCH
// and the time from its last byte to the answer that the torrent is ready.
func upload(ctx context.Context, base, file string, size int64) (rate float64, ready time.Duration, err error) {
	up, err := benchkit.UploadEpisode(ctx, base, file, size, "episode.mp4")
	if err != nil {
		return 0, 0, err
	}
	return mbps(size, up.Answered.Sub(up.Start)), up.Answered.Sub(up.LastByte), nil
}

// plainPut sends the file to a minimal Go server that copies the body to a file and, with
// hashed, to a seeding.Hasher too: the work fanseed cannot skip, without the rest of its path.
func plainPut(file string, size int64, dir string, hashed bool) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	target := filepath.Join(dir, "plain.out")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(target)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var dst io.Writer = f
		if hashed {
			h, _ := seeding.NewHasher(seeding.PieceLength(size))
			defer h.Sum()
			dst = io.MultiWriter(f, h)
		}
		io.Copy(dst, r.Body)
		f.Close()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	defer os.Remove(target)
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// The same client path as the tus upload's: a file behind a reader of ours, so that neither
	// client sends with sendfile and the two differ only in the server.
	req, _ := http.NewRequest("PUT", "http://"+ln.Addr().String()+"/", benchkit.TimedReader(f))
	req.ContentLength = size
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return mbps(size, time.Since(start)), nil
}
