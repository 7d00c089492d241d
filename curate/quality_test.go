package curate

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestMetricsConfigDefaults(t *testing.T) {
	var c MetricsConfig
	c.SetDefaults()
	want := MetricsConfig{
		MinWords: DefaultMinWords, MaxWords: DefaultMaxWords, MinAlphaWordFrac: DefaultMinAlphaWordFrac,
		MaxDupLineFrac: DefaultMaxDupLineFrac, MaxTop2GramFrac: DefaultMaxTop2GramFrac,
		MaxTop3GramFrac: DefaultMaxTop3GramFrac, MaxTop4GramFrac: DefaultMaxTop4GramFrac,
		NgramMinWords: DefaultNgramMinWords, MinCharEntropy: DefaultMinCharEntropy,
		EntropyMinChars: DefaultEntropyMinChars, MinStopWords: DefaultMinStopWords,
		StopWordsMinWords: DefaultStopWordsMinWords, MaxCompressionRatio: DefaultMaxCompressionRatio,
	}
	if c != want {
		t.Errorf("SetDefaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	// Set fields and disabled (negative) ones are kept.
	c = MetricsConfig{MinWords: 7, MaxDupLineFrac: -1}
	c.SetDefaults()
	if c.MinWords != 7 || c.MaxDupLineFrac != -1 || c.MaxWords != DefaultMaxWords {
		t.Errorf("SetDefaults overwrote set fields: %+v", c)
	}
}

// TestMetricsConfigValidate checks that Validate reports every problem at
// once.
func TestMetricsConfigValidate(t *testing.T) {
	c := MetricsConfig{
		MinWords: 10, MaxWords: 5,
		MinAlphaWordFrac: 1.5, MaxDupLineFrac: math.NaN(), MaxTop3GramFrac: 2,
		MinCharEntropy: 40, MaxCompressionRatio: 0.5,
		NgramMinWords: -1, EntropyMinChars: -2, StopWordsMinWords: -3,
	}
	err := c.Validate()
	if !errors.Is(err, ErrMetricsConfig) {
		t.Fatalf("error %v does not wrap ErrMetricsConfig", err)
	}
	for _, want := range []string{
		"min_words 10 is above max_words 5", "min_alpha_word_frac is 1.5", "max_dup_line_frac is NaN",
		"max_top3gram_frac is 2", "min_char_entropy is 40", "max_compression_ratio 0.5 is below 1",
		"ngram_min_words is -1", "entropy_min_chars is -2", "stop_words_min_words is -3",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 9 {
		t.Errorf("%d problems reported, want 9:\n%v", n, err)
	}
	// The zero value is valid (everything takes its default), and so is
	// every check disabled.
	if err := (&MetricsConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	off := MetricsConfig{MinWords: -1, MaxWords: -1, MinAlphaWordFrac: -1, MaxDupLineFrac: -1, MaxTop2GramFrac: -1,
		MaxTop3GramFrac: -1, MaxTop4GramFrac: -1, MinCharEntropy: -1, MinStopWords: -1, MaxCompressionRatio: -1}
	if err := off.Validate(); err != nil {
		t.Errorf("all checks off: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewAnalyzer accepted an invalid configuration")
		}
	}()
	NewAnalyzer(c)
}

// TestQualityFlagsGolden checks each flag with thresholds chosen for short
// texts, and that a negative threshold turns its check off.
func TestQualityFlagsGolden(t *testing.T) {
	cfg := MetricsConfig{
		MinWords: 3, MaxWords: 8, MinAlphaWordFrac: 0.6, MaxDupLineFrac: 0.2,
		MaxTop2GramFrac: 0.3, MaxTop3GramFrac: 0.3, MaxTop4GramFrac: 0.3, NgramMinWords: 4,
		MinCharEntropy: 2.5, EntropyMinChars: 10, MinStopWords: 1, StopWordsMinWords: 4,
		MaxCompressionRatio: 3,
	}
	cases := []struct {
		text string
		want QualityFlags
	}{
		// 4 words, stop word "the", 2-gram "cat sat" once: clean.
		{"the cat sat down", 0},
		// 2 words < 3.
		{"hello world", QualityTooShort},
		// 9 words > 8; "to" is a stop word; no repeats.
		{"to one two three four five six seven eight", QualityTooLong},
		// 2 of 4 words have letters: 0.5 < 0.6.
		{"the 12 34 cat", QualityLowAlpha},
		// Lines ab, ab, cd: the second ab repeats the first: 2 of 8
		// chars = 0.25 > 0.2. 3 words, below the 4 of the n-gram and
		// stop-word checks.
		{"ab\nab\ncd", QualityHighDupLines},
		// "of the" twice: the 2-gram covers 10 of the 13 key chars
		// (2+3+2+3+3) = 0.77 > 0.3.
		{"of the of the end", QualityHighNgramRepetition},
		// a:9 b:1 ' ':1 of 11 characters:
		// H = log2(11) - 9*log2(9)/11 = 3.4594 - 2.5936 = 0.866 < 2.5.
		// 2 words: too short as well.
		{"aaaaaaaa ab", QualityLowEntropy | QualityTooShort},
		// 4 words, no stop word.
		{"cats sit on mats", QualityNoStopWords},
		// NUL: binary.
		{"the cat\x00 sat", QualityBinary},
	}
	a := NewAnalyzer(cfg)
	for _, c := range cases {
		if got := a.Analyze(c.text).QualityFlags; got != c.want {
			t.Errorf("%q: flags %v, want %v", c.text, got, c.want)
		}
	}
	// High compression: a long repeated line (its n-gram and dup-line flags
	// rise too).
	rep := strings.Repeat("the same old line\n", 100)
	if got := a.Analyze(rep).QualityFlags; !got.Has(QualityHighCompression) {
		t.Errorf("repeated text: flags %v, want high_compression", got)
	}
	// Checks turned off.
	off := cfg
	off.MinWords, off.MaxCompressionRatio, off.MaxDupLineFrac = -1, -1, -1
	b := NewAnalyzer(off)
	if got := b.Analyze("hello world").QualityFlags; got != 0 {
		t.Errorf("too_short off: %v", got)
	}
	if got := b.Analyze("ab\nab\ncd").QualityFlags; got != 0 {
		t.Errorf("high_dup_lines off: %v", got)
	}
}

func TestQualityFlagNames(t *testing.T) {
	all := QualityFlags(1<<numQualityFlags - 1)
	want := []string{"too_short", "too_long", "low_alpha", "high_dup_lines", "high_ngram_repetition",
		"low_entropy", "no_stop_words", "high_compression", "binary"}
	if got := all.Strings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Strings() = %v, want %v", got, want)
	}
	if got := QualityFlagNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("QualityFlagNames() = %v", got)
	}
	if got := (QualityTooShort | QualityBinary).String(); got != "too_short|binary" {
		t.Errorf("String() = %q", got)
	}
	if QualityFlags(0).Strings() != nil {
		t.Error("empty flags have names")
	}
}
