package dedup

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Defaults. The package comment explains why these values.
const (
	DefaultShingleWords  = 3
	DefaultBands         = 12
	DefaultRows          = 2
	DefaultSketchSize    = 128
	DefaultThreshold     = 0.55
	DefaultMaxCandidates = 64
	DefaultMaxRecords    = 2_000_000
	DefaultGenerations   = 4
)

// Limits enforced by Validate. They keep the serialised form and the cost of
// one Add bounded.
const (
	maxShingleWords  = 16
	maxPerm          = 1024
	maxSketchSize    = 4096
	maxCandidates    = 4096
	maxGenerations   = 64
	maxRecordsLimit  = 1 << 31
	minRecordsPerGen = 1024
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("dedup: invalid configuration")

// PunctPolicy says what normalisation does with punctuation and symbols.
type PunctPolicy uint8

const (
	// PunctStrip (the default, and the zero value) turns every punctuation
	// or symbol character (Unicode categories P and S) into a word
	// separator, so "don't" and "dont" differ but "Hello, world!" and
	// "hello world" are the same text.
	PunctStrip PunctPolicy = iota
	// PunctKeep keeps punctuation and symbols as they are; they stay part
	// of the word they touch.
	PunctKeep
)

// String returns "strip" or "keep".
func (p PunctPolicy) String() string {
	switch p {
	case PunctStrip:
		return "strip"
	case PunctKeep:
		return "keep"
	}
	return fmt.Sprintf("PunctPolicy(%d)", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p PunctPolicy) MarshalText() ([]byte, error) {
	if p > PunctKeep {
		return nil, fmt.Errorf("%w: punctuation policy %d", ErrConfig, uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText accepts "strip" or "keep" (as in a YAML config file).
func (p *PunctPolicy) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "strip", "":
		*p = PunctStrip
	case "keep":
		*p = PunctKeep
	default:
		return fmt.Errorf("%w: punctuation %q: want strip or keep", ErrConfig, b)
	}
	return nil
}

// Config shapes normalisation, signatures and the index. The zero value
// means "all defaults": call SetDefaults, then Validate (NewIndex does both).
//
// Fields marked "state" shape what the index stores: an index saved with
// MarshalBinary loads only into an index whose state fields are equal.
// The others may change between runs.
type Config struct {
	// Enabled, true unless set false, makes curate drop the duplicates
	// the index finds. With false every record still gets its signature,
	// cluster and dup_of (the trainer masks false negatives by cluster),
	// but duplicates are kept: the switch for measuring what dedup buys.
	// Not part of the index's state.
	Enabled *bool `yaml:"enabled,omitempty"`
	// Punctuation is the punctuation policy of normalisation (state).
	Punctuation PunctPolicy `yaml:"punctuation"`
	// ShingleWords is the number of words in one shingle (state). A text
	// with fewer words is one shingle.
	ShingleWords int `yaml:"shingle_words"`
	// NumPerm is the number of MinHash values per record (state): the bins
	// of one-permutation hashing. It must equal Bands*Rows; zero means
	// Bands*Rows. MinHash only proposes candidates (verification is on the
	// sketch), so it needs no more values than the bands use.
	NumPerm int `yaml:"num_perm"`
	// Bands and Rows are the LSH banding (state): two records become
	// candidates when all Rows MinHash values of at least one of the
	// Bands bands agree, which happens with probability 1-(1-J^Rows)^Bands
	// for Jaccard similarity J.
	Bands int `yaml:"bands"`
	Rows  int `yaml:"rows"`
	// SketchSize is k of the bottom-k sketch kept for every cluster
	// representative (state): its k smallest shingle hashes, 4 bytes each.
	// Candidates are verified on it: the similarity is the exact Jaccard
	// similarity when both texts have fewer than SketchSize distinct
	// shingles, an estimate (standard error about sqrt(J(1-J)/SketchSize))
	// otherwise.
	SketchSize int `yaml:"sketch_size"`
	// Seed seeds the one-permutation hashing and the band keys (state).
	// Zero is a valid seed.
	Seed uint64 `yaml:"seed"`
	// Threshold is the verified Jaccard similarity at or above which a
	// record is a near duplicate of a cluster representative, in (0, 1].
	Threshold float64 `yaml:"threshold"`
	// MaxCandidates bounds the representatives verified for one record
	// (those sharing the most LSH keys with it first). Each LSH bucket is
	// read, and filled, at most 4*MaxCandidates entries deep, which bounds
	// the cost and memory of keys that boilerplate makes crowded.
	MaxCandidates int `yaml:"max_candidates"`
	// MaxRecords bounds the distinct normalised texts the index remembers;
	// negative means no bound. The index keeps Generations generations of
	// MaxRecords/Generations texts each; when a new one opens beyond that,
	// the oldest is forgotten whole, so memory stays under about
	// MaxRecords*Stats().BytesPerRecord (about 360 bytes on the real
	// stream), and a record whose only earlier copies were forgotten
	// starts a new cluster.
	MaxRecords int64 `yaml:"max_records"`
	// Generations is how many generations MaxRecords is split into. A
	// changed MaxRecords or Generations applies to the generations opened
	// after the change (fewer Generations drop the oldest at once).
	Generations int `yaml:"generations"`
}

// Drops reports whether duplicates are dropped (Enabled unset or true).
func (c *Config) Drops() bool { return c.Enabled == nil || *c.Enabled }

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	if c.ShingleWords == 0 {
		c.ShingleWords = DefaultShingleWords
	}
	switch {
	case c.Bands == 0 && c.Rows == 0 && c.NumPerm == 0:
		c.Bands, c.Rows = DefaultBands, DefaultRows
	case c.Bands == 0 && c.Rows > 0 && c.NumPerm > 0 && c.NumPerm%c.Rows == 0:
		c.Bands = c.NumPerm / c.Rows
	case c.Rows == 0 && c.Bands > 0 && c.NumPerm > 0 && c.NumPerm%c.Bands == 0:
		c.Rows = c.NumPerm / c.Bands
	}
	if c.Bands == 0 {
		c.Bands = DefaultBands
	}
	if c.Rows == 0 {
		c.Rows = DefaultRows
	}
	if c.NumPerm == 0 {
		c.NumPerm = c.Bands * c.Rows
	}
	if c.SketchSize == 0 {
		c.SketchSize = DefaultSketchSize
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MaxCandidates == 0 {
		c.MaxCandidates = DefaultMaxCandidates
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.Generations == 0 {
		c.Generations = DefaultGenerations
	}
}

// Validate reports every problem at once, in one error wrapping ErrConfig.
func (c Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Punctuation > PunctKeep {
		add("punctuation: %d is not a policy (strip or keep)", uint8(c.Punctuation))
	}
	if c.ShingleWords < 1 || c.ShingleWords > maxShingleWords {
		add("shingle_words: %d must be from 1 to %d", c.ShingleWords, maxShingleWords)
	}
	if c.Bands < 1 {
		add("bands: %d must be positive", c.Bands)
	}
	if c.Rows < 1 {
		add("rows: %d must be positive", c.Rows)
	}
	if c.NumPerm < 1 || c.NumPerm > maxPerm {
		add("num_perm: %d must be from 1 to %d", c.NumPerm, maxPerm)
	} else if c.NumPerm != c.Bands*c.Rows {
		add("num_perm: %d must equal bands*rows = %d*%d = %d", c.NumPerm, c.Bands, c.Rows, c.Bands*c.Rows)
	}
	if c.SketchSize < 1 || c.SketchSize > maxSketchSize {
		add("sketch_size: %d must be from 1 to %d", c.SketchSize, maxSketchSize)
	}
	if math.IsNaN(c.Threshold) || c.Threshold <= 0 || c.Threshold > 1 {
		add("threshold: %v must be in (0, 1]", c.Threshold)
	}
	if c.MaxCandidates < 1 || c.MaxCandidates > maxCandidates {
		add("max_candidates: %d must be from 1 to %d", c.MaxCandidates, maxCandidates)
	}
	if c.Generations < 1 || c.Generations > maxGenerations {
		add("generations: %d must be from 1 to %d", c.Generations, maxGenerations)
	}
	if c.MaxRecords == 0 || c.MaxRecords > maxRecordsLimit {
		add("max_records: %d must be negative (no bound) or from 1 to %d", c.MaxRecords, int64(maxRecordsLimit))
	} else if c.MaxRecords > 0 && c.Generations >= 1 && c.MaxRecords/int64(c.Generations) < minRecordsPerGen {
		add("max_records: %d leaves fewer than %d records per generation (generations: %d)",
			c.MaxRecords, minRecordsPerGen, c.Generations)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrConfig, strings.Join(errs, "\n  - "))
}

// genSize is the number of distinct texts one generation holds.
func (c *Config) genSize() int {
	if c.MaxRecords < 0 {
		return maxRecordsLimit
	}
	return int(c.MaxRecords / int64(c.Generations))
}

// stateDiff lists the state fields in which d differs from c (c is the
// saved configuration): an index saved under c loads under d only when the
// list is empty.
func (c *Config) stateDiff(d *Config) []string {
	var out []string
	diff := func(name string, saved, now any) {
		if saved != now {
			out = append(out, fmt.Sprintf("%s: saved %v, configured %v", name, saved, now))
		}
	}
	diff("punctuation", c.Punctuation, d.Punctuation)
	diff("shingle_words", c.ShingleWords, d.ShingleWords)
	diff("num_perm", c.NumPerm, d.NumPerm)
	diff("bands", c.Bands, d.Bands)
	diff("rows", c.Rows, d.Rows)
	diff("sketch_size", c.SketchSize, d.SketchSize)
	diff("seed", c.Seed, d.Seed)
	return out
}
