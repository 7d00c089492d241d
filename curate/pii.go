package curate

import (
	"math/bits"
	"net/netip"
	"strings"
)

// PIIFlags is a set of kinds of personal data and secrets, the pii_flags
// column. A PIISpan's Kind holds exactly one of them.
type PIIFlags uint8

// Kinds of PII that ScanPII finds.
const (
	// PIIEmail: an address local@domain.tld, the domain of two or more
	// labels, the top-level one of two or more letters.
	PIIEmail PIIFlags = 1 << iota
	// PIIPhone: a number written as a phone number: international
	// (+CC ... with 8 to 15 digits), North American (555-123-4567,
	// (555) 123-4567, 555.123.4567, 1-800-555-0199) or national with a
	// trunk 0 (020 7946 0958, 06-12345678, 01 23 45 67 89; 10 or 11 digits).
	// Bare digit runs are not phone numbers, nor is a number glued to other
	// digit groups before it (12 415-555-2671).
	PIIPhone
	// PIIIP: an IPv4 address (four decimal octets; not part of a longer
	// dotted number such as a version 1.2.3.4.5) or an IPv6 address (as
	// net/netip parses it, with at least two colons, a digit, and a hex
	// letter or a group of three or more digits, so that the ratio
	// 3:6::8:16 is none).
	PIIIP
	// PIICreditCard: 13 to 19 digits, contiguous or in groups of a card's
	// layout (4-4-4-4, 4-6-5, ...), with the issuer prefix of a card
	// network (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay,
	// Maestro) and a valid Luhn check digit.
	PIICreditCard
	// PIISecret: an API-key-like token: AWS access key ids (AKIA...,
	// ASIA...), GitHub tokens (ghp_..., github_pat_...), GitLab (glpat-...),
	// OpenAI/Anthropic-style (sk-...), Stripe (sk_live_...), Slack (xox?-...)
	// and Google (AIza...) keys, PEM private key blocks, and long random-
	// looking tokens: 32 or more characters of [A-Za-z0-9+/=_-] whose
	// letters and digits mix upper case, lower case and digits throughout and
	// change class at 40% or more of their positions, as base64 of random
	// bytes does and camelCase identifiers, paths or formulas do not (see
	// randomToken).
	PIISecret

	numPIIKinds = 5
)

var (
	piiNames        = [numPIIKinds]string{"email", "phone", "ip", "credit_card", "secret"}
	piiPlaceholders = [numPIIKinds]string{"[EMAIL]", "[PHONE]", "[IP]", "[CREDIT_CARD]", "[SECRET]"}
)

// Has reports whether f holds every kind of k.
func (f PIIFlags) Has(k PIIFlags) bool { return f&k == k }

// Strings returns the names of the kinds in f ("email", "phone", "ip",
// "credit_card", "secret"), in that order; nil when f is empty.
func (f PIIFlags) Strings() []string {
	if f == 0 {
		return nil
	}
	out := make([]string, 0, bits.OnesCount8(uint8(f)))
	for k := range numPIIKinds {
		if f&(1<<k) != 0 {
			out = append(out, piiNames[k])
		}
	}
	return out
}

// String returns the names of the kinds joined by '|', "" when f is empty.
func (f PIIFlags) String() string { return strings.Join(f.Strings(), "|") }

// Placeholder returns the text Redact puts in place of a span of kind f
// ("[EMAIL]", ...; the lowest kind when f holds several; "[PII]" when none).
func (f PIIFlags) Placeholder() string {
	if f == 0 {
		return "[PII]"
	}
	return piiPlaceholders[bits.TrailingZeros8(uint8(f))]
}

// PIISpan is one piece of PII: text[Start:End], in bytes.
type PIISpan struct {
	Start, End int
	Kind       PIIFlags
}

// Byte classes of the scanner.
const (
	pTok    = 1 << iota // token characters: [A-Za-z0-9_-]
	pDigit              // [0-9]
	pHex                // [0-9A-Fa-f]
	pAlnum              // [A-Za-z0-9]
	pLocal              // e-mail local part: [A-Za-z0-9._%+-]
	pSecret             // long-token characters: [A-Za-z0-9+/=_-]
	pUpper              // [A-Z]
	pLower              // [a-z]
)

var piiClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		var k uint8
		if alpha || digit {
			k |= pTok | pAlnum | pLocal | pSecret
		}
		if digit {
			k |= pDigit | pHex
		}
		if c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			k |= pHex
		}
		if c >= 'A' && c <= 'Z' {
			k |= pUpper
		}
		if c >= 'a' && c <= 'z' {
			k |= pLower
		}
		switch c {
		case '_', '-':
			k |= pTok | pLocal | pSecret
		case '.', '%', '+':
			k |= pLocal
		}
		switch c {
		case '+', '/', '=':
			k |= pSecret
		}
		t[c] = k
	}
	return t
}()

func asciiDigit(c byte) bool { return c-'0' < 10 }

// piiWordByte reports whether c continues a word around a match: a match
// must not be followed (or preceded) by one.
func piiWordByte(c byte) bool { return piiClass[c]&pAlnum != 0 || c == '_' || c == '@' }

// ScanPII appends to dst the spans of PII in text, in order and not
// overlapping, and returns it. It reads the text once, left to right,
// trying the detectors of each kind only where one could start (a token
// beginning with a digit or a hex digit, '+', '(', "::", '@', a long
// token), with no regular expressions and no allocation beyond growing dst.
// Numbers are looked for only where one starts (see numberStartsClean) and
// must end cleanly (numberEndsClean), and every check of the byte before a
// match treats a byte of the span before as the ']' its placeholder ends
// with, so that redacting is idempotent: Redact leaves nothing ScanPII
// finds (FuzzScanPII checks it). Any string is accepted; PII is ASCII, so
// invalid UTF-8 around it does not matter. The time is linear in the
// length of the text.
func ScanPII(text string, dst []PIISpan) []PIISpan {
	s := text
	n := len(s)
	last := 0 // end of the last span: a new one starts at or after it
	emit := func(start, end int, k PIIFlags) int {
		dst = append(dst, PIISpan{Start: start, End: end, Kind: k})
		last = end
		return end
	}
	for i := 0; i < n; {
		c := s[i]
		if piiClass[c]&pTok != 0 {
			j := i + 1
			for j < n && piiClass[s[j]]&pTok != 0 {
				j++
			}
			// Most tokens are short words: nothing can start there unless
			// the token starts with a digit or '-', or goes on with ':'
			// (IPv6) or '/' or '+' (base64).
			if j-i < 16 && piiClass[c]&pDigit == 0 && c != '-' && (j == n || s[j] != ':' && s[j] != '/' && s[j] != '+') {
				i = j
				continue
			}
			if start, end, k := scanToken(s, i, j, last); end > 0 && !afterHexColon(s, start, last) {
				i = emit(start, end, k)
				continue
			}
			i = j
			continue
		}
		switch c {
		case '@':
			if start, end := emailAt(s, i, last); end > 0 && !afterHexColon(s, start, last) {
				i = emit(start, end, PIIEmail)
				continue
			}
		case '+', '(':
			if i+1 < n && (asciiDigit(s[i+1]) || c == '+' && s[i+1] == '(') && (i == last || !piiWordByte(s[i-1]) && piiClass[s[i-1]]&pLocal == 0) && numberStartsClean(s, i, last) {
				if end := phoneAt(s, i); end > 0 {
					i = emit(i, end, PIIPhone)
					continue
				}
			}
		case ':':
			if i+1 < n && s[i+1] == ':' && (i == last || piiClass[s[i-1]]&(pAlnum|pTok) == 0 && s[i-1] != '.' && s[i-1] != ':') {
				if end := ipv6At(s, i); end > 0 {
					i = emit(i, end, PIIIP)
					continue
				}
			}
		}
		i++
	}
	return dst
}

// scanToken tries the detectors that start at the token s[i:j] (a maximal
// run of [A-Za-z0-9_-]) and returns the span and kind of a match starting
// at or after last (the end of the span before), or end 0.
func scanToken(s string, i, j, last int) (start, end int, kind PIIFlags) {
	n := len(s)
	c := s[i]
	numeric := numberStartsClean(s, i, last)
	if piiClass[c]&pHex != 0 && j < n && s[j] == ':' && j-i <= 4 && numeric {
		if allHexDigits(s[i:j]) {
			if end := ipv6At(s, i); end > 0 {
				return i, end, PIIIP
			}
		}
	}
	if asciiDigit(c) && numeric {
		if end := ipv4At(s, i); end > 0 {
			return i, end, PIIIP
		}
		if end := cardAt(s, i); end > 0 {
			return i, end, PIICreditCard
		}
		if end := phoneAt(s, i); end > 0 {
			return i, end, PIIPhone
		}
	}
	if c == '-' && strings.HasPrefix(s[i:], "-----BEGIN ") {
		if end := pemAt(s, i); end > 0 {
			return i, end, PIISecret
		}
	}
	if j-i >= 16 {
		if prefixSecret(s[i:j]) {
			return i, j, PIISecret
		}
	}
	// Long random-looking tokens: base64 may hold '+' and '/' (also
	// first) and end in '=' padding. Only a run's first token looks at it,
	// and the run is cut at maxSecretRun bytes, which keeps the scan linear
	// on text such as a/a/a/...
	st := i
	for st > last && (s[st-1] == '+' || s[st-1] == '/') {
		st--
	}
	if st > last && piiClass[s[st-1]]&pSecret != 0 && s[st-1] != '=' {
		return 0, 0, 0 // inside a run that started before
	}
	// A token starting with a digit follows the rules of numbers (see
	// numberStartsClean), or redacting it could complete one before it.
	if asciiDigit(s[st]) && !numeric {
		return 0, 0, 0
	}
	k := j
	for k < n && k-st < maxSecretRun && piiClass[s[k]]&pSecret != 0 && s[k] != '=' {
		k++
	}
	for pad := 0; pad < 2 && k < n && s[k] == '='; pad++ {
		k++
	}
	if k-st >= 32 && randomToken(s[st:k]) {
		return st, k, PIISecret
	}
	return 0, 0, 0
}

// afterHexColon reports whether start follows a run of hex digits, ':'
// and '.' that holds two colons or more and ends in ':' or '.' (as in
// 000::X@0.AA or 000::.A@0.AA), outside the last span (which ends at
// last): the run would pass for an IPv6 address once a span starting there
// were redacted, so no span starts there.
func afterHexColon(s string, start, last int) bool {
	if start-1 < last || s[start-1] != ':' && s[start-1] != '.' {
		return false
	}
	colons := 0
	for k := start - 1; k >= last && start-k <= 46; k-- {
		c := s[k]
		if c == ':' {
			colons++
		} else if c != '.' && piiClass[c]&pHex == 0 {
			break
		}
	}
	return colons >= 2
}

// numberStartsClean reports whether a number may start at i, after the
// span ending at last. Not inside a longer number (1.192.168.0.1, 12:30,
// a@1.2.3.4, /10.0.0.1), and not glued by one of - , + ( or a space to a
// group of digits standing before it (0000 000000 0000 000000, 1,234,567):
// a match found from such a later group would vanish or change once the
// text before it is redacted. A number right after a span may start.
func numberStartsClean(s string, i, last int) bool {
	if i == last {
		return true // at the start, or right after a span
	}
	switch s[i-1] {
	case '.', ':', '@', '/', '\\':
		return false
	case ' ', '-', ',', '+', '(':
		return !digitGroupBefore(s, i-1, last)
	}
	return true
}

// digitGroupBefore reports whether s[:end] ends with a group of digits that
// stands alone (not the tail of a word such as visa13) and is not part of
// the last span (which ends at last): a number continuing it was not
// matched, so neither is this one.
func digitGroupBefore(s string, end, last int) bool {
	k := end
	for k > last && asciiDigit(s[k-1]) {
		k--
	}
	return k < end && k > last && !piiWordByte(s[k-1]) || k == 0 && end > 0 && last == 0
}

// maxSecretRun bounds the length of a random-looking token.
const maxSecretRun = 512

func allHexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if piiClass[s[i]]&pHex == 0 {
			return false
		}
	}
	return true
}

// digitRunEnd returns the end of the run of ASCII digits at i.
func digitRunEnd(s string, i int) int {
	for i < len(s) && asciiDigit(s[i]) {
		i++
	}
	return i
}

// numberEndsClean reports whether a numeric match may end at e: not
// followed by a word byte, nor by one of . - , + ( : and a digit, nor by
// "::" or "+(" (a longer number, or another one glued to it).
func numberEndsClean(s string, e int) bool {
	if e >= len(s) {
		return true
	}
	if piiWordByte(s[e]) {
		return false
	}
	if e+1 < len(s) {
		switch s[e] {
		case '+':
			return !asciiDigit(s[e+1]) && s[e+1] != '('
		case '.', '-', ',', '(':
			return !asciiDigit(s[e+1])
		case ':':
			return !asciiDigit(s[e+1]) && s[e+1] != ':'
		}
	}
	return true
}

// ipv4At returns the end of a dotted-quad IPv4 address at i, or 0.
func ipv4At(s string, i int) int {
	p := i
	for part := range 4 {
		if part > 0 {
			if p >= len(s) || s[p] != '.' {
				return 0
			}
			p++
		}
		q := digitRunEnd(s, p)
		if q == p || q-p > 3 || q-p > 1 && s[p] == '0' {
			return 0
		}
		v := 0
		for _, d := range []byte(s[p:q]) {
			v = v*10 + int(d-'0')
		}
		if v > 255 {
			return 0
		}
		p = q
	}
	// A port (10.0.0.1:8080) stays out of the span.
	if p+1 < len(s) && s[p] == ':' && asciiDigit(s[p+1]) {
		if q := digitRunEnd(s, p+1); q-p-1 <= 5 && numberEndsClean(s, q) {
			return p
		}
		return 0
	}
	if !numberEndsClean(s, p) {
		return 0
	}
	return p
}

// ipv6At returns the end of an IPv6 address starting at i, or 0.
func ipv6At(s string, i int) int {
	e := i
	colons, digit, letter, group, long := 0, false, false, 0, false
	for e < len(s) && e-i <= 45 {
		c := s[e]
		if c == ':' || c == '.' {
			if c == ':' {
				colons++
			}
			group = 0
		} else if piiClass[c]&pHex != 0 {
			digit = digit || asciiDigit(c)
			letter = letter || !asciiDigit(c)
			group++
			long = long || group >= 3
		} else {
			break
		}
		e++
	}
	if e-i > 45 {
		return 0
	}
	// A trailing '.' or single ':' is punctuation, not part of the address.
	for e > i && (s[e-1] == '.' || s[e-1] == ':' && (e-2 < i || s[e-2] != ':')) {
		if s[e-1] == ':' {
			colons--
		}
		e--
	}
	// Ratios written as 3:6::8:16 parse as IPv6: ask for a hex letter or a
	// group of three or more digits.
	if colons < 2 || !digit || !letter && !long || e < len(s) && (piiClass[s[e]]&pAlnum != 0 || s[e] == '_') {
		return 0
	}
	a, err := netip.ParseAddr(s[i:e])
	if err != nil || !a.Is6() {
		return 0
	}
	return e
}

// cardAt returns the end of a payment card number at i, or 0.
func cardAt(s string, i int) int {
	var d [19]byte
	nd := 0
	var lens [6]int
	ng := 0
	var sep byte
	p := i
	for {
		q := digitRunEnd(s, p)
		if q == p || nd+q-p > len(d) || ng == len(lens) {
			return 0
		}
		nd += copy(d[nd:], s[p:q])
		lens[ng] = q - p
		ng++
		p = q
		if p+1 < len(s) && (s[p] == ' ' || s[p] == '-') && (sep == 0 || sep == s[p]) && asciiDigit(s[p+1]) {
			sep = s[p]
			p++
			continue
		}
		break
	}
	if nd < 13 || !numberEndsClean(s, p) {
		return 0
	}
	if ng > 1 {
		if lens[0] != 4 {
			return 0
		}
		for _, l := range lens[1:ng] {
			if l < 3 || l > 6 {
				return 0
			}
		}
	}
	if !cardPrefix(d[:nd]) || !luhnValid(d[:nd]) {
		return 0
	}
	return p
}

// cardPrefix reports whether digits start with the issuer prefix of a card
// network that issues numbers of their length.
func cardPrefix(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p2 == 65, p4 >= 6440 && p4 <= 6499, p2 == 62: // Discover, UnionPay
		return n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p4 >= 3000 && p4 <= 3059, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p2 == 50, p2 >= 56 && p2 <= 58, p2 == 63, p2 == 67: // Maestro
		return n >= 13
	}
	return false
}

// luhnValid reports whether the digits pass the Luhn check.
func luhnValid(d []byte) bool {
	sum := 0
	for k := range d {
		v := int(d[len(d)-1-k] - '0')
		if k%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// phoneAt returns the end of a phone number at i (a '+', '(' or digit),
// or 0.
func phoneAt(s string, i int) int {
	n := len(s)
	p := i
	plus := s[p] == '+'
	if plus {
		p++
	}
	var lens [8]int
	var seps [len(lens) + 1]byte // seps[k]: the separator before group k
	ng, digits, paren, end := 0, 0, -1, 0
	for ng < len(lens) {
		if p < n && s[p] == '(' {
			q := digitRunEnd(s, p+1)
			if paren >= 0 || q == p+1 || q-p-1 > 5 || q >= n || s[q] != ')' {
				break
			}
			paren = ng
			lens[ng] = q - p - 1
			p = q + 1
		} else {
			q := digitRunEnd(s, p)
			if q == p || q-p > 12 {
				break
			}
			lens[ng] = q - p
			p = q
		}
		digits += lens[ng]
		ng++
		end = p
		if p+1 < n && (s[p] == ' ' || s[p] == '-' || s[p] == '.') && (asciiDigit(s[p+1]) || s[p+1] == '(') {
			seps[ng] = s[p]
			p++
			continue
		}
		if paren == ng-1 && p < n && asciiDigit(s[p]) { // (555)123-4567
			seps[ng] = ')'
			continue
		}
		break
	}
	if ng == 0 || digits > 15 || !numberEndsClean(s, end) {
		return 0
	}
	dots, others := 0, 0
	for _, c := range seps[1:ng] {
		if c == '.' {
			dots++
		} else {
			others++
		}
	}
	if dots > 0 && others > 0 {
		return 0 // 555.123-4567 is no phone number
	}
	if plus {
		if digits < 8 || ng > 6 || ng > 1 && lens[0] > 3 && paren != 0 {
			return 0
		}
		for _, l := range lens[1:ng] {
			if l > 8 {
				return 0
			}
		}
		return end
	}
	nanp := ng == 3 && lens[0] == 3 && lens[1] == 3 && lens[2] == 4 && paren <= 0 ||
		ng == 4 && lens[0] == 1 && s[i] == '1' && lens[1] == 3 && lens[2] == 3 && lens[3] == 4 && (paren < 0 || paren == 1)
	if nanp {
		return end
	}
	// National numbers with a trunk 0: 0xx[x] groups.
	first := i
	if paren == 0 {
		first++
	}
	if s[first] != '0' || lens[0] < 2 || lens[0] > 5 || ng < 2 || ng > 5 || paren > 0 || digits < 10 || digits > 11 {
		return 0
	}
	for _, l := range lens[1:ng] {
		if l < 2 || l > 8 {
			return 0
		}
	}
	return end
}

// emailAt returns the span of an e-mail address around the '@' at at, its
// local part starting at or after from, or end 0.
func emailAt(s string, at, from int) (start, end int) {
	l := at
	for l > from && piiClass[s[l-1]]&pLocal != 0 && at-l < 64 {
		l--
	}
	for l < at && (s[l] == '.' || s[l] == '-' || s[l] == '+') {
		l++
	}
	if l == at || s[at-1] == '.' || !strings.ContainsFunc(s[l:at], func(r rune) bool { return r < 0x80 && piiClass[r]&pAlnum != 0 }) {
		return 0, 0
	}
	// A local part of digits glued to numbers before it (020 7946 0958
	// 12@x.com) is no address: the number would be found once it is
	// redacted.
	if asciiDigit(s[l]) && !numberStartsClean(s, l, from) {
		return 0, 0
	}
	p := at + 1
	labels := 0
	var tld string
	for p-at <= 255 { // a domain name has 253 characters at most
		q := p
		for q < len(s) && q-p <= 63 && (piiClass[s[q]]&pAlnum != 0 || s[q] == '-') {
			q++
		}
		if q == p || s[p] == '-' || s[q-1] == '-' || q-p > 63 {
			if labels < 2 {
				return 0, 0
			}
			break
		}
		labels++
		tld = s[p:q]
		end = q
		if q+1 < len(s) && s[q] == '.' && piiClass[s[q+1]]&pAlnum != 0 {
			p = q + 1
			continue
		}
		break
	}
	if labels < 2 || len(tld) < 2 || end < len(s) && (s[end] == '@' || s[end] == '_') {
		return 0, 0
	}
	if !strings.HasPrefix(tld, "xn--") {
		for k := 0; k < len(tld); k++ {
			if piiClass[tld[k]]&(pUpper|pLower) == 0 {
				return 0, 0
			}
		}
	}
	return l, end
}

// prefixSecret reports whether tok (a whole token of [A-Za-z0-9_-]) is an
// API key of a known format.
func prefixSecret(tok string) bool {
	switch {
	case len(tok) == 20 && (strings.HasPrefix(tok, "AKIA") || strings.HasPrefix(tok, "ASIA")):
		return piiClassOnly(tok, pUpper|pDigit)
	case len(tok) >= 40 && len(tok) <= 255 && tok[0] == 'g' && tok[1] == 'h' && tok[3] == '_' && strings.IndexByte("pousr", tok[2]) >= 0:
		return piiClassOnly(tok[4:], pAlnum)
	case strings.HasPrefix(tok, "github_pat_") && len(tok) >= 11+22:
		return true
	case strings.HasPrefix(tok, "glpat-") && len(tok) >= 6+20:
		return true
	case strings.HasPrefix(tok, "sk-") && len(tok) >= 3+20:
		return piiCharClasses(tok[3:]) >= 2
	case strings.HasPrefix(tok, "sk_live_") || strings.HasPrefix(tok, "sk_test_") || strings.HasPrefix(tok, "rk_live_"):
		return len(tok) >= 8+16
	case strings.HasPrefix(tok, "xox") && len(tok) >= 15 && tok[4] == '-' && strings.IndexByte("abposr", tok[3]) >= 0:
		return piiCharClasses(tok[5:]) >= 2
	case strings.HasPrefix(tok, "AIza") && len(tok) == 39:
		return true
	}
	return false
}

// piiClassOnly reports whether every byte of s is in class k.
func piiClassOnly(s string, k uint8) bool {
	for i := 0; i < len(s); i++ {
		if piiClass[s[i]]&k == 0 {
			return false
		}
	}
	return true
}

// piiCharClasses returns how many of upper case, lower case and digits s holds.
func piiCharClasses(s string) int {
	var u, l, d int
	for i := 0; i < len(s); i++ {
		switch k := piiClass[s[i]]; {
		case k&pUpper != 0:
			u = 1
		case k&pLower != 0:
			l = 1
		case k&pDigit != 0:
			d = 1
		}
	}
	return u + l + d
}

// randomToken reports whether tok (32 or more bytes of [A-Za-z0-9+/=_-])
// looks random: 24 or more letters and digits, in which upper-case and
// lower-case letters each come in two or more separate runs, with a digit
// somewhere, and the class (upper, lower, digit) changes from one letter or
// digit to the next at 40% or more of them. Other bytes are skipped, so
// that separators do not make a path or a formula look random; the runs
// keep out chemical formulas (C6H12O6) and upper-case hex.
func randomToken(tok string) bool {
	var runs [3]int
	n, changes := 0, 0
	prev := -1
	for i := 0; i < len(tok); i++ {
		var k int
		switch c := piiClass[tok[i]]; {
		case c&pUpper != 0:
			k = 0
		case c&pLower != 0:
			k = 1
		case c&pDigit != 0:
			k = 2
		default:
			continue
		}
		n++
		if k != prev {
			runs[k]++
			if prev >= 0 {
				changes++
			}
		}
		prev = k
	}
	return n >= 24 && runs[0] >= 2 && runs[1] >= 2 && runs[2] >= 1 && 5*changes >= 2*n
}

// pemAt returns the end of a PEM private key block at i ("-----BEGIN ...
// PRIVATE KEY-----" through its END line, or the end of the text when the
// END line is missing), or 0 for other PEM blocks (certificates are public).
func pemAt(s string, i int) int {
	line := s[i:min(len(s), i+80)] // a PEM header line is short
	if k := strings.IndexByte(line, '\n'); k >= 0 {
		line = line[:k]
	}
	k := strings.Index(line, "PRIVATE KEY-----")
	if k < 0 {
		return 0
	}
	line = line[:k+len("PRIVATE KEY-----")]
	rest := s[i+len(line):]
	k = strings.Index(rest, "-----END ")
	if k < 0 {
		return len(s)
	}
	endLine := rest[k+len("-----END "):]
	m := strings.Index(endLine, "-----")
	if m < 0 {
		return len(s)
	}
	return i + len(line) + k + len("-----END ") + m + len("-----")
}

// Redact returns text with each span replaced by its kind's placeholder
// ("[EMAIL]", "[PHONE]", "[IP]", "[CREDIT_CARD]", "[SECRET]"). Spans must
// be in order and not overlap, as ScanPII returns them; a span that is out
// of range or overlaps the one before is ignored. Without spans it returns
// text itself.
func Redact(text string, spans []PIISpan) string {
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8*len(spans))
	last := 0
	for _, sp := range spans {
		if sp.Start < last || sp.End > len(text) || sp.Start > sp.End {
			continue
		}
		b.WriteString(text[last:sp.Start])
		b.WriteString(sp.Kind.Placeholder())
		last = sp.End
	}
	b.WriteString(text[last:])
	return b.String()
}
