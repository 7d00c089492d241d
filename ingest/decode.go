package ingest

// This file holds the record decoder: it turns one Kafka record value into
// the columns of the raw table (see schemas/doc.go), or into the one DLQ
// reason that says why it cannot.
//
// The JSON path is a hand-written single-pass scanner. It validates the whole
// value strictly against RFC 8259, unescapes only the strings it maps to
// columns (and only when they hold a backslash; otherwise it returns slices of
// the input), and re-emits the other members into a reused buffer. Once its
// buffers have grown to the largest value seen, a Decoder allocates nothing.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/thresher-ml/thresher/schemas"
)

// Format is how a Kafka record value is read.
type Format int

// The formats of a record value.
const (
	// FormatJSON reads the value as one JSON object whose members map to
	// columns as configured by Fields.
	FormatJSON Format = iota
	// FormatText reads the whole value as the text; every other column is null.
	FormatText
)

// ParseFormat returns the Format named s: "json" or "text".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return FormatJSON, nil
	case "text":
		return FormatText, nil
	}
	return 0, fmt.Errorf("ingest: unknown format %q: want \"json\" or \"text\"", s)
}

// String returns the name ParseFormat accepts for f.
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatText:
		return "text"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Fields names the top-level JSON members that map to columns. Names compare
// byte for byte (case-sensitive) with the unescaped member key. Text is
// required; an empty name for any other field maps nothing to that column,
// which stays null (a member called "id", say, is then an ordinary attr). The
// zero value is not a valid mapping: DecoderConfig treats it as DefaultFields.
type Fields struct {
	Text, ID, Source, Domain, Lang, TS string
}

// DefaultFields is the mapping of the raw table's own column names.
var DefaultFields = Fields{Text: "text", ID: "id", Source: "source", Domain: "domain", Lang: "lang", TS: "ts"}

// maxDepth is the deepest nesting of JSON arrays and objects accepted, the
// top-level object counting as 1. It is encoding/json's limit, and it bounds
// the recursion of the scanner.
const maxDepth = 10000

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// Format is how values are read.
	Format Format
	// Fields maps JSON members to columns; the zero value means DefaultFields.
	// Only used with FormatJSON.
	Fields Fields
	// MaxValueBytes rejects longer values with schemas.ReasonTooLarge;
	// 0 means DefaultMaxValueBytes.
	MaxValueBytes int
}

// Validate reports every problem of c at once, each wrapping ErrConfig.
// Zero values that have a default (Fields, MaxValueBytes) are valid.
func (c DecoderConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		format = "decoder: " + format
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Format != FormatJSON && c.Format != FormatText {
		bad("unknown format %d", int(c.Format))
	}
	if c.MaxValueBytes < 0 {
		bad("max value bytes is %d, want 0 (default) or more", c.MaxValueBytes)
	}
	if c.Fields != (Fields{}) {
		f := c.Fields
		if f.Text == "" {
			bad("fields: the text field needs a name")
		}
		names := [...]struct{ field, name string }{
			{"text", f.Text}, {"id", f.ID}, {"source", f.Source},
			{"domain", f.Domain}, {"lang", f.Lang}, {"ts", f.TS},
		}
		for i, a := range names {
			for _, b := range names[:i] {
				if a.name != "" && a.name == b.name {
					bad("fields: %s and %s are both mapped from member %q", b.field, a.field, a.name)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Record is one decoded value. Byte slices alias the input value or the
// decoder's scratch space and stay valid only until the next Decode call.
// nil means absent (a null column); an empty non-nil slice is an empty string.
type Record struct {
	// Text is the record's text: valid UTF-8, not empty, not only white space.
	Text []byte
	// ID, Source, Domain and Lang hold a string member unescaped, or the
	// literal text of a number, true or false member.
	ID, Source, Domain, Lang []byte
	// TS is the producer's timestamp in milliseconds since the Unix epoch,
	// valid when HasTS.
	TS    int64
	HasTS bool
	// Attrs is a compact JSON object of every other top-level member, in
	// input order; nil when there are none.
	Attrs []byte
}

// Field indexes, into Decoder.names and the decode state.
const (
	fieldText = iota
	fieldID
	fieldSource
	fieldDomain
	fieldLang
	fieldTS
	numFields
)

// kind is the JSON type of a mapped member's last occurrence.
type kind uint8

const (
	kindAbsent kind = iota // absent, or null
	kindString
	kindNumber
	kindBool
	kindContainer // object or array
)

// Decoder decodes record values. It is not safe for concurrent use: use one
// per goroutine.
//
// # JSON values
//
// A value must be exactly one JSON object (RFC 8259, strictly: no comments,
// trailing commas, NaN, single quotes, raw control characters in strings,
// invalid escapes, leading zeros or trailing garbage), optionally surrounded
// by JSON white space, nested at most 10000 deep. Members map to columns:
//
//   - text: a string, not empty and not only Unicode white space.
//   - id, source, domain, lang: a string (unescaped), or the literal text of
//     a number, true or false. null means absent. An object or array leaves
//     the column null and is kept in attrs instead.
//   - ts: a string in RFC 3339 as time.Parse(time.RFC3339Nano) reads it, or a
//     number of seconds since the Unix epoch, or of milliseconds when its
//     absolute value is above 1e11; fractions are allowed and rounded to the
//     millisecond, and the instant must fall within the years 0000 to 9999.
//     null means absent.
//   - every other member goes to Record.Attrs as {"key":value,...}: keys and
//     values byte for byte as in the input (escapes kept), without the white
//     space between tokens.
//
// When a mapped key repeats, its last occurrence wins, as with encoding/json;
// attrs keep every occurrence of an unmapped key.
//
// # Reasons
//
// A value is rejected with the first of these that applies:
//
//  1. ReasonTooLarge: longer than MaxValueBytes (both formats).
//  2. ReasonInvalidJSON: not exactly one well-formed JSON value. The structure
//     is checked first: a value that is both malformed and holds invalid
//     UTF-8 is invalid_json. Raw bytes of 0x80 and above outside strings are
//     malformed JSON.
//  3. ReasonInvalidUTF8: well formed, but a string (key or value, mapped or
//     not) holds bytes that are not UTF-8, or a \u escape that is an unpaired
//     surrogate.
//  4. ReasonNotObject: a valid JSON value that is not an object.
//  5. ReasonMissingText: the text member is absent or null.
//  6. ReasonTextNotString: the text member is a number, boolean, object or array.
//  7. ReasonEmptyText: the text is empty or only white space.
//  8. ReasonInvalidTS: the ts member is neither null, nor a number in range,
//     nor an RFC 3339 string.
//
// With FormatText the whole value is the text: ReasonTooLarge, then
// ReasonInvalidUTF8, then ReasonEmptyText.
type Decoder struct {
	format Format
	max    int
	names  [numFields]string

	scratch []byte // unescaped mapped strings of the current value
	key     []byte // the current key, when it holds escapes
	attrs   []byte // Record.Attrs of the current value
	badUTF8 bool   // a string of the current value is not valid UTF-8
	depth   int    // nesting of the container being scanned
}

// NewDecoder returns a decoder for cfg, after replacing its zero values by
// their defaults. It panics if cfg.Validate fails: validate configuration
// from users first.
func NewDecoder(cfg DecoderConfig) *Decoder {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Fields == (Fields{}) {
		cfg.Fields = DefaultFields
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	f := cfg.Fields
	return &Decoder{
		format: cfg.Format,
		max:    cfg.MaxValueBytes,
		names:  [numFields]string{f.Text, f.ID, f.Source, f.Domain, f.Lang, f.TS},
	}
}

// Decode decodes value. It returns the record, or a reason that is not ""
// (one of the schemas.Reason* constants) when value is malformed; see Decoder
// for the rules. Decode never modifies value.
func (d *Decoder) Decode(value []byte) (rec Record, reason string) {
	if len(value) > d.max {
		return Record{}, schemas.ReasonTooLarge
	}
	if d.format == FormatText {
		if !utf8.Valid(value) {
			return Record{}, schemas.ReasonInvalidUTF8
		}
		if blank(value) {
			return Record{}, schemas.ReasonEmptyText
		}
		return Record{Text: value[:len(value):len(value)]}, ""
	}
	return d.decodeJSON(value)
}

// member is the last occurrence of a mapped member.
type member struct {
	kind kind
	val  []byte // unescaped string, or literal text
}

func (d *Decoder) decodeJSON(b []byte) (Record, string) {
	d.scratch = d.scratch[:0]
	d.attrs = d.attrs[:0]
	d.badUTF8 = false
	d.depth = 0

	i := skipWS(b, 0)
	if i == len(b) {
		return Record{}, schemas.ReasonInvalidJSON
	}
	if b[i] != '{' {
		end, ok := d.skipValue(b, i)
		if !ok || skipWS(b, end) != len(b) {
			return Record{}, schemas.ReasonInvalidJSON
		}
		if d.badUTF8 {
			return Record{}, schemas.ReasonInvalidUTF8
		}
		return Record{}, schemas.ReasonNotObject
	}

	var m [numFields]member
	d.depth = 1
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return Record{}, schemas.ReasonInvalidJSON
			}
			d.key = d.key[:0]
			key, j, ok := d.scanString(b, i, &d.key)
			if !ok {
				return Record{}, schemas.ReasonInvalidJSON
			}
			rawKey := b[i:j]
			j = skipWS(b, j)
			if j >= len(b) || b[j] != ':' {
				return Record{}, schemas.ReasonInvalidJSON
			}
			j = skipWS(b, j+1)
			if j >= len(b) {
				return Record{}, schemas.ReasonInvalidJSON
			}
			f := d.field(key)
			var end int
			switch {
			case f >= 0 && b[j] == '"':
				var s []byte
				s, end, ok = d.scanString(b, j, &d.scratch)
				m[f] = member{kindString, s}
			case f >= 0 && b[j] != '{' && b[j] != '[':
				if end, ok = d.skipValue(b, j); !ok {
					break
				}
				switch b[j] {
				case 'n':
					m[f] = member{}
				case 't', 'f':
					m[f] = member{kindBool, b[j:end:end]}
				default:
					m[f] = member{kindNumber, b[j:end:end]}
				}
			default:
				end, ok = d.skipValue(b, j)
				if f >= 0 {
					m[f] = member{kind: kindContainer}
				}
				if ok && (f < 0 || (f != fieldText && f != fieldTS)) {
					d.appendAttr(rawKey, b[j:end])
				}
			}
			if !ok {
				return Record{}, schemas.ReasonInvalidJSON
			}
			j = skipWS(b, end)
			if j >= len(b) {
				return Record{}, schemas.ReasonInvalidJSON
			}
			if b[j] == '}' {
				i = j + 1
				break
			}
			if b[j] != ',' {
				return Record{}, schemas.ReasonInvalidJSON
			}
			i = skipWS(b, j+1)
		}
	}
	if skipWS(b, i) != len(b) {
		return Record{}, schemas.ReasonInvalidJSON
	}
	if d.badUTF8 {
		return Record{}, schemas.ReasonInvalidUTF8
	}

	var rec Record
	switch t := m[fieldText]; t.kind {
	case kindAbsent:
		return Record{}, schemas.ReasonMissingText
	case kindString:
		if blank(t.val) {
			return Record{}, schemas.ReasonEmptyText
		}
		rec.Text = t.val
	default:
		return Record{}, schemas.ReasonTextNotString
	}
	switch ts := m[fieldTS]; ts.kind {
	case kindAbsent:
	case kindString:
		ms, ok := parseRFC3339Millis(ts.val)
		if !ok {
			return Record{}, schemas.ReasonInvalidTS
		}
		rec.TS, rec.HasTS = ms, true
	case kindNumber:
		ms, ok := numberMillis(ts.val)
		if !ok {
			return Record{}, schemas.ReasonInvalidTS
		}
		rec.TS, rec.HasTS = ms, true
	default:
		return Record{}, schemas.ReasonInvalidTS
	}
	rec.ID = m[fieldID].val
	rec.Source = m[fieldSource].val
	rec.Domain = m[fieldDomain].val
	rec.Lang = m[fieldLang].val
	if len(d.attrs) > 0 {
		d.attrs = append(d.attrs, '}')
		rec.Attrs = d.attrs[:len(d.attrs):len(d.attrs)]
	}
	return rec, ""
}

// field returns the index of the mapped field named key, or -1.
func (d *Decoder) field(key []byte) int {
	for f := range d.names {
		if name := d.names[f]; name != "" && string(key) == name {
			return f
		}
	}
	return -1
}

// appendAttr adds the member "key":value to d.attrs; rawKey is the key with
// its quotes, both as in the input and already validated.
func (d *Decoder) appendAttr(rawKey, value []byte) {
	if len(d.attrs) == 0 {
		d.attrs = append(d.attrs, '{')
	} else {
		d.attrs = append(d.attrs, ',')
	}
	d.attrs = append(d.attrs, rawKey...)
	d.attrs = append(d.attrs, ':')
	if value[0] != '{' && value[0] != '[' {
		d.attrs = append(d.attrs, value...)
		return
	}
	// Copy the container without white space outside its strings.
	for i := 0; i < len(value); {
		start := i
		for i < len(value) && !isWS(value[i]) && value[i] != '"' {
			i++
		}
		d.attrs = append(d.attrs, value[start:i]...)
		if i == len(value) {
			break
		}
		if value[i] == '"' {
			start = i
			for i++; value[i] != '"'; i++ {
				if value[i] == '\\' {
					i++
				}
			}
			i++
			d.attrs = append(d.attrs, value[start:i]...)
			continue
		}
		for i < len(value) && isWS(value[i]) {
			i++
		}
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS returns the index of the first byte of b at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// skipValue validates the JSON value starting at b[i] (not white space) and
// returns the index just past it. It returns false when the value is
// malformed; invalid UTF-8 in strings only sets d.badUTF8.
func (d *Decoder) skipValue(b []byte, i int) (int, bool) {
	switch b[i] {
	case '"':
		_, end, ok := d.scanString(b, i, nil)
		return end, ok
	case '{', '[':
		return d.skipContainer(b, i)
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	return scanNumber(b, i)
}

// skipContainer validates the object or array starting at b[i].
func (d *Decoder) skipContainer(b []byte, i int) (int, bool) {
	d.depth++
	if d.depth > maxDepth {
		return 0, false
	}
	object := b[i] == '{'
	closer := byte(']')
	if object {
		closer = '}'
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		d.depth--
		return i + 1, true
	}
	for {
		if i >= len(b) {
			return 0, false
		}
		if object {
			if b[i] != '"' {
				return 0, false
			}
			_, end, ok := d.scanString(b, i, nil)
			if !ok {
				return 0, false
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			i = skipWS(b, i+1)
			if i >= len(b) {
				return 0, false
			}
		}
		end, ok := d.skipValue(b, i)
		if !ok {
			return 0, false
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == closer {
			d.depth--
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipWS(b, i+1)
	}
}

func literal(b []byte, i int, lit string) (int, bool) {
	end := i + len(lit)
	if end > len(b) || string(b[i:end]) != lit {
		return 0, false
	}
	return end, true
}

// scanNumber validates the JSON number starting at b[i]. The byte after it
// is the caller's to check.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask whose lowest set bit is the high bit of the first
// byte of x (little endian) that a string scan must look at: '"', '\\', a
// control character or a non-ASCII byte. Bits above the first are not
// exact, as borrows propagate upwards.
func special(x uint64) uint64 {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	return ((x-lsb*0x20) & ^x | (q-lsb)&^q | (s-lsb)&^s | x) & msb
}

// scanString scans the JSON string whose opening quote is b[i]. It returns
// its content and the index just past the closing quote. The content is a
// slice of b when the string has no escapes or dst is nil; otherwise it is
// unescaped into *dst (appending) and returned from there. A malformed string
// returns false; invalid UTF-8 and unpaired surrogate escapes set d.badUTF8
// (and unescape to U+FFFD).
func (d *Decoder) scanString(b []byte, i int, dst *[]byte) ([]byte, int, bool) {
	i++
	start, seg := i, i // seg: start of the input not yet copied to *dst
	out := -1          // start of the string in *dst, once it is copied there
	for {
		for i+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return nil, 0, false
		}
		switch c := b[i]; {
		case c == '"':
			if out < 0 {
				return b[start:i:i], i + 1, true
			}
			*dst = append(*dst, b[seg:i]...)
			n := len(*dst)
			return (*dst)[out:n:n], i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return nil, 0, false
			}
			if dst != nil {
				if out < 0 {
					out = len(*dst)
				}
				*dst = append(*dst, b[seg:i]...)
			}
			var r rune
			switch b[i+1] {
			case '"', '\\', '/':
				r = rune(b[i+1])
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				var ok bool
				if r, ok = hex4(b, i+2); !ok {
					return nil, 0, false
				}
				if 0xD800 <= r && r < 0xE000 {
					r, i = d.surrogate(b, r, i+6)
					i -= 2 // undo the i += 2 below
				} else {
					i += 4
				}
			default:
				return nil, 0, false
			}
			i += 2
			if dst != nil {
				*dst = utf8.AppendRune(*dst, r)
			}
			seg = i
		case c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				d.badUTF8 = true
			}
			i += size
		default:
			i++
		}
	}
}

// surrogate completes the surrogate r of a \u escape that ends at b[i]: when
// r is a high surrogate and b[i:] starts with a low surrogate escape, it
// returns the pair's rune and the index past both. Otherwise r is unpaired:
// it sets d.badUTF8 and returns U+FFFD and i. A malformed next escape is left
// for the caller to find.
func (d *Decoder) surrogate(b []byte, r rune, i int) (rune, int) {
	if r < 0xDC00 && i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
		if r2, ok := hex4(b, i+2); ok && 0xDC00 <= r2 && r2 < 0xE000 {
			return 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00), i + 6
		}
	}
	d.badUTF8 = true
	return utf8.RuneError, i
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// blank reports whether s (valid UTF-8) is empty or only Unicode white space.
func blank(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != ' ' && (c < '\t' || c > '\r') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if !unicode.IsSpace(r) {
			return false
		}
		i += size
	}
	return true
}

// The range of timestamps accepted as numbers: the years 0000 to 9999, UTC.
var (
	minMillis = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxMillis = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
)

// numberMillis converts a valid JSON number of seconds (or of milliseconds
// when its absolute value is above 1e11) to milliseconds.
func numberMillis(n []byte) (int64, bool) {
	integer := len(n) <= 18
	for _, c := range n {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		v, neg := int64(0), n[0] == '-'
		if neg {
			n = n[1:]
		}
		for _, c := range n {
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		if v < -1e11 || v > 1e11 {
			return v, minMillis <= v && v <= maxMillis
		}
		return v * 1000, minMillis <= v*1000 && v*1000 <= maxMillis
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, false // out of float64 range
	}
	if math.Abs(f) <= 1e11 {
		f *= 1000
	}
	f = math.Round(f)
	if f < float64(minMillis) || f > float64(maxMillis) {
		return 0, false
	}
	return int64(f), true
}

// parseRFC3339Millis parses s as time.Parse(time.RFC3339Nano, s) does and
// returns its UnixMilli. The strict RFC 3339 form, which time.Parse tries
// first, is parsed here without allocating; anything else is left to
// time.Parse, which also accepts a few variants.
func parseRFC3339Millis(s []byte) (int64, bool) {
	if ms, ok := parseStrictRFC3339(s); ok {
		return ms, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// parseStrictRFC3339 is time's parseRFC3339, returning milliseconds.
func parseStrictRFC3339(s []byte) (int64, bool) {
	ok := true
	num := func(s []byte, lo, hi int) int {
		x := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				ok = false
				return lo
			}
			x = x*10 + int(c-'0')
		}
		if x < lo || x > hi {
			ok = false
			return lo
		}
		return x
	}
	if len(s) < len("2006-01-02T15:04:05") {
		return 0, false
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	day := num(s[8:10], 1, daysIn(month, year))
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	sec := num(s[17:19], 0, 59)
	if !ok || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	s = s[19:]
	ms := 0
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		n := 1
		for ; n < len(s) && '0' <= s[n] && s[n] <= '9'; n++ {
			if n <= 3 {
				ms = ms*10 + int(s[n]-'0')
			}
		}
		for k := n; k <= 3; k++ {
			ms *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("-07:00") {
			return 0, false
		}
		hh := num(s[1:3], 0, 23)
		mm := num(s[4:6], 0, 59)
		if !ok || (s[0] != '-' && s[0] != '+') || s[3] != ':' {
			return 0, false
		}
		offset = (hh*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return secs*1000 + int64(ms), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given date
// of the proleptic Gregorian calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
