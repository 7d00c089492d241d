package ingest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/thresher-ml/thresher/internal/lake"
)

// Config is everything an ingest member needs. The zero value is not usable:
// call SetDefaults, then Validate. Settings come, in increasing precedence, from
// the defaults, a YAML file (LoadFile), the environment (ApplyEnv) and flags.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Security, SASL and TLS say how to reach a secured cluster
	// (security.protocol, sasl.*, tls.*); the default is PLAINTEXT.
	Security SecurityConfig `yaml:"security"`
	SASL     SASLConfig     `yaml:"sasl"`
	TLS      TLSConfig      `yaml:"tls"`
	// Topics are the topics to consume.
	Topics []string `yaml:"topics"`
	// Group is the Kafka consumer group id shared by every member.
	Group string `yaml:"group"`
	// Lake is the lake folder.
	Lake string `yaml:"lake"`
	// Format is how values are read: "json" (default) or "text".
	Format string `yaml:"format"`
	// Fields names the JSON fields mapped to columns.
	Fields FieldsConfig `yaml:"fields"`
	// MaxValueBytes rejects larger values to the DLQ (default 1MiB).
	MaxValueBytes Size `yaml:"max_value_bytes"`

	// A segment is committed when it holds RollRecords records, RollBytes
	// bytes of values, or its first record is RollInterval old, whichever
	// comes first.
	RollRecords  int      `yaml:"roll_records"`
	RollBytes    Size     `yaml:"roll_bytes"`
	RollInterval Duration `yaml:"roll_interval"`

	// StartFrom says where to start a partition that has nothing in the lake
	// yet: "earliest" (default) or "latest".
	StartFrom string `yaml:"start_from"`

	// FetchMaxBytes bounds one fetch response of one partition (a larger
	// record still comes whole); about two such responses a partition are
	// held at once, one being read while the next arrives. FetchMaxWait is
	// how long the broker may hold a fetch waiting for data.
	FetchMaxBytes Size     `yaml:"fetch_max_bytes"`
	FetchMaxWait  Duration `yaml:"fetch_max_wait"`

	// Isolation is "read_committed" (default: records of aborted
	// transactions never land) or "read_uncommitted" (every record lands,
	// as soon as it is written). Transaction markers land in neither case.
	Isolation string `yaml:"isolation"`
	// OnGap says what to do when a partition's log start has moved past
	// the lake's position (retention or DeleteRecords removed offsets the
	// lake never held): "fail" (default) stops with ErrOffsetGap naming the
	// missing offsets; "record" lands them as one row of the gaps table and
	// goes on from the log start.
	OnGap string `yaml:"on_gap"`

	// Group membership timing.
	SessionTimeout    Duration `yaml:"session_timeout"`
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	RebalanceTimeout  Duration `yaml:"rebalance_timeout"`

	// CompactInterval is how often a member compacts each partition it
	// holds (lake.CompactPartition: runs of small segments merged up to
	// CompactTargetSize); 0 turns it off. Unset, it is 10 minutes.
	CompactInterval   *Duration `yaml:"compact_interval"`
	CompactTargetSize Size      `yaml:"compact_target_size"`

	// Listen is the address of the HTTP server for /metrics, /healthz and
	// /readyz ("" disables it).
	Listen string `yaml:"listen"`
	// StallTimeout is how long the member may go without a fetch returning
	// records, while its partitions are not caught up (or while it holds
	// no generation), before /healthz reports it degraded.
	StallTimeout Duration `yaml:"stall_timeout"`
	// ExitOnIdle, when positive, makes the member drain and exit once it has
	// held its assignment with every partition of its topics caught up for
	// that long.
	ExitOnIdle Duration `yaml:"exit_on_idle"`
	// DialTimeout bounds the start-up check that a broker is reachable.
	DialTimeout Duration `yaml:"dial_timeout"`
	// MemoryLimit is the member's memory budget (default 512MiB). Fetch
	// sizes and span sizes shrink to fit it among the partitions the member
	// holds (see Budget; FetchMaxBytes and RollBytes are then upper bounds),
	// and it is the process's soft memory limit (runtime/debug
	// SetMemoryLimit; GOMEMLIMIT wins when set).
	MemoryLimit Size `yaml:"memory_limit"`
}

// FieldsConfig is the YAML form of Fields.
type FieldsConfig struct {
	Text   string `yaml:"text"`
	ID     string `yaml:"id"`
	Source string `yaml:"source"`
	Domain string `yaml:"domain"`
	Lang   string `yaml:"lang"`
	TS     string `yaml:"ts"`
}

// Values of Config.Isolation and Config.OnGap.
const (
	IsolationReadCommitted   = "read_committed"
	IsolationReadUncommitted = "read_uncommitted"
	OnGapFail                = "fail"
	OnGapRecord              = "record"
)

// Defaults.
const (
	DefaultMaxValueBytes = 1 << 20
	DefaultRollRecords   = 200_000
	DefaultRollBytes     = 8 << 20
	DefaultMemoryLimit   = 512 << 20
	DefaultRollInterval  = 5 * time.Second
	DefaultStallTimeout  = 2 * time.Minute
	// DefaultCompactInterval merges about 120 segments a partition at the
	// default roll interval.
	DefaultCompactInterval = 10 * time.Minute
	// DefaultFetchMaxBytes is Kafka's max.partition.fetch.bytes default.
	// On the real stream against the embedded broker (2 cores, see
	// docs/benchmarks.md), 512KiB to 2MiB fetches land it at a median of
	// 180-197k records/s, 4MiB at 128k, 16MiB at 118k for 80 MiB more RSS
	// and 40% more CPU: a partition's client decodes one whole response
	// while it fetches the next, so larger responses cost more memory and
	// overlap less.
	DefaultFetchMaxBytes = 1 << 20
)

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	normalizeSecurity(&c.Security, &c.SASL)
	if c.Format == "" {
		c.Format = "json"
	}
	f := &c.Fields
	def := DefaultFields
	for _, p := range []struct {
		v *string
		d string
	}{
		{&f.Text, def.Text}, {&f.ID, def.ID}, {&f.Source, def.Source},
		{&f.Domain, def.Domain}, {&f.Lang, def.Lang}, {&f.TS, def.TS},
	} {
		if *p.v == "" {
			*p.v = p.d
		}
	}
	setSize(&c.MaxValueBytes, DefaultMaxValueBytes)
	if c.RollRecords == 0 {
		c.RollRecords = DefaultRollRecords
	}
	setSize(&c.RollBytes, DefaultRollBytes)
	setDur(&c.RollInterval, DefaultRollInterval)
	if c.StartFrom == "" {
		c.StartFrom = "earliest"
	}
	setSize(&c.FetchMaxBytes, DefaultFetchMaxBytes)
	setDur(&c.FetchMaxWait, 250*time.Millisecond)
	if c.Isolation == "" {
		c.Isolation = IsolationReadCommitted
	}
	if c.OnGap == "" {
		c.OnGap = OnGapFail
	}
	setDur(&c.SessionTimeout, 10*time.Second)
	setDur(&c.HeartbeatInterval, time.Second)
	setDur(&c.RebalanceTimeout, 30*time.Second)
	setDur(&c.DialTimeout, 10*time.Second)
	setDur(&c.StallTimeout, DefaultStallTimeout)
	setSize(&c.MemoryLimit, DefaultMemoryLimit)
	if c.CompactInterval == nil {
		d := Duration(DefaultCompactInterval)
		c.CompactInterval = &d
	}
	setSize(&c.CompactTargetSize, lake.DefaultCompactTarget)
}

func setSize(s *Size, d int64) {
	if *s == 0 {
		*s = Size(d)
	}
}

func setDur(v *Duration, d time.Duration) {
	if *v == 0 {
		*v = Duration(d)
	}
}

var (
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	groupRE = regexp.MustCompile(`^[^\x00-\x1f]{1,255}$`)
)

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("ingest: invalid configuration")

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if len(c.Brokers) == 0 {
		add("brokers: at least one host:port is required")
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			add("brokers: %q is not host:port", b)
		} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			add("brokers: %q has an invalid port", b)
		}
	}
	errs = append(errs, SecurityProblems(c.Security, c.SASL, c.TLS)...)
	if len(c.Topics) == 0 {
		add("topics: at least one topic is required")
	}
	seen := map[string]bool{}
	for _, t := range c.Topics {
		if !topicRE.MatchString(t) || t == "." || t == ".." {
			add("topics: %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; 1 to 249)", t)
		}
		if seen[t] {
			add("topics: %q is listed twice", t)
		}
		seen[t] = true
	}
	if !groupRE.MatchString(c.Group) {
		add("group: a consumer group id is required (1 to 255 printable characters)")
	}
	if c.Lake == "" {
		add("lake: a lake folder is required")
	}
	if _, err := ParseFormat(c.Format); err != nil {
		add("format: %q must be json or text", c.Format)
	}
	names := map[string]string{}
	for _, p := range []struct{ k, v string }{
		{"text", c.Fields.Text}, {"id", c.Fields.ID}, {"source", c.Fields.Source},
		{"domain", c.Fields.Domain}, {"lang", c.Fields.Lang}, {"ts", c.Fields.TS},
	} {
		if p.v == "" {
			add("fields.%s: must not be empty", p.k)
		} else if other, dup := names[p.v]; dup {
			add("fields.%s: %q is already the field for %s", p.k, p.v, other)
		}
		names[p.v] = p.k
	}
	if c.MaxValueBytes <= 0 || c.MaxValueBytes > 512<<20 {
		add("max_value_bytes: %d must be between 1 and 512MiB", c.MaxValueBytes)
	}
	if c.RollRecords <= 0 {
		add("roll_records: %d must be positive", c.RollRecords)
	}
	if c.RollBytes < 1024 || c.RollBytes > 1<<30 {
		add("roll_bytes: %d must be between 1KiB and 1GiB", c.RollBytes)
	}
	if c.RollInterval < Duration(10*time.Millisecond) {
		add("roll_interval: %v must be at least 10ms", time.Duration(c.RollInterval))
	}
	if c.StartFrom != "earliest" && c.StartFrom != "latest" {
		add("start_from: %q must be earliest or latest", c.StartFrom)
	}
	if c.FetchMaxBytes < 1024 || c.FetchMaxBytes > 1<<30 {
		add("fetch_max_bytes: %d must be between 1KiB and 1GiB", c.FetchMaxBytes)
	}
	if c.FetchMaxWait <= 0 {
		add("fetch_max_wait: must be positive")
	}
	if c.Isolation != IsolationReadCommitted && c.Isolation != IsolationReadUncommitted {
		add("isolation: %q must be read_committed or read_uncommitted", c.Isolation)
	}
	if c.OnGap != OnGapFail && c.OnGap != OnGapRecord {
		add("on_gap: %q must be fail or record", c.OnGap)
	}
	if c.SessionTimeout < Duration(time.Second) {
		add("session_timeout: %v must be at least 1s", time.Duration(c.SessionTimeout))
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		add("heartbeat_interval: %v must be positive and below session_timeout", time.Duration(c.HeartbeatInterval))
	}
	if c.RebalanceTimeout < Duration(time.Second) {
		add("rebalance_timeout: must be at least 1s")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen: %q is not host:port", c.Listen)
		}
	}
	if c.StallTimeout < Duration(time.Second) {
		add("stall_timeout: %v must be at least 1s", time.Duration(c.StallTimeout))
	}
	if c.ExitOnIdle < 0 {
		add("exit_on_idle: must not be negative")
	}
	if c.MemoryLimit < 32<<20 {
		add("memory_limit: %d must be at least 32MiB", c.MemoryLimit)
	}
	if c.DialTimeout <= 0 {
		add("dial_timeout: must be positive")
	}
	if c.CompactInterval != nil && *c.CompactInterval != 0 && *c.CompactInterval < Duration(time.Second) {
		add("compact_interval: %v must be 0 (off) or at least 1s", time.Duration(*c.CompactInterval))
	}
	if c.CompactTargetSize < 1<<20 || c.CompactTargetSize > 1<<30 {
		add("compact_target_size: %d must be between 1MiB and 1GiB", c.CompactTargetSize)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
}

// DecoderConfig returns the decoder settings of c.
func (c *Config) DecoderConfig() DecoderConfig {
	f, _ := ParseFormat(c.Format)
	return DecoderConfig{
		Format: f,
		Fields: Fields{
			Text: c.Fields.Text, ID: c.Fields.ID, Source: c.Fields.Source,
			Domain: c.Fields.Domain, Lang: c.Fields.Lang, TS: c.Fields.TS,
		},
		MaxValueBytes: int(c.MaxValueBytes),
	}
}

// LoadFile reads a YAML configuration file over c. Unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	return nil
}

// EnvPrefix prefixes the environment variables ApplyEnv reads: THRESHER_INGEST_
// followed by the YAML key in upper case (THRESHER_INGEST_BROKERS,
// THRESHER_INGEST_ROLL_BYTES, THRESHER_INGEST_FIELDS_TEXT,
// THRESHER_INGEST_SASL_USERNAME, ...). Lists are comma-separated. The SASL
// password comes from PasswordEnv.
const EnvPrefix = "THRESHER_INGEST_"

// ApplyEnv overrides c from the environment (lookup is os.LookupEnv in
// production). Every malformed value is reported.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []string
	str := func(key string, dst *string) {
		if v, ok := lookup(EnvPrefix + key); ok {
			*dst = v
		}
	}
	list := func(key string, dst *[]string) {
		if v, ok := lookup(EnvPrefix + key); ok {
			*dst = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					*dst = append(*dst, p)
				}
			}
		}
	}
	parse := func(key string, dst interface{ Set(string) error }) {
		if v, ok := lookup(EnvPrefix + key); ok {
			if err := dst.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s%s: %v", EnvPrefix, key, err))
			}
		}
	}
	list("BROKERS", &c.Brokers)
	str("SECURITY_PROTOCOL", &c.Security.Protocol)
	str("SASL_MECHANISM", &c.SASL.Mechanism)
	str("SASL_USERNAME", &c.SASL.Username)
	str("SASL_PASSWORD_FILE", &c.SASL.PasswordFile)
	if v, ok := lookup(PasswordEnv); ok && v != "" {
		// It overrides a password file of the YAML file; given along
		// with THRESHER_INGEST_SASL_PASSWORD_FILE, Validate refuses both.
		c.SASL.Password = Password(v)
		if _, ok := lookup(EnvPrefix + "SASL_PASSWORD_FILE"); !ok {
			c.SASL.PasswordFile = ""
		}
	}
	str("TLS_CA_FILE", &c.TLS.CAFile)
	str("TLS_CERT_FILE", &c.TLS.CertFile)
	str("TLS_KEY_FILE", &c.TLS.KeyFile)
	list("TOPICS", &c.Topics)
	str("GROUP", &c.Group)
	str("LAKE", &c.Lake)
	str("FORMAT", &c.Format)
	str("FIELDS_TEXT", &c.Fields.Text)
	str("FIELDS_ID", &c.Fields.ID)
	str("FIELDS_SOURCE", &c.Fields.Source)
	str("FIELDS_DOMAIN", &c.Fields.Domain)
	str("FIELDS_LANG", &c.Fields.Lang)
	str("FIELDS_TS", &c.Fields.TS)
	parse("MAX_VALUE_BYTES", &c.MaxValueBytes)
	if v, ok := lookup(EnvPrefix + "ROLL_RECORDS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%sROLL_RECORDS: %q is not a whole number", EnvPrefix, v))
		}
		c.RollRecords = n
	}
	parse("ROLL_BYTES", &c.RollBytes)
	parse("ROLL_INTERVAL", &c.RollInterval)
	str("START_FROM", &c.StartFrom)
	parse("FETCH_MAX_BYTES", &c.FetchMaxBytes)
	parse("FETCH_MAX_WAIT", &c.FetchMaxWait)
	str("ISOLATION", &c.Isolation)
	str("ON_GAP", &c.OnGap)
	parse("SESSION_TIMEOUT", &c.SessionTimeout)
	parse("HEARTBEAT_INTERVAL", &c.HeartbeatInterval)
	parse("REBALANCE_TIMEOUT", &c.RebalanceTimeout)
	str("LISTEN", &c.Listen)
	parse("STALL_TIMEOUT", &c.StallTimeout)
	parse("EXIT_ON_IDLE", &c.ExitOnIdle)
	parse("DIAL_TIMEOUT", &c.DialTimeout)
	parse("MEMORY_LIMIT", &c.MemoryLimit)
	if _, ok := lookup(EnvPrefix + "COMPACT_INTERVAL"); ok {
		var d Duration
		parse("COMPACT_INTERVAL", &d)
		c.CompactInterval = &d
	}
	parse("COMPACT_TARGET_SIZE", &c.CompactTargetSize)
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
	}
	return nil
}

// Size is a byte count written as a plain number or with a unit: B, KB, MB,
// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize parses a Size.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (a whole number of bytes, optionally with KB, MB, GB, KiB, MiB or GiB)", s)
	}
	return Size(n * mult), nil
}

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

func (s Size) String() string {
	switch {
	case s > 0 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s > 0 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s > 0 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error { return s.Set(n.Value) }

// MarshalYAML implements yaml.Marshaler.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a time.Duration written as Go does ("5s", "250ms").
type Duration time.Duration

// Set implements flag.Value.
func (d *Duration) Set(v string) error {
	t, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 500ms, 5s, 1m)", v)
	}
	*d = Duration(t)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.Set(n.Value) }

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
