package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/ingest"
)

const produceUsage = `--brokers HOST:PORT[,...] --topic TOPIC [--format json|text] [--progress-every 1s]
       [--security-protocol P --sasl-mechanism M --sasl-username U --sasl-password-file F --tls-ca-file F ...] FILE|-

Produces one record per input line (blank lines skipped) to TOPIC. FILE may be
gzip-compressed (detected by its magic bytes, also on stdin); "-" reads stdin.
With --format json (the default) a line's key is its top-level "id" when that
is a string or a number, and lines are produced as they are, valid or not: the
consumer judges them. With --format text no line has a key. Keyed records are
partitioned with murmur2, as the Java client and kcat -X partitioner=murmur2_random
do; unkeyed records go to batches spread evenly over partitions.

A secured cluster takes the --security-protocol, --sasl-* and --tls-* flags of
thresher ingest; the SASL password comes from --sasl-password-file or the
` + ingest.PasswordEnv + ` variable.`

// runProduce is "thresher produce": flags in, ingest.Produce, the summary out.

func runProduce(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "produce", produceUsage)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers (host:port)")
	topic := fs.String("topic", "", "topic to produce to (required)")
	format := fs.String("format", "json", "input format: json (JSON Lines, key = \"id\") or text (a line a record, no key)")
	every := fs.Duration("progress-every", time.Second, "interval of the progress line on stderr; 0 disables it")
	var secFlags securityFlags
	secFlags.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var (
		sec  ingest.SecurityConfig
		sasl ingest.SASLConfig
		tls  ingest.TLSConfig
	)
	if v, ok := os.LookupEnv(ingest.PasswordEnv); ok && v != "" {
		sasl.Password = ingest.Password(v)
	}
	secFlags.apply(fs, &sec, &sasl, &tls)
	var problems []string
	bl := splitList(*brokers)
	if len(bl) == 0 {
		problems = append(problems, "--brokers: at least one host:port is required")
	}
	if *topic == "" {
		problems = append(problems, "--topic is required")
	}
	form, err := ingest.ParseFormat(*format)
	if err != nil {
		problems = append(problems, fmt.Sprintf("--format %q: want json or text", *format))
	}
	if *every < 0 {
		problems = append(problems, fmt.Sprintf("--progress-every %v: must not be negative", *every))
	}
	problems = append(problems, ingest.SecurityProblems(sec, sasl, tls)...)
	switch fs.NArg() {
	case 0:
		problems = append(problems, "missing input: give a FILE or - for stdin")
	case 1:
	default:
		problems = append(problems, fmt.Sprintf("want one input FILE, got %d: %s", fs.NArg(), strings.Join(fs.Args(), " ")))
	}
	if len(problems) > 0 {
		return usagef("%s", strings.Join(problems, "; "))
	}

	in := e.stdin
	name := fs.Arg(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return &UsageError{Err: err}
		}
		defer f.Close()
		in = f
	}

	var progress io.Writer
	if *every > 0 {
		progress = e.stderr
	}
	stats, err := ingest.Produce(ctx, ingest.ProduceConfig{
		Brokers:       bl,
		Security:      sec,
		SASL:          sasl,
		TLS:           tls,
		Topic:         *topic,
		Format:        form,
		Progress:      progress,
		ProgressEvery: *every,
	}, in)
	if err != nil {
		if errors.Is(err, ingest.ErrNoBroker) || errors.Is(err, ingest.ErrAuthentication) ||
			errors.Is(err, ingest.ErrTLS) || errors.Is(err, ingest.ErrConfig) {
			return &UsageError{Err: err} // like ingest: a configuration to fix, found at start
		}
		if stats.Records > 0 {
			e.log.Warn("produce stopped early", "records", stats.Records, "bytes", stats.Bytes, "topic", *topic)
		}
		return err
	}
	n, b, secs := stats.Records, stats.Bytes, stats.Elapsed.Seconds()
	fmt.Fprintf(e.stdout, "produced %d records (%d bytes) to %s in %.2f s: %.0f rec/s, %.1f MB/s\n",
		n, b, *topic, secs, float64(n)/secs, float64(b)/secs/1e6)
	return nil
}

// produceLines produces every non-blank line of r to topic on brokers, as
// "thresher produce" does (format is "json" or "text", see produceUsage),
// writing a progress line to progress every second when it is not nil. It
// returns once every record it read is acknowledged by all in-sync replicas,
// with the number of records and value bytes acknowledged; on error or when
// ctx is done they count what was acknowledged before it stopped.
func produceLines(ctx context.Context, brokers []string, topic, format string, r io.Reader, progress io.Writer) (n, bytes int64, err error) {
	f, err := ingest.ParseFormat(format)
	if err != nil {
		return 0, 0, fmt.Errorf("format %q: want json or text", format)
	}
	stats, err := ingest.Produce(ctx, ingest.ProduceConfig{
		Brokers:       brokers,
		Topic:         topic,
		Format:        f,
		Progress:      progress,
		ProgressEvery: time.Second,
	}, r)
	return stats.Records, stats.Bytes, err
}
