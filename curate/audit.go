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
	pii := m.PII.Strings()
	if pii == nil {
		pii = []string{}
	}
	flags := m.QualityFlags.Strings()
	if flags == nil {
		flags = []string{}
	}
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
