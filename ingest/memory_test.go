package ingest_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// TestIngestMemoryBudget lands 8,000 records of 100 KB of real text (800 MB)
// spread over 128 partitions with the default memory_limit (512MiB) and
// checks that every offset lands once with its text intact while the
// `thresher ingest` process's peak RSS (VmHWM) stays at or below 600 MiB.
// Broker, producer and ingest each run as a process of their own, so the
// figure is ingest's alone.
func TestIngestMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("800 MB through three processes")
	}
	const (
		topic     = "mem"
		parts     = 128
		records   = 8000
		textBytes = 100_000
		maxRSS    = 600 << 20
	)
	bin := realtest.Binary(t)
	texts := corpusTexts(t, 50_000)

	addr := startBrokerProcess(t, bin, topic, parts)
	want := make(map[string][32]byte, records) // id -> sha256 of its text
	prod := exec.Command(bin, "produce", "--brokers", addr, "--topic", topic, "--progress-every", "0", "-")
	stdin, err := prod.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var prodOut bytes.Buffer
	prod.Stdout, prod.Stderr = &prodOut, &prodOut
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	for i := 0; i < records; i++ {
		id := "m-" + strconv.Itoa(i)
		text := bigText(texts, i*37, textBytes)
		want[id] = sha256.Sum256([]byte(text))
		line, err := json.Marshal(map[string]string{"id": id, "text": text, "source": "memtest"})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("produce: %v: %s", err, prodOut.String())
	}
	stdin.Close()
	if err := prod.Wait(); err != nil {
		t.Fatalf("produce: %v: %s", err, prodOut.String())
	}

	dir := t.TempDir()
	ing := exec.Command(bin, "ingest", "--brokers", addr, "--topic", topic, "--group", "mem",
		"--lake", dir, "--exit-on-idle", "1s")
	var ingOut bytes.Buffer
	ing.Stdout, ing.Stderr = &ingOut, &ingOut
	t0 := time.Now()
	if err := ing.Start(); err != nil {
		t.Fatal(err)
	}
	peak := pollPeakRSS(ing.Process.Pid)
	err = ing.Wait()
	hwm := peak()
	if err != nil {
		t.Fatalf("ingest: %v: %s", err, ingOut.String())
	}
	t.Logf("ingest: %.1f s, peak RSS %d MiB; %s", time.Since(t0).Seconds(), hwm>>20,
		strings.TrimSpace(lastLine(ingOut.String())))

	// Every offset once, every text intact; rows are read a segment at a
	// time so that the check itself stays small.
	ends := highWatermarks(t, addr, topic, parts)
	seen := map[string]bool{}
	err = filepath.WalkDir(filepath.Join(dir, schemas.TableRaw), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		_, _, part, r, err := lake.ParseSegmentKey(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rows, err := lake.ReadRows[schemas.Raw](data)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, row := range rows {
			key := fmt.Sprintf("%d/%d", row.Partition, row.Offset)
			switch {
			case row.Partition != part || row.Offset < r.First || row.Offset > r.Last:
				t.Errorf("%s holds %s outside its name", rel, key)
			case seen[key]:
				t.Errorf("offset %s landed twice", key)
			case sha256.Sum256([]byte(row.Text)) != want[row.ID]:
				t.Errorf("offset %s: text of %q is not the text produced (%d bytes)", key, row.ID, len(row.Text))
			}
			seen[key] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var missing []string
	for p, end := range ends {
		total += end
		for o := int64(0); o < end; o++ {
			if k := fmt.Sprintf("%d/%d", p, o); !seen[k] {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d offsets did not land: %v", len(missing), missing[:min(len(missing), 20)])
	}
	if total != records || len(seen) != records {
		t.Fatalf("%d offsets produced, %d landed; want %d", total, len(seen), records)
	}
	if hwm > maxRSS {
		t.Errorf("ingest peak RSS %d MiB, want at most %d MiB", hwm>>20, maxRSS>>20)
	}
}

// corpusTexts returns the "text" fields of the first n lines of the corpus.
func corpusTexts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for _, l := range realtest.CorpusLines(t, n) {
		var v struct{ Text string }
		if json.Unmarshal(l, &v) == nil && v.Text != "" {
			out = append(out, v.Text)
		}
	}
	return out
}

// bigText concatenates texts from from on, a line apart, to n bytes, cut on
// a rune boundary.
func bigText(texts []string, from, n int) string {
	var b strings.Builder
	b.Grow(n + 64<<10)
	for i := from; b.Len() < n; i++ {
		b.WriteString(texts[i%len(texts)])
		b.WriteByte('\n')
	}
	s := b.String()[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// startBrokerProcess runs `thresher broker` with one topic on a free port
// until the test ends.
func startBrokerProcess(t testing.TB, bin, topic string, parts int) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "broker", "--addr", addr, "--partitions", strconv.Itoa(parts), "--topic", topic)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pollPeakRSS reads the VmHWM of process pid every 5 ms until the returned
// function is called, which returns the highest reading in bytes. VmHWM
// only grows, so a reading shortly before the exit is the peak but for the
// last few milliseconds.
func pollPeakRSS(pid int) func() int64 {
	var hwm atomic.Int64
	done, stopped := make(chan struct{}), make(chan struct{})
	path := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if data, err := os.ReadFile(path); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					var kb int64
					if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil && kb<<10 > hwm.Load() {
						hwm.Store(kb << 10)
					}
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		return hwm.Load()
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestBudgetFor pins the budget rule: shares shrink with the partitions
// held, the configured sizes stay upper bounds, and the floors hold.
func TestBudgetFor(t *testing.T) {
	cfg := ingest.Config{MemoryLimit: ingest.DefaultMemoryLimit, FetchMaxBytes: ingest.DefaultFetchMaxBytes,
		RollBytes: ingest.DefaultRollBytes}
	for _, c := range []struct {
		limit      ingest.Size
		partitions int
		fetch      int32
		roll       int
	}{
		{512 << 20, 4, 1 << 20, 8 << 20},        // share 56MiB: as configured
		{512 << 20, 0, 1 << 20, 8 << 20},        // no partition counts as one
		{512 << 20, 128, 305834, 305834},        // share 1.75MiB
		{512 << 20, 10_000, 64 << 10, 64 << 10}, // floors
		{32 << 20, 16, 128 << 10, 128 << 10},    // reserve is a quarter of a small limit
	} {
		cfg.MemoryLimit = c.limit
		b := ingest.BudgetFor(cfg, c.partitions)
		if b.FetchBytes != c.fetch || b.RollBytes != c.roll {
			t.Errorf("limit %v, %d partitions: fetch %d roll %d, want %d and %d", c.limit, c.partitions,
				b.FetchBytes, b.RollBytes, c.fetch, c.roll)
		}
	}
}

// TestIngestRecordLargerThanShare lands records of almost max_value_bytes
// under a budget whose per-partition share and fetch size are far smaller:
// the fetch still brings each one whole.
func TestIngestRecordLargerThanShare(t *testing.T) {
	const topic, parts = "large", 32
	texts := corpusTexts(t, 5000)
	var lines [][]byte
	for i := 0; i < 40; i++ {
		n := 900_000
		if i%4 == 0 {
			n = 2000
		}
		line, err := json.Marshal(map[string]string{"id": "l-" + strconv.Itoa(i), "text": bigText(texts, i*53, n)})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	b := startBroker(t, topic, parts)
	for i := range lines { // one a batch: the broker takes batches of up to 1MB
		produce(t, b.Addr(), topic, lines[i:i+1], nil)
	}
	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.MemoryLimit = 32 << 20
	if bud := ingest.BudgetFor(cfg, parts); bud.Share >= 900_000 || bud.FetchBytes >= 900_000 {
		t.Fatalf("budget %+v: the share must be smaller than a record", bud)
	}
	if _, err := runIngest(t, cfg, openLake(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, highWatermarks(t, b.Addr(), topic, parts))
	checkTexts(t, lc.raw, lines)
}
