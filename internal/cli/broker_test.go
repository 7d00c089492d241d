package cli

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func unusedLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var listeningRE = regexp.MustCompile(`broker listening on (\S+)`)

// TestBrokerCommand runs "thresher broker" until its context ends, produces
// to it meanwhile, and checks the exit code and that the data directory
// keeps the records for the next run.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	run := func(wantRecords int64) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout, stderr lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- Run(ctx, []string{"broker", "--addr", "127.0.0.1:0", "--partitions", "3",
				"--topic", "records,other", "--data", dir}, strings.NewReader(""), &stdout, &stderr)
		}()
		var addr string
		deadline := time.Now().Add(5 * time.Second)
		for addr == "" {
			select {
			case code := <-done:
				t.Fatalf("broker exited early with %d: %s", code, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker did not report its address; stderr: %s", stderr.String())
			}
			if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
				addr = m[1]
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), "broker ready") || !strings.Contains(stderr.String(), addr) {
			t.Errorf("log does not report the address: %s", stderr.String())
		}

		in := "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n"
		n, _, err := produceLines(ctx, []string{addr}, "records", "json", strings.NewReader(in), nil)
		if err != nil || n != 2 {
			t.Fatalf("produce: n=%d err=%v", n, err)
		}
		recs := realtest.Consume(t, addr, "records", int(wantRecords))
		if got := int64(len(recs)); got != wantRecords {
			t.Fatalf("consumed %d records, want %d", got, wantRecords)
		}
		partitions := map[int32]bool{}
		for _, r := range recs {
			partitions[r.Partition] = true
		}
		for p := range partitions {
			if p < 0 || p > 2 {
				t.Errorf("record in partition %d of a 3-partition topic", p)
			}
		}

		cancel()
		select {
		case code := <-done:
			if code != ExitOK {
				t.Fatalf("exit %d, want 0; stderr: %s", code, stderr.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("broker did not stop within 5 s of its context ending")
		}
		if !strings.Contains(stderr.String(), "broker stopped") {
			t.Errorf("no shutdown log: %s", stderr.String())
		}
	}
	run(2)
	run(4) // the same data directory: the first run's records are still there
}

func TestBrokerCommandAddrInUse(t *testing.T) {
	b, err := broker.Start(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"broker", "--addr", b.ListenAddr()}, nil, &stdout, &stderr)
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitFailure, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "address already in use") || !strings.Contains(msg, b.ListenAddr()) {
		t.Errorf("message %q should say the address %s is in use", msg, b.ListenAddr())
	}
}

func TestBrokerCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"bad addr", []string{"--addr", "nope"}, "addr"},
		{"bad port", []string{"--addr", "127.0.0.1:99999"}, "port"},
		{"zero partitions", []string{"--partitions", "0"}, "partitions"},
		{"not a number", []string{"--partitions", "x"}, "partitions"},
		{"bad topic", []string{"--topic", "ok,no/slash"}, "no/slash"},
		{"stray argument", []string{"extra"}, "extra"},
		{"negative session", []string{"--group-min-session-timeout", "-1s"}, "session timeout"},
		{"user without password", []string{"--sasl-mechanism", "PLAIN", "--sasl-user", "alice"}, "USER:PASSWORD"},
		{"mechanism without user", []string{"--sasl-mechanism", "SCRAM-SHA-512"}, "at least one user"},
		{"unknown mechanism", []string{"--sasl-mechanism", "GSSAPI", "--sasl-user", "a:b"}, "GSSAPI"},
		{"cert without key", []string{"--tls-cert-file", "cert.pem"}, "both a certificate file and a key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"broker"}, tc.args...), nil, &stdout, &stderr)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.want)
			}
		})
	}
}
