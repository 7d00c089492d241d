package curate

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// near reports whether got is within 1e-4 of want.
func near(got float32, want float64) bool { return math.Abs(float64(got)-want) < 1e-4 }

// TestMetricsGolden checks every metric on hand-checked texts. Expected
// values are worked out in the comments; H(p) is Shannon entropy in bits.
func TestMetricsGolden(t *testing.T) {
	type want struct {
		chars, words         int32
		charEnt, wordEnt     float64
		top2, top3, top4     float64
		dupLines, alpha      float64
		stop                 int32
		lang, script         string
		pii                  PIIFlags
		flags                QualityFlags
		checkFlags, checkPII bool
	}
	cases := []struct {
		name, text string
		w          want
	}{
		{
			// Nothing at all: every metric 0, undetermined, too short.
			name: "empty", text: "",
			w: want{lang: "und", script: "None", flags: QualityTooShort, checkFlags: true},
		},
		{
			// chars a,a,b: H(2/3,1/3) = 2/3*log2(3/2) + 1/3*log2(3) = 0.9183.
			// One word: word entropy 0; it has letters: alpha 1.
			name: "aab", text: "aab",
			w: want{chars: 3, words: 1, charEnt: 0.918296, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// chars a:2 b:2 ' ':3 of 7:
			// H = 2*(2/7)*log2(7/2) + (3/7)*log2(7/3) = 1.03288 + 0.52388 = 1.5567.
			// words a,b,a,b: H(1/2,1/2) = 1. "a" votes for five languages:
			// a tie, und.
			// 2-grams "a b","b a","a b": "a b" twice at words 0 and 2,
			// covering all 4 words = 4 of 4 key chars: 1. 3-grams "a b a",
			// "b a b" once each: 0; the one 4-gram: 0.
			name: "abab", text: "a b a b",
			w: want{chars: 7, words: 4, charEnt: 1.556657, wordEnt: 1, top2: 1, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// Keys are lower-cased and trimmed of punctuation: the, cat,
			// the, cat. Word entropy 1; "the cat" twice covers all 12 key
			// chars: top2 1; no 3-gram repeats. Stop words: the, the = 2.
			// chars: T,h,e,' ',c,a,t,',',' ',t,h,e,' ',C,A,T,'.' = 17;
			// counts (case-sensitive): ' ':3, T h e t :2 each, c a , C A . :1
			// -> sum c*log2(c) = 3*1.58496 + 4*2 = 12.7549,
			// H = log2(17) - 12.7549/17 = 4.08746 - 0.75029 = 3.3372.
			name: "the cat", text: "The cat, the CAT.",
			w: want{chars: 17, words: 4, charEnt: 3.337175, wordEnt: 1, top2: 1, alpha: 1, stop: 2, lang: "en", script: "Latin"},
		},
		{
			// Lines (trimmed, blank ones skipped): foo bar foo foo baz. The
			// 2nd and 3rd foo repeat an earlier line: 3+3 = 6 of the 24
			// characters (4+4+4+8+1+3): 0.25.
			// chars f:3 o:6 \n:5 b:2 a:2 r:1 ' ':4 z:1 of 24:
			// sum c*log2(c) = 4.7549+15.5098+11.6096+2+2+0+8+0 = 43.8743;
			// H = log2(24) - 43.8743/24 = 4.58496 - 1.82810 = 2.7569.
			// words foo bar foo foo baz: H(3/5,1/5,1/5) = 1.3710.
			// 2-grams foo|bar bar|foo foo|foo foo|baz: none repeats.
			name: "dup lines", text: "foo\nbar\nfoo\n  foo  \n\nbaz",
			w: want{chars: 24, words: 5, charEnt: 2.756867, wordEnt: 1.370951, dupLines: 0.25, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// abc and x1 hold a letter, 123 and ... do not: 2 of 4.
			// chars a b c ' ' 1 2 3 ' ' x 1 ' ' . . . = 14:
			// counts ' ':3 1:2 .:3 others (a,b,c,2,3,x):1
			// sum = 4.7549+2+4.7549 = 11.5098; H = 3.80735 - 0.82213 = 2.98523.
			// keys abc 123 x1 ...: all distinct: word entropy log2(4) = 2.
			name: "alpha", text: "abc 123 x1 ...",
			w: want{chars: 14, words: 4, charEnt: 2.985228, wordEnt: 2, alpha: 0.5, lang: "und", script: "Latin"},
		},
		{
			// Stop words: to be to be that the = 6 (or, not, is, question
			// are not Gopher stop words). Keys: to be or not to be that is
			// the question: to:2 be:2 others:1 (6 of them), 10 words:
			// H = log2(10) - (2+2)/10 = 3.32193 - 0.4 = 2.9219.
			// 2-gram "to be" twice: 2+2+2+2 = 8 of the 30 key chars
			// (2+2+2+3+2+2+4+2+3+8) = 0.2667. Char entropy 3.638776 (by an
			// independent implementation; too long to expand here).
			name: "stop words", text: "To be, or not to be: that is the question.",
			w: want{chars: 42, words: 10, charEnt: 3.638776, wordEnt: 2.921928, top2: 0.266667, alpha: 1, stop: 6, lang: "en", script: "Latin"},
		},
		{
			// 2-grams ab bc ca ab bc: "a b" and "b c" both twice with 2
			// chars: "a b" reached 2 first: words 0,1,3,4 = 4 of 6: 0.6667.
			// 3-grams abc bca cab abc: "a b c" twice covers all: 1.
			// 4-grams abca bcab cabc: none repeats: 0.
			// chars a b c x2 and 5 spaces of 11:
			// sum = 3*2 + 5*log2(5) = 6 + 11.6096; H = 3.45943 - 1.60087 = 1.8586.
			// keys a b c twice each: log2(3) = 1.5850. The vote: "a" is a
			// function word of en, fr, es, it and pt alike: a tie, und.
			name: "ngram ties", text: "a b c a b c",
			w: want{chars: 11, words: 6, charEnt: 1.858555, wordEnt: 1.584963, top2: 0.666667, top3: 1, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// Overlapping occurrences count their words once: "a a" at 0,1,2
			// covers the 4 words: 1; "a a a" at 0,1 too: 1; the single
			// 4-gram: 0. chars a:4 ' ':3 of 7: H(4/7,3/7) = 0.9852.
			name: "overlap", text: "a a a a",
			w: want{chars: 7, words: 4, charEnt: 0.985228, top2: 1, top3: 1, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// Equal counts: the n-gram with more characters wins. "aa b" and
			// "c ddd" occur twice each; "c ddd" has 4 key chars, "aa b" 3:
			// covered c ddd c ddd = 8 of 14 key chars: 0.5714.
			// keys aa:2 b:2 c:2 ddd:2 of 8: word entropy 2.
			// 3-grams: "aa b aa","b aa b","aa b c","b c ddd","c ddd c",
			// "ddd c ddd": none repeats.
			// chars a:4 b:2 c:2 d:6 ' ':7 of 21:
			// sum = 8+2+2+15.5098+19.6515 = 47.1613; H = 4.39232 - 2.24578 = 2.14654.
			name: "ngram longer tie", text: "aa b aa b c ddd c ddd",
			w: want{chars: 21, words: 8, charEnt: 2.146543, wordEnt: 2, top2: 0.571429, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// Code points, not bytes: é é ' ' e: H(1/2,1/4,1/4) = 1.5.
			// Keys éé, e: word entropy 1. "e" votes for it and pt: a tie, und.
			name: "non-ASCII", text: "éé e",
			w: want{chars: 4, words: 2, charEnt: 1.5, wordEnt: 1, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// de: der, und, die, sind, nicht (5 votes); en: none;
			// nl: die (1). 8 words of distinct keys: 3 bits. The character
			// entropies of this and the next cases were computed by an
			// independent implementation.
			name: "German", text: "Der Hund und die Katze sind nicht hier",
			w: want{chars: 38, words: 8, charEnt: 3.678152, wordEnt: 3, alpha: 1, lang: "de", script: "Latin"},
		},
		{
			// fr: le chat et le chien sont dans la maison -> le,et,le,sont,
			// dans,la = 6; es: la = 1; it: la, le, le = 3.
			name: "French", text: "Le chat et le chien sont dans la maison",
			w: want{chars: 39, words: 9, charEnt: 3.554382, wordEnt: 2.947703, alpha: 1, lang: "fr", script: "Latin"},
		},
		{
			// es: el, y, el, en, la = 5; fr: en, la = 2; it: la = 1.
			name: "Spanish", text: "El perro y el gato están en la casa",
			w: want{chars: 35, words: 9, charEnt: 3.564858, wordEnt: 2.947703, alpha: 1, lang: "es", script: "Latin"},
		},
		{
			name: "Greek", text: "Καλημέρα κόσμε",
			w: want{chars: 14, words: 2, charEnt: 3.521641, wordEnt: 1, alpha: 1, lang: "el", script: "Greek"},
		},
		{
			// П р и в е т ' ' м и р: р and и twice, 6 others once, of 10:
			// log2(10) - (2+2)/10 = 3.32193 - 0.4 = 2.9219.
			name: "Cyrillic", text: "Привет мир",
			w: want{chars: 10, words: 2, charEnt: 2.921928, wordEnt: 1, alpha: 1, lang: "other", script: "Cyrillic"},
		},
		{
			// Kana and Han together are Japanese.
			name: "Japanese", text: "こんにちは世界",
			w: want{chars: 7, words: 1, charEnt: 2.807355, alpha: 1, lang: "ja", script: "Japanese"},
		},
		{
			name: "Chinese", text: "你好世界",
			w: want{chars: 4, words: 1, charEnt: 2, alpha: 1, lang: "zh", script: "Han"},
		},
		{
			name: "Korean", text: "안녕하세요 세계",
			w: want{chars: 8, words: 2, charEnt: 2.75, wordEnt: 1, alpha: 1, lang: "ko", script: "Hangul"},
		},
		{
			// 3 Latin and 3 Cyrillic letters: no script has 80%: Mixed;
			// Latin has half, so the vote runs, and finds nothing: und.
			name: "Mixed", text: "abc абв",
			w: want{chars: 7, words: 2, charEnt: 2.807355, wordEnt: 1, alpha: 1, lang: "und", script: "Mixed"},
		},
		{
			// No letters: no script, no language; 0 of 2 words alphabetic.
			name: "digits", text: "123 456",
			w: want{chars: 7, words: 2, charEnt: 2.807355, wordEnt: 1, lang: "und", script: "None"},
		},
		{
			// White space of every kind separates words; NBSP and the
			// ideographic space included. chars: a NBSP b U+3000 c \t d = 7,
			// all distinct: log2(7). "a" ties the vote: und.
			name: "unicode spaces", text: "a\u00a0b\u3000c\td",
			w: want{chars: 7, words: 4, charEnt: 2.807355, wordEnt: 2, alpha: 1, lang: "und", script: "Latin"},
		},
		{
			// Both PII kinds found by the scanner land in the flags. Words
			// with letters: mail, bob@example.com, or, call = 4 of 8. "or"
			// is an English function word: en.
			name: "pii", text: "mail bob@example.com or call +1 415 555 2671",
			w: want{chars: 44, words: 8, alpha: 0.5, lang: "en", script: "Latin", pii: PIIEmail | PIIPhone, checkPII: true,
				charEnt: 4.080544, wordEnt: 3},
		},
	}
	a := NewAnalyzer(MetricsConfig{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := a.Analyze(c.text)
			w := c.w
			if m.LengthChars != w.chars || m.LengthWords != w.words {
				t.Errorf("length chars %d words %d, want %d %d", m.LengthChars, m.LengthWords, w.chars, w.words)
			}
			for _, f := range []struct {
				name string
				got  float32
				want float64
			}{
				{"char entropy", m.CharEntropy, w.charEnt}, {"word entropy", m.WordEntropy, w.wordEnt},
				{"top2", m.Top2GramFrac, w.top2}, {"top3", m.Top3GramFrac, w.top3}, {"top4", m.Top4GramFrac, w.top4},
				{"dup lines", m.DupLineFrac, w.dupLines}, {"alpha", m.AlphaWordFrac, w.alpha},
			} {
				if !near(f.got, f.want) {
					t.Errorf("%s = %.6f, want %.6f", f.name, f.got, f.want)
				}
			}
			if m.StopWords != w.stop {
				t.Errorf("stop words %d, want %d", m.StopWords, w.stop)
			}
			if m.Lang != w.lang || m.Script != w.script {
				t.Errorf("lang %q script %q, want %q %q", m.Lang, m.Script, w.lang, w.script)
			}
			if (w.checkPII || m.PII != 0) && m.PII != w.pii {
				t.Errorf("pii %v, want %v", m.PII, w.pii)
			}
			if w.checkFlags && m.QualityFlags != w.flags {
				t.Errorf("quality flags %v, want %v", m.QualityFlags, w.flags)
			}
			if m.TargetSimilarity != 0 {
				t.Errorf("target similarity %v, want 0 from Analyze", m.TargetSimilarity)
			}
		})
	}
}

// TestCompressionEstimateGolden checks the estimate on texts whose zstd
// frame is known exactly: texts too short to compress are stored raw in a
// frame of magic (4) + header descriptor (1) + content size (1) + block
// header (3) + checksum (4) = 13 bytes around them, as real zstd writes
// them (checked against klauspost/compress in
// TestCompressionEstimateRealCorrelation).
func TestCompressionEstimateGolden(t *testing.T) {
	cases := []struct {
		text string
		want int
	}{
		{"", 9},                        // empty frame, no checksum
		{"a", 14},                      // 13 + 1 raw byte
		{"abc", 16},                    // 13 + 3
		{"hello world", 24},            // 13 + 11: Huffman costs more than it saves
		{strings.Repeat("a", 48), 14},  // RLE block: 13 + 1
		{strings.Repeat("z", 300), 15}, // RLE block, 2-byte content size
	}
	for _, c := range cases {
		if got := EstimateCompressedSize(c.text); got != c.want {
			t.Errorf("EstimateCompressedSize(%.20q) = %d, want %d", c.text, got, c.want)
		}
	}
	// Repetition compresses, random text does not.
	a := NewAnalyzer(MetricsConfig{})
	rep := a.Analyze(strings.Repeat("the same line again\n", 200)).CompressionRatio
	prose := a.Analyze("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.").CompressionRatio
	if !(rep > 20 && prose > 0.7 && prose < 1.5) {
		t.Errorf("compression ratios: repeated %v (want > 20), prose %v (want about 1)", rep, prose)
	}
}

// TestMetricsBadRecords feeds texts a broken producer could send: the
// metrics stay in range and the binary flag rises.
func TestMetricsBadRecords(t *testing.T) {
	a := NewAnalyzer(MetricsConfig{})
	junk := string([]byte{0xff, 0xfe, 0x00, 'a', 0x00, 0xc3, 0x28, 'b', 0xe2, 0x82})
	m := a.Analyze(junk)
	checkInvariants(t, junk, m)
	if !m.QualityFlags.Has(QualityBinary) {
		t.Errorf("invalid UTF-8 and NULs: flags %v, want binary", m.QualityFlags)
	}
	// Each invalid byte is one character (U+FFFD): ff fe NUL a NUL
	// [c3] ( b [e2 82] = 10 bytes, 10 characters (e2 82 is a truncated
	// sequence: two invalid bytes).
	if m.LengthChars != 10 {
		t.Errorf("length chars %d, want 10", m.LengthChars)
	}
	if m := a.Analyze("tab\tand\r\nnewline"); m.QualityFlags.Has(QualityBinary) {
		t.Errorf("white space control characters flagged binary: %v", m.QualityFlags)
	}
	if m := a.Analyze("bell\a"); !m.QualityFlags.Has(QualityBinary) {
		t.Errorf("BEL not flagged binary: %v", m.QualityFlags)
	}
}

// TestMetricsHugeText analyses a 10 MB text: it must finish fast, and the
// Analyzer must let go of the scratch it grew for it when the next record
// comes.
func TestMetricsHugeText(t *testing.T) {
	var b strings.Builder
	words := strings.Fields("the quick brown fox jumps over the lazy dog while seven wizards quietly hex")
	for i := 0; b.Len() < 10<<20; i++ {
		b.WriteString(words[(i*7+i/13)%len(words)])
		if i%17 == 16 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	text := b.String()
	a := NewAnalyzer(MetricsConfig{})
	a.Analyze("warm up")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m := a.Analyze(text)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if f := a.Features(); len(f) != 2*int(m.LengthWords)-1 {
		t.Errorf("%d features after a huge text of %d words", len(f), m.LengthWords)
	}
	a.Analyze("the next record lets go of the scratch")
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(a)
	runtime.KeepAlive(text)
	checkInvariants(t, text, m)
	if !m.QualityFlags.Has(QualityTooLong) {
		t.Errorf("flags %v, want too_long", m.QualityFlags)
	}
	t.Logf("10 MB, %d words: %v (%.0f MB/s), %d MB allocated, %d KB retained by the Analyzer",
		m.LengthWords, elapsed, float64(len(text))/elapsed.Seconds()/1e6, allocated>>20, retained>>10)
	// Linear time, judged against the same machine's time for a tenth of
	// the text (a wall-clock bound fails on a loaded machine; a quadratic
	// pass costs 100 times the tenth, a linear one 10).
	tenth := text[:len(text)/10]
	small := minDuration(3, func() { a.Analyze(tenth) })
	if limit := 25*small + 50*time.Millisecond; elapsed > limit {
		t.Errorf("10 MB took %v, a tenth of it %v: not linear", elapsed, small)
	}
	if allocated > 24*uint64(len(text)) {
		t.Errorf("analysing %d MB allocated %d MB", len(text)>>20, allocated>>20)
	}
	if retained > 4<<20 {
		t.Errorf("the Analyzer retains %d KB after a huge text", retained>>10)
	}
}

// TestAnalyzeAllocs checks that analysing records allocates nothing once
// the scratch has grown.
func TestAnalyzeAllocs(t *testing.T) {
	texts := []string{
		"Downthrow \\Down\"throw`\\, n. (Geol.)\n   The sudden drop or depression of the strata of rocks on one\n   side of a fault. See {Throw}, n.",
		"pink-red: of red tinged with pink",
		"When I lie down, I say, ‘When will I arise, and the night be gone?’ I toss and turn until the dawning of the day.",
		"Contact: bob@example.com, +1 415 555 2671, 10.0.0.1",
		"Καλημέρα κόσμε, こんにちは世界",
	}
	a := NewAnalyzer(MetricsConfig{})
	for _, s := range texts {
		a.Analyze(s)
		a.Features()
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, s := range texts {
			a.Analyze(s)
			a.Features()
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

// TestFeaturesMatchAppendFeatures checks that the Analyzer and the
// Target's own tokeniser agree.
func TestFeaturesMatchAppendFeatures(t *testing.T) {
	a := NewAnalyzer(MetricsConfig{})
	for _, s := range []string{"", "The cat, the CAT.", "  x  ", "Ünïcödé ΚΑΛΗ words\u00a0and\u3000spaces", "\xff\xfe bad", "a-b c_d 'e' (f)"} {
		a.Analyze(s)
		if got, want := a.Features(), AppendFeatures(nil, s); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
			t.Errorf("%q: Analyzer features %x, AppendFeatures %x", s, got, want)
		}
	}
}

// checkInvariants checks what holds for the metrics of any text.
func checkInvariants(t testing.TB, text string, m Metrics) {
	t.Helper()
	for _, f := range []struct {
		name string
		v    float32
	}{
		{"dup_line_frac", m.DupLineFrac}, {"top2", m.Top2GramFrac}, {"top3", m.Top3GramFrac},
		{"top4", m.Top4GramFrac}, {"alpha_word_frac", m.AlphaWordFrac},
	} {
		if !(f.v >= 0 && f.v <= 1) {
			t.Errorf("%s = %v, out of [0,1]", f.name, f.v)
		}
	}
	n := utf8.RuneCountInString(text)
	if int(m.LengthChars) != n {
		t.Errorf("length_chars %d, want %d", m.LengthChars, n)
	}
	if int(m.LengthWords) > (n+1)/2 || m.LengthWords < 0 {
		t.Errorf("length_words %d for %d chars", m.LengthWords, n)
	}
	if want := len(strings.FieldsFunc(text, unicode.IsSpace)); int(m.LengthWords) != want {
		t.Errorf("length_words %d, want %d", m.LengthWords, want)
	}
	if !(m.CharEntropy >= 0 && float64(m.CharEntropy) <= math.Log2(float64(n))+1e-4 || n == 0 && m.CharEntropy == 0) {
		t.Errorf("char_entropy %v for %d chars", m.CharEntropy, n)
	}
	if !(m.WordEntropy >= 0 && (m.LengthWords == 0 || float64(m.WordEntropy) <= math.Log2(float64(m.LengthWords))+1e-4)) {
		t.Errorf("word_entropy %v for %d words", m.WordEntropy, m.LengthWords)
	}
	if len(text) > 0 && !(m.CompressionRatio > 0 && !math.IsInf(float64(m.CompressionRatio), 0)) {
		t.Errorf("compression_ratio %v", m.CompressionRatio)
	}
	if m.StopWords < 0 || m.StopWords > m.LengthWords {
		t.Errorf("stop_words %d of %d words", m.StopWords, m.LengthWords)
	}
	if m.Lang == "" || m.Script == "" {
		t.Errorf("lang %q script %q", m.Lang, m.Script)
	}
	if m.QualityFlags>>numQualityFlags != 0 || m.PII>>numPIIKinds != 0 {
		t.Errorf("stray flag bits: quality %b pii %b", m.QualityFlags, m.PII)
	}
}

// FuzzAnalyze checks that no text panics the Analyzer or breaks the
// invariants, and that its features match AppendFeatures.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"", "aab", "a b a b", "The cat, the CAT.", "foo\nbar\nfoo", "\xff\x00\xfe",
		"Καλημέρα κόσμε こんにちは世界 안녕", "mail bob@example.com or +1 (415) 555-2671",
		strings.Repeat("spam ", 50), "4111 1111 1111 1111", "2001:db8::1 192.168.0.1",
	} {
		f.Add(s)
	}
	a := NewAnalyzer(MetricsConfig{})
	f.Fuzz(func(t *testing.T, s string) {
		m := a.Analyze(s)
		checkInvariants(t, s, m)
		checkWordStats(t, s, m)
		if got, want := a.Features(), AppendFeatures(nil, s); len(got) != len(want) {
			t.Fatalf("features %d, AppendFeatures %d", len(got), len(want))
		} else {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("feature %d differs", i)
				}
			}
		}
		// Analyzing again gives the same metrics: scratch is reset.
		if m2 := a.Analyze(s); !reflect.DeepEqual(m, m2) && !(m.CharEntropy != m.CharEntropy) {
			t.Fatalf("second analysis differs: %+v vs %+v", m, m2)
		}
	})
}

// referenceWordStats computes the word entropy and the top n-gram
// fractions the plain way (maps of n-gram keys, no pruning), to check the
// Analyzer's faster counting against.
func referenceWordStats(text string) (entropy float64, top [3]float64) {
	words := strings.FieldsFunc(text, isSpace)
	keys := make([]uint64, len(words))
	lens := make([]int, len(words))
	total := 0
	counts := map[uint64]int{}
	for i, w := range words {
		h, n := wordKeyOf(w)
		keys[i], lens[i] = h, int(n)
		total += int(n)
		counts[h]++
	}
	if len(words) == 0 {
		return 0, top
	}
	for _, c := range counts {
		p := float64(c) / float64(len(words))
		entropy -= p * math.Log2(p)
	}
	for k := range top {
		size := k + 2
		grams := map[string]int{}
		best, bestCount, bestChars := "", 0, 0
		for i := 0; i+size <= len(words); i++ {
			key := fmt.Sprint(keys[i : i+size])
			grams[key]++
			chars := 0
			for _, l := range lens[i : i+size] {
				chars += l
			}
			if c := grams[key]; c > bestCount || c == bestCount && chars > bestChars {
				best, bestCount, bestChars = key, c, chars
			}
		}
		if bestCount < 2 || total == 0 {
			break
		}
		covered := make([]bool, len(words))
		for i := 0; i+size <= len(words); i++ {
			if fmt.Sprint(keys[i:i+size]) == best {
				for j := i; j < i+size; j++ {
					covered[j] = true
				}
			}
		}
		n := 0
		for i, c := range covered {
			if c {
				n += lens[i]
			}
		}
		top[k] = float64(n) / float64(total)
	}
	return entropy, top
}

// checkWordStats compares the Analyzer's word statistics with the
// reference.
func checkWordStats(t testing.TB, text string, m Metrics) {
	t.Helper()
	e, top := referenceWordStats(text)
	got := [4]float32{m.WordEntropy, m.Top2GramFrac, m.Top3GramFrac, m.Top4GramFrac}
	want := [4]float64{e, top[0], top[1], top[2]}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > 1e-4 {
			t.Fatalf("%.80q: word entropy and top 2/3/4-gram fractions %v, reference %v", text, got, want)
		}
	}
}

// TestWordStatsMatchReference checks the pruned n-gram counting against
// the plain one on the real stream.
func TestWordStatsMatchReference(t *testing.T) {
	a := NewAnalyzer(MetricsConfig{})
	for _, r := range realRecords(t, 5000) {
		checkWordStats(t, r.Text, a.Analyze(r.Text))
	}
}

// minDuration is the shortest of n runs of f.
func minDuration(n int, f func()) time.Duration {
	best := time.Duration(math.MaxInt64)
	for range n {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}
