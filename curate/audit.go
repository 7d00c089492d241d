package curate

import (
	"github.com/thresher-ml/thresher/schemas"
)

// DefaultDrop lists the quality flags that filter a record by default: the
// ones that mark junk (binary data, no words, no letters, repeated lines or
// n-grams, degenerate character distributions). no_stop_words and
// high_compression stay audit-only, since terse dictionary glosses and
// templated package descriptions are legitimate text.
var DefaultDrop = []string{"too_short", "too_long", "low_alpha", "high_dup_lines", "high_ngram_repetition", "low_entropy", "binary"}

// auditOf turns the metrics of a record into its audit columns.
func auditOf(m *Metrics) schemas.Audit {
	pii := piiStrings[m.PII&(1<<numPIIKinds-1)]
	flags := qualityStrings[m.QualityFlags&(1<<numQualityFlags-1)]
	return schemas.Audit{
		LengthChars:      m.LengthChars,
		LengthWords:      m.LengthWords,
		CharEntropy:      m.CharEntropy,
		WordEntropy:      m.WordEntropy,
		CompressionRatio: m.CompressionRatio,
		DupLineFrac:      m.DupLineFrac,
		Top2GramFrac:     m.Top2GramFrac,
		Top3GramFrac:     m.Top3GramFrac,
		Top4GramFrac:     m.Top4GramFrac,
		AlphaWordFrac:    m.AlphaWordFrac,
		StopWords:        m.StopWords,
		LangGuess:        m.Lang,
		Script:           m.Script,
		PIIFlags:         pii,
		TargetSimilarity: m.TargetSimilarity,
		QualityFlags:     flags,
	}
}

// piiStrings and qualityStrings hold the audit column value of every flag
// set, so that auditOf allocates nothing. The slices are shared by every
// row with the same flags and must never be changed; their capacity is
// their length, so that an append copies.
var (
	piiStrings     = flagStrings[PIIFlags](numPIIKinds)
	qualityStrings = flagStrings[QualityFlags](numQualityFlags)
)

func flagStrings[F interface {
	~uint8 | ~uint16
	Strings() []string
}](n int) [][]string {
	out := make([][]string, 1<<n)
	for f := range out {
		s := F(f).Strings()
		if s == nil {
			s = []string{}
		}
		out[f] = s[:len(s):len(s)]
	}
	return out
}
