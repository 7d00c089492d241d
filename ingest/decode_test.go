package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// p returns a pointer to v, for expected optional values.
func p[T any](v T) *T { return &v }

// want is the expected decoded record; nil pointers mean absent.
type want struct {
	text, id, source, domain, lang, attrs *string
	ts                                    *int64
}

func checkRecord(t *testing.T, rec Record, w want) {
	t.Helper()
	for _, f := range []struct {
		name string
		got  []byte
		want *string
	}{
		{"text", rec.Text, w.text}, {"id", rec.ID, w.id}, {"source", rec.Source, w.source},
		{"domain", rec.Domain, w.domain}, {"lang", rec.Lang, w.lang}, {"attrs", rec.Attrs, w.attrs},
	} {
		switch {
		case f.want == nil && f.got != nil:
			t.Errorf("%s = %q, want absent", f.name, f.got)
		case f.want != nil && f.got == nil:
			t.Errorf("%s absent, want %q", f.name, *f.want)
		case f.want != nil && string(f.got) != *f.want:
			t.Errorf("%s = %q, want %q", f.name, f.got, *f.want)
		}
	}
	switch {
	case w.ts == nil && rec.HasTS:
		t.Errorf("ts = %d, want absent", rec.TS)
	case w.ts != nil && !rec.HasTS:
		t.Errorf("ts absent, want %d", *w.ts)
	case w.ts != nil && rec.TS != *w.ts:
		t.Errorf("ts = %d (%v), want %d (%v)", rec.TS, time.UnixMilli(rec.TS).UTC(), *w.ts, time.UnixMilli(*w.ts).UTC())
	}
}

func ms(s string) *int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return p(t.UnixMilli())
}

// nest returns depth nested arrays around v.
func nest(depth int, v string) string {
	return strings.Repeat("[", depth) + v + strings.Repeat("]", depth)
}

func TestDecode(t *testing.T) {
	custom := DecoderConfig{Fields: Fields{Text: "body", ID: "uid", Source: "src", Domain: "dom", Lang: "language", TS: "time"}}
	textOnly := DecoderConfig{Fields: Fields{Text: "text"}}
	small := DecoderConfig{MaxValueBytes: 16}
	text := DecoderConfig{Format: FormatText}
	smallText := DecoderConfig{Format: FormatText, MaxValueBytes: 4}

	tests := []struct {
		name   string
		cfg    DecoderConfig
		in     string
		reason string
		want   want
	}{
		// Accepted values.
		{name: "minimal", in: `{"text":"hello"}`, want: want{text: p("hello")}},
		{name: "stream line", in: `{"id": "wordnet:s00379914", "source": "wordnet", "domain": "lexicon", "lang": "en", "text": "pink-red: of red tinged with pink"}`,
			want: want{text: p("pink-red: of red tinged with pink"), id: p("wordnet:s00379914"), source: p("wordnet"), domain: p("lexicon"), lang: p("en")}},
		{name: "white space everywhere", in: " \t\r\n{ \n\"text\"\t:\r\"a\" ,\n \"id\" : \"1\" \n}\r\n\t ",
			want: want{text: p("a"), id: p("1")}},
		{name: "simple escapes", in: `{"text":"a\"b\\c\/d\be\ff\ng\rh\ti"}`, want: want{text: p("a\"b\\c/d\be\ff\ng\rh\ti")}},
		{name: "escape at start and end", in: `{"text":"\nx\n"}`, want: want{text: p("\nx\n")}},
		{name: "only escapes", in: `{"text":"\\\\"}`, want: want{text: p(`\\`)}},
		{name: "unicode escapes", in: `{"text":"caf\u00e9 \u4E2D\u6587"}`, want: want{text: p("café 中文")}},
		{name: "surrogate pair", in: `{"text":"smile \ud83d\ude00!"}`, want: want{text: p("smile 😀!")}},
		{name: "surrogate pair upper case", in: `{"text":"\uD834\uDD1E"}`, want: want{text: p("𝄞")}},
		{name: "escaped NUL", in: `{"text":"a\u0000b"}`, want: want{text: p("a\x00b")}},
		{name: "raw non-ASCII", in: `{"text":"café 中文 😀 ﬁ"}`, want: want{text: p("café 中文 😀 ﬁ")}},
		{name: "raw U+FFFD is valid", in: "{\"text\":\"\xef\xbf\xbd\"}", want: want{text: p("\uFFFD")}},
		{name: "DEL is not a control character", in: "{\"text\":\"a\x7fb\"}", want: want{text: p("a\x7fb")}},
		{name: "long text", in: `{"text":"` + strings.Repeat("abcdefghij", 100) + `\n` + strings.Repeat("é", 50) + `"}`,
			want: want{text: p(strings.Repeat("abcdefghij", 100) + "\n" + strings.Repeat("é", 50))}},
		{name: "escaped key", in: `{"t\u0065xt":"x","\u0069d":"y"}`, want: want{text: p("x"), id: p("y")}},
		{name: "escaped slash in key", in: `{"text":"x","a\/b":1}`, want: want{text: p("x"), attrs: p(`{"a\/b":1}`)}},
		{name: "empty key", in: `{"text":"x","":1}`, want: want{text: p("x"), attrs: p(`{"":1}`)}},
		{name: "keys are case-sensitive", in: `{"text":"x","ID":"y"}`, want: want{text: p("x"), attrs: p(`{"ID":"y"}`)}},
		{name: "text after other members", in: `{"a":1,"b":2,"text":"x"}`, want: want{text: p("x"), attrs: p(`{"a":1,"b":2}`)}},

		// id, source, domain, lang.
		{name: "meta strings escaped", in: `{"text":"x","id":"a\"b","source":"s\u00e9","domain":"d\\","lang":"\u0065n"}`,
			want: want{text: p("x"), id: p(`a"b`), source: p("sé"), domain: p(`d\`), lang: p("en")}},
		{name: "meta empty string", in: `{"text":"x","id":""}`, want: want{text: p("x"), id: p("")}},
		{name: "meta null", in: `{"text":"x","id":null,"source":null,"domain":null,"lang":null}`, want: want{text: p("x")}},
		{name: "meta numbers", in: `{"text":"x","id":123,"source":-1.5e+3,"domain":0,"lang":2E-2}`,
			want: want{text: p("x"), id: p("123"), source: p("-1.5e+3"), domain: p("0"), lang: p("2E-2")}},
		{name: "meta booleans", in: `{"text":"x","id":true,"lang":false}`, want: want{text: p("x"), id: p("true"), lang: p("false")}},
		{name: "meta object goes to attrs", in: `{"text":"x","id":{"a" : 1}}`, want: want{text: p("x"), attrs: p(`{"id":{"a":1}}`)}},
		{name: "meta array goes to attrs", in: `{"source":[ "a", 1 ],"text":"x"}`, want: want{text: p("x"), attrs: p(`{"source":["a",1]}`)}},

		// Duplicate keys.
		{name: "duplicate text last wins", in: `{"text":"a","text":"b"}`, want: want{text: p("b")}},
		{name: "duplicate text non-string then string", in: `{"text":1,"text":"b"}`, want: want{text: p("b")}},
		{name: "duplicate text string then non-string", in: `{"text":"b","text":1}`, reason: schemas.ReasonTextNotString},
		{name: "duplicate text string then null", in: `{"text":"b","text":null}`, reason: schemas.ReasonMissingText},
		{name: "duplicate text empty then full", in: `{"text":"","text":"b"}`, want: want{text: p("b")}},
		{name: "duplicate id string then null", in: `{"id":"a","text":"x","id":null}`, want: want{text: p("x")}},
		{name: "duplicate id object then string", in: `{"id":{"k":1},"text":"x","id":"a"}`, want: want{text: p("x"), id: p("a"), attrs: p(`{"id":{"k":1}}`)}},
		{name: "duplicate id string then object", in: `{"id":"a","text":"x","id":[1]}`, want: want{text: p("x"), attrs: p(`{"id":[1]}`)}},
		{name: "duplicate ts last wins", in: `{"text":"x","ts":"nonsense","ts":1}`, want: want{text: p("x"), ts: p(int64(1000))}},
		{name: "duplicate ts valid then invalid", in: `{"text":"x","ts":1,"ts":true}`, reason: schemas.ReasonInvalidTS},
		{name: "duplicate attrs all kept", in: `{"a":1,"text":"x","a":2,"b":3,"a":1}`, want: want{text: p("x"), attrs: p(`{"a":1,"a":2,"b":3,"a":1}`)}},

		// Attrs.
		{name: "attrs kinds", in: `{"text":"x","n":null,"t":true,"f":false,"num":-0.5e-3,"s":"s","o":{},"a":[]}`,
			want: want{text: p("x"), attrs: p(`{"n":null,"t":true,"f":false,"num":-0.5e-3,"s":"s","o":{},"a":[]}`)}},
		{name: "attrs compact but strings kept", in: "{\"b\" : [ 1 ,\n 2 , { \"c d\" : \"e \\\" f\" } ] , \"text\":\"x\", \"a\" :\t\"s\\\"t\\\\\" }",
			want: want{text: p("x"), attrs: p(`{"b":[1,2,{"c d":"e \" f"}],"a":"s\"t\\"}`)}},
		{name: "attrs keep escapes raw", in: `{"text":"x","k\u00e9y":"\u00e9\n","\ud83d\ude00":1}`,
			want: want{text: p("x"), attrs: p(`{"k\u00e9y":"\u00e9\n","\ud83d\ude00":1}`)}},
		{name: "attrs raw non-ASCII", in: `{"text":"x","clé":["é"]}`, want: want{text: p("x"), attrs: p(`{"clé":["é"]}`)}},
		{name: "attrs deep nesting at the limit", in: `{"text":"x","a":` + nest(maxDepth-1, "1") + `}`,
			want: want{text: p("x"), attrs: p(`{"a":` + nest(maxDepth-1, "1") + `}`)}},
		{name: "attrs deep nesting over the limit", in: `{"text":"x","a":` + nest(maxDepth, "1") + `}`, reason: schemas.ReasonInvalidJSON},
		{name: "attrs deep objects", in: `{"text":"x","a":{"b":{"c":{"d":[{"e":[[{}]]}]}}}}`,
			want: want{text: p("x"), attrs: p(`{"a":{"b":{"c":{"d":[{"e":[[{}]]}]}}}}`)}},

		// Custom field names.
		{name: "custom fields", cfg: custom, in: `{"body":"x","uid":"1","src":"s","dom":"d","language":"l","time":1,"text":"not mapped","id":"nor this"}`,
			want: want{text: p("x"), id: p("1"), source: p("s"), domain: p("d"), lang: p("l"), ts: p(int64(1000)), attrs: p(`{"text":"not mapped","id":"nor this"}`)}},
		{name: "custom fields missing text", cfg: custom, in: `{"text":"x"}`, reason: schemas.ReasonMissingText},
		{name: "unmapped fields go to attrs", cfg: textOnly, in: `{"text":"x","id":"1","ts":"no"}`, want: want{text: p("x"), attrs: p(`{"id":"1","ts":"no"}`)}},

		// ts.
		{name: "ts null", in: `{"text":"x","ts":null}`, want: want{text: p("x")}},
		{name: "ts RFC 3339 UTC", in: `{"text":"x","ts":"2024-01-02T03:04:05Z"}`, want: want{text: p("x"), ts: ms("2024-01-02T03:04:05Z")}},
		{name: "ts RFC 3339 offset and nanoseconds", in: `{"text":"x","ts":"2024-02-29T23:59:59.987654321+05:30"}`,
			want: want{text: p("x"), ts: ms("2024-02-29T23:59:59.987654321+05:30")}},
		{name: "ts RFC 3339 negative offset", in: `{"text":"x","ts":"1969-12-31T23:59:59.9-00:01"}`, want: want{text: p("x"), ts: ms("1969-12-31T23:59:59.9-00:01")}},
		{name: "ts RFC 3339 short fraction", in: `{"text":"x","ts":"2024-01-02T03:04:05.1Z"}`, want: want{text: p("x"), ts: ms("2024-01-02T03:04:05.1Z")}},
		{name: "ts RFC 3339 year 0", in: `{"text":"x","ts":"0000-01-01T00:00:00Z"}`, want: want{text: p("x"), ts: ms("0000-01-01T00:00:00Z")}},
		{name: "ts RFC 3339 escaped", in: `{"text":"x","ts":"2024-01-02T03:04:05\u005a"}`, want: want{text: p("x"), ts: ms("2024-01-02T03:04:05Z")}},
		{name: "ts time.Parse variant", in: `{"text":"x","ts":"2024-01-02T03:04:05,5Z"}`, want: want{text: p("x"), ts: ms("2024-01-02T03:04:05.5Z")}},
		{name: "ts seconds", in: `{"text":"x","ts":1700000000}`, want: want{text: p("x"), ts: p(int64(1700000000000))}},
		{name: "ts seconds fraction", in: `{"text":"x","ts":1700000000.123}`, want: want{text: p("x"), ts: p(int64(1700000000123))}},
		{name: "ts seconds exponent", in: `{"text":"x","ts":1.7e9}`, want: want{text: p("x"), ts: p(int64(1700000000000))}},
		{name: "ts seconds negative", in: `{"text":"x","ts":-5}`, want: want{text: p("x"), ts: p(int64(-5000))}},
		{name: "ts seconds zero", in: `{"text":"x","ts":-0}`, want: want{text: p("x"), ts: p(int64(0))}},
		{name: "ts 1e11 is seconds", in: `{"text":"x","ts":100000000000}`, want: want{text: p("x"), ts: p(int64(1e14))}},
		{name: "ts above 1e11 is milliseconds", in: `{"text":"x","ts":100000000001}`, want: want{text: p("x"), ts: p(int64(100000000001))}},
		{name: "ts milliseconds", in: `{"text":"x","ts":1700000000123}`, want: want{text: p("x"), ts: p(int64(1700000000123))}},
		{name: "ts milliseconds fraction", in: `{"text":"x","ts":1700000000123.6}`, want: want{text: p("x"), ts: p(int64(1700000000124))}},
		{name: "ts milliseconds exponent", in: `{"text":"x","ts":1.7E12}`, want: want{text: p("x"), ts: p(int64(1700000000000))}},
		{name: "ts negative milliseconds", in: `{"text":"x","ts":-100000000001}`, want: want{text: p("x"), ts: p(int64(-100000000001))}},
		{name: "ts year 9999 in milliseconds", in: `{"text":"x","ts":253402300799999}`, want: want{text: p("x"), ts: p(int64(253402300799999))}},
		{name: "ts after year 9999", in: `{"text":"x","ts":253402300800000}`, reason: schemas.ReasonInvalidTS},
		{name: "ts before year 0", in: `{"text":"x","ts":-62167219200001}`, reason: schemas.ReasonInvalidTS},
		{name: "ts huge integer", in: `{"text":"x","ts":123456789012345678901234567890}`, reason: schemas.ReasonInvalidTS},
		{name: "ts huge float", in: `{"text":"x","ts":1e300}`, reason: schemas.ReasonInvalidTS},
		{name: "ts beyond float64", in: `{"text":"x","ts":1e400}`, reason: schemas.ReasonInvalidTS},
		{name: "ts unparsable string", in: `{"text":"x","ts":"yesterday"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts empty string", in: `{"text":"x","ts":""}`, reason: schemas.ReasonInvalidTS},
		{name: "ts number in a string", in: `{"text":"x","ts":"1700000000"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts bad month", in: `{"text":"x","ts":"2024-13-01T00:00:00Z"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts bad day", in: `{"text":"x","ts":"2023-02-29T00:00:00Z"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts no zone", in: `{"text":"x","ts":"2024-01-02T03:04:05"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts lower-case t", in: `{"text":"x","ts":"2024-01-02t03:04:05Z"}`, reason: schemas.ReasonInvalidTS},
		{name: "ts boolean", in: `{"text":"x","ts":true}`, reason: schemas.ReasonInvalidTS},
		{name: "ts object", in: `{"text":"x","ts":{}}`, reason: schemas.ReasonInvalidTS},
		{name: "ts array", in: `{"text":"x","ts":[1]}`, reason: schemas.ReasonInvalidTS},

		// too_large.
		{name: "at the size limit", cfg: small, in: `{"text":"abcde"}`, want: want{text: p("abcde")}},
		{name: "over the size limit", cfg: small, in: `{"text":"abcdef"}`, reason: schemas.ReasonTooLarge},
		{name: "too large before invalid", cfg: small, in: `not json, and too long`, reason: schemas.ReasonTooLarge},
		{name: "text format over the size limit", cfg: smallText, in: "abcde", reason: schemas.ReasonTooLarge},
		{name: "text format at the size limit", cfg: smallText, in: "abcd", want: want{text: p("abcd")}},

		// invalid_json.
		{name: "empty value", in: ``, reason: schemas.ReasonInvalidJSON},
		{name: "only white space", in: " \n\t\r", reason: schemas.ReasonInvalidJSON},
		{name: "unclosed object", in: `{"text":"x"`, reason: schemas.ReasonInvalidJSON},
		{name: "unclosed object after comma", in: `{"text":"x",`, reason: schemas.ReasonInvalidJSON},
		{name: "open brace only", in: `{`, reason: schemas.ReasonInvalidJSON},
		{name: "close brace only", in: `}`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing comma in object", in: `{"text":"x",}`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing comma in array", in: `{"text":"x","a":[1,]}`, reason: schemas.ReasonInvalidJSON},
		{name: "leading comma", in: `{,"text":"x"}`, reason: schemas.ReasonInvalidJSON},
		{name: "missing comma", in: `{"text":"x" "id":"y"}`, reason: schemas.ReasonInvalidJSON},
		{name: "missing colon", in: `{"text" "x"}`, reason: schemas.ReasonInvalidJSON},
		{name: "missing value", in: `{"text":}`, reason: schemas.ReasonInvalidJSON},
		{name: "unquoted key", in: `{text:"x"}`, reason: schemas.ReasonInvalidJSON},
		{name: "single quotes", in: `{'text':'x'}`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing garbage", in: `{"text":"x"} x`, reason: schemas.ReasonInvalidJSON},
		{name: "two values", in: `{"text":"x"}{"text":"y"}`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing comma after value", in: `{"text":"x"},`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing NUL", in: "{\"text\":\"x\"}\x00", reason: schemas.ReasonInvalidJSON},
		{name: "vertical tab is not white space", in: "{\"text\":\"x\"}\v", reason: schemas.ReasonInvalidJSON},
		{name: "byte order mark", in: "\ufeff{\"text\":\"x\"}", reason: schemas.ReasonInvalidJSON},
		{name: "block comment", in: `/*c*/{"text":"x"}`, reason: schemas.ReasonInvalidJSON},
		{name: "line comment", in: "{\"text\":\"x\" // c\n}", reason: schemas.ReasonInvalidJSON},
		{name: "NaN", in: `{"text":"x","n":NaN}`, reason: schemas.ReasonInvalidJSON},
		{name: "Infinity", in: `{"text":"x","n":-Infinity}`, reason: schemas.ReasonInvalidJSON},
		{name: "leading zero", in: `{"text":"x","n":01}`, reason: schemas.ReasonInvalidJSON},
		{name: "leading plus", in: `{"text":"x","n":+1}`, reason: schemas.ReasonInvalidJSON},
		{name: "bare minus", in: `{"text":"x","n":-}`, reason: schemas.ReasonInvalidJSON},
		{name: "trailing dot", in: `{"text":"x","n":1.}`, reason: schemas.ReasonInvalidJSON},
		{name: "leading dot", in: `{"text":"x","n":.5}`, reason: schemas.ReasonInvalidJSON},
		{name: "empty exponent", in: `{"text":"x","n":1e}`, reason: schemas.ReasonInvalidJSON},
		{name: "signed empty exponent", in: `{"text":"x","n":1e+}`, reason: schemas.ReasonInvalidJSON},
		{name: "hex number", in: `{"text":"x","n":0x1}`, reason: schemas.ReasonInvalidJSON},
		{name: "number in mapped field", in: `{"text":"x","id":1.e3}`, reason: schemas.ReasonInvalidJSON},
		{name: "truncated true", in: `{"text":"x","t":tru}`, reason: schemas.ReasonInvalidJSON},
		{name: "truncated null in mapped field", in: `{"text":nul}`, reason: schemas.ReasonInvalidJSON},
		{name: "True", in: `{"text":"x","t":True}`, reason: schemas.ReasonInvalidJSON},
		{name: "literal with suffix", in: `{"text":"x","t":truex}`, reason: schemas.ReasonInvalidJSON},
		{name: "array missing comma", in: `{"text":"x","a":[1 2]}`, reason: schemas.ReasonInvalidJSON},
		{name: "unterminated string", in: `{"text":"x}`, reason: schemas.ReasonInvalidJSON},
		{name: "unterminated string at end", in: `{"text":"`, reason: schemas.ReasonInvalidJSON},
		{name: "raw control character", in: "{\"text\":\"a\x01b\"}", reason: schemas.ReasonInvalidJSON},
		{name: "raw tab in string", in: "{\"text\":\"a\tb\"}", reason: schemas.ReasonInvalidJSON},
		{name: "raw newline in string", in: "{\"text\":\"a\nb\"}", reason: schemas.ReasonInvalidJSON},
		{name: "raw control in key", in: "{\"te\x1fxt\":\"x\"}", reason: schemas.ReasonInvalidJSON},
		{name: "invalid escape", in: `{"text":"\x41"}`, reason: schemas.ReasonInvalidJSON},
		{name: "escaped single quote", in: `{"text":"\'"}`, reason: schemas.ReasonInvalidJSON},
		{name: "short unicode escape", in: `{"text":"\u12"}`, reason: schemas.ReasonInvalidJSON},
		{name: "bad hex in unicode escape", in: `{"text":"\u12G4"}`, reason: schemas.ReasonInvalidJSON},
		{name: "backslash at the end", in: `{"text":"\`, reason: schemas.ReasonInvalidJSON},
		{name: "high surrogate then bad escape", in: `{"text":"\ud800\u12"}`, reason: schemas.ReasonInvalidJSON},
		{name: "invalid escape in attrs", in: `{"text":"x","a":["\q"]}`, reason: schemas.ReasonInvalidJSON},
		{name: "raw invalid UTF-8 outside strings", in: "{\"text\":\"x\",\xff}", reason: schemas.ReasonInvalidJSON},
		{name: "raw invalid UTF-8 alone", in: "\xff", reason: schemas.ReasonInvalidJSON},
		{name: "invalid UTF-8 and invalid JSON", in: "{\"text\":\"\xff\"", reason: schemas.ReasonInvalidJSON},
		{name: "invalid UTF-8 then trailing garbage", in: "{\"text\":\"\xff\"} x", reason: schemas.ReasonInvalidJSON},
		{name: "too deep at top level", in: nest(maxDepth+1, ""), reason: schemas.ReasonInvalidJSON},

		// not_json_object.
		{name: "array", in: `[{"text":"x"}]`, reason: schemas.ReasonNotObject},
		{name: "empty array", in: ` [ ] `, reason: schemas.ReasonNotObject},
		{name: "number", in: `-0.5e10`, reason: schemas.ReasonNotObject},
		{name: "string", in: `"text"`, reason: schemas.ReasonNotObject},
		{name: "true", in: `true`, reason: schemas.ReasonNotObject},
		{name: "false", in: `false`, reason: schemas.ReasonNotObject},
		{name: "null", in: "\nnull\n", reason: schemas.ReasonNotObject},
		{name: "deep array at the limit", in: nest(maxDepth, ""), reason: schemas.ReasonNotObject},

		// invalid_utf8.
		{name: "invalid byte in text", in: "{\"text\":\"a\xffb\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "truncated sequence in text", in: "{\"text\":\"caf\xc3\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "overlong encoding", in: "{\"text\":\"\xc0\xaf\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "encoded surrogate", in: "{\"text\":\"\xed\xa0\x80\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "beyond U+10FFFF", in: "{\"text\":\"\xf4\x90\x80\x80\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "continuation byte alone", in: "{\"text\":\"\x80abcdefghij\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte in text with escapes", in: "{\"text\":\"a\\n\xfe\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte in id", in: "{\"text\":\"x\",\"id\":\"\xff\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte in attrs", in: "{\"text\":\"x\",\"a\":[{\"b\":\"\xfe\"}]}", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte in key", in: "{\"\xff\":1,\"text\":\"x\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte in top-level string", in: "\"\xff\"", reason: schemas.ReasonInvalidUTF8},
		{name: "invalid byte and no text", in: "{\"a\":\"\xff\"}", reason: schemas.ReasonInvalidUTF8},
		{name: "lone high surrogate", in: `{"text":"\ud800"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "lone low surrogate", in: `{"text":"a\udc00b"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "high surrogate then BMP escape", in: `{"text":"\ud800\u0041"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "high surrogate then text", in: `{"text":"\ud83dx"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "high surrogate then other escape", in: `{"text":"\ud83d\n"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "two high surrogates", in: `{"text":"\ud83d\ud83d"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "reversed surrogate pair", in: `{"text":"\ude00\ud83d"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "lone surrogate in attrs", in: `{"text":"x","a":"\udfff"}`, reason: schemas.ReasonInvalidUTF8},
		{name: "lone surrogate in key", in: `{"text":"x","\ud800":1}`, reason: schemas.ReasonInvalidUTF8},
		{name: "lone surrogate in ts", in: `{"text":"x","ts":"\ud800"}`, reason: schemas.ReasonInvalidUTF8},

		// missing_text.
		{name: "empty object", in: `{}`, reason: schemas.ReasonMissingText},
		{name: "empty object with space", in: ` { } `, reason: schemas.ReasonMissingText},
		{name: "no text member", in: `{"id":"x","texts":"y"}`, reason: schemas.ReasonMissingText},
		{name: "text null", in: `{"text":null}`, reason: schemas.ReasonMissingText},
		{name: "missing text before invalid ts", in: `{"ts":"nonsense"}`, reason: schemas.ReasonMissingText},

		// text_not_string.
		{name: "text number", in: `{"text":1}`, reason: schemas.ReasonTextNotString},
		{name: "text true", in: `{"text":true}`, reason: schemas.ReasonTextNotString},
		{name: "text object", in: `{"text":{"a":"b"}}`, reason: schemas.ReasonTextNotString},
		{name: "text array", in: `{"text":["a"]}`, reason: schemas.ReasonTextNotString},

		// empty_text.
		{name: "empty text", in: `{"text":""}`, reason: schemas.ReasonEmptyText},
		{name: "blank text", in: `{"text":"   "}`, reason: schemas.ReasonEmptyText},
		{name: "escaped white space", in: `{"text":" \n\t\r\u000b\f\u0020"}`, reason: schemas.ReasonEmptyText},
		{name: "Unicode white space", in: `{"text":"\u00a0\u2003\u3000` + "\u0085\u2028" + `"}`, reason: schemas.ReasonEmptyText},
		{name: "empty text before invalid ts", in: `{"text":"","ts":"nonsense"}`, reason: schemas.ReasonEmptyText},
		{name: "zero-width space is not white space", in: `{"text":"\u200b"}`, want: want{text: p("\u200b")}},

		// FormatText.
		{name: "text format", cfg: text, in: "hello\n", want: want{text: p("hello\n")}},
		{name: "text format JSON is text", cfg: text, in: `{"text":1}`, want: want{text: p(`{"text":1}`)}},
		{name: "text format non-ASCII", cfg: text, in: "naïve 😀", want: want{text: p("naïve 😀")}},
		{name: "text format empty", cfg: text, in: "", reason: schemas.ReasonEmptyText},
		{name: "text format blank", cfg: text, in: " \t\n\u00a0", reason: schemas.ReasonEmptyText},
		{name: "text format invalid UTF-8", cfg: text, in: "ab\xffcd", reason: schemas.ReasonInvalidUTF8},
		{name: "text format invalid UTF-8 blank", cfg: text, in: " \xff ", reason: schemas.ReasonInvalidUTF8},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.reason] = true
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.cfg)
			in := []byte(tc.in)
			orig := bytes.Clone(in)
			// Decode twice, the second time with buffers already grown:
			// results must not depend on the decoder's history.
			for range 2 {
				rec, reason := d.Decode(in)
				if reason != tc.reason {
					t.Fatalf("Decode(%.200q) reason = %q, want %q", tc.in, reason, tc.reason)
				}
				if reason != "" {
					if !reflect.DeepEqual(rec, Record{}) {
						t.Errorf("rejected value returned a record: %+v", rec)
					}
				} else {
					checkRecord(t, rec, tc.want)
				}
			}
			if !bytes.Equal(in, orig) {
				t.Errorf("Decode modified its input")
			}
		})
	}
	for _, r := range schemas.Reasons {
		if !seen[r] {
			t.Errorf("no case for reason %q", r)
		}
	}
}

// TestDecodeAgreesWithEncodingJSONOnDepth pins the nesting limit to
// encoding/json's, so that the fuzz oracle holds on deep values.
func TestDecodeAgreesWithEncodingJSONOnDepth(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		v := []byte(`{"text":"x","a":` + nest(depth-1, "") + `}`)
		_, reason := d.Decode(v)
		if valid := json.Valid(v); valid != (reason == "") {
			t.Errorf("depth %d: json.Valid = %v, Decode reason %q", depth, valid, reason)
		}
	}
}

// TestDecodeAliases checks the fast path: strings without escapes are
// slices of the value, not copies.
func TestDecodeAliases(t *testing.T) {
	v := []byte(`{"text":"no escapes","id":"a\nb","source":"s"}`)
	rec, reason := NewDecoder(DecoderConfig{}).Decode(v)
	if reason != "" {
		t.Fatal(reason)
	}
	within := func(b []byte) bool {
		addr := func(b []byte, i int) uintptr { return uintptr(unsafe.Pointer(&b[i])) }
		return len(b) > 0 && addr(b, 0) >= addr(v, 0) && addr(b, len(b)-1) <= addr(v, len(v)-1)
	}
	if !within(rec.Text) || !within(rec.Source) {
		t.Errorf("text and source should alias the value")
	}
	if within(rec.ID) {
		t.Errorf("an escaped id cannot alias the value")
	}
	// Appending to a field must not overwrite the value or another field.
	_ = append(rec.Text, "XXXXXXXX"...)
	_ = append(rec.ID, "XXXXXXXX"...)
	if string(v) != `{"text":"no escapes","id":"a\nb","source":"s"}` || string(rec.Source) != "s" {
		t.Errorf("appending to a field overwrote shared memory: %q", v)
	}
}

// TestDecodeScratchGrowth decodes many escaped fields in one value, so that
// the scratch space grows while earlier fields point into it.
func TestDecodeScratchGrowth(t *testing.T) {
	long := strings.Repeat(`ab\"`, 5000)
	v := []byte(`{"id":"` + long + `","source":"\n` + long + `","domain":"` + long + `x","text":"` + long + `y","lang":"` + long + `z"}`)
	var want map[string]string
	if err := json.Unmarshal(v, &want); err != nil {
		t.Fatal(err)
	}
	rec, reason := NewDecoder(DecoderConfig{}).Decode(v)
	if reason != "" {
		t.Fatal(reason)
	}
	checkRecord(t, rec, wantOf(want))
}

func wantOf(m map[string]string) want {
	w := want{}
	for k, dst := range map[string]**string{"text": &w.text, "id": &w.id, "source": &w.source, "domain": &w.domain, "lang": &w.lang} {
		if v, ok := m[k]; ok {
			*dst = p(v)
		}
	}
	return w
}

func TestDecodeAllocations(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	values := [][]byte{
		[]byte(`{"id": "dict-gcide:gcide:Downthrow", "source": "dict-gcide", "domain": "lexicon", "lang": "en", "text": "Downthrow \\Down\"throw` + "`" + `\\, n. (Geol.)\n   The sudden drop."}`),
		[]byte(`{"text":"caf\u00e9 \ud83d\ude00","ts":"2024-01-02T03:04:05.123+01:00","x":{"a" : [1, 2]},"id":42}`),
		[]byte(`{"text":"x","ts":1700000000.5}`),
		[]byte(`{"text":""}`),
		[]byte(`[1,2]`),
	}
	for _, v := range values {
		d.Decode(v) // grow the buffers
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, v := range values {
			d.Decode(v)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times per run, want 0", allocs)
	}
}

// TestDecodeStream decodes the start of the real stream and compares every
// mapped column with encoding/json.
func TestDecodeStream(t *testing.T) {
	lines := realtest.CorpusLines(t, 20000)
	d := NewDecoder(DecoderConfig{})
	for n, line := range lines {
		var want map[string]any
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("line %d: encoding/json: %v", n+1, err)
		}
		rec, reason := d.Decode(line)
		if reason != "" {
			t.Fatalf("line %d: rejected as %s: %s", n+1, reason, line)
		}
		for _, f := range []struct {
			name string
			got  []byte
		}{{"text", rec.Text}, {"id", rec.ID}, {"source", rec.Source}, {"domain", rec.Domain}, {"lang", rec.Lang}} {
			w, ok := want[f.name].(string)
			if !ok || f.got == nil || string(f.got) != w {
				t.Fatalf("line %d: %s = %q, encoding/json says %q: %s", n+1, f.name, f.got, want[f.name], line)
			}
		}
		if rec.Attrs != nil || rec.HasTS {
			t.Fatalf("line %d: unexpected attrs %q or ts", n+1, rec.Attrs)
		}
	}
	t.Logf("%d lines agree with encoding/json", len(lines))
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"json", FormatJSON, false}, {"text", FormatText, false},
		{"JSON", 0, true}, {"", 0, true}, {"csv", 0, true},
	} {
		got, err := ParseFormat(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseFormat(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestDecoderConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  DecoderConfig
		errs []string // substrings, one per problem
	}{
		{name: "zero", cfg: DecoderConfig{}},
		{name: "defaults", cfg: DecoderConfig{Format: FormatText, Fields: DefaultFields, MaxValueBytes: 10}},
		{name: "text only", cfg: DecoderConfig{Fields: Fields{Text: "body"}}},
		{name: "everything wrong", cfg: DecoderConfig{Format: 7, MaxValueBytes: -1, Fields: Fields{ID: "a", Source: "a", Lang: "a"}},
			errs: []string{"unknown format 7", "max value bytes is -1", "text field needs a name", `id and source are both mapped from member "a"`, `id and lang`, `source and lang`}},
		{name: "text shared", cfg: DecoderConfig{Fields: Fields{Text: "t", TS: "t"}}, errs: []string{`text and ts are both mapped from member "t"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				NewDecoder(tc.cfg) // must not panic
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrConfig", err)
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %v, want it to mention %q", err, s)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.errs) {
				t.Errorf("Validate() reports %d problems, want %d: %v", n, len(tc.errs), err)
			}
			defer func() {
				if recover() == nil {
					t.Errorf("NewDecoder accepted an invalid config")
				}
			}()
			NewDecoder(tc.cfg)
		})
	}
}

// loneSurrogate reports whether the valid JSON value v has a \u escape that
// is an unpaired surrogate. In valid JSON a backslash only occurs in strings,
// where it starts an escape.
func loneSurrogate(v []byte) bool {
	hex := func(i int) rune {
		var r rune
		for _, c := range v[i : i+4] {
			switch {
			case c >= 'a':
				c -= 'a' - 10
			case c >= 'A':
				c -= 'A' - 10
			default:
				c -= '0'
			}
			r = r<<4 | rune(c)
		}
		return r
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		if v[i+1] != 'u' {
			i++
			continue
		}
		r := hex(i + 2)
		i += 5
		switch {
		case 0xD800 <= r && r < 0xDC00:
			if i+6 < len(v) && v[i+1] == '\\' && v[i+2] == 'u' {
				if r2 := hex(i + 3); 0xDC00 <= r2 && r2 < 0xE000 {
					i += 6
					continue
				}
			}
			return true
		case 0xDC00 <= r && r < 0xE000:
			return true
		}
	}
	return false
}

// FuzzDecode checks Decode against encoding/json, and a decoder with a
// small size limit against one with the default. Seeds, one or more per
// reason, are in testdata/fuzz/FuzzDecode (too_large: any seed above 256
// bytes). Run with
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=60s ./ingest/
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id": "wordnet:s00379914", "source": "wordnet", "domain": "lexicon", "lang": "en", "text": "pink-red: of red tinged with pink"}`))
	const tinyMax = 256
	d := NewDecoder(DecoderConfig{})
	tiny := NewDecoder(DecoderConfig{MaxValueBytes: tinyMax})
	mapped := map[string]bool{"text": true, "id": true, "source": true, "domain": true, "lang": true, "ts": true}
	f.Fuzz(func(t *testing.T, value []byte) {
		orig := bytes.Clone(value)
		tinyRec, tinyReason := tiny.Decode(value)
		if tinyRec.Text != nil {
			tinyRec.Text = bytes.Clone(tinyRec.Text) // the next Decode may overwrite it
		}
		rec, reason := d.Decode(value)
		if !bytes.Equal(value, orig) {
			t.Fatalf("Decode modified its input")
		}
		if len(value) > tinyMax {
			if tinyReason != schemas.ReasonTooLarge {
				t.Fatalf("%d bytes over a limit of %d, got reason %q", len(value), tinyMax, tinyReason)
			}
		} else if tinyReason != reason || !bytes.Equal(tinyRec.Text, rec.Text) {
			t.Fatalf("the size limit changed the result: %q %q, want %q %q", tinyReason, tinyRec.Text, reason, rec.Text)
		}
		if len(value) > DefaultMaxValueBytes {
			if reason != schemas.ReasonTooLarge {
				t.Fatalf("%d bytes, got reason %q", len(value), reason)
			}
			return
		}
		if reason != "" {
			if !slices.Contains(schemas.Reasons, reason) {
				t.Fatalf("unknown reason %q", reason)
			}
			if !reflect.DeepEqual(rec, Record{}) {
				t.Fatalf("rejected with %s but returned %+v", reason, rec)
			}
		}

		valid := json.Valid(value)
		if !valid {
			if reason == "" {
				t.Fatalf("accepted a value encoding/json says is invalid: %q", value)
			}
			return
		}
		if reason == schemas.ReasonInvalidJSON {
			t.Fatalf("rejected as invalid_json a value encoding/json says is valid: %q", value)
		}
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		if dec.Decode(&obj) != nil {
			if reason != schemas.ReasonNotObject && reason != schemas.ReasonInvalidUTF8 {
				t.Fatalf("a valid non-object rejected as %q: %q", reason, value)
			}
			return
		}
		if reason == schemas.ReasonNotObject {
			t.Fatalf("an object rejected as not_json_object: %q", value)
		}
		goodUTF8 := utf8.Valid(value) && !loneSurrogate(value)
		if !goodUTF8 {
			if reason != schemas.ReasonInvalidUTF8 {
				t.Fatalf("invalid UTF-8 or lone surrogate not rejected as invalid_utf8 (%q): %q", reason, value)
			}
			return
		}
		text, ok := obj["text"].(string)
		switch {
		case obj["text"] == nil:
			if reason != schemas.ReasonMissingText {
				t.Fatalf("text absent or null, got %q: %q", reason, value)
			}
			return
		case !ok:
			if reason != schemas.ReasonTextNotString {
				t.Fatalf("text not a string, got %q: %q", reason, value)
			}
			return
		case strings.TrimSpace(text) == "":
			if reason != schemas.ReasonEmptyText {
				t.Fatalf("blank text, got %q: %q", reason, value)
			}
			return
		}
		if obj["ts"] != nil && reason == schemas.ReasonInvalidTS {
			return
		}
		if reason != "" {
			t.Fatalf("a valid object with a text rejected as %q: %q", reason, value)
		}
		if string(rec.Text) != text {
			t.Fatalf("text = %q, encoding/json says %q", rec.Text, text)
		}
		for _, f := range []struct {
			name string
			got  []byte
		}{{"id", rec.ID}, {"source", rec.Source}, {"domain", rec.Domain}, {"lang", rec.Lang}} {
			var want *string
			switch v := obj[f.name].(type) {
			case string:
				want = &v
			case json.Number:
				want = p(v.String())
			case bool:
				want = p(map[bool]string{true: "true", false: "false"}[v])
			}
			if (want == nil) != (f.got == nil) || (want != nil && *want != string(f.got)) {
				t.Fatalf("%s = %q, encoding/json says %#v: %q", f.name, f.got, obj[f.name], value)
			}
		}
		if rec.Attrs == nil {
			for k := range obj {
				if !mapped[k] {
					t.Fatalf("no attrs, but member %q is not mapped: %q", k, value)
				}
			}
			return
		}
		var attrs map[string]any
		dec = json.NewDecoder(bytes.NewReader(rec.Attrs))
		dec.UseNumber()
		if err := dec.Decode(&attrs); err != nil || !json.Valid(rec.Attrs) {
			t.Fatalf("attrs %q are not a JSON object: %v", rec.Attrs, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, rec.Attrs); err != nil || !bytes.Equal(compact.Bytes(), rec.Attrs) {
			t.Fatalf("attrs %q are not compact", rec.Attrs)
		}
		for k, v := range obj {
			if !mapped[k] && !reflect.DeepEqual(attrs[k], v) {
				t.Fatalf("attrs[%q] = %#v, encoding/json says %#v: %q", k, attrs[k], v, value)
			}
		}
		for k := range attrs {
			if _, ok := obj[k]; !ok || k == "text" || k == "ts" {
				t.Fatalf("attrs has member %q it should not: %q", k, value)
			}
		}
	})
}

// TestFuzzSeeds checks that the named seeds of FuzzDecode cover every reason
// and are rejected for the reason their name starts with. Seeds the fuzzer
// adds (named by hash) are only run by FuzzDecode.
func TestFuzzSeeds(t *testing.T) {
	prefixes := []struct{ prefix, reason string }{
		{"valid-", ""},
		{"too-large-tiny", schemas.ReasonTooLarge},
		{"invalid-json-", schemas.ReasonInvalidJSON},
		{"not-object-", schemas.ReasonNotObject},
		{"invalid-utf8-", schemas.ReasonInvalidUTF8},
		{"missing-text", schemas.ReasonMissingText},
		{"text-not-string", schemas.ReasonTextNotString},
		{"empty-text", schemas.ReasonEmptyText},
		{"invalid-ts-", schemas.ReasonInvalidTS},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		i := slices.IndexFunc(prefixes, func(p struct{ prefix, reason string }) bool {
			return strings.HasPrefix(e.Name(), p.prefix)
		})
		if i < 0 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(data), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")\n")
		value, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a go test fuzz v1 file with one []byte", e.Name())
		}
		cfg := DecoderConfig{}
		if prefixes[i].reason == schemas.ReasonTooLarge {
			cfg.MaxValueBytes = 256 // FuzzDecode's tiny decoder
		}
		if _, reason := NewDecoder(cfg).Decode([]byte(value)); reason != prefixes[i].reason {
			t.Errorf("%s: reason %q, want %q", e.Name(), reason, prefixes[i].reason)
		}
		seen[prefixes[i].reason] = true
	}
	for _, r := range schemas.Reasons {
		if !seen[r] {
			t.Errorf("no seed in %s for reason %q", dir, r)
		}
	}
}

// FuzzTimestamp checks that a ts string is read exactly as
// time.Parse(time.RFC3339Nano) reads it.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789+05:30", "0000-01-01T00:00:00-23:59",
		"9999-12-31T23:59:59.999999999+00:00", "2024-02-29T00:00:00Z", "2024-01-02T03:04:05,5Z", "2024-01-02T3:04:05Z",
	} {
		f.Add(s)
	}
	d := NewDecoder(DecoderConfig{})
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		v, err := json.Marshal(map[string]string{"text": "x", "ts": s})
		if err != nil {
			t.Fatal(err)
		}
		rec, reason := d.Decode(v)
		want, err := time.Parse(time.RFC3339Nano, s)
		switch {
		case err != nil && reason != schemas.ReasonInvalidTS:
			t.Fatalf("ts %q: time.Parse fails (%v), Decode says %q", s, err, reason)
		case err == nil && (reason != "" || !rec.HasTS || rec.TS != want.UnixMilli()):
			t.Fatalf("ts %q: Decode = %d, %q; time.Parse says %d", s, rec.TS, reason, want.UnixMilli())
		}
	})
}
