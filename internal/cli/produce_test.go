package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// The producer itself (line reader, key scanner, delivery) is tested in
// package ingest; these tests cover the command: flags, exit codes, the
// final line, end to end through Run.

var producedRE = regexp.MustCompile(`^produced (\d+) records \((\d+) bytes\) to (\S+) in [0-9.]+ s: [0-9]+ rec/s, [0-9.]+ MB/s\n$`)

func gzipForTest(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestProduceRealGzipFile produces the first 20k records of the real stream
// from a .gz file through the command and reads them back: same values in
// order per key, key = id, murmur2 partitioning as kafka-go and Java do.
func TestProduceRealGzipFile(t *testing.T) {
	lines := realtest.CorpusLines(t, 20000)
	var raw bytes.Buffer
	var valueBytes int
	for _, l := range lines {
		raw.Write(l)
		raw.WriteByte('\n')
		valueBytes += len(l)
	}
	path := filepath.Join(t.TempDir(), "part.jsonl.gz")
	if err := os.WriteFile(path, gzipForTest(t, raw.Bytes()), 0o644); err != nil {
		t.Fatal(err)
	}

	const partitions = 4
	b := realtest.Broker(t, partitions, "records")
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"produce", "--brokers", b.Addr(), "--topic", "records", path},
		nil, &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	m := producedRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("final line %q does not match %v", stdout.String(), producedRE)
	}
	if m[1] != "20000" || m[2] != fmt.Sprint(valueBytes) || m[3] != "records" {
		t.Errorf("final line %q: want 20000 records, %d bytes, topic records", stdout.String(), valueBytes)
	}

	recs := realtest.Consume(t, b.Addr(), "records", len(lines))
	want := map[string]int{}
	for _, l := range lines {
		want[string(l)]++
	}
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	var balancer kafka.Murmur2Balancer
	for _, r := range recs {
		v := string(r.Value)
		if want[v] == 0 {
			t.Fatalf("unexpected or duplicated record %.80q", v)
		}
		want[v]--
		var rec struct{ ID string }
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != rec.ID {
			t.Fatalf("key %q, want the id %q", r.Key, rec.ID)
		}
		if p := balancer.Balance(kafka.Message{Key: r.Key}, parts...); int32(p) != r.Partition {
			t.Fatalf("key %q in partition %d, murmur2 says %d", r.Key, r.Partition, p)
		}
	}
}

// TestProduceStdin covers stdin, plain and gzipped, both formats, blank
// lines, CRLF, invalid JSON (produced as is) and which lines get a key.
func TestProduceStdin(t *testing.T) {
	input := strings.Join([]string{
		`{"id":"a1","text":"first"}`,
		``,
		`   `,
		`{"id": 42, "text":"numeric id"}`,
		`{"text":"no id"}`,
		`not json at all`,
		`{"id":"broken", "text": `,
		`{"id":null,"text":"null id"}`,
		"{\"id\":\"crlf\",\"text\":\"windows\"}\r",
		`{"id":"last","text":"no trailing newline"}`,
	}, "\n")
	wantKeyed := map[string]string{ // value -> key; "" = no key
		`{"id":"a1","text":"first"}`:                 "a1",
		`{"id": 42, "text":"numeric id"}`:            "42",
		`{"text":"no id"}`:                           "",
		`not json at all`:                            "",
		`{"id":"broken", "text": `:                   "broken",
		`{"id":null,"text":"null id"}`:               "",
		`{"id":"crlf","text":"windows"}`:             "crlf",
		`{"id":"last","text":"no trailing newline"}`: "last",
	}
	for _, tc := range []struct {
		name   string
		format []string
		gzip   bool
		keyed  bool
	}{
		{"json", nil, false, true},
		{"json gzip", nil, true, true},
		{"text", []string{"--format", "text"}, false, false},
		{"text gzip", []string{"--format", "text"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := realtest.Broker(t, 3)
			in := []byte(input)
			if tc.gzip {
				in = gzipForTest(t, in)
			}
			args := append([]string{"produce", "--brokers", b.Addr(), "--topic", "t"}, tc.format...)
			args = append(args, "-")
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), args, bytes.NewReader(in), &stdout, &stderr); code != ExitOK {
				t.Fatalf("exit %d; stderr: %s", code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), fmt.Sprintf("produced %d records", len(wantKeyed))) {
				t.Errorf("stdout %q", stdout.String())
			}
			recs := realtest.Consume(t, b.Addr(), "t", len(wantKeyed))
			for _, r := range recs {
				key, ok := wantKeyed[string(r.Value)]
				if !ok {
					t.Fatalf("unexpected value %q", r.Value)
				}
				if !tc.keyed {
					key = ""
				}
				if string(r.Key) != key || (key == "" && r.Key != nil) {
					t.Errorf("value %q: key %q, want %q", r.Value, r.Key, key)
				}
			}
		})
	}
}

func TestProduceProgress(t *testing.T) {
	b := realtest.Broker(t, 2, "p")
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(pw, "{\"id\":\"%d\"}\n", i)
			time.Sleep(60 * time.Millisecond)
		}
		pw.Close()
	}()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"produce", "--brokers", b.Addr(), "--topic", "p",
		"--progress-every", "50ms", "-"}, pr, &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if !regexp.MustCompile(`produce: \d+ records, \d+ rec/s, [0-9.]+ MB/s\n`).MatchString(stderr.String()) {
		t.Errorf("no progress line in stderr: %q", stderr.String())
	}
}

func TestProduceTooLarge(t *testing.T) {
	b := realtest.Broker(t, 1, "big")
	in := "{\"id\":\"ok\"}\n\n{\"id\":\"big\",\"text\":\"" + strings.Repeat("x", 1<<20) + "\"}\n{\"id\":\"after\"}\n"
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"produce", "--brokers", b.Addr(), "--topic", "big", "-"},
		strings.NewReader(in), &stdout, &stderr)
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitFailure, stderr.String())
	}
	if !strings.Contains(stderr.String(), "line 3 is 1048601 bytes") {
		t.Errorf("stderr %q should name line 3 and its size", stderr.String())
	}
	realtest.Consume(t, b.Addr(), "big", 1) // the line before it was delivered
}

func TestProduceNoBroker(t *testing.T) {
	addr := unusedLocalAddr(t) // nothing listens there
	start := time.Now()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"produce", "--brokers", addr, "--topic", "t", "-"},
		strings.NewReader("{\"id\":1}\n"), &stdout, &stderr)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr.String())
	}
	if d := time.Since(start); d > 11*time.Second {
		t.Errorf("took %v to fail, want at most about 10 s", d)
	}
	if !strings.Contains(stderr.String(), addr) || !strings.Contains(stderr.String(), "no broker reachable") {
		t.Errorf("message %q should name the broker %s", stderr.String(), addr)
	}
}

func TestProduceUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"unknown flag", []string{"--bogus", "-"}, "bogus", ExitUsage},
		{"missing file", []string{"--topic", "t"}, "missing input", ExitUsage},
		{"two files", []string{"--topic", "t", "a", "b"}, "one input", ExitUsage},
		{"bad format", []string{"--topic", "t", "--format", "xml", "-"}, "xml", ExitUsage},
		{"no topic", []string{"-"}, "--topic", ExitUsage},
		{"no brokers", []string{"--brokers", " , ", "--topic", "t", "-"}, "--brokers", ExitUsage},
		{"every problem at once", []string{"--format", "csv"}, "--topic is required; --format \"csv\"", ExitUsage},
		{"SASL without mechanism", []string{"--topic", "t", "--security-protocol", "SASL_SSL", "--sasl-username", "u", "--sasl-password-file", filepath.Join(dir, "nope"), "-"},
			"sasl.mechanism: required with security.protocol SASL_SSL", ExitUsage},
		{"cert without key", []string{"--topic", "t", "--security-protocol", "SSL", "--tls-cert-file", "c.pem", "-"}, "tls.key_file: required with tls.cert_file", ExitUsage},
		{"file not found", []string{"--topic", "t", filepath.Join(dir, "nope.jsonl")}, "nope.jsonl", ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"produce"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestProduceLinesFormat covers the wrapper's own check; the rest of
// produceLines is ingest.Produce, tested there.
func TestProduceLinesFormat(t *testing.T) {
	_, _, err := produceLines(context.Background(), []string{"127.0.0.1:1"}, "t", "xml", strings.NewReader("x\n"), nil)
	if err == nil || err.Error() != `format "xml": want json or text` {
		t.Fatalf("err = %v, want the format named", err)
	}
}
