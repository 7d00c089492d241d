package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// runBrokerCommand runs "thresher broker" with args until the test ends and
// returns the address it listens on.
func runBrokerCommand(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"broker", "--addr", "127.0.0.1:0"}, args...), strings.NewReader(""), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("broker did not stop")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("broker exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not report its address; stderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecuredCluster runs "thresher broker" requiring SCRAM-SHA-512 or PLAIN
// over TLS with a CA made for the test; kcat produces real records with
// SCRAM-SHA-512 to one topic, "thresher produce" with PLAIN (its password
// from THRESHER_SASL_PASSWORD) to another, and "thresher ingest" with
// SCRAM-SHA-512 lands both topics exactly: every offset once, every record's
// text.
func TestSecuredCluster(t *testing.T) {
	kcat := realtest.Tool(t, "kcat", "the Debian package kcat")
	files := realtest.TLS(t)
	addr := runBrokerCommand(t, "--partitions", "3", "--topic", "fromkcat,fromthresher",
		"--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--sasl-mechanism", "SCRAM-SHA-512,PLAIN", "--sasl-user", "alice:alice-secret", "--sasl-user", "bob:bob-secret")
	lines := realtest.CorpusLines(t, 4000)
	var first, second bytes.Buffer
	for i, l := range lines {
		dst := &first
		if i >= 2000 {
			dst = &second
		}
		dst.Write(l)
		dst.WriteByte('\n')
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", addr, "-t", "fromkcat", "-P",
		"-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+files.CA,
		"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret")
	cmd.Stdin = &first
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}

	input := writeFile(t, "second.jsonl", second.String())
	t.Setenv("THRESHER_SASL_PASSWORD", "bob-secret")
	code, out, stderr := run(t, "produce", "--brokers", addr, "--topic", "fromthresher", "--progress-every", "0",
		"--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "bob", "--tls-ca-file", files.CA, input)
	if code != ExitOK || !strings.HasPrefix(out, "produced 2000 records") {
		t.Fatalf("produce: exit %d, %q; stderr:\n%s", code, out, stderr)
	}

	t.Setenv("THRESHER_SASL_PASSWORD", "")
	lakeDir := t.TempDir()
	code, out, stderr = run(t, "ingest", "--brokers", addr, "--topic", "fromkcat,fromthresher", "--group", "secured",
		"--lake", lakeDir, "--exit-on-idle", "500ms", "--roll-interval", "200ms",
		"--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice",
		"--sasl-password-file", writeFile(t, "password", "alice-secret\n"), "--tls-ca-file", files.CA)
	if code != ExitOK || !strings.Contains(out, "records=4000 ") {
		t.Fatalf("ingest: exit %d, %q; stderr:\n%s", code, out, stderr)
	}
	if strings.Contains(stderr, "alice-secret") {
		t.Error("ingest logged the password")
	}

	store, err := lake.OpenDir(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lake.ReadTable[schemas.Raw](context.Background(), store, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[string]map[int64]int{} // topic/partition -> offset -> count
	texts := map[string]int{}
	for _, r := range rows {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if offsets[k] == nil {
			offsets[k] = map[int64]int{}
		}
		offsets[k][r.Offset]++
		texts[r.Text]++
	}
	if len(rows) != len(lines) {
		t.Fatalf("raw holds %d rows, want %d", len(rows), len(lines))
	}
	for k, offs := range offsets {
		for o := range int64(len(offs)) {
			if offs[o] != 1 {
				t.Fatalf("%s offset %d is held %d times (offsets must run from 0 without gaps)", k, o, offs[o])
			}
		}
	}
	for _, l := range realtest.CorpusLines(t, len(lines)) {
		var rec struct{ Text string }
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		if texts[rec.Text] == 0 {
			t.Fatalf("record %.60q did not land", rec.Text)
		}
		texts[rec.Text]--
	}
}

// TestSecuredFailures: wrong credentials and an untrusted certificate make
// ingest and produce exit 2 at once, saying which; --check prints the
// security settings but never the password.
func TestSecuredFailures(t *testing.T) {
	files := realtest.TLS(t)
	b, err := broker.Start(broker.Config{
		Topics: []string{"t"}, TLSCertFile: files.Cert, TLSKeyFile: files.Key,
		SASLMechanisms: []string{broker.MechanismScramSHA512},
		Users:          map[string]string{"alice": "alice-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	input := writeFile(t, "in.jsonl", "{\"id\":\"1\",\"text\":\"x\"}\n")
	wrong := writeFile(t, "wrong", "not-the-password")
	right := writeFile(t, "right", "alice-secret")
	secured := func(pwFile, ca string) []string {
		return []string{"--brokers", b.Addr(), "--topic", "t", "--security-protocol", "SASL_SSL",
			"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password-file", pwFile, "--tls-ca-file", ca}
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", secured(wrong, files.CA), `authentication failed for user "alice" with mechanism SCRAM-SHA-512`},
		{"untrusted certificate", secured(right, files.OtherCA), "certificate is signed by an unknown authority"},
	} {
		for _, cmd := range [][]string{
			append(append([]string{"ingest"}, c.args...), "--group", "g", "--lake", t.TempDir()),
			append(append([]string{"produce"}, c.args...), input),
		} {
			t.Run(c.name+"/"+cmd[0], func(t *testing.T) {
				t0 := time.Now()
				code, _, stderr := run(t, cmd...)
				if code != ExitUsage {
					t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
				}
				if !strings.Contains(stderr, c.want) {
					t.Errorf("stderr does not say %q:\n%s", c.want, stderr)
				}
				if strings.Contains(stderr, "not-the-password") || strings.Contains(stderr, "alice-secret") {
					t.Errorf("stderr holds the password:\n%s", stderr)
				}
				if d := time.Since(t0); d > 5*time.Second {
					t.Errorf("took %v to fail", d)
				}
			})
		}
	}

	t.Run("check", func(t *testing.T) {
		t.Setenv("THRESHER_SASL_PASSWORD", "env-secret-value")
		t.Setenv("THRESHER_INGEST_SASL_MECHANISM", "SCRAM-SHA-256")
		code, out, stderr := run(t, "ingest", "--check", "--brokers", b.Addr(), "--topic", "t", "--group", "g", "--lake", t.TempDir(),
			"--security-protocol", "SASL_SSL", "--sasl-username", "alice", "--tls-ca-file", files.CA)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"protocol: SASL_SSL", "mechanism: SCRAM-SHA-256", "username: alice", "ca_file: " + files.CA} {
			if !strings.Contains(out, want) {
				t.Errorf("--check does not print %q:\n%s", want, out)
			}
		}
		if strings.Contains(out+stderr, "env-secret-value") {
			t.Errorf("--check printed the password:\n%s%s", out, stderr)
		}
		t.Setenv("THRESHER_SASL_PASSWORD", "")
		code, out, stderr = run(t, "ingest", "--check", "--config", "testdata/config/good.yaml", "--security-protocol", "SASL_PLAINTEXT",
			"--sasl-username", "alice", "--sasl-password-file", right)
		if code != ExitOK || !strings.Contains(out, "password_file: "+right) || strings.Contains(out+stderr, "alice-secret") {
			t.Errorf("--check with a password file: exit %d, printed the password or not the file:\n%s%s", code, out, stderr)
		}
	})
}
