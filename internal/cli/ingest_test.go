package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run runs the CLI in-process and returns its exit code, stdout and stderr.
// The deadline only stops a hung command: under the race detector, on two
// busy cores, an evaluation of four feature sets takes over a minute.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	code := Run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestIngestBadConfiguration(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	okFlags := []string{"--brokers", closedPort(t), "--topic", "records", "--group", "g", "--lake", t.TempDir()}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // every one must be in stderr
	}{
		{"unknown flag", []string{"ingest", "--frobnicate"}, nil, []string{"flag provided but not defined: -frobnicate"}},
		{"stray argument", append([]string{"ingest", "extra"}, okFlags...), nil, []string{"unexpected arguments"}},
		{"invalid size flag", append([]string{"ingest", "--roll-bytes", "12XB"}, okFlags...), nil, []string{`"12XB" is not a size`}},
		{"invalid duration flag", append([]string{"ingest", "--exit-on-idle", "soon"}, okFlags...), nil, []string{`"soon" is not a duration`}},
		{"nothing given", []string{"ingest"}, nil, []string{"brokers: at least one", "topics: at least one", "group:", "lake: a lake folder is required"}},
		{"bad file", []string{"ingest", "--config", "testdata/config/bad.yaml"}, nil, readLines(t, "testdata/config/bad.errors")},
		{"unknown key", []string{"ingest", "--config", "testdata/config/unknown-key.yaml"}, nil, []string{"field topic not found"}},
		{"bad security file", []string{"ingest", "--config", "testdata/config/bad-security.yaml"}, nil, readLines(t, "testdata/config/bad-security.errors")},
		{"security the protocol ignores", append([]string{"ingest", "--sasl-mechanism", "PLAIN", "--tls-ca-file", "ca.pem"}, okFlags...), nil,
			[]string{"sasl.*: set, but security.protocol PLAINTEXT does not use SASL", "tls.*: set, but security.protocol PLAINTEXT does not use TLS"}},
		{"security from the environment", okFlags, map[string]string{"THRESHER_INGEST_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "THRESHER_INGEST_SASL_MECHANISM": "OAUTHBEARER"},
			[]string{`sasl.mechanism: "OAUTHBEARER"`, "sasl.username: required", "sasl.password_file: required"}},
		{"bad size in file", []string{"ingest", "--config", "testdata/config/bad-size.yaml"}, nil, []string{`"16 megabytes" is not a size`}},
		{"missing file", []string{"ingest", "--config", "testdata/config/nope.yaml"}, nil, []string{"no such file"}},
		{"bad environment", okFlags, map[string]string{"THRESHER_INGEST_ROLL_BYTES": "lots", "THRESHER_INGEST_SESSION_TIMEOUT": "long", "THRESHER_INGEST_STALL_TIMEOUT": "never",
			"THRESHER_INGEST_COMPACT_INTERVAL": "often"},
			[]string{"THRESHER_INGEST_ROLL_BYTES", "THRESHER_INGEST_SESSION_TIMEOUT", "THRESHER_INGEST_STALL_TIMEOUT", "THRESHER_INGEST_COMPACT_INTERVAL"}},
		{"bad compaction flags", append([]string{"ingest", "--compact-interval", "5ms", "--compact-target-size", "2GiB"}, okFlags...), nil,
			[]string{"compact_interval: 5ms must be 0 (off) or at least 1s", "compact_target_size: 2147483648 must be between 1MiB and 1GiB"}},
		{"bad isolation and on_gap", append([]string{"ingest", "--on-gap", "skip", "--roll-records", "-1"}, okFlags...), map[string]string{"THRESHER_INGEST_ISOLATION": "dirty"},
			[]string{`isolation: "dirty" must be read_committed or read_uncommitted`, `on_gap: "skip" must be fail or record`, "roll_records:"}},
		{"no broker reachable", okFlags, nil, []string{"no broker reachable"}},
		{"lake not writable", []string{"ingest", "--brokers", closedPort(t), "--topic", "t", "--group", "g", "--lake", filepath.Join(notDir, "lake")}, nil,
			[]string{"lake:", notDir}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if args[0] != "ingest" {
				args = append([]string{"ingest"}, args...)
			}
			start := time.Now()
			code, _, stderr := run(t, args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestIngestCheckGoodConfig(t *testing.T) {
	t.Setenv("THRESHER_INGEST_ROLL_INTERVAL", "3s")
	t.Setenv("THRESHER_INGEST_ISOLATION", "read_uncommitted")
	code, out, stderr := run(t, "ingest", "--config", "testdata/config/good.yaml", "--group", "from-flag", "--on-gap", "fail", "--check")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"group: from-flag", "text: body", "id: uuid", "roll_bytes: 32MiB", "roll_interval: 3s", "max_value_bytes: 2MiB", "source: source", "stall_timeout: 2m0s",
		"compact_interval: 30m0s", "compact_target_size: 128MiB",
		"isolation: read_uncommitted", "on_gap: fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, _ := run(t, "frobnicate"); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if code, out, _ := run(t, "help"); code != ExitOK || !strings.Contains(out, "ingest") {
		t.Fatalf("help: %d %q", code, out)
	}
}
