// Package broker runs an embedded, single-node Kafka-protocol broker for
// development, the demo and tests. It wraps franz-go's kfake: any Kafka client
// (kafka-go, franz-go, librdkafka tools such as kcat, the Java client) can
// produce to it, consume from it and join consumer groups on it.
//
// It is not a production broker and no production path may depend on it: it
// has one node, no replication, and keeps everything in memory unless
// Config.DataDir names a directory, in which case topics, records, group
// offsets, group members and producer state survive a Close and a later
// Start on the same directory (records produced since the last segment roll
// are written through the OS page cache and are safe across a clean Close,
// not across a machine crash). A client that rejoins its group after a
// restart under a new member id (kafka-go does) waits until the restored
// members' sessions expire, as with a real Kafka coordinator.
//
// Addresses: the broker listens on Config.Addr and advertises, in metadata
// responses, the address clients must dial. That is Config.Advertise when set,
// else the listen address; when the listen host is a wildcard ("", 0.0.0.0,
// ::) the broker advertises 127.0.0.1 and logs a warning, because a wildcard
// is not an address a client can reach. Broker.Addr returns the advertised
// address.
//
// Topics named in Config.Topics exist once Start returns; other topics are
// created on first use (metadata auto-creation) with Config.Partitions
// partitions.
//
// Security: with Config.TLSCertFile and TLSKeyFile the listener speaks TLS
// (and with TLSClientCAFile it requires client certificates); with
// Config.SASLMechanisms every connection must first authenticate as one of
// Config.Users with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. The broker does
// the SASL exchange itself, in front of kfake, so that it advertises
// SaslHandshake v0-1 as librdkafka requires, accepts v0 handshakes, and
// answers failures as Kafka does (see secure.go).
//
// Concurrency: a Broker is safe for concurrent use; Close may be called more
// than once.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of created topics when
// Config.Partitions is zero.
const DefaultPartitions = 4

// DefaultAddr is the listen address when Config.Addr is empty: loopback,
// random port.
const DefaultAddr = "127.0.0.1:0"

// ErrAddrInUse is returned by Start when the listen address is taken.
var ErrAddrInUse = errors.New("broker: address already in use")

// Config configures Start. The zero value is a loopback broker on a random
// port holding everything in memory.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free port.
	// Empty means DefaultAddr.
	Addr string
	// Advertise is the host:port (or just the host, keeping the listen
	// port) clients are told to dial. Empty means the listen address, or
	// 127.0.0.1 with the listen port when the listen host is a wildcard.
	Advertise string
	// Partitions is the partition count of the topics in Topics and of
	// auto-created topics. Zero means DefaultPartitions.
	Partitions int
	// Topics are created at start when missing; an existing topic (from
	// DataDir) keeps its partition count.
	Topics []string
	// DataDir, when set, persists the broker's state in that directory
	// across restarts. Empty keeps everything in memory.
	DataDir string
	// Logger receives the broker's errors and warnings, and its request
	// chatter at debug level. Nil discards everything.
	Logger *slog.Logger
	// GroupMinSessionTimeout lowers the minimum consumer-group session
	// timeout the broker accepts (Kafka's default is 6 s); tests use
	// short sessions, e.g. 1 s, to rebalance quickly. Zero keeps 6 s.
	GroupMinSessionTimeout time.Duration

	// TLSCertFile and TLSKeyFile, set together, make the listener speak
	// TLS with this certificate (PEM, the chain after the leaf) and key.
	TLSCertFile, TLSKeyFile string
	// TLSClientCAFile, with TLS, makes the broker require a client
	// certificate signed by one of these CA certificates (PEM).
	TLSClientCAFile string
	// SASLMechanisms, when not empty, makes every connection authenticate
	// with one of them first: MechanismPlain, MechanismScramSHA256,
	// MechanismScramSHA512. Every user of Users can use each of them.
	SASLMechanisms []string
	// Users are the SASL accounts, user name to password.
	Users map[string]string
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, err := splitPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
		}
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			// A bare host is allowed.
			if net.ParseIP(c.Advertise) == nil && !validHostname(c.Advertise) {
				errs = append(errs, fmt.Errorf("advertise %q: want host or host:port", c.Advertise))
			}
		} else if _, err := splitPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("advertise %q: %w", c.Advertise, err))
		}
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("partitions %d: must be positive", c.Partitions))
	}
	for _, t := range c.Topics {
		if err := validTopic(t); err != nil {
			errs = append(errs, err)
		}
	}
	if c.GroupMinSessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("group min session timeout %v: must not be negative", c.GroupMinSessionTimeout))
	}
	errs = append(errs, c.securityProblems()...)
	return errors.Join(errs...)
}

// Broker is a running embedded broker.
type Broker struct {
	cluster    *kfake.Cluster
	addr       string // advertised
	listen     string // actual listen address
	partitions int
	log        *slog.Logger

	mu     sync.Mutex
	closed bool
}

// Start starts a broker and returns once it accepts connections and the
// topics in cfg.Topics exist. The error wraps ErrAddrInUse when the listen
// address is taken.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker: invalid config: %w", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = DefaultPartitions
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	sec, err := newSecurity(cfg, log)
	if err != nil {
		return nil, err
	}
	var (
		ln        net.Listener
		advertise string
	)
	listenFn := func(network, _ string) (net.Listener, error) {
		raw, err := net.Listen(network, cfg.Addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("%w: %s (is another broker or Kafka running there? pick another address)", ErrAddrInUse, cfg.Addr)
			}
			return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Addr, err)
		}
		adv, err := advertised(cfg.Advertise, raw.Addr().String(), log)
		if err != nil {
			raw.Close()
			return nil, err
		}
		advertise = adv
		ln = &advertisedListener{Listener: sec.wrap(raw), addr: advAddr(adv)}
		return ln, nil
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogAdapter{log}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.GroupMinSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(cfg.GroupMinSessionTimeout))
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	if ln == nil { // kfake did not listen through listenFn
		cluster.Close()
		return nil, errors.New("broker: kfake did not open its listener")
	}
	b := &Broker{
		cluster:    cluster,
		addr:       advertise,
		listen:     ln.(*advertisedListener).Listener.Addr().String(),
		partitions: cfg.Partitions,
		log:        log,
	}
	// Seeded topics are ignored when state was loaded from DataDir: make
	// sure every configured topic exists, keeping existing counts.
	for _, t := range cfg.Topics {
		n, err := b.ensureTopic(t, cfg.Partitions)
		if err != nil {
			b.Close()
			return nil, err
		}
		if n != cfg.Partitions {
			log.Warn("topic exists with another partition count; keeping it", "topic", t, "partitions", n, "configured", cfg.Partitions)
		}
	}
	return b, nil
}

// Addr returns the host:port clients should dial.
func (b *Broker) Addr() string { return b.addr }

// ListenAddr returns the host:port the broker listens on, which differs from
// Addr when listening on a wildcard address or behind Config.Advertise.
func (b *Broker) ListenAddr() string { return b.listen }

// CreateTopic creates topic with the given number of partitions (zero means
// the broker's default). It succeeds when the topic already exists with that
// partition count and fails when it exists with another.
func (b *Broker) CreateTopic(topic string, partitions int) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	if partitions < 0 {
		return fmt.Errorf("broker: topic %q: partitions %d must be positive", topic, partitions)
	}
	if partitions == 0 {
		partitions = b.partitions
	}
	n, err := b.ensureTopic(topic, partitions)
	if err != nil {
		return err
	}
	if n != partitions {
		return fmt.Errorf("broker: topic %q exists with %d partitions, not %d", topic, n, partitions)
	}
	return nil
}

// Close stops the broker, persisting its state when it has a DataDir.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.cluster.Close()
}

// ensureTopic creates topic if missing and returns its partition count. It
// works on the cluster in process, so it needs no client credentials.
func (b *Broker) ensureTopic(topic string, partitions int) (int, error) {
	// The lock keeps Close from stopping the cluster under the call, which
	// would then wait for ever.
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("broker: closed")
	}
	err := b.cluster.CreateTopic(topic, int32(partitions), nil)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("broker: create topic %q: %w", topic, err)
	}
	n := len(b.cluster.PartitionInfos(topic))
	if n == 0 {
		return 0, fmt.Errorf("broker: topic %q has no partitions after its creation", topic)
	}
	return n, nil
}

// advertised returns the address to advertise for a listener bound to
// listen, given the configured advertise value (host, host:port or empty).
func advertised(cfgAdv, listen string, log *slog.Logger) (string, error) {
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("broker: listen address %q: %w", listen, err)
	}
	if cfgAdv != "" {
		if h, p, err := net.SplitHostPort(cfgAdv); err == nil {
			if p == "0" {
				p = lport
			}
			return net.JoinHostPort(h, p), nil
		}
		return net.JoinHostPort(cfgAdv, lport), nil
	}
	if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		adv := net.JoinHostPort("127.0.0.1", lport)
		log.Warn("listening on all interfaces but advertising loopback; set the advertised address to the host clients dial",
			"listen", listen, "advertise", adv)
		return adv, nil
	}
	return listen, nil
}

// advertisedListener reports the advertised address as its Addr, which is
// what kfake puts in metadata and coordinator responses.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }

type advAddr string

func (a advAddr) Network() string { return "tcp" }
func (a advAddr) String() string  { return string(a) }

// slogAdapter routes kfake's logs to slog. kfake logs every failed request
// at info level, which is noise for a dev broker: it goes to debug.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	case kfake.LogLevelInfo:
		l = slog.LevelDebug
	default:
		l = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, l) {
		return
	}
	a.log.Log(ctx, l, fmt.Sprintf(msg, args...), "component", "kfake")
}

func splitPort(hostport string) (int, error) {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q: want 0-65535", p)
	}
	return n, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// validTopic applies Kafka's topic name rules.
func validTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("broker: topic %q: invalid name", t)
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("broker: topic %q: invalid character %q (allowed: letters, digits, '.', '_', '-')", t, r)
		}
	}
	return nil
}
