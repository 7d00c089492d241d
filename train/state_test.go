package train

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func trainedTiny(t testing.TB, steps int) *Learner {
	l, err := NewLearner(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range testBatches(steps, 4) {
		l.Step(b)
	}
	return l
}

// TestUnmarshalRejects: every kind of damage gives an ErrState error and
// leaves the learner as it was.
func TestUnmarshalRejects(t *testing.T) {
	l := trainedTiny(t, 5)
	blob, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	before := append([]byte(nil), blob...)
	recrc := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
		return b
	}
	flip := append([]byte(nil), blob...)
	flip[len(flip)/2] ^= 1
	version := append([]byte(nil), blob...)
	version[4] = 9
	other := tinyConfig()
	other.EmbedDim = 7
	ol, _ := NewLearner(other)
	for name, data := range map[string][]byte{
		"empty":           nil,
		"short":           blob[:10],
		"truncated":       blob[:len(blob)-100],
		"bit flip":        flip,
		"version":         recrc(version),
		"magic":           recrc(append([]byte("XXXX"), blob[4:]...)),
		"trailing bytes":  recrc(append(append([]byte(nil), blob[:len(blob)-4]...), 0, 0, 0, 0, 0)),
		"other model":     mustMarshal(t, ol),
		"cut inside body": recrc(append(append([]byte(nil), blob[:len(blob)/3]...), 0, 0, 0, 0)),
	} {
		if err := l.UnmarshalBinary(data); !errors.Is(err, ErrState) {
			t.Errorf("%s: error %v, want ErrState", name, err)
		}
		// LoadEncoder checks the checksum and header and reads only the
		// encoder at the front.
		if _, err := LoadEncoder(data); err == nil && name != "trailing bytes" && name != "other model" && name != "cut inside body" {
			t.Errorf("LoadEncoder %s: no error", name)
		}
	}
	if after := mustMarshal(t, l); !bytes.Equal(after, before) {
		t.Fatal("a failed UnmarshalBinary changed the learner")
	}
}

func mustMarshal(t testing.TB, l *Learner) []byte {
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnmarshalKeepsSettings: a resumed learner keeps its own non-model
// settings (here the learning rate) and the blob's weights.
func TestUnmarshalKeepsSettings(t *testing.T) {
	l := trainedTiny(t, 3)
	cfg := tinyConfig()
	cfg.LR = 0.5
	cfg.Workers = 1
	n, _ := NewLearner(cfg)
	if err := n.UnmarshalBinary(mustMarshal(t, l)); err != nil {
		t.Fatal(err)
	}
	if n.Config().LR != 0.5 || n.Steps() != 3 {
		t.Fatalf("config %+v, steps %d", n.Config(), n.Steps())
	}
	if a, b := n.Embed([]string{"alpha beta"})[0], l.Embed([]string{"alpha beta"})[0]; a[0] != b[0] {
		t.Fatal("weights not restored")
	}
}

// fuzzSeedDir holds the committed seeds of FuzzUnmarshalBinary.
const fuzzSeedDir = "testdata/fuzz/FuzzUnmarshalBinary"

// TestFuzzSeedsCurrent: the committed seeds include a valid state of the
// current format (regenerate with THRESHER_WRITE_SEEDS=1).
func TestFuzzSeedsCurrent(t *testing.T) {
	cfg := fuzzConfig()
	l, _ := NewLearner(cfg)
	for _, b := range testBatches(3, 3) {
		l.Step(b)
	}
	blob := mustMarshal(t, l)
	path := filepath.Join(fuzzSeedDir, "valid")
	if os.Getenv("THRESHER_WRITE_SEEDS") == "1" {
		if err := os.MkdirAll(fuzzSeedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		seeds := map[string][]byte{"valid": blob, "truncated": blob[:len(blob)/2], "header": blob[:40]}
		for name, b := range seeds {
			content := "go test fuzz v1\n[]byte(" + quoteBytes(b) + ")\n"
			if err := os.WriteFile(filepath.Join(fuzzSeedDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with THRESHER_WRITE_SEEDS=1)", err)
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(string(data), "go test fuzz v1\n[]byte("), ")\n")
	seed, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("seed file: %v", err)
	}
	n, _ := NewLearner(cfg)
	if err := n.UnmarshalBinary([]byte(seed)); err != nil {
		t.Fatalf("the valid seed does not decode (regenerate with THRESHER_WRITE_SEEDS=1): %v", err)
	}
}

func quoteBytes(b []byte) string {
	var s bytes.Buffer
	s.WriteByte('"')
	for _, c := range b {
		s.WriteString(`\x`)
		s.WriteByte("0123456789abcdef"[c>>4])
		s.WriteByte("0123456789abcdef"[c&15])
	}
	s.WriteByte('"')
	return s.String()
}

func fuzzConfig() Config {
	return Config{Buckets: 16, EmbedDim: 2, HiddenDim: 3, OutDim: 2, QueueSize: 4, MLMWeight: 0.1,
		MLMBuckets: 4, MLMNegatives: 1, HealthSample: 4, Workers: 1, Seed: 3, LexBuckets: 8}
}

// FuzzUnmarshalBinary: decoding arbitrary bytes never panics, and whatever
// it accepts re-encodes to the same bytes. Each input is also tried with a
// fixed-up checksum so the fuzzer reaches past the CRC.
func FuzzUnmarshalBinary(f *testing.F) {
	cfg := fuzzConfig()
	l, _ := NewLearner(cfg)
	for _, b := range testBatches(2, 3) {
		l.Step(b)
	}
	blob, _ := l.MarshalBinary()
	f.Add(blob)
	f.Fuzz(func(t *testing.T, data []byte) {
		try := func(data []byte) {
			n, err := NewLearner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.UnmarshalBinary(data); err != nil {
				if !errors.Is(err, ErrState) {
					t.Fatalf("error %v does not wrap ErrState", err)
				}
				return
			}
			out, err := n.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if data[4] == 1 {
				// A version-1 state is migrated: its re-encoding is a
				// version-2 state that must decode to the same bytes.
				m, _ := NewLearner(cfg)
				if err := m.UnmarshalBinary(out); err != nil {
					t.Fatalf("migrated state does not decode: %v", err)
				}
				data, _ = m.MarshalBinary()
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("accepted state re-encodes differently")
			}
			_, _ = LoadEncoder(data)
		}
		try(data)
		if len(data) >= 8 {
			fixed := append([]byte(nil), data...)
			binary.LittleEndian.PutUint32(fixed[len(fixed)-4:], crc32.Checksum(fixed[:len(fixed)-4], castagnoli))
			try(fixed)
			_, _ = LoadEncoder(fixed)
		}
	})
}
