package dedup

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

type normCase struct {
	why, in, strip, keep string
	line                 int
}

// readNormGolden reads testdata/normalize.golden: blocks of "# why", then
// in:, strip: and keep: lines holding Go-quoted strings.
func readNormGolden(t testing.TB) []normCase {
	t.Helper()
	f, err := os.Open("testdata/normalize.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []normCase
	var c normCase
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "#"):
			c = normCase{why: strings.TrimSpace(text[1:]), line: line}
		case strings.TrimSpace(text) == "":
		default:
			key, val, ok := strings.Cut(text, ":")
			s, err := strconv.Unquote(strings.TrimSpace(val))
			if !ok || err != nil {
				t.Fatalf("normalize.golden:%d: %q: want key: \"quoted\"", line, text)
			}
			switch key {
			case "in":
				c.in = s
			case "strip":
				c.strip = s
			case "keep":
				c.keep = s
				out = append(out, c)
			default:
				t.Fatalf("normalize.golden:%d: unknown key %q", line, key)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNormalizeGolden(t *testing.T) {
	cases := readNormGolden(t)
	if len(cases) < 20 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, c := range cases {
		for _, p := range []struct {
			policy PunctPolicy
			want   string
		}{{PunctStrip, c.strip}, {PunctKeep, c.keep}} {
			got := string(Normalize(nil, c.in, p.policy))
			if got != p.want {
				t.Errorf("normalize.golden:%d %s (%s): Normalize(%q) = %q, want %q", c.line, c.why, p.policy, c.in, got, p.want)
			}
			if again := string(Normalize(nil, got, p.policy)); again != got {
				t.Errorf("normalize.golden:%d %s (%s): not idempotent: %q then %q", c.line, c.why, p.policy, got, again)
			}
		}
	}
}

func TestNormalizeAppends(t *testing.T) {
	dst := []byte("prefix|")
	if got := string(Normalize(dst, "Ｈｉ There", PunctStrip)); got != "prefix|hi there" {
		t.Errorf("got %q", got)
	}
	if got := string(Normalize(dst, "Hi  There", PunctStrip)); got != "prefix|hi there" {
		t.Errorf("got %q", got)
	}
}

func TestNormalizeAllocs(t *testing.T) {
	var n normalizer
	buf := make([]byte, 0, 1024)
	for _, text := range []string{
		"An ASCII text, with Punctuation -- and    spaces.",
		"Ｆｕｌｌ-width and “quotes” need NFKC",
	} {
		text := text
		n.append(buf[:0], text, PunctStrip) // warm the scratch buffers
		if a := testing.AllocsPerRun(100, func() { buf = n.append(buf[:0], text, PunctStrip) }); a != 0 {
			t.Errorf("%q: %v allocations per normalisation with warm buffers", text, a)
		}
	}
}

// checkNormal checks the invariants of a normal form.
func checkNormal(t *testing.T, in string, out []byte, p PunctPolicy) {
	t.Helper()
	if !utf8.Valid(out) {
		t.Fatalf("%q (%s) -> %q: invalid UTF-8", in, p, out)
	}
	if len(out) > 0 && (out[0] == ' ' || out[len(out)-1] == ' ') || bytes.Contains(out, []byte("  ")) {
		t.Fatalf("%q (%s) -> %q: stray spaces", in, p, out)
	}
	for _, c := range out {
		if c < utf8.RuneSelf && (asciiMap[p][c] == 0 && c != ' ' || asciiMap[p][c] != 0 && asciiMap[p][c] != c) {
			t.Fatalf("%q (%s) -> %q: byte %q is not in normal form", in, p, out, c)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, c := range readNormGolden(f) {
		f.Add(c.in)
	}
	f.Add("e\u200d\u0301 \u0345\u0399 ﬆ ǰ ẞ ϴ Ω K Å \u1e9e")
	f.Fuzz(func(t *testing.T, in string) {
		for _, p := range []PunctPolicy{PunctStrip, PunctKeep} {
			out := Normalize(nil, in, p)
			checkNormal(t, in, out, p)
			if again := Normalize(nil, string(out), p); !bytes.Equal(again, out) {
				t.Fatalf("%q (%s): not idempotent: %q then %q", in, p, out, again)
			}
			if isASCII(in) {
				// The fast path agrees with the general one.
				if slow := appendFolded(nil, in, p); !bytes.Equal(slow, out) {
					t.Fatalf("%q (%s): fast path %q, general path %q", in, p, out, slow)
				}
			}
		}
	})
}
