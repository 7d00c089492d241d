package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultCorpus is where the shared real stream sits beside a checkout.
const defaultCorpus = "../shared/data/corpus/stream.jsonl.gz"

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "bench", "[--corpus FILE] [--records N] [--runs N]")
	corpus := fs.String("corpus", defaultCorpus, "JSONL(.gz) `file` of real records to produce")
	records := fs.Int("records", 0, "produce only the first `N` records (0: all)")
	partitions := fs.Int("partitions", 4, "partitions of the bench topic")
	runs := fs.Int("runs", 3, "timed runs of each reader; the median is reported")
	kcat := fs.String("kcat", "kcat", "kcat `binary` to compare against")
	curateRuns := fs.Int("curate-runs", 3, "timed runs of curate over the landed stream (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runs < 1 || *records < 0 || *partitions < 1 {
		return usagef("--runs, --partitions must be positive and --records not negative")
	}
	if _, err := os.Stat(*corpus); err != nil {
		return usagef("--corpus: %v (the real stream lives in ../shared/data/corpus beside a checkout)", err)
	}
	kcatPath, kcatErr := exec.LookPath(*kcat)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	w := e.stdout
	const topic = "bench"
	// The broker runs in a process of its own, as it would in production,
	// so that kcat and ingest are measured against the same server and
	// neither shares a heap with it.
	addr, stopBroker, err := startBrokerProcess(ctx, self, *partitions, topic)
	if err != nil {
		return err
	}
	defer stopBroker()

	// Load the records first so reading the corpus is not timed.
	data, n, err := loadLines(*corpus, *records)
	if err != nil {
		return err
	}
	t0 := time.Now()
	np, nb, err := produceLines(ctx, []string{addr}, topic, "json", bytes.NewReader(data), io.Discard)
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	prodSecs := time.Since(t0).Seconds()
	data = nil
	fmt.Fprintf(w, "bench: %d records (%.1f MB) in topic %q, %d partitions, embedded broker %s (own process)\n", n, float64(nb)/1e6, topic, *partitions, addr)
	fmt.Fprintf(w, "produce: %d records in %.2f s: %.0f rec/s\n\n", np, prodSecs, float64(np)/prodSecs)

	var kcatTimes []float64
	if kcatErr == nil {
		for i := 0; i < *runs; i++ {
			cmd := exec.CommandContext(ctx, kcatPath, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q")
			cmd.Stdout = io.Discard
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t := time.Now()
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("kcat: %v: %s", err, stderr.String())
			}
			kcatTimes = append(kcatTimes, time.Since(t).Seconds())
		}
	} else {
		fmt.Fprintf(w, "kcat: not found (%v); install it (apt-get install kcat) for the comparison\n", kcatErr)
	}

	summaryRE := regexp.MustCompile(`records=(\d+) bytes=\d+ dlq=(\d+) segments=\d+ active_s=([0-9.]+)`)
	var ingestTimes, ingestWalls, rss []float64
	var landed string // the last run's lake, for curate
	defer func() {
		if landed != "" {
			os.RemoveAll(landed)
		}
	}()
	for i := 0; i < *runs; i++ {
		lakeDir, err := os.MkdirTemp("", "thresher-bench-lake-")
		if err != nil {
			return err
		}
		m, wall, hwm, err := runMeasured(ctx, summaryRE, self, "ingest", "--brokers", addr, "--topic", topic,
			"--group", fmt.Sprintf("bench-%d", i), "--lake", lakeDir, "--exit-on-idle", "1s")
		ingestWalls = append(ingestWalls, wall)
		if landed != "" {
			os.RemoveAll(landed)
		}
		landed = lakeDir
		if err != nil {
			return err
		}
		got, _ := strconv.Atoi(m[1])
		dlq, _ := strconv.Atoi(m[2])
		if got+dlq != n {
			return fmt.Errorf("ingest landed %d records and %d DLQ, want %d in all", got, dlq, n)
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		ingestTimes = append(ingestTimes, secs)
		if hwm > 0 {
			rss = append(rss, float64(hwm)/(1<<20))
		}
	}
	ing := median(ingestTimes)
	fmt.Fprintf(w, "%-34s %10s %12s\n", "reader", "seconds", "rec/s")
	if len(kcatTimes) > 0 {
		fmt.Fprintf(w, "%-34s %10.3f %12.0f\n", "kcat -C -e -o beginning >/dev/null", median(kcatTimes), float64(n)/median(kcatTimes))
	}
	fmt.Fprintf(w, "%-34s %10.3f %12.0f\n", "thresher ingest (to Parquet lake)", ing, float64(n)/ing)
	fmt.Fprintf(w, "\nmedian of %d runs; ingest seconds are its active time (first fetch to last fetch, plus the\n"+
		"final commit); its whole process took %.3f s, with start-up, the group join and the 1 s idle wait\n", *runs, median(ingestWalls))
	if len(kcatTimes) > 0 {
		fmt.Fprintf(w, "ratio ingest/kcat: %.2fx\n", ing/median(kcatTimes))
	}
	if len(rss) > 0 {
		sort.Float64s(rss)
		fmt.Fprintf(w, "ingest peak RSS: %.0f MiB (max of %d runs; VmHWM polled every 10 ms)\n", rss[len(rss)-1], len(rss))
	}
	if *curateRuns > 0 {
		return benchCurate(ctx, w, self, landed, n, *curateRuns)
	}
	return nil
}

// benchCurate runs `thresher curate` over copies of the raw table of a
// landed lake: the busy time and rate it reports, its peak RSS, and the time
// a restart takes to load its state (replaying the dedup index).
func benchCurate(ctx context.Context, w io.Writer, self, landed string, n, runs int) error {
	summaryRE := regexp.MustCompile(`records=(\d+) kept=(\d+) busy_s=([0-9.]+)`)
	var busy, rss, restarts []float64
	var kept int
	for i := 0; i < runs; i++ {
		dir, err := os.MkdirTemp("", "thresher-bench-curate-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := linkTree(filepath.Join(landed, "raw"), filepath.Join(dir, "raw")); err != nil {
			return err
		}
		for pass := range 2 {
			m, wall, hwm, err := runMeasured(ctx, summaryRE, self, "curate", "--lake", dir, "--exit-on-idle", "1ms")
			if err != nil {
				return err
			}
			got, _ := strconv.Atoi(m[1])
			if pass == 1 {
				// Nothing left to curate: the run is start-up, loading the
				// state and replaying the dedup index, and the idle check.
				restarts = append(restarts, wall)
				continue
			}
			if got != n {
				return fmt.Errorf("curate curated %d records, want %d", got, n)
			}
			kept, _ = strconv.Atoi(m[2])
			secs, _ := strconv.ParseFloat(m[3], 64)
			busy = append(busy, secs)
			if hwm > 0 {
				rss = append(rss, float64(hwm)/(1<<20))
			}
		}
	}
	b := median(busy)
	fmt.Fprintf(w, "\ncurate (dedup, audit, curriculum; 4 tables written) over the landed stream, median of %d runs:\n", runs)
	fmt.Fprintf(w, "  %d records, %d kept, %.3f s busy: %.0f rec/s\n", n, kept, b, float64(n)/b)
	if len(rss) > 0 {
		sort.Float64s(rss)
		fmt.Fprintf(w, "  peak RSS: %.0f MiB (max of %d runs)\n", rss[len(rss)-1], len(rss))
	}
	fmt.Fprintf(w, "  restart with nothing new (load state, replay the dedup index): %.2f s\n", median(restarts))
	return nil
}

// runMeasured runs `self args...` to the end, polling its peak RSS, and
// returns the submatches of summary in its stdout, its wall time in seconds
// and its peak RSS in bytes (0 where /proc is not available).
func runMeasured(ctx context.Context, summary *regexp.Regexp, self string, args ...string) (m []string, wall float64, hwm int64, err error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, 0, err
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err = cmd.Wait()
	wall, hwm = time.Since(started).Seconds(), peak()
	if err != nil {
		return nil, wall, hwm, fmt.Errorf("%s: %v: %s", args[0], err, stderr.String())
	}
	if m = summary.FindStringSubmatch(out.String()); m == nil {
		return nil, wall, hwm, fmt.Errorf("%s printed no summary: %s", args[0], out.String())
	}
	return m, wall, hwm, nil
}

// linkTree recreates the folder tree src at dst with hard links to its
// files (copies where linking fails).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if os.Link(path, to) == nil {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
}

// watchPeakRSS polls the peak resident set size (VmHWM) of a running
// process until the returned function is called, which returns the last
// reading in bytes (0 where /proc is not available). VmHWM is reset by exec,
// so unlike the rusage of a child it does not count the parent's memory.
func watchPeakRSS(pid int) func() int64 {
	var hwm atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if data, err := os.ReadFile(path); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					var kb int64
					if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil && kb*1024 > hwm.Load() {
						hwm.Store(kb * 1024)
					}
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		return hwm.Load()
	}
}

// startBrokerProcess runs `thresher broker` on a free loopback port and
// waits until it accepts connections.
func startBrokerProcess(ctx context.Context, self string, partitions int, topic string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, self, "broker", "--addr", addr, "--partitions", strconv.Itoa(partitions), "--topic", topic)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("broker did not start on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// loadLines reads up to max (0: all) non-empty lines of a JSONL or
// JSONL.gz file into memory.
func loadLines(path string, max int) ([]byte, int, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, 0, err
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var buf bytes.Buffer
	n := 0
	for sc.Scan() && (max == 0 || n < max) {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		buf.Write(sc.Bytes())
		buf.WriteByte('\n')
		n++
	}
	return buf.Bytes(), n, sc.Err()
}
