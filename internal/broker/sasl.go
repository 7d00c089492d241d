package broker

// The server side of the SASL mechanisms: PLAIN (RFC 4616) and SCRAM
// (RFC 5802 and 7677, without channel binding, as Kafka does it). Failures
// carry the messages a Kafka broker sends, so that clients report them the
// same way.

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// scramIterations is the PBKDF2 iteration count of the SCRAM credentials
// (Kafka's minimum and kafka-configs' default).
const scramIterations = 4096

// saslSession is the server side of one authentication exchange.
type saslSession interface {
	// step takes the client's next message and returns the server's
	// answer, and whether the client is now authenticated. An error means
	// the authentication failed; its text is what the client is told.
	step(msg []byte) (out []byte, done bool, err error)
	// user is the user name the client gave, once it gave one.
	user() string
}

func (s *security) session(mechanism string) saslSession {
	switch mechanism {
	case MechanismPlain:
		return &plainSession{users: s.plain}
	case MechanismScramSHA256, MechanismScramSHA512:
		return &scramSession{mech: mechanism, creds: s.scram[mechanism]}
	}
	return nil
}

// authError is a failed authentication: msg is what the client is told,
// the words of a Kafka broker, which do not say whether the user or the
// password was wrong; why is what the broker logs.
type authError struct{ msg, why string }

func (e *authError) Error() string { return e.msg }

// plainFailed is Kafka's answer to bad PLAIN credentials.
func plainFailed(why string) error {
	return &authError{msg: "Authentication failed: Invalid username or password", why: why}
}

type plainSession struct {
	users map[string]string
	name  string
}

func (s *plainSession) user() string { return s.name }

// step checks "authzid NUL user NUL password"; the authzid may only be
// empty or the user.
func (s *plainSession) step(msg []byte) ([]byte, bool, error) {
	parts := bytes.SplitN(msg, []byte{0}, 3)
	if len(parts) != 3 {
		return nil, false, plainFailed("malformed message")
	}
	s.name = string(parts[1])
	if len(parts[0]) > 0 && string(parts[0]) != s.name {
		return nil, false, plainFailed("authorization id differs from the user name")
	}
	want, ok := s.users[s.name]
	if !ok {
		return nil, false, plainFailed("unknown user")
	}
	if subtle.ConstantTimeCompare([]byte(want), parts[2]) != 1 {
		return nil, false, plainFailed("wrong password")
	}
	return []byte{}, true, nil
}

// scramCredential is what a server keeps of a password (RFC 5802 §3).
type scramCredential struct {
	salt                 []byte
	storedKey, serverKey []byte
}

func scramHash(mechanism string) func() hash.Hash {
	if mechanism == MechanismScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

func newScramCredential(mechanism, password string) (scramCredential, error) {
	h := scramHash(mechanism)
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return scramCredential{}, err
	}
	salted, err := pbkdf2.Key(h, password, salt, scramIterations, h().Size())
	if err != nil {
		return scramCredential{}, err
	}
	clientKey := hmacSum(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return scramCredential{
		salt:      salt,
		storedKey: stored.Sum(nil),
		serverKey: hmacSum(h, salted, "Server Key"),
	}, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

type scramSession struct {
	mech  string
	creds map[string]scramCredential

	name        string
	cred        scramCredential
	gs2         string // the client-first message's GS2 header
	nonce       string // client nonce + server nonce
	clientFirst string // client-first-message-bare
	serverFirst string
	final       bool
}

func (s *scramSession) user() string { return s.name }

// failed is Kafka's answer to any failed SCRAM exchange.
func (s *scramSession) failed(why string) error {
	return &authError{
		msg: "Authentication failed during authentication due to invalid credentials with SASL mechanism " + s.mech,
		why: why,
	}
}

func (s *scramSession) step(msg []byte) ([]byte, bool, error) {
	if !s.final {
		out, err := s.first(string(msg))
		s.final = true
		return out, false, err
	}
	out, err := s.last(string(msg))
	return out, err == nil, err
}

// first reads client-first-message = gs2-header client-first-message-bare,
// where gs2-header = ("n" / "y") "," [ "a=" authzid ] "," and the bare part
// is "n=" user ",r=" nonce [ "," extensions ].
func (s *scramSession) first(msg string) ([]byte, error) {
	cb, rest, ok := strings.Cut(msg, ",")
	if !ok || (cb != "n" && cb != "y") {
		return nil, s.failed("channel binding is not supported")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok || (authz != "" && !strings.HasPrefix(authz, "a=")) {
		return nil, s.failed("malformed client-first-message")
	}
	s.gs2 = cb + "," + authz + ","
	s.clientFirst = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return nil, s.failed("malformed client-first-message")
	}
	name, ok := scramName(attrs[0][2:])
	if !ok {
		return nil, s.failed("malformed user name")
	}
	s.name = name
	if authz != "" {
		if z, ok := scramName(authz[2:]); !ok || z != name {
			return nil, s.failed("authorization id differs from the user name")
		}
	}
	cred, ok := s.creds[name]
	if !ok {
		return nil, s.failed("unknown user")
	}
	s.cred = cred
	var sn [18]byte
	if _, err := rand.Read(sn[:]); err != nil {
		return nil, err
	}
	s.nonce = attrs[1][2:] + base64.RawStdEncoding.EncodeToString(sn[:])
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(cred.salt), scramIterations)
	return []byte(s.serverFirst), nil
}

// last checks client-final-message = "c=" base64(gs2-header) ",r=" nonce
// [ "," extensions ] ",p=" proof, and answers "v=" server signature.
func (s *scramSession) last(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, s.failed("malformed client-final-message")
	}
	without, proof64 := msg[:i], msg[i+3:]
	attrs := strings.Split(without, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(s.gs2)) {
		return nil, s.failed("channel binding does not match")
	}
	// Kafka checks only that the nonce ends with the one it sent:
	// librdkafka 2.0 repeats its own part in front.
	if !strings.HasPrefix(attrs[1], "r=") || !strings.HasSuffix(attrs[1], s.nonce) {
		return nil, s.failed("nonce does not match")
	}
	h := scramHash(s.mech)
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil || len(proof) != h().Size() {
		return nil, s.failed("malformed proof")
	}
	auth := s.clientFirst + "," + s.serverFirst + "," + without
	sig := hmacSum(h, s.cred.storedKey, auth)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ sig[i]
	}
	stored := h()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), s.cred.storedKey) != 1 {
		return nil, s.failed("wrong password")
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(h, s.cred.serverKey, auth))), nil
}

// scramName decodes a saslname: "=2C" is ',' and "=3D" is '='; any other
// '=' is malformed.
func scramName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, s != ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), b.Len() > 0
}
