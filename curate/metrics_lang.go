package curate

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scripts told apart by Metrics.Script.
const (
	scriptLatin = iota
	scriptGreek
	scriptCyrillic
	scriptArmenian
	scriptHebrew
	scriptArabic
	scriptDevanagari
	scriptThai
	scriptGeorgian
	scriptHangul
	scriptHiragana
	scriptKatakana
	scriptHan
	scriptOther
	numScripts
)

// Results of the script guess that are not a single script's letters.
const (
	scriptJapanese = numScripts + iota
	scriptMixed
	scriptNone
)

var scriptNames = [...]string{
	scriptLatin: "Latin", scriptGreek: "Greek", scriptCyrillic: "Cyrillic",
	scriptArmenian: "Armenian", scriptHebrew: "Hebrew", scriptArabic: "Arabic",
	scriptDevanagari: "Devanagari", scriptThai: "Thai", scriptGeorgian: "Georgian",
	scriptHangul: "Hangul", scriptHiragana: "Hiragana", scriptKatakana: "Katakana",
	scriptHan: "Han", scriptOther: "Other",
	scriptJapanese: "Japanese", scriptMixed: "Mixed", scriptNone: "None",
}

// scriptTables back scriptOf for letters outside its fast ranges.
var scriptTables = [...]struct {
	t *unicode.RangeTable
	s int
}{
	{unicode.Latin, scriptLatin}, {unicode.Greek, scriptGreek},
	{unicode.Cyrillic, scriptCyrillic}, {unicode.Armenian, scriptArmenian},
	{unicode.Hebrew, scriptHebrew}, {unicode.Arabic, scriptArabic},
	{unicode.Devanagari, scriptDevanagari}, {unicode.Thai, scriptThai},
	{unicode.Georgian, scriptGeorgian}, {unicode.Hangul, scriptHangul},
	{unicode.Hiragana, scriptHiragana}, {unicode.Katakana, scriptKatakana},
	{unicode.Han, scriptHan},
}

// scriptOf returns the script of the non-ASCII letter r.
func scriptOf(r rune) int {
	switch {
	case r < 0x2b0, r >= 0x1e00 && r < 0x1f00:
		return scriptLatin
	case r >= 0x370 && r < 0x400, r >= 0x1f00 && r < 0x2000:
		return scriptGreek
	case r >= 0x400 && r < 0x530:
		return scriptCyrillic
	case r >= 0x530 && r < 0x590:
		return scriptArmenian
	case r >= 0x590 && r < 0x600:
		return scriptHebrew
	case r >= 0x600 && r < 0x700, r >= 0x750 && r < 0x780:
		return scriptArabic
	case r >= 0x900 && r < 0x980:
		return scriptDevanagari
	case r >= 0xe00 && r < 0xe80:
		return scriptThai
	case r >= 0x10a0 && r < 0x1100:
		return scriptGeorgian
	case r >= 0xac00 && r < 0xd7b0, r >= 0x1100 && r < 0x1200, r >= 0x3130 && r < 0x3190:
		return scriptHangul
	case r >= 0x3040 && r < 0x30a0:
		return scriptHiragana
	case r >= 0x30a0 && r < 0x3100:
		return scriptKatakana
	case r >= 0x4e00 && r < 0xa000, r >= 0x3400 && r < 0x4dc0:
		return scriptHan
	}
	for _, st := range scriptTables {
		if unicode.Is(st.t, r) {
			return st.s
		}
	}
	return scriptOther
}

// script decides the script of the text from the letter counts.
func (p *passStats) script() int {
	sc := p.scripts
	total := 0
	for _, n := range sc {
		total += n
	}
	if total == 0 {
		return scriptNone
	}
	best := scriptLatin
	if kana := sc[scriptHiragana] + sc[scriptKatakana]; kana > 0 {
		// Japanese mixes kana with Han; Korean may mix Hangul with Han.
		sc[scriptHiragana], sc[scriptKatakana] = 0, 0
		jp := kana + sc[scriptHan]
		sc[scriptHan] = 0
		if 5*jp >= 4*total {
			return scriptJapanese
		}
	} else if sc[scriptHangul] > 0 {
		sc[scriptHangul] += sc[scriptHan]
		sc[scriptHan] = 0
	}
	for s, n := range sc {
		if n > sc[best] {
			best = s
		}
	}
	if 5*sc[best] < 4*total {
		return scriptMixed
	}
	return best
}

// Languages of the function-word vote.
const (
	langEN = iota
	langDE
	langFR
	langES
	langIT
	langNL
	langPT
	numLangs
)

var langCodes = [numLangs]string{"en", "de", "fr", "es", "it", "nl", "pt"}

// gopherStop marks Gopher's stop words in a function-word entry; bits
// 0..numLangs-1 mark the languages whose list holds the word.
const gopherStop = 1 << 15

// gopherStopWords are the stop words of Gopher's quality filter (Rae et
// al. 2021, appendix A1.1): a document needs two of them.
var gopherStopWords = []string{"the", "be", "to", "of", "and", "that", "have", "with"}

// functionWords are frequent function words of each language of the vote
// (plus the archaic English of the King James Bible).
var functionWords = [numLangs]string{
	langEN: `the of and to a in is it that for was on with as he be by at i you his are
		this not but from or have an they which one were her she all we there their been
		has will would who no if when so what out up its about into than them can only
		other some could these may then do any my me him our also such shall thou thee thy
		unto ye hath`,
	langDE: `der die und in den von zu das mit sich des auf für ist im dem nicht ein eine
		als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie
		einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sein
		wurde sei ich du wir ihr`,
	langFR: `de la le et les des en un du une que est pour qui dans a par plus pas au sur
		ne se ce il sont avec ou son aux mais nous vous je tu elle ils cette été être leur
		comme`,
	langES: `de la que el en y a los se del las un por con no una su para es al lo como
		más o pero sus le ha me si sin sobre este ya entre cuando todo esta ser son dos
		también fue había era muy años hasta desde está mi porque qué sólo han yo hay`,
	langIT: `di e il la che in a per un è del non una sono le si con da al della i gli lo
		come più ma anche dei nel alla se questo ha ci mi io tu noi voi loro essere delle
		nella`,
	langNL: `de van een het en in is dat op te zijn voor met die niet aan er om ook als bij
		door maar uit wordt naar dan nog worden tot kan over hij zij wij ik je we heeft werd
		deze was hebben`,
	langPT: `de a o que e do da em um para é com não uma os no se na por mais as dos como
		mas foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só
		pelo pela até isso ela entre era depois sem mesmo aos`,
}

// maxFunctionWordChars is the length of the longest function word: longer
// keys are not looked up.
var maxFunctionWordChars int32

// functionWordTable maps key hashes of function words to their entry, in an
// open-addressing table (a zero entry is empty).
var functionWordTable struct {
	keys  [1024]uint64
	infos [1024]uint16
}

func init() {
	add := func(w string, info uint16) {
		h, n := wordKeyOf(w)
		maxFunctionWordChars = max(maxFunctionWordChars, n)
		t := &functionWordTable
		i := int(h>>54) & (len(t.keys) - 1)
		for t.infos[i] != 0 && t.keys[i] != h {
			i = (i + 1) & (len(t.keys) - 1)
		}
		t.keys[i] = h
		t.infos[i] |= info
	}
	for l, list := range functionWords {
		for _, w := range strings.Fields(list) {
			add(w, 1<<l)
		}
	}
	for _, w := range gopherStopWords {
		add(w, gopherStop)
	}
}

// lookupFunctionWord returns the function-word entry of a key hash, 0 if
// it is none.
func lookupFunctionWord(h uint64) uint16 {
	t := &functionWordTable
	i := int(h>>54) & (len(t.keys) - 1)
	for t.infos[i] != 0 {
		if t.keys[i] == h {
			return t.infos[i]
		}
		i = (i + 1) & (len(t.keys) - 1)
	}
	return 0
}

// wordKeyOf returns the key hash and key length of one word, as the Analyzer
// computes them.
func wordKeyOf(word string) (uint64, int32) {
	var w wordHasher
	w.reset()
	for _, r := range word {
		letter, digit := unicode.IsLetter(r), unicode.IsDigit(r)
		if r < utf8.RuneSelf {
			letter, digit = asciiClass[r]&clLetter != 0, asciiClass[r]&clDigit != 0
		}
		if letter {
			r = unicode.ToLower(r)
		}
		w.add(r, letter || digit)
	}
	return w.sum()
}

// lang guesses the language from the script and the function-word vote.
func (p *passStats) lang(script int) string {
	switch script {
	case scriptNone:
		return "und"
	case scriptGreek:
		return "el"
	case scriptHebrew:
		return "he"
	case scriptArmenian:
		return "hy"
	case scriptGeorgian:
		return "ka"
	case scriptThai:
		return "th"
	case scriptHangul:
		return "ko"
	case scriptJapanese:
		return "ja"
	case scriptHan:
		return "zh"
	case scriptLatin:
	case scriptMixed:
		total := 0
		for _, n := range p.scripts {
			total += n
		}
		if 2*p.scripts[scriptLatin] < total {
			return "other"
		}
	default:
		return "other"
	}
	best, second := 0, int32(0)
	for l := 1; l < numLangs; l++ {
		switch v := p.votes[l]; {
		case v > p.votes[best]:
			best, second = l, p.votes[best]
		case v > second:
			second = v
		}
	}
	if p.votes[best] == 0 || p.votes[best] == second {
		return "und"
	}
	return langCodes[best]
}
