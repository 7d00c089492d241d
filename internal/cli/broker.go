package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/thresher-ml/thresher/internal/broker"
)

const brokerUsage = `[--addr 127.0.0.1:9092] [--advertise HOST[:PORT]] [--partitions 4] [--topic records[,more]] [--data DIR]
       [--tls-cert-file PEM --tls-key-file PEM [--tls-client-ca-file PEM]]
       [--sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512[,...] --sasl-user USER:PASSWORD ...]

Runs an embedded single-node Kafka-protocol broker for development and demos
until interrupted. Any Kafka client can use it; topics not created at start
are created on first use with --partitions partitions. Without --data it keeps
everything in memory; with it, topics, records, committed group offsets and
group members survive a stop (SIGTERM or SIGINT) and a start on the same
directory, so clients can be tried against a broker restart (a consumer that
rejoins under a new member id waits for the old member's session to expire).

With --tls-cert-file and --tls-key-file the listener speaks TLS (clients use
security.protocol SSL or SASL_SSL); with --sasl-mechanism every client must
authenticate as one of the --sasl-user accounts (SASL_PLAINTEXT or SASL_SSL).`

func runBroker(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "broker", brokerUsage)
	addr := fs.String("addr", "127.0.0.1:9092", "host:port to listen on (port 0 picks a free one)")
	advertise := fs.String("advertise", "", "host[:port] clients are told to dial (default: --addr, or 127.0.0.1 when --addr is a wildcard)")
	partitions := fs.Int("partitions", broker.DefaultPartitions, "partitions of created topics")
	topics := fs.String("topic", "records", "comma-separated topics to create at start")
	data := fs.String("data", "", "directory that keeps the broker's state across restarts (default: memory only)")
	minSession := fs.Duration("group-min-session-timeout", 0, "least consumer group session timeout accepted (default 6s, as Kafka; tests lower it to rebalance quickly)")
	certFile := fs.String("tls-cert-file", "", "serve TLS with this certificate `file` (PEM)")
	keyFile := fs.String("tls-key-file", "", "private key `file` (PEM) of --tls-cert-file")
	clientCA := fs.String("tls-client-ca-file", "", "require client certificates signed by the CA certificates in this `file` (PEM)")
	mechs := fs.String("sasl-mechanism", "", "require SASL authentication with these `mechanisms`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (comma-separated)")
	users := saslUsers{}
	fs.Var(users, "sasl-user", "a SASL account, `USER:PASSWORD` (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := broker.Config{
		Addr:       *addr,
		Advertise:  *advertise,
		Partitions: *partitions,
		Topics:     splitList(*topics),
		DataDir:    *data,
		Logger:     e.log,

		GroupMinSessionTimeout: *minSession,

		TLSCertFile:     *certFile,
		TLSKeyFile:      *keyFile,
		TLSClientCAFile: *clientCA,
		SASLMechanisms:  splitList(*mechs),
	}
	if len(users) > 0 {
		cfg.Users = users
	}
	if *partitions < 1 {
		// Zero would silently mean the default: reject it at the CLI.
		return usagef("--partitions %d: must be at least 1", *partitions)
	}
	if err := cfg.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	e.log.Info("broker ready", "addr", b.Addr(), "listen", b.ListenAddr(),
		"topics", cfg.Topics, "partitions", cfg.Partitions, "data", dataDesc(cfg.DataDir),
		"security_protocol", securityDesc(cfg), "sasl_mechanisms", cfg.SASLMechanisms, "sasl_users", users.names())
	fmt.Fprintf(e.stdout, "broker listening on %s (Ctrl-C to stop)\n", b.Addr())
	<-ctx.Done()
	e.log.Info("broker stopping", "addr", b.Addr())
	b.Close()
	e.log.Info("broker stopped")
	return nil
}

func dataDesc(dir string) string {
	if dir == "" {
		return "memory"
	}
	return dir
}

// securityDesc names what clients must set as security.protocol.
func securityDesc(cfg broker.Config) string {
	switch tls, sasl := cfg.TLSCertFile != "", len(cfg.SASLMechanisms) > 0; {
	case tls && sasl:
		return "SASL_SSL"
	case tls:
		return "SSL"
	case sasl:
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// saslUsers is the repeatable --sasl-user flag: user name to password.
type saslUsers map[string]string

func (u saslUsers) String() string { return strings.Join(u.names(), ",") }

func (u saslUsers) Set(v string) error {
	name, pass, ok := strings.Cut(v, ":")
	switch {
	case !ok || name == "" || pass == "":
		return errors.New("want USER:PASSWORD")
	case u[name] != "":
		return fmt.Errorf("user %q given twice", name)
	}
	u[name] = pass
	return nil
}

// names lists the users, never their passwords.
func (u saslUsers) names() []string {
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
