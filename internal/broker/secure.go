package broker

// This file holds the broker's TLS and SASL. kfake has both, but it
// advertises SaslHandshake v1 only, which librdkafka (kcat) reads as "SASL
// Handshake not supported by broker", and it answers a failed
// authentication by closing the connection, which a client cannot tell from
// a network failure. So the broker authenticates connections itself, in
// front of kfake, the way a Kafka broker does:
//
//   - every accepted connection first goes through TLS when configured;
//   - until it is authenticated, secureConn reads its requests: ApiVersions
//     goes on to kfake, and its answer is patched to advertise SaslHandshake
//     v0-1; SaslHandshake (v0 or v1) and SaslAuthenticate are answered here;
//     any other request closes the connection;
//   - a failed authentication is answered with SASL_AUTHENTICATION_FAILED and
//     Kafka's message, then the connection is closed;
//   - once authenticated, the connection is a plain pipe to kfake.
//
// After a v0 handshake the client sends its SASL tokens unframed (a 4-byte
// length and the bytes, no request header), as Kafka before 1.0 did; they
// are answered the same way, and a failure closes the connection without an
// answer, as Kafka does. Re-authentication (KIP-368) is not supported: the
// broker never sets a session lifetime, so clients do not attempt it.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL mechanisms the broker can require.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// maxAuthFrame bounds a request read before authentication (Kafka's
// sasl.server.max.receive.size).
const maxAuthFrame = 512 << 10

// maxRequest bounds a request (Kafka's socket.request.max.bytes). A TLS
// client talking to a plaintext listener sends more: its ClientHello read
// as a size.
const maxRequest = 100 << 20

// security is the broker's TLS and SASL setup, built once by Start.
type security struct {
	tls   *tls.Config     // nil: plaintext
	mechs map[string]bool // enabled SASL mechanisms; empty: no SASL
	names []string        // the same, sorted, as the handshake lists them
	plain map[string]string
	scram map[string]map[string]scramCredential // mechanism, user
	log   *slog.Logger
}

// newSecurity loads the certificate files and derives the SCRAM
// credentials of cfg, which Validate accepted.
func newSecurity(cfg Config, log *slog.Logger) (*security, error) {
	s := &security{mechs: map[string]bool{}, log: log}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("broker: TLS certificate %s and key %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLSClientCAFile != "" {
			pool, err := loadCertPool(cfg.TLSClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("broker: TLS client CA: %w", err)
			}
			s.tls.ClientCAs = pool
			s.tls.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	for _, m := range cfg.SASLMechanisms {
		s.mechs[m] = true
	}
	for m := range s.mechs {
		s.names = append(s.names, m)
	}
	sort.Strings(s.names)
	if s.mechs[MechanismPlain] {
		s.plain = cfg.Users
	}
	for _, m := range []string{MechanismScramSHA256, MechanismScramSHA512} {
		if !s.mechs[m] {
			continue
		}
		if s.scram == nil {
			s.scram = map[string]map[string]scramCredential{}
		}
		creds := map[string]scramCredential{}
		for u, p := range cfg.Users {
			c, err := newScramCredential(m, p)
			if err != nil {
				return nil, fmt.Errorf("broker: SCRAM credential of %q: %w", u, err)
			}
			creds[u] = c
		}
		s.scram[m] = creds
	}
	return s, nil
}

func loadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// wrap returns ln with TLS and authentication in front.
func (s *security) wrap(ln net.Listener) net.Listener {
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	return &secureListener{Listener: ln, sec: s}
}

type secureListener struct {
	net.Listener
	sec *security
}

func (l *secureListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &secureConn{Conn: c, sec: l.sec, inflight: map[int32]int16{}}
	sc.cond = sync.NewCond(&sc.wmu)
	return sc, nil
}

// secureConn is one client connection. kfake reads it from one goroutine
// and writes it from another, each response in a single Write.
type secureConn struct {
	net.Conn
	sec *security

	// Read side: kfake's reading goroutine only.
	ready   bool   // TLS handshake done and, with SASL, authenticated
	pending []byte // a request passed on to kfake, not yet all read
	sess    saslSession
	mech    string
	v0      bool // the handshake was v0: tokens come unframed

	// Write side, and the requests passed on and not yet answered.
	wmu      sync.Mutex
	cond     *sync.Cond
	inflight map[int32]int16 // correlation id -> ApiVersions version
	closed   bool
}

// errAuth ends a connection whose authentication failed.
var errAuth = errors.New("broker: authentication failed")

func (c *secureConn) Read(p []byte) (int, error) {
	for !c.ready && len(c.pending) == 0 {
		if err := c.serve(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// serve handles the next step of a connection that is not ready: the TLS
// handshake, then one request (or unframed token) before authentication.
func (c *secureConn) serve() error {
	if tc, ok := c.Conn.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		if err := tc.Handshake(); err != nil {
			c.sec.log.Info("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
			return err
		}
	}
	if len(c.sec.mechs) == 0 {
		// Refuse an oversized first request at once, as Kafka does:
		// kfake would wait for all of its bytes.
		size := make([]byte, 4)
		if _, err := io.ReadFull(c.Conn, size); err != nil {
			return err
		}
		if n := binary.BigEndian.Uint32(size); n > maxRequest {
			c.sec.log.Info("a first request over 100 MiB; closing the connection (a TLS client on a plaintext listener?)",
				"client", c.RemoteAddr().String(), "bytes", n)
			return fmt.Errorf("broker: a %d-byte request from %s", n, c.RemoteAddr())
		}
		c.pending, c.ready = size, true
		return nil
	}
	frame, err := readFrame(c.Conn)
	if err != nil {
		return err
	}
	if c.v0 {
		return c.token(frame)
	}
	key, version, corr, req, body, err := parseRequest(frame)
	if err != nil {
		return fmt.Errorf("broker: a request before authentication from %s: %w", c.RemoteAddr(), err)
	}
	switch key {
	case kmsg.ApiVersions.Int16():
		c.wmu.Lock()
		c.inflight[corr] = version
		c.wmu.Unlock()
		c.pending = binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(frame)), uint32(len(frame)))
		c.pending = append(c.pending, frame...)
		return nil
	case kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16():
		if err := req.ReadFrom(body); err != nil {
			return fmt.Errorf("broker: %s from %s: %w", kmsg.NameForKey(key), c.RemoteAddr(), err)
		}
	default:
		c.sec.log.Info("request before SASL authentication; closing the connection",
			"client", c.RemoteAddr().String(), "request", kmsg.NameForKey(key))
		return fmt.Errorf("broker: %s request from %s before SASL authentication", kmsg.NameForKey(key), c.RemoteAddr())
	}
	if hs, ok := req.(*kmsg.SASLHandshakeRequest); ok {
		return c.handshake(corr, hs)
	}
	return c.authenticate(corr, req.(*kmsg.SASLAuthenticateRequest))
}

func (c *secureConn) handshake(corr int32, req *kmsg.SASLHandshakeRequest) error {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = c.sec.names
	switch {
	case c.mech != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !c.sec.mechs[req.Mechanism]:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	if err := c.reply(corr, resp); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		c.sec.log.Info("SASL handshake refused", "client", c.RemoteAddr().String(), "mechanism", req.Mechanism,
			"enabled", c.sec.names, "err", kerr.ErrorForCode(resp.ErrorCode))
		return errAuth
	}
	c.mech, c.v0 = req.Mechanism, req.Version == 0
	c.sess = c.sec.session(req.Mechanism)
	return nil
}

func (c *secureConn) authenticate(corr int32, req *kmsg.SASLAuthenticateRequest) error {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.sess == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate before a SaslHandshake"
		resp.ErrorMessage = &msg
		if err := c.reply(corr, resp); err != nil {
			return err
		}
		return errAuth
	}
	out, done, err := c.sess.step(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		c.logFailure(err)
		if werr := c.reply(corr, resp); werr != nil {
			return werr
		}
		return errAuth
	}
	resp.SASLAuthBytes = out
	if err := c.reply(corr, resp); err != nil {
		return err
	}
	c.finish(done)
	return nil
}

// token handles an unframed SASL token after a v0 handshake.
func (c *secureConn) token(tok []byte) error {
	out, done, err := c.sess.step(tok)
	if err != nil {
		c.logFailure(err)
		return errAuth
	}
	if err := c.write(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out))), out); err != nil {
		return err
	}
	c.finish(done)
	return nil
}

func (c *secureConn) logFailure(err error) {
	why := err.Error()
	var ae *authError
	if errors.As(err, &ae) {
		why = ae.why
	}
	c.sec.log.Info("SASL authentication failed", "client", c.RemoteAddr().String(), "mechanism", c.mech,
		"user", c.sess.user(), "reason", why)
}

func (c *secureConn) finish(done bool) {
	if done {
		c.ready = true
		c.sec.log.Debug("SASL authenticated", "client", c.RemoteAddr().String(), "mechanism", c.mech, "user", c.sess.user())
		c.sess = nil
	}
}

// reply writes the response to the request with correlation id corr.
func (c *secureConn) reply(corr int32, resp kmsg.Response) error {
	buf := make([]byte, 8, 64)
	if resp.IsFlexible() {
		buf = append(buf, 0) // no tagged fields in the header
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:], uint32(corr))
	return c.write(buf)
}

// write writes bufs once every request passed on to kfake is answered, so
// that responses keep the order of their requests.
func (c *secureConn) write(bufs ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(c.inflight) > 0 && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return net.ErrClosed
	}
	for _, b := range bufs {
		if _, err := c.Conn.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Write writes a response of kfake, patching ApiVersions answers given
// before authentication.
func (c *secureConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.inflight) > 0 && len(p) >= 8 {
		corr := int32(binary.BigEndian.Uint32(p[4:8]))
		if v, ok := c.inflight[corr]; ok {
			delete(c.inflight, corr)
			c.cond.Broadcast()
			if body, ok := patchAPIVersions(p[8:], v); ok {
				buf := binary.BigEndian.AppendUint32(make([]byte, 0, 8+len(body)), uint32(4+len(body)))
				buf = binary.BigEndian.AppendUint32(buf, uint32(corr))
				if _, err := c.Conn.Write(append(buf, body...)); err != nil {
					return 0, err
				}
				return len(p), nil
			}
		}
	}
	return c.Conn.Write(p)
}

func (c *secureConn) Close() error {
	c.wmu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.wmu.Unlock()
	return c.Conn.Close()
}

// patchAPIVersions rewrites an ApiVersions response body (its header, which
// is never flexible, already removed) to advertise SaslHandshake from v0.
// librdkafka enables SASL only when the range includes v0, and then uses
// the highest common version, v1. Error answers are left alone.
func patchAPIVersions(body []byte, version int16) ([]byte, bool) {
	if len(body) < 2 || binary.BigEndian.Uint16(body) != 0 {
		return nil, false
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	if err := resp.ReadFrom(body); err != nil {
		return nil, false
	}
	for i := range resp.ApiKeys {
		if resp.ApiKeys[i].ApiKey == kmsg.SASLHandshake.Int16() {
			resp.ApiKeys[i].MinVersion = 0
		}
	}
	return resp.AppendTo(nil), true
}

// parseRequest reads a request frame's header: key, version, correlation
// id, and an empty request of that key and version with the body to read
// it from.
func parseRequest(frame []byte) (key, version int16, corr int32, req kmsg.Request, body []byte, err error) {
	r := kbin.Reader{Src: frame}
	key, version, corr = r.Int16(), r.Int16(), r.Int32()
	r.NullableString() // client id
	if err := r.Complete(); err != nil {
		return 0, 0, 0, nil, nil, errors.New("truncated request header")
	}
	if req = kmsg.RequestForKey(key); req == nil {
		return 0, 0, 0, nil, nil, fmt.Errorf("unknown request key %d", key)
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return 0, 0, 0, nil, nil, errors.New("truncated request header")
		}
	}
	return key, version, corr, req, r.Src, nil
}

// readFrame reads a size-prefixed frame of at most maxAuthFrame bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxAuthFrame {
		return nil, fmt.Errorf("broker: a %d-byte request before authentication, over %d (a TLS client on a plaintext listener?)", n, maxAuthFrame)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// securityProblems lists what is wrong with the TLS and SASL settings.
func (c Config) securityProblems() []error {
	var errs []error
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		errs = append(errs, errors.New("TLS needs both a certificate file and a key file"))
	case c.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("TLS certificate %s and key %s: %w", c.TLSCertFile, c.TLSKeyFile, err))
		}
	}
	if c.TLSClientCAFile != "" {
		if c.TLSCertFile == "" {
			errs = append(errs, errors.New("a TLS client CA file needs TLS (a certificate and key file)"))
		} else if _, err := loadCertPool(c.TLSClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("TLS client CA: %w", err))
		}
	}
	for _, m := range c.SASLMechanisms {
		switch m {
		case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		default:
			errs = append(errs, fmt.Errorf("SASL mechanism %q: want %s, %s or %s", m, MechanismPlain, MechanismScramSHA256, MechanismScramSHA512))
		}
	}
	if len(c.SASLMechanisms) > 0 && len(c.Users) == 0 {
		errs = append(errs, errors.New("SASL needs at least one user"))
	}
	if len(c.SASLMechanisms) == 0 && len(c.Users) > 0 {
		errs = append(errs, errors.New("SASL users given without a SASL mechanism"))
	}
	users := make([]string, 0, len(c.Users))
	for u := range c.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if u == "" {
			errs = append(errs, errors.New("SASL user: the name must not be empty"))
		}
		if c.Users[u] == "" {
			errs = append(errs, fmt.Errorf("SASL user %q: the password must not be empty", u))
		}
	}
	return errs
}
