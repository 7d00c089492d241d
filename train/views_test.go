package train

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// streamRecord is one line of the real stream.
type streamRecord struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Domain string `json:"domain"`
	Text   string `json:"text"`
}

// realExamples reads the first n records of the real stream and makes
// simple views: each view drops words with probability 0.15, crops to at
// most 64 words at a random start and masks one span of up to 3 words.
// words[i] counts the whitespace words of record i's source text.
func realExamples(tb testing.TB, n int, seed uint64) (ex []Example, texts []string, words []int) {
	tb.Helper()
	r := rng{s: seed}
	for i, line := range realtest.CorpusLines(tb, n) {
		var rec streamRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			tb.Fatalf("line %d: %v", i, err)
		}
		ws := strings.Fields(rec.Text)
		words = append(words, len(ws))
		a, ma := makeView(&r, ws)
		b, mb := makeView(&r, ws)
		ex = append(ex, Example{ViewA: a, ViewB: b, MaskedA: ma, MaskedB: mb,
			Cluster: rec.ID, Record: rec.Source + "/" + rec.ID, Domain: rec.Domain})
		texts = append(texts, rec.Text)
	}
	return ex, texts, words
}

func makeView(r *rng, ws []string) (string, []string) {
	if len(ws) > 64 {
		start := int(r.next() % uint64(len(ws)-64+1))
		ws = ws[start : start+64]
	}
	var masked []string
	ms, ml := -1, 0
	if len(ws) > 3 {
		ms = int(r.next() % uint64(len(ws)))
		ml = 1 + int(r.next()%3)
	}
	var b strings.Builder
	for i, w := range ws {
		if i >= ms && i < ms+ml {
			masked = append(masked, w)
			continue
		}
		if len(ws) > 2 && r.next()%100 < 15 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String(), masked
}
