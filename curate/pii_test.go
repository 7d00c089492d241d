package curate

import (
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestScanPIIPositives: each text holds one piece of PII, found whole with
// its kind.
func TestScanPIIPositives(t *testing.T) {
	cases := []struct {
		kind       PIIFlags
		text, span string
	}{
		// E-mail addresses.
		{PIIEmail, "write to bob@example.com today", "bob@example.com"},
		{PIIEmail, "first.last+tag@sub.example.co.uk.", "first.last+tag@sub.example.co.uk"},
		{PIIEmail, "<a_b-c@x-y.org>", "a_b-c@x-y.org"},
		{PIIEmail, "Bob@Example.COM", "Bob@Example.COM"},
		{PIIEmail, "ftpmail@SunSite.UNC.Edu or", "ftpmail@SunSite.UNC.Edu"},
		{PIIEmail, "mail user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		// Phone numbers.
		{PIIPhone, "call +1 (415) 555-2671 now", "+1 (415) 555-2671"},
		{PIIPhone, "Tel: +44 20 7946 0958.", "+44 20 7946 0958"},
		{PIIPhone, "Tel: +49 (69) 5095 2333.", "+49 (69) 5095 2333"},
		{PIIPhone, "+14155552671", "+14155552671"},
		{PIIPhone, "+33 1 23 45 67 89", "+33 1 23 45 67 89"},
		{PIIPhone, "(415) 555-2671", "(415) 555-2671"},
		{PIIPhone, "(415)555-2671", "(415)555-2671"},
		{PIIPhone, "phone 415-555-2671.", "415-555-2671"},
		{PIIPhone, "phone 415.555.2671", "415.555.2671"},
		{PIIPhone, "phone 415 555 2671", "415 555 2671"},
		{PIIPhone, "1-800-555-0199", "1-800-555-0199"},
		{PIIPhone, "ring 020 7946 0958", "020 7946 0958"},
		{PIIPhone, "mobiel 06-12345678", "06-12345678"},
		{PIIPhone, "tél 01 23 45 67 89", "01 23 45 67 89"},
		// IP addresses.
		{PIIIP, "host 192.168.0.1 is up", "192.168.0.1"},
		{PIIIP, "at 10.0.0.1.", "10.0.0.1"},
		{PIIIP, "proxy 10.0.0.1:8080 here", "10.0.0.1"},
		{PIIIP, "[2001:db8::1]:8080", "2001:db8::1"},
		{PIIIP, "fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"},
		{PIIIP, "mapped ::ffff:192.0.2.1 here", "::ffff:192.0.2.1"},
		{PIIIP, "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"},
		// Payment cards (network test numbers, Luhn-valid).
		{PIICreditCard, "visa 4111 1111 1111 1111 exp", "4111 1111 1111 1111"},
		{PIICreditCard, "mc 5555-5555-5555-4444", "5555-5555-5555-4444"},
		{PIICreditCard, "amex 378282246310005", "378282246310005"},
		{PIICreditCard, "amex 3782 822463 10005", "3782 822463 10005"},
		{PIICreditCard, "discover 6011111111111117", "6011111111111117"},
		{PIICreditCard, "jcb 3530111333300000", "3530111333300000"},
		{PIICreditCard, "diners 30569309025904", "30569309025904"},
		{PIICreditCard, "visa13 4222222222222", "4222222222222"},
		// Secrets.
		{PIISecret, "key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"},
		{PIISecret, "token=ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"},
		{PIISecret, "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"},
		{PIISecret, "OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL0", "sk-proj-abc123DEF456ghi789JKL0"},
		{PIISecret, "slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"},
		{PIISecret, "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"},
		{PIISecret, "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
		{PIISecret, "glpat-xY12zW34vU56tS78rQ90", "glpat-xY12zW34vU56tS78rQ90"},
		{PIISecret, "secret: 9fB2kQ7xLm4PzR8tVw3Nc6Yh1Jd5Gs0A", "9fB2kQ7xLm4PzR8tVw3Nc6Yh1Jd5Gs0A"},
		{PIISecret, "aws_secret=wJa7rXUtnF3MI/K7MD9NG/bPx4fiCY2XaMPL1KEY", "wJa7rXUtnF3MI/K7MD9NG/bPx4fiCY2XaMPL1KEY"},
		{PIISecret, "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\ny",
			"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"},
		{PIISecret, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"},
	}
	for _, c := range cases {
		spans := ScanPII(c.text, nil)
		if len(spans) != 1 || spans[0].Kind != c.kind || c.text[spans[0].Start:spans[0].End] != c.span {
			t.Errorf("ScanPII(%q) = %v, want one %v span %q", c.text, describe(c.text, spans), c.kind, c.span)
		}
	}
}

// TestScanPIINegatives: text with numbers, dates, code and words that must
// not be taken for PII.
func TestScanPIINegatives(t *testing.T) {
	for _, text := range []string{
		// Dates, times, ranges, references.
		"born 1913, died 1999-2001", "on 2023-01-15 at 12:30:45", "(2000-02-09)", "01.02.2023",
		"John 3:16 and Gen 18:7:4", "pages 123-456", "the years 1850-1900 and 1914-1918",
		// Plain numbers and lists.
		"1 2 3 4 5 6 7 8 9 10 11 12", "$1,234,567.89", "call 555-1234", "5551234567",
		"2+2=4 and 10+20+30", "ZIP 95066", "ISBN 0-306-40615-2", "ISBN 978-0-306-40615-7",
		"about 1.5 million", "version 1.2.3", "v1.2.3.4", "1.2.3.4.5", "192.168.1.300",
		"999.1.1.1", "pi is 3.14159265358979", "4111111111111112", "4111 1111 1111 1112",
		"1234567812345678", "9780306406157",
		// Colons that are not IPv6.
		"a ratio 3:6::8:16 as", "0.0.0.0::1", "10.0.0.1:80:90", "Moose::Role", "std::vector<int>", "Dead::Beef", "12:30", "ab:cd:ef",
		// Addresses that are not.
		"@twitter handle", "user@localhost", "a@b", "foo@bar.c", "x@1.2.3.4", "bob at example dot com",
		"C++ and C#", "email@", "@",
		// Long words, identifiers, hashes, formulas, paths.
		"Pneumonoultramicroscopicsilicovolcanoconiosis", "GtkSourceCompletionProviderWords2",
		"org.apache.commons.lang3.StringUtils", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"6CO2+12H2O+energy=C6H12O6+6O2+6H2", "/usr/lib/x86_64-linux-gnu/libGLESv2.so.2",
		"ftp://ftp.cso.uiuc.edu/pub/amiga/fish/f5/ff537/CHIP8.lzh", "sk-learn", "ASIA", "AKIAMINOR",
		"THIS_IS_A_VERY_LONG_CONSTANT_NAME_V2_FOR_TESTS", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		"ghp_short", "xoxb-", "sk-" + strings.Repeat("a", 30),
		// Ordinary prose.
		"Downthrow \\Down\"throw`\\, n. (Geol.) The sudden drop or depression of the strata.",
		"It is a truth universally acknowledged, that a single man in possession of a good fortune.",
	} {
		if spans := ScanPII(text, nil); len(spans) != 0 {
			t.Errorf("ScanPII(%q) = %v, want none", text, describe(text, spans))
		}
	}
}

// TestRandomTokenRecall checks that random base64 keys are secrets: the
// class-change rule misses few of them.
func TestRandomTokenRecall(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{32, 40, 64} {
		found := 0
		const trials = 2000
		for range trials {
			b := make([]byte, n)
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			text := "key " + string(b) + " end"
			spans := ScanPII(text, nil)
			if len(spans) == 1 && spans[0].Kind == PIISecret {
				found++
			}
		}
		t.Logf("random base64 of %d chars: %d of %d flagged", n, found, trials)
		if found < trials*97/100 {
			t.Errorf("random base64 of %d chars: only %d of %d flagged", n, found, trials)
		}
	}
}

func describe(text string, spans []PIISpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Kind.String()+":"+text[s.Start:s.End])
	}
	return out
}

func TestScanPIISeveral(t *testing.T) {
	text := "Mail bob@example.com or call 415-555-2671; server 10.1.2.3, card 4111-1111-1111-1111, key AKIAIOSFODNN7EXAMPLE."
	spans := ScanPII(text, nil)
	want := []string{"email:bob@example.com", "phone:415-555-2671", "ip:10.1.2.3", "credit_card:4111-1111-1111-1111", "secret:AKIAIOSFODNN7EXAMPLE"}
	if got := describe(text, spans); !reflect.DeepEqual(got, want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	got := Redact(text, spans)
	if want := "Mail [EMAIL] or call [PHONE]; server [IP], card [CREDIT_CARD], key [SECRET]."; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if again := ScanPII(got, nil); len(again) != 0 {
		t.Errorf("redacted text still has PII: %v", describe(got, again))
	}
	// The flags of the Analyzer are the union of the kinds.
	m := NewAnalyzer(MetricsConfig{}).Analyze(text)
	if m.PII != PIIEmail|PIIPhone|PIIIP|PIICreditCard|PIISecret {
		t.Errorf("Analyze PII = %v", m.PII)
	}
	if got, want := m.PII.Strings(), []string{"email", "phone", "ip", "credit_card", "secret"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Strings() = %v, want %v", got, want)
	}
	if PIIFlags(0).Strings() != nil || PIIFlags(0).String() != "" {
		t.Errorf("empty flags: %v %q", PIIFlags(0).Strings(), PIIFlags(0).String())
	}
}

func TestRedact(t *testing.T) {
	text := "a 10.0.0.1 b"
	cases := []struct {
		name  string
		spans []PIISpan
		want  string
	}{
		{"none", nil, text},
		{"one", []PIISpan{{2, 10, PIIIP}}, "a [IP] b"},
		{"whole", []PIISpan{{0, len(text), PIIEmail}}, "[EMAIL]"},
		{"empty span inserts", []PIISpan{{0, 0, PIIPhone}}, "[PHONE]" + text},
		{"out of range ignored", []PIISpan{{2, 99, PIIIP}}, text},
		{"overlap ignored", []PIISpan{{2, 10, PIIIP}, {5, 11, PIISecret}}, "a [IP] b"},
		{"reversed ignored", []PIISpan{{5, 2, PIIIP}}, text},
		{"no kind", []PIISpan{{2, 10, 0}}, "a [PII] b"},
	}
	for _, c := range cases {
		if got := Redact(text, c.spans); got != c.want {
			t.Errorf("%s: Redact = %q, want %q", c.name, got, c.want)
		}
	}
}

// FuzzScanPII checks that spans are in bounds, in order, not overlapping,
// of one kind each, and that redacting leaves nothing to find.
func FuzzScanPII(f *testing.F) {
	for _, s := range []string{
		"", "bob@example.com", "+1 (415) 555-2671", "4111 1111 1111 1111", "2001:db8::1",
		"192.168.0.1", "AKIAIOSFODNN7EXAMPLE", "a@b.co@c.de", "::1", "+49 (69) 5095 2333.",
		"-----BEGIN RSA PRIVATE KEY-----\nabc", "9fB2kQ7xLm4PzR8tVw3Nc6Yh1Jd5Gs0A", "\xff@\x00.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spans := ScanPII(s, nil)
		last := 0
		for _, sp := range spans {
			if sp.Start < last || sp.End <= sp.Start || sp.End > len(s) {
				t.Fatalf("bad span %+v after %d in %d bytes: %v", sp, last, len(s), spans)
			}
			if bits.OnesCount8(uint8(sp.Kind)) != 1 || sp.Kind>>numPIIKinds != 0 {
				t.Fatalf("span kind %b", sp.Kind)
			}
			last = sp.End
		}
		r := Redact(s, spans)
		if again := ScanPII(r, nil); len(again) != 0 {
			t.Fatalf("redacted %q still has %v (from %q)", r, describe(r, again), s)
		}
		if Redact(r, ScanPII(r, nil)) != r {
			t.Fatalf("redaction is not idempotent")
		}
	})
}

// TestScanPIILinear runs the scanner and the Analyzer on texts built to
// make a careless scanner quadratic (every token or '@' rescanning the
// rest): 1 MB must cost about 8 times 128 KB (a quadratic scan costs 64),
// judged on the same machine in the same run, so load does not matter.
func TestScanPIILinear(t *testing.T) {
	const size = 1 << 20
	a := NewAnalyzer(MetricsConfig{})
	for _, build := range []func(n int) string{
		rep("a/"), rep("Ab1/"), rep("a+"), rep("@a."), rep("a@b."), rep("1."), rep("1 "), rep("+1 "),
		rep("1-"), rep("(1) "), rep("a:"), rep("1:"), rep("::"), rep("a"), rep("9"), rep("-----BEGIN "),
		func(n int) string { return "-----BEGIN RSA PRIVATE KEY-----\n" + rep("-----END ")(n) },
		func(n int) string { return rep("x@")(n) + "y" }, func(n int) string { return rep("a.")(n) + "@b.co" },
	} {
		small, big := build(size/8), build(size)
		scan := func(text string) func() {
			return func() {
				ScanPII(text, nil)
				a.Analyze(text)
			}
		}
		ts, tb := minDuration(3, scan(small)), minDuration(2, scan(big))
		if limit := 24*ts + 20*time.Millisecond; tb > limit {
			t.Errorf("%.12q...: %v for %d bytes, %v for %d: not linear", big, tb, len(big), ts, len(small))
		}
	}
}

// rep builds texts of n bytes repeating unit.
func rep(unit string) func(n int) string {
	return func(n int) string { return strings.Repeat(unit, n/len(unit)) }
}
