package curate

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// QualityFlags is the set of quality checks a record fails, the
// quality_flags column. The checks and their thresholds are those of
// MetricsConfig; they flag, they do not drop: what to do with a flagged
// record is the curate stage's policy.
type QualityFlags uint16

// Quality checks.
const (
	// QualityTooShort: fewer words than MetricsConfig.MinWords.
	QualityTooShort QualityFlags = 1 << iota
	// QualityTooLong: more words than MaxWords.
	QualityTooLong
	// QualityLowAlpha: AlphaWordFrac below MinAlphaWordFrac.
	QualityLowAlpha
	// QualityHighDupLines: DupLineFrac above MaxDupLineFrac.
	QualityHighDupLines
	// QualityHighNgramRepetition: a top n-gram fraction above its maximum
	// (MaxTop2GramFrac, MaxTop3GramFrac, MaxTop4GramFrac), in a text of
	// NgramMinWords words or more.
	QualityHighNgramRepetition
	// QualityLowEntropy: CharEntropy below MinCharEntropy, in a text of
	// EntropyMinChars characters or more.
	QualityLowEntropy
	// QualityNoStopWords: fewer than MinStopWords stop words in a text of
	// StopWordsMinWords words or more.
	QualityNoStopWords
	// QualityHighCompression: CompressionRatio above MaxCompressionRatio
	// (repetitive or templated text).
	QualityHighCompression
	// QualityBinary: invalid UTF-8 or control characters other than white
	// space (NUL, backspace, escape, ...): binary junk, terminal formatting
	// (the backspace overstrikes of old fortune files) or a broken decoder
	// upstream.
	QualityBinary

	numQualityFlags = 9
)

var qualityNames = [numQualityFlags]string{
	"too_short", "too_long", "low_alpha", "high_dup_lines", "high_ngram_repetition",
	"low_entropy", "no_stop_words", "high_compression", "binary",
}

// QualityFlagNames lists the names of the quality flags in bit order.
func QualityFlagNames() []string { return append([]string(nil), qualityNames[:]...) }

// Has reports whether f holds every flag of g.
func (f QualityFlags) Has(g QualityFlags) bool { return f&g == g }

// Strings returns the names of the flags in f ("too_short", ...) in bit
// order; nil when f is empty.
func (f QualityFlags) Strings() []string {
	if f == 0 {
		return nil
	}
	out := make([]string, 0, bits.OnesCount16(uint16(f)))
	for k := range numQualityFlags {
		if f&(1<<k) != 0 {
			out = append(out, qualityNames[k])
		}
	}
	return out
}

// String returns the names of the flags joined by '|', "" when f is empty.
func (f QualityFlags) String() string { return strings.Join(f.Strings(), "|") }

// MetricsConfig holds the thresholds of the quality flags. Zero fields take
// their defaults (SetDefaults); a negative value disables a check. The
// defaults follow Gopher's quality and repetition filters (Rae et al. 2021,
// appendix A1.1) where those suit records as short as the real stream's
// (dictionary glosses of a few words, Bible verses), and were set looser
// where they flagged most of a clean source, as measured by
// TestMetricsRealStream.
type MetricsConfig struct {
	// MinWords flags texts with fewer words (too_short).
	MinWords int `yaml:"min_words"`
	// MaxWords flags texts with more words (too_long).
	MaxWords int `yaml:"max_words"`
	// MinAlphaWordFrac flags texts whose fraction of words with a letter is
	// lower (low_alpha).
	MinAlphaWordFrac float64 `yaml:"min_alpha_word_frac"`
	// MaxDupLineFrac flags texts whose duplicate-line character fraction is
	// higher (high_dup_lines).
	MaxDupLineFrac float64 `yaml:"max_dup_line_frac"`
	// MaxTop2GramFrac, MaxTop3GramFrac and MaxTop4GramFrac flag texts of
	// NgramMinWords words or more whose top n-gram character fraction is
	// higher (high_ngram_repetition).
	MaxTop2GramFrac float64 `yaml:"max_top2gram_frac"`
	MaxTop3GramFrac float64 `yaml:"max_top3gram_frac"`
	MaxTop4GramFrac float64 `yaml:"max_top4gram_frac"`
	NgramMinWords   int     `yaml:"ngram_min_words"`
	// MinCharEntropy flags texts of EntropyMinChars characters or more
	// whose character entropy, in bits, is lower (low_entropy).
	MinCharEntropy  float64 `yaml:"min_char_entropy"`
	EntropyMinChars int     `yaml:"entropy_min_chars"`
	// MinStopWords flags texts of StopWordsMinWords words or more with
	// fewer Gopher stop words (no_stop_words).
	MinStopWords      int `yaml:"min_stop_words"`
	StopWordsMinWords int `yaml:"stop_words_min_words"`
	// MaxCompressionRatio flags texts whose estimated compression ratio is
	// higher (high_compression).
	MaxCompressionRatio float64 `yaml:"max_compression_ratio"`
}

// Default thresholds; see MetricsConfig. TestMetricsRealStream logs the
// flag rates they give on the real stream, per source.
const (
	DefaultMinWords            = 3
	DefaultMaxWords            = 100_000
	DefaultMinAlphaWordFrac    = 0.5
	DefaultMaxDupLineFrac      = 0.3
	DefaultMaxTop2GramFrac     = 0.20
	DefaultMaxTop3GramFrac     = 0.18
	DefaultMaxTop4GramFrac     = 0.16
	DefaultNgramMinWords       = 100
	DefaultMinCharEntropy      = 3.0
	DefaultEntropyMinChars     = 40
	DefaultMinStopWords        = 1
	DefaultStopWordsMinWords   = 50
	DefaultMaxCompressionRatio = 4.0
)

// SetDefaults gives every zero field its default.
func (c *MetricsConfig) SetDefaults() {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.MinWords, DefaultMinWords)
	setInt(&c.MaxWords, DefaultMaxWords)
	setFloat(&c.MinAlphaWordFrac, DefaultMinAlphaWordFrac)
	setFloat(&c.MaxDupLineFrac, DefaultMaxDupLineFrac)
	setFloat(&c.MaxTop2GramFrac, DefaultMaxTop2GramFrac)
	setFloat(&c.MaxTop3GramFrac, DefaultMaxTop3GramFrac)
	setFloat(&c.MaxTop4GramFrac, DefaultMaxTop4GramFrac)
	setInt(&c.NgramMinWords, DefaultNgramMinWords)
	setFloat(&c.MinCharEntropy, DefaultMinCharEntropy)
	setInt(&c.EntropyMinChars, DefaultEntropyMinChars)
	setInt(&c.MinStopWords, DefaultMinStopWords)
	setInt(&c.StopWordsMinWords, DefaultStopWordsMinWords)
	setFloat(&c.MaxCompressionRatio, DefaultMaxCompressionRatio)
}

// ErrMetricsConfig is wrapped by every error MetricsConfig.Validate
// returns.
var ErrMetricsConfig = errors.New("curate: invalid metrics configuration")

// Validate reports every problem of c at once, each wrapping
// ErrMetricsConfig. Zero fields (defaults) and negative ones (disabled
// checks) are valid.
func (c *MetricsConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrMetricsConfig}, args...)...))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"min_alpha_word_frac", c.MinAlphaWordFrac},
		{"max_dup_line_frac", c.MaxDupLineFrac},
		{"max_top2gram_frac", c.MaxTop2GramFrac},
		{"max_top3gram_frac", c.MaxTop3GramFrac},
		{"max_top4gram_frac", c.MaxTop4GramFrac},
	} {
		if math.IsNaN(f.v) || f.v > 1 {
			bad("%s is %v, want a fraction up to 1 (0: default, negative: off)", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
		max  float64
	}{
		{"min_char_entropy", c.MinCharEntropy, 32},
		{"max_compression_ratio", c.MaxCompressionRatio, math.Inf(1)},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v > f.max {
			bad("%s is %v, want a finite number up to %v (0: default, negative: off)", f.name, f.v, f.max)
		}
	}
	if c.MinWords > 0 && c.MaxWords > 0 && c.MinWords > c.MaxWords {
		bad("min_words %d is above max_words %d", c.MinWords, c.MaxWords)
	}
	if c.MaxCompressionRatio > 0 && c.MaxCompressionRatio < 1 {
		bad("max_compression_ratio %v is below 1, which would flag most short texts", c.MaxCompressionRatio)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"ngram_min_words", c.NgramMinWords},
		{"entropy_min_chars", c.EntropyMinChars},
		{"stop_words_min_words", c.StopWordsMinWords},
	} {
		if f.v < 0 {
			bad("%s is %d, want 0 (default) or more", f.name, f.v)
		}
	}
	return errors.Join(errs...)
}

// flags returns the quality flags of m.
func (c *MetricsConfig) flags(m *Metrics, invalid bool) QualityFlags {
	var f QualityFlags
	words := int(m.LengthWords)
	if c.MinWords > 0 && words < c.MinWords {
		f |= QualityTooShort
	}
	if c.MaxWords > 0 && words > c.MaxWords {
		f |= QualityTooLong
	}
	if c.MinAlphaWordFrac > 0 && words > 0 && float64(m.AlphaWordFrac) < c.MinAlphaWordFrac {
		f |= QualityLowAlpha
	}
	if c.MaxDupLineFrac >= 0 && float64(m.DupLineFrac) > c.MaxDupLineFrac {
		f |= QualityHighDupLines
	}
	if words >= c.NgramMinWords {
		for _, t := range [...]struct {
			v   float32
			max float64
		}{{m.Top2GramFrac, c.MaxTop2GramFrac}, {m.Top3GramFrac, c.MaxTop3GramFrac}, {m.Top4GramFrac, c.MaxTop4GramFrac}} {
			if t.max >= 0 && float64(t.v) > t.max {
				f |= QualityHighNgramRepetition
			}
		}
	}
	if c.MinCharEntropy > 0 && int(m.LengthChars) >= c.EntropyMinChars && float64(m.CharEntropy) < c.MinCharEntropy {
		f |= QualityLowEntropy
	}
	if c.MinStopWords > 0 && words >= c.StopWordsMinWords && int(m.StopWords) < c.MinStopWords {
		f |= QualityNoStopWords
	}
	if c.MaxCompressionRatio > 0 && float64(m.CompressionRatio) > c.MaxCompressionRatio {
		f |= QualityHighCompression
	}
	if invalid {
		f |= QualityBinary
	}
	return f
}
