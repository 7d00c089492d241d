package ingest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/ingest"
	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/realtest"
)

// securedBroker runs a broker that requires SASL (every mechanism, users
// alice and bob) over TLS with a CA made for the test.
func securedBroker(t *testing.T, topic string, partitions int) (*broker.Broker, realtest.TLSFiles) {
	t.Helper()
	files := realtest.TLS(t)
	b, err := broker.Start(broker.Config{
		Addr: "127.0.0.1:0", Partitions: partitions, Topics: []string{topic},
		GroupMinSessionTimeout: time.Second,
		TLSCertFile:            files.Cert, TLSKeyFile: files.Key,
		SASLMechanisms: []string{broker.MechanismPlain, broker.MechanismScramSHA256, broker.MechanismScramSHA512},
		Users:          map[string]string{"alice": "alice-secret", "bob": "bob-secret"},
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, files
}

func passwordFile(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// securedHighWatermarks is highWatermarks through TLS and SASL/PLAIN.
func securedHighWatermarks(t *testing.T, addr, topic string, partitions int, caFile string) map[int32]int64 {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &kafka.Transport{TLS: &tls.Config{RootCAs: pool}, SASL: plain.Mechanism{Username: "bob", Password: "bob-secret"}}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	return listEnds(t, c, topic, partitions)
}

// TestIngestSecured produces real records with SASL/PLAIN over TLS and
// ingests them with SCRAM-SHA-512 over TLS: the lake holds every offset
// once, with the records' texts.
func TestIngestSecured(t *testing.T) {
	lines := realtest.CorpusLines(t, 5000)
	const topic, parts = "secured", 3
	b, files := securedBroker(t, topic, parts)

	var in bytes.Buffer
	for _, l := range lines {
		in.Write(l)
		in.WriteByte('\n')
	}
	st, err := ingest.Produce(context.Background(), ingest.ProduceConfig{
		Brokers: []string{b.Addr()}, Topic: topic,
		Security: ingest.SecurityConfig{Protocol: "SASL_SSL"},
		SASL:     ingest.SASLConfig{Mechanism: "PLAIN", Username: "bob", PasswordFile: passwordFile(t, "bob-secret")},
		TLS:      ingest.TLSConfig{CAFile: files.CA},
	}, &in)
	if err != nil || st.Records != int64(len(lines)) {
		t.Fatalf("produce: %d records, %v", st.Records, err)
	}

	dir := t.TempDir()
	cfg := testConfig(b.Addr(), topic, dir)
	cfg.Security.Protocol = "sasl_ssl" // any case, as Kafka clients take it
	cfg.SASL = ingest.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "alice-secret"}
	cfg.TLS.CAFile = files.CA
	cfg.SetDefaults()
	sum, err := runIngest(t, cfg, openLake(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != int64(len(lines)) {
		t.Errorf("ingested %d records, want %d", sum.Records, len(lines))
	}
	lc := readLake(t, dir, topic)
	checkExact(t, lc, securedHighWatermarks(t, b.Addr(), topic, parts, files.CA))
	checkTexts(t, lc.raw, lines)
}

// TestSecurityFailures: wrong credentials, a disabled mechanism, an
// untrusted certificate and TLS against a plaintext listener fail at start,
// within seconds, with an error that says which, for ingest and produce.
func TestSecurityFailures(t *testing.T) {
	b, files := securedBroker(t, "t", 1)
	plainBroker := startBroker(t, "t", 1)
	mtls, err := broker.Start(broker.Config{Topics: []string{"t"}, Partitions: 1,
		TLSCertFile: files.Cert, TLSKeyFile: files.Key, TLSClientCAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mtls.Close)
	cases := []struct {
		name     string
		addr     string
		sec      string
		sasl     ingest.SASLConfig
		ca       string
		sentinel error
		msg      string
	}{
		{"wrong password", b.Addr(), "SASL_SSL", ingest.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "wrong"}, files.CA,
			ingest.ErrAuthentication, `authentication failed for user "alice" with mechanism SCRAM-SHA-512`},
		{"unknown user", b.Addr(), "SASL_SSL", ingest.SASLConfig{Mechanism: "PLAIN", Username: "mallory", Password: "alice-secret"}, files.CA,
			ingest.ErrAuthentication, `authentication failed for user "mallory" with mechanism PLAIN`},
		{"untrusted certificate", b.Addr(), "SASL_SSL", ingest.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "alice", Password: "alice-secret"}, files.OtherCA,
			ingest.ErrTLS, "certificate is signed by an unknown authority"},
		{"system roots", b.Addr(), "SSL", ingest.SASLConfig{}, "",
			ingest.ErrTLS, "certificate is signed by an unknown authority"},
		{"not a TLS listener", plainBroker.Addr(), "SSL", ingest.SASLConfig{}, files.CA,
			ingest.ErrTLS, "closed the connection during the TLS handshake (does it listen for TLS?"},
		{"plaintext to a TLS listener", b.Addr(), "PLAINTEXT", ingest.SASLConfig{}, "",
			ingest.ErrTLS, "the broker's listener speaks TLS (set security.protocol SSL or SASL_SSL"},
		{"no client certificate", mtls.Addr(), "SSL", ingest.SASLConfig{}, files.CA,
			ingest.ErrTLS, "refused the TLS connection (if it requires a client certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(c.addr, "t", t.TempDir())
			cfg.Security.Protocol, cfg.SASL, cfg.TLS.CAFile = c.sec, c.sasl, c.ca
			cfg.SetDefaults()
			in, err := ingest.New(cfg, openLake(t, cfg.Lake), testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			err = in.CheckBrokers(context.Background())
			check(t, "ingest", err, c.sentinel, c.msg, t0)

			t0 = time.Now()
			_, err = ingest.Produce(context.Background(), ingest.ProduceConfig{
				Brokers: []string{c.addr}, Topic: "t",
				Security: cfg.Security, SASL: cfg.SASL, TLS: cfg.TLS,
			}, strings.NewReader("{\"id\":1}\n"))
			check(t, "produce", err, c.sentinel, c.msg, t0)
		})
	}
}

// TestClientCertificate: with tls.cert_file and tls.key_file, ingest and
// produce reach a broker that requires a client certificate.
func TestClientCertificate(t *testing.T) {
	files := realtest.TLS(t)
	b, err := broker.Start(broker.Config{Topics: []string{"t"}, Partitions: 1,
		TLSCertFile: files.Cert, TLSKeyFile: files.Key, TLSClientCAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := testConfig(b.Addr(), "t", t.TempDir())
	cfg.Security.Protocol = ingest.ProtocolSSL
	cfg.TLS = ingest.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
	in, err := ingest.New(cfg, openLake(t, cfg.Lake), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckBrokers(context.Background()); err != nil {
		t.Errorf("ingest: %v", err)
	}
	st, err := ingest.Produce(context.Background(), ingest.ProduceConfig{
		Brokers: []string{b.Addr()}, Topic: "t", Security: cfg.Security, TLS: cfg.TLS,
	}, strings.NewReader("{\"id\":1}\n"))
	if err != nil || st.Records != 1 {
		t.Errorf("produce: %d records, %v", st.Records, err)
	}
}

func check(t *testing.T, who string, err, sentinel error, msg string, t0 time.Time) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: %v, want %v", who, err, sentinel)
	} else if !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %q does not say %q", who, err, msg)
	}
	if errors.Is(err, ingest.ErrNoBroker) {
		t.Errorf("%s: %v also claims no broker is reachable", who, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("%s: took %v to fail", who, d)
	}
}

// TestSecurityConfigValidate lists every problem of the security settings
// at once, with the files it could not use.
func TestSecurityConfigValidate(t *testing.T) {
	files := realtest.TLS(t)
	empty := passwordFile(t, "")
	missing := filepath.Join(t.TempDir(), "missing")
	base := func() ingest.Config {
		return ingest.Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}, Group: "g", Lake: t.TempDir()}
	}
	for _, tc := range []struct {
		name string
		edit func(*ingest.Config)
		want []string
	}{
		{"plaintext", func(*ingest.Config) {}, nil},
		{"SASL_SSL complete", func(c *ingest.Config) {
			c.Security.Protocol = "SASL_SSL"
			c.SASL = ingest.SASLConfig{Mechanism: "scram-sha-256", Username: "u", PasswordFile: passwordFile(t, "pw")}
			c.TLS = ingest.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
		}, nil},
		{"SASL_SSL without anything", func(c *ingest.Config) { c.Security.Protocol = "SASL_SSL" }, []string{
			"sasl.mechanism: required with security.protocol SASL_SSL",
			"sasl.username: required with security.protocol SASL_SSL",
			"sasl.password_file: required with security.protocol SASL_SSL (or set THRESHER_SASL_PASSWORD)",
		}},
		{"unusable files", func(c *ingest.Config) {
			c.Security.Protocol = "SASL_SSL"
			c.SASL = ingest.SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordFile: missing}
			c.TLS = ingest.TLSConfig{CAFile: files.Key, CertFile: files.ClientCert}
		}, []string{
			`sasl.mechanism: "GSSAPI" must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`,
			"sasl.password_file: open " + missing + ": no such file or directory",
			"tls.ca_file: " + files.Key + " holds no PEM certificate",
			"tls.key_file: required with tls.cert_file",
		}},
		{"key without cert, empty password", func(c *ingest.Config) {
			c.Security.Protocol = "SASL_SSL"
			c.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: empty}
			c.TLS = ingest.TLSConfig{KeyFile: files.ClientKey}
		}, []string{"sasl.password_file: " + empty + " is empty", "tls.cert_file: required with tls.key_file"}},
		{"mismatched key", func(c *ingest.Config) {
			c.Security.Protocol = "SSL"
			c.TLS = ingest.TLSConfig{CertFile: files.ClientCert, KeyFile: files.Key}
		}, []string{"tls.cert_file, tls.key_file: tls: private key does not match public key"}},
		{"two passwords", func(c *ingest.Config) {
			c.Security.Protocol = "SASL_PLAINTEXT"
			c.SASL = ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: passwordFile(t, "a"), Password: "b"}
		}, []string{"sasl.password_file: given along with THRESHER_SASL_PASSWORD"}},
		{"settings the protocol ignores", func(c *ingest.Config) {
			c.SASL = ingest.SASLConfig{Mechanism: "PLAIN"}
			c.TLS = ingest.TLSConfig{CAFile: files.CA}
		}, []string{
			"sasl.*: set, but security.protocol PLAINTEXT does not use SASL",
			"tls.*: set, but security.protocol PLAINTEXT does not use TLS",
		}},
		{"unknown protocol", func(c *ingest.Config) { c.Security.Protocol = "SSL_SASL" }, []string{
			`security.protocol: "SSL_SASL" must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			c.SetDefaults()
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ingest.New(c, openLake(t, c.Lake), nil, nil); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ingest.ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			pc := ingest.ProduceConfig{Brokers: c.Brokers, Topic: "t", Security: c.Security, SASL: c.SASL, TLS: c.TLS}
			if err := pc.Validate(); !errors.Is(err, ingest.ErrConfig) || !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("ProduceConfig.Validate = %v, want %q", err, tc.want[0])
			}
		})
	}
}

// TestSecurityEnv reads the settings from THRESHER_INGEST_* and the
// password from THRESHER_SASL_PASSWORD, which replaces a password file of
// the YAML file.
func TestSecurityEnv(t *testing.T) {
	env := map[string]string{
		"THRESHER_INGEST_SECURITY_PROTOCOL": "SASL_SSL",
		"THRESHER_INGEST_SASL_MECHANISM":    "SCRAM-SHA-512",
		"THRESHER_INGEST_SASL_USERNAME":     "alice",
		"THRESHER_INGEST_TLS_CA_FILE":       "ca.pem",
		"THRESHER_INGEST_TLS_CERT_FILE":     "c.pem",
		"THRESHER_INGEST_TLS_KEY_FILE":      "c.key",
		ingest.PasswordEnv:                  "from-env",
	}
	var c ingest.Config
	c.SASL.PasswordFile = "from-yaml"
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	want := ingest.Config{
		Security: ingest.SecurityConfig{Protocol: "SASL_SSL"},
		SASL:     ingest.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "from-env"},
		TLS:      ingest.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "c.key"},
	}
	if c.Security != want.Security || c.SASL != want.SASL || c.TLS != want.TLS {
		t.Errorf("got %+v %+v %+v, want %+v %+v %+v", c.Security, c.SASL, c.TLS, want.Security, want.SASL, want.TLS)
	}
}

// TestPasswordNeverPrinted: fmt, slog and YAML print the configuration
// without its password.
func TestPasswordNeverPrinted(t *testing.T) {
	const secret = "pa55-w0rd-not-printed"
	c := ingest.Config{SASL: ingest.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: secret}}
	var out bytes.Buffer
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&out, f+"\n", c)
		fmt.Fprintf(&out, f+"\n", c.SASL.Password)
	}
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "cfg", c, "sasl", c.SASL, "password", c.SASL.Password)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "sasl", c.SASL, "password", c.SASL.Password)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(y)
	if strings.Contains(out.String(), secret) {
		t.Fatalf("the password was printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("no [redacted] where the password is:\n%s", out.String())
	}
}
