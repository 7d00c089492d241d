package ingest

// This file holds how clients reach a secured cluster: the settings, named
// as Kafka clients name them (security.protocol, sasl.mechanism, ...), their
// validation, and the construction of every client thresher makes from them
// (kafka-go's Dialer and Transport, franz-go's options), so that the
// consumer group, the admin calls, the partition readers and the producer
// connect the same way.
//
// SASL is franz-go's implementation (pkg/sasl/plain and pkg/sasl/scram) for
// both libraries: kafka-go's mechanisms are adapted to it, which keeps one
// SCRAM client in the build and saves kafka-go's sasl/scram its three
// modules of dependencies.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	kafkasasl "github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Security protocols (security.protocol): whether connections use TLS,
// SASL, both or neither.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// SASL mechanisms (sasl.mechanism).
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// PasswordEnv is the environment variable the SASL password can come from,
// instead of sasl.password_file, for ingest and produce alike.
const PasswordEnv = "THRESHER_SASL_PASSWORD"

// Errors of connecting to a secured cluster. Both are found at start
// (Ingester.CheckBrokers, Produce) and are configuration to fix, not
// failures to retry.
var (
	// ErrAuthentication means a broker refused the SASL credentials or
	// the mechanism.
	ErrAuthentication = errors.New("ingest: SASL authentication failed")
	// ErrTLS means the TLS handshake with a broker failed: its
	// certificate is not trusted, or it does not speak TLS, or it wants a
	// client certificate.
	ErrTLS = errors.New("ingest: TLS handshake failed")
)

// SecurityConfig is security.protocol.
type SecurityConfig struct {
	// Protocol is PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string `yaml:"protocol"`
}

// SASLConfig is the sasl.* settings, used with SASL_PLAINTEXT and SASL_SSL.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user.
	Username string `yaml:"username"`
	// PasswordFile holds the password (a trailing newline is ignored).
	// Give it or PasswordEnv, not both.
	PasswordFile string `yaml:"password_file"`
	// Password is the password from PasswordEnv. It is never read from a
	// configuration file and never printed.
	Password Password `yaml:"-"`
}

// TLSConfig is the tls.* settings, used with SSL and SASL_SSL.
type TLSConfig struct {
	// CAFile holds the PEM certificates of the authorities that may sign
	// the brokers' certificates; empty means the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile, given together, are the PEM client
	// certificate and key for brokers that require one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Password is a secret: fmt, slog, JSON and YAML print it as [redacted].
type Password string

const redacted = "[redacted]"

func (p Password) String() string {
	if p == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, for %#v.
func (p Password) GoString() string { return strconv.Quote(p.String()) }

// LogValue implements slog.LogValuer.
func (p Password) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalYAML implements yaml.Marshaler.
func (p Password) MarshalYAML() (any, error) { return p.String(), nil }

// MarshalJSON implements json.Marshaler.
func (p Password) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(p.String())), nil }

// normalize upper-cases the protocol and mechanism (Kafka's protocol names
// are case-insensitive) and makes an empty protocol PLAINTEXT.
func normalizeSecurity(sec *SecurityConfig, s *SASLConfig) {
	sec.Protocol = strings.ToUpper(strings.TrimSpace(sec.Protocol))
	if sec.Protocol == "" {
		sec.Protocol = ProtocolPlaintext
	}
	s.Mechanism = strings.ToUpper(strings.TrimSpace(s.Mechanism))
}

// usesTLS and usesSASL say what a protocol, normalized, needs.
func usesTLS(protocol string) bool {
	return protocol == ProtocolSSL || protocol == ProtocolSASLSSL
}

func usesSASL(protocol string) bool {
	return protocol == ProtocolSASLPlaintext || protocol == ProtocolSASLSSL
}

// SecurityProblems lists every problem of the security settings, reading
// the files they name, as Config.Validate and ProduceConfig.Validate do.
// Keys are spelled as in YAML.
func SecurityProblems(sec SecurityConfig, s SASLConfig, t TLSConfig) []string {
	normalizeSecurity(&sec, &s)
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	p := sec.Protocol
	switch p {
	case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
	default:
		add("security.protocol: %q must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", p)
		return errs
	}
	if usesSASL(p) {
		switch s.Mechanism {
		case "":
			add("sasl.mechanism: required with security.protocol %s (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", p)
		case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		default:
			add("sasl.mechanism: %q must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			add("sasl.username: required with security.protocol %s", p)
		}
		switch {
		case s.PasswordFile != "" && s.Password != "":
			add("sasl.password_file: given along with %s; give the password one way", PasswordEnv)
		case s.PasswordFile != "":
			if _, err := readPassword(s.PasswordFile); err != nil {
				add("sasl.password_file: %v", err)
			}
		case s.Password == "":
			add("sasl.password_file: required with security.protocol %s (or set %s)", p, PasswordEnv)
		}
	} else if s.Mechanism != "" || s.Username != "" || s.PasswordFile != "" {
		add("sasl.*: set, but security.protocol %s does not use SASL (SASL_PLAINTEXT or SASL_SSL does)", p)
	}
	if usesTLS(p) {
		if t.CAFile != "" {
			if _, err := loadCAs(t.CAFile); err != nil {
				add("tls.ca_file: %v", err)
			}
		}
		readable := func(key, path string) {
			if _, err := os.Stat(path); err != nil {
				add("%s: %v", key, err)
			}
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			add("tls.key_file: required with tls.cert_file")
			readable("tls.cert_file", t.CertFile)
		case t.CertFile == "" && t.KeyFile != "":
			add("tls.cert_file: required with tls.key_file")
			readable("tls.key_file", t.KeyFile)
		case t.CertFile != "":
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				add("tls.cert_file, tls.key_file: %v", err)
			}
		}
	} else if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
		add("tls.*: set, but security.protocol %s does not use TLS (SSL or SASL_SSL does)", p)
	}
	return errs
}

func readPassword(path string) (Password, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Password(pw), nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// clientSecurity is validated settings made ready for clients.
type clientSecurity struct {
	protocol  string
	tls       *tls.Config    // nil without TLS
	mech      sasl.Mechanism // nil without SASL
	user      string
	mechanism string
}

// newClientSecurity reads the files the settings name. Settings that
// SecurityProblems accepts only fail here when a file changed since.
func newClientSecurity(sec SecurityConfig, s SASLConfig, t TLSConfig) (*clientSecurity, error) {
	normalizeSecurity(&sec, &s)
	if errs := SecurityProblems(sec, s, t); len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
	}
	cs := &clientSecurity{protocol: sec.Protocol}
	if usesTLS(sec.Protocol) {
		cs.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pool, err := loadCAs(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%w: tls.ca_file: %v", ErrConfig, err)
			}
			cs.tls.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("%w: tls.cert_file, tls.key_file: %v", ErrConfig, err)
			}
			cs.tls.Certificates = []tls.Certificate{cert}
		}
	}
	if usesSASL(sec.Protocol) {
		pw := s.Password
		if s.PasswordFile != "" {
			var err error
			if pw, err = readPassword(s.PasswordFile); err != nil {
				return nil, fmt.Errorf("%w: sasl.password_file: %v", ErrConfig, err)
			}
		}
		cs.user, cs.mechanism = s.Username, s.Mechanism
		switch s.Mechanism {
		case MechanismPlain:
			cs.mech = plain.Auth{User: s.Username, Pass: string(pw)}.AsMechanism()
		case MechanismScramSHA256:
			cs.mech = scram.Auth{User: s.Username, Pass: string(pw)}.AsSha256Mechanism()
		case MechanismScramSHA512:
			cs.mech = scram.Auth{User: s.Username, Pass: string(pw)}.AsSha512Mechanism()
		}
	}
	return cs, nil
}

// dialer returns the kafka-go Dialer of the consumer group and readers.
func (cs *clientSecurity) dialer(timeout time.Duration) *kafka.Dialer {
	d := &kafka.Dialer{Timeout: timeout, DualStack: true, TLS: cs.tls}
	if cs.mech != nil {
		d.SASLMechanism = kafkaGoMechanism{cs.mech}
	}
	return d
}

// transport returns a kafka-go Transport for kafka.Client calls. Its
// connections stay open until CloseIdleConnections.
func (cs *clientSecurity) transport(timeout time.Duration) *kafka.Transport {
	t := &kafka.Transport{
		Dial:        (&net.Dialer{Timeout: timeout}).DialContext,
		DialTimeout: timeout,
		TLS:         cs.tls,
	}
	if cs.mech != nil {
		t.SASL = kafkaGoMechanism{cs.mech}
	}
	return t
}

// kgoOpts returns the franz-go client options.
func (cs *clientSecurity) kgoOpts() []kgo.Opt {
	var opts []kgo.Opt
	if cs.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(cs.tls.Clone()))
	}
	if cs.mech != nil {
		opts = append(opts, kgo.SASL(cs.mech))
	}
	return opts
}

// securityError is a connection failure explained.
type securityError struct {
	msg      string
	sentinel error
	err      error
}

func (e *securityError) Error() string   { return e.msg + ": " + e.err.Error() }
func (e *securityError) Unwrap() []error { return []error{e.sentinel, e.err} }

// explain says what an error of connecting to brokers means for the
// settings, wrapping ErrAuthentication or ErrTLS, or returns nil when it is
// none of those (a broker down, for instance). When err itself does not
// tell, a TLS handshake with each broker does: one that fails says why, one
// that succeeds without TLS configured says the listener wants TLS.
func (cs *clientSecurity) explain(ctx context.Context, brokers []string, timeout time.Duration, err error) error {
	name := strings.Join(brokers, ",")
	if e := cs.classify(name, err); e != nil {
		return e
	}
	for _, b := range brokers {
		cfg := cs.tls
		if cfg == nil {
			cfg = &tls.Config{InsecureSkipVerify: true} // only to learn whether it speaks TLS
		}
		perr := probeTLS(ctx, b, cfg, timeout)
		switch {
		case cs.tls == nil && perr == nil:
			return &securityError{
				msg:      b + ": the broker's listener speaks TLS (set security.protocol SSL or SASL_SSL, and tls.ca_file)",
				sentinel: ErrTLS, err: err,
			}
		case cs.tls != nil && perr != nil:
			if e := cs.classify(b, perr); e != nil {
				return e
			}
			if errors.Is(perr, io.EOF) || errors.Is(perr, syscall.ECONNRESET) {
				return &securityError{
					msg:      b + ": the broker closed the connection during the TLS handshake (does it listen for TLS? security.protocol " + cs.protocol + " needs it to)",
					sentinel: ErrTLS, err: perr,
				}
			}
		}
	}
	return nil
}

// probeTLS dials addr and runs a TLS handshake, returning its error.
func probeTLS(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
	}
	return err
}

// classify explains the errors that say what they are.
func (cs *clientSecurity) classify(broker string, err error) error {
	wrap := func(sentinel error, format string, args ...any) error {
		return &securityError{msg: broker + ": " + fmt.Sprintf(format, args...), sentinel: sentinel, err: err}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		op        *net.OpError
	)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed), errors.Is(err, kerr.SaslAuthenticationFailed):
		return wrap(ErrAuthentication, "authentication failed for user %q with mechanism %s (check sasl.username and the password)", cs.user, cs.mechanism)
	case errors.Is(err, kafka.UnsupportedSASLMechanism), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return wrap(ErrAuthentication, "the broker does not accept mechanism %s (set sasl.mechanism to one it enables)", cs.mechanism)
	case errors.As(err, &unknownCA):
		return wrap(ErrTLS, "the broker's certificate is signed by an unknown authority (set tls.ca_file to the certificate of the CA that signed it)")
	case errors.As(err, &hostname):
		return wrap(ErrTLS, "the broker's certificate is not valid for this address (use the host name it was issued for)")
	case errors.As(err, &invalid):
		return wrap(ErrTLS, "the broker's certificate is not valid")
	case errors.As(err, &record):
		return wrap(ErrTLS, "the broker does not speak TLS (security.protocol %s needs a TLS listener)", cs.protocol)
	case errors.As(err, &alert), errors.As(err, &op) && op.Op == "remote error":
		return wrap(ErrTLS, "the broker refused the TLS connection (if it requires a client certificate, set tls.cert_file and tls.key_file)")
	}
	return nil
}

// kafkaGoMechanism adapts a franz-go SASL mechanism to kafka-go.
type kafkaGoMechanism struct{ m sasl.Mechanism }

var _ kafkasasl.Mechanism = kafkaGoMechanism{}

func (k kafkaGoMechanism) Name() string { return k.m.Name() }

func (k kafkaGoMechanism) Start(ctx context.Context) (kafkasasl.StateMachine, []byte, error) {
	var host string
	if md := kafkasasl.MetadataFromContext(ctx); md != nil {
		host = net.JoinHostPort(md.Host, strconv.Itoa(md.Port))
	}
	sess, first, err := k.m.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	return kafkaGoSession{sess}, first, nil
}

type kafkaGoSession struct{ s sasl.Session }

func (k kafkaGoSession) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	done, resp, err := k.s.Challenge(challenge)
	if done && len(resp) > 0 {
		// kafka-go cannot send a last message without reading an answer;
		// PLAIN and SCRAM never ask for it.
		return false, nil, errors.New("sasl: the mechanism ends with a message kafka-go cannot send")
	}
	return done, resp, err
}
