package broker_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/realtest"
)

var allMechanisms = []string{broker.MechanismPlain, broker.MechanismScramSHA256, broker.MechanismScramSHA512}

func clientTLS(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool}
}

func mechanism(name, user, pass string) sasl.Mechanism {
	switch name {
	case broker.MechanismPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case broker.MechanismScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

// ping connects with franz-go and returns the error of a metadata request.
func ping(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// TestBrokerSASLKcat: librdkafka (kcat) produces with SCRAM-SHA-512 over
// TLS, which it refuses to do against kfake's own SaslHandshake v1-only
// advertisement, and reads back with PLAIN; franz-go reads the same records
// with SCRAM-SHA-256.
func TestBrokerSASLKcat(t *testing.T) {
	kcat(t)
	files := realtest.TLS(t)
	b := start(t, broker.Config{
		Partitions: 2, Topics: []string{"secured"},
		TLSCertFile: files.Cert, TLSKeyFile: files.Key,
		SASLMechanisms: allMechanisms,
		Users:          map[string]string{"alice": "alice-secret", "bob": "bob-secret"},
	})
	secure := func(mech, user, pass string) []string {
		return []string{"-b", b.Addr(), "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + files.CA,
			"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + user, "-X", "sasl.password=" + pass}
	}
	var in bytes.Buffer
	var want []string
	for i := range 100 {
		k, v := fmt.Sprintf("id-%03d", i), fmt.Sprintf(`{"id":"id-%03d","text":"scram %d"}`, i, i)
		fmt.Fprintf(&in, "%s\t%s\n", k, v)
		want = append(want, k+"="+v)
	}
	sort.Strings(want)
	runKcat(t, in.Bytes(), append(secure("SCRAM-SHA-512", "alice", "alice-secret"), "-t", "secured", "-P", "-K", "\t")...)

	out := runKcat(t, nil, append(secure("PLAIN", "bob", "bob-secret"), "-t", "secured", "-C", "-e", "-q", "-f", "%k=%s\n")...)
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(got)
	equal(t, got, want)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("secured"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DialTLSConfig(clientTLS(t, files.CA)),
		kgo.SASL(mechanism(broker.MechanismScramSHA256, "bob", "bob-secret")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for n < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go read %d of %d records: %v", n, len(want), ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		n += len(fs.Records())
	}
}

// TestBrokerSASLFailures: a wrong password, an unknown user and a disabled
// mechanism are answered as a Kafka broker answers them, at once; plaintext
// clients and clients that do not trust the certificate are refused.
func TestBrokerSASLFailures(t *testing.T) {
	files := realtest.TLS(t)
	b := start(t, broker.Config{
		TLSCertFile: files.Cert, TLSKeyFile: files.Key,
		SASLMechanisms: []string{broker.MechanismPlain, broker.MechanismScramSHA512},
		Users:          map[string]string{"alice": "alice-secret"},
	})
	trusted := kgo.DialTLSConfig(clientTLS(t, files.CA))
	for _, mech := range []string{broker.MechanismPlain, broker.MechanismScramSHA512} {
		if err := ping(t, b.Addr(), trusted, kgo.SASL(mechanism(mech, "alice", "alice-secret"))); err != nil {
			t.Errorf("%s with the right password: %v", mech, err)
		}
	}
	cases := []struct {
		name       string
		opts       []kgo.Opt
		is         error
		msg        string
		notWrapped bool
	}{
		{"PLAIN wrong password", []kgo.Opt{trusted, kgo.SASL(mechanism(broker.MechanismPlain, "alice", "nope"))},
			kerr.SaslAuthenticationFailed, "Authentication failed: Invalid username or password", false},
		{"SCRAM wrong password", []kgo.Opt{trusted, kgo.SASL(mechanism(broker.MechanismScramSHA512, "alice", "nope"))},
			kerr.SaslAuthenticationFailed, "invalid credentials with SASL mechanism SCRAM-SHA-512", false},
		{"SCRAM unknown user", []kgo.Opt{trusted, kgo.SASL(mechanism(broker.MechanismScramSHA512, "mallory", "alice-secret"))},
			kerr.SaslAuthenticationFailed, "invalid credentials with SASL mechanism SCRAM-SHA-512", false},
		{"disabled mechanism", []kgo.Opt{trusted, kgo.SASL(mechanism(broker.MechanismScramSHA256, "alice", "alice-secret"))},
			kerr.UnsupportedSaslMechanism, "", false},
		{"untrusted certificate", []kgo.Opt{kgo.DialTLSConfig(clientTLS(t, files.OtherCA)), kgo.SASL(mechanism(broker.MechanismPlain, "alice", "alice-secret"))},
			x509.UnknownAuthorityError{}, "certificate signed by unknown authority", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			err := ping(t, b.Addr(), c.opts...)
			if err == nil {
				t.Fatal("ping succeeded")
			}
			if !c.notWrapped && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if c.notWrapped && !errors.As(err, &x509.UnknownAuthorityError{}) {
				t.Errorf("error %v is not an x509.UnknownAuthorityError", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}

	// A plaintext request to the TLS listener, and a request before
	// authentication, end the connection.
	for _, tc := range []bool{false, true} {
		conn := dialRaw(t, b.Addr(), tc, files.CA)
		writeRequest(t, conn, 1, kmsg.NewPtrMetadataRequest())
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 64)); err == nil {
			t.Errorf("tls=%v: the broker answered %d bytes to a metadata request before authentication", tc, n)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("tls=%v: the broker neither answered nor closed the connection", tc)
		}
		conn.Close()
	}
}

func dialRaw(t *testing.T, addr string, useTLS bool, caFile string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		cfg := clientTLS(t, caFile)
		cfg.ServerName = "127.0.0.1"
		conn = tls.Client(conn, cfg)
	}
	return conn
}

// writeRequest writes req with correlation id corr, as a client does.
func writeRequest(t *testing.T, w io.Writer, corr int32, req kmsg.Request) {
	t.Helper()
	buf := make([]byte, 4, 64)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(corr))
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads a size-prefixed frame.
func readFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// readResponse reads the response to the request with correlation id corr.
func readResponse(t *testing.T, r io.Reader, corr int32, resp kmsg.Response) {
	t.Helper()
	b := readFrame(t, r)
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	b = b[4:]
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		b = b[1:] // empty header tags
	}
	if err := resp.ReadFrom(b); err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(resp.Key()), err)
	}
}

// TestBrokerSASLHandshakeVersions: ApiVersions advertises SaslHandshake
// v0-1 before authentication, and a v0 handshake, whose PLAIN token travels
// without a request header, authenticates the connection for what follows.
func TestBrokerSASLHandshakeVersions(t *testing.T) {
	b := start(t, broker.Config{
		Topics: []string{"t"}, SASLMechanisms: []string{broker.MechanismPlain},
		Users: map[string]string{"alice": "alice-secret"},
	})
	for _, v0 := range []bool{true, false} {
		conn := dialRaw(t, b.Addr(), false, "")
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		av.ClientSoftwareName, av.ClientSoftwareVersion = "test", "1"
		writeRequest(t, conn, 1, av)
		avr := kmsg.NewPtrApiVersionsResponse()
		avr.Version = 3
		readResponse(t, conn, 1, avr)
		found := false
		for _, k := range avr.ApiKeys {
			if k.ApiKey == kmsg.SASLHandshake.Int16() {
				found = true
				if k.MinVersion != 0 || k.MaxVersion != 1 {
					t.Errorf("SaslHandshake advertised as v%d-%d, want v0-1", k.MinVersion, k.MaxVersion)
				}
			}
		}
		if !found {
			t.Error("SaslHandshake not advertised")
		}

		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = broker.MechanismPlain
		if v0 {
			hs.Version = 0
		} else {
			hs.Version = 1
		}
		writeRequest(t, conn, 2, hs)
		hsr := kmsg.NewPtrSASLHandshakeResponse()
		hsr.Version = hs.Version
		readResponse(t, conn, 2, hsr)
		if hsr.ErrorCode != 0 {
			t.Fatalf("handshake v%d: %v", hs.Version, kerr.ErrorForCode(hsr.ErrorCode))
		}
		token := []byte("\x00alice\x00alice-secret")
		if v0 {
			if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(token)))); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(token); err != nil {
				t.Fatal(err)
			}
			if got := readFrame(t, conn); len(got) != 0 {
				t.Fatalf("PLAIN v0 answer %q, want an empty token", got)
			}
		} else {
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.Version = 2
			au.SASLAuthBytes = token
			writeRequest(t, conn, 3, au)
			aur := kmsg.NewPtrSASLAuthenticateResponse()
			aur.Version = 2
			readResponse(t, conn, 3, aur)
			if aur.ErrorCode != 0 {
				t.Fatalf("authenticate: %v", kerr.ErrorForCode(aur.ErrorCode))
			}
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 4
		writeRequest(t, conn, 4, md)
		mdr := kmsg.NewPtrMetadataResponse()
		mdr.Version = 4
		readResponse(t, conn, 4, mdr)
		if len(mdr.Topics) != 1 || mdr.Topics[0].Topic == nil || *mdr.Topics[0].Topic != "t" {
			t.Errorf("v0=%v: metadata after authentication lists %d topics, want t", v0, len(mdr.Topics))
		}
		conn.Close()
	}
}

// TestBrokerTLSClientCertificate: with a client CA, the broker admits
// clients with a certificate it signed and refuses the others.
func TestBrokerTLSClientCertificate(t *testing.T) {
	files := realtest.TLS(t)
	b := start(t, broker.Config{TLSCertFile: files.Cert, TLSKeyFile: files.Key, TLSClientCAFile: files.CA})
	cert, err := tls.LoadX509KeyPair(files.ClientCert, files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := clientTLS(t, files.CA)
	withCert.Certificates = []tls.Certificate{cert}
	if err := ping(t, b.Addr(), kgo.DialTLSConfig(withCert)); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
	if err := ping(t, b.Addr(), kgo.DialTLSConfig(clientTLS(t, files.CA))); err == nil {
		t.Error("without a client certificate: admitted")
	}
	if err := ping(t, b.Addr()); err == nil {
		t.Error("plaintext: admitted")
	}
}

func TestBrokerSecurityConfigValidate(t *testing.T) {
	files := realtest.TLS(t)
	err := broker.Config{
		TLSCertFile:     files.Cert,
		TLSClientCAFile: files.Cert + ".missing",
		SASLMechanisms:  []string{"GSSAPI"},
		Users:           map[string]string{"alice": ""},
	}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"both a certificate file and a key file", "client CA", `"GSSAPI"`, `"alice": the password must not be empty`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err := (broker.Config{SASLMechanisms: []string{broker.MechanismPlain}}).Validate(); err == nil || !strings.Contains(err.Error(), "at least one user") {
		t.Errorf("SASL without users: %v", err)
	}
	if err := (broker.Config{TLSCertFile: files.Key, TLSKeyFile: files.Cert}).Validate(); err == nil {
		t.Error("certificate and key swapped: accepted")
	}
}
