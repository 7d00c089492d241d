package dedup

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"
)

// fuzzProbes are added to every index the fuzzer manages to load.
var fuzzProbes = []string{
	"the quick brown fox jumps over the lazy dog",
	"the quick brown fox jumps over the lazy cat",
	"",
	"hello",
}

// seedIndexes are the saved indexes the fuzzer starts from (also under
// testdata/fuzz/FuzzUnmarshal).
func seedIndexes(t testing.TB) [][]byte {
	var out [][]byte
	var empty Index
	b, err := empty.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, b)
	ix := mustIndex(t, Config{MaxRecords: 4096, Generations: 4, SketchSize: 8, MaxCandidates: 4})
	texts := []string{
		"Acquire a backtrace at runtime - Rust source code",
		"This package contains the source for the Rust backtrace crate",
		"This package contains the source for the Rust lliw crate",
		"Acquire a backtrace at runtime - Rust source code",
		"one two three four five six seven eight nine ten eleven twelve",
		"one two three four five six seven eight nine ten eleven",
		"",
	}
	for i, text := range texts {
		ix.Add(RecordID{Topic: []string{"a", "b/c"}[i%2], Partition: int32(i % 3), Offset: int64(i)}, text)
		if b, err := ix.MarshalBinary(); err == nil && (i == 2 || i == len(texts)-1) {
			out = append(out, b)
		}
	}
	return out
}

func withChecksum(body []byte) []byte {
	b := append(bytes.Clone(body), 0, 0, 0, 0)
	le.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// FuzzUnmarshal: UnmarshalBinary never panics, refuses bad data with
// ErrCorrupt or ErrVersion, and whatever it accepts re-encodes to the same
// bytes and is an index that works. Each input is tried as is and with its
// checksum fixed, so that the fuzzer gets past the checksum to the
// structural checks.
func FuzzUnmarshal(f *testing.F) {
	for _, b := range seedIndexes(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		try := func(data []byte) {
			var ix Index
			if err := ix.UnmarshalBinary(data); err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
					t.Fatalf("error %v wraps neither ErrCorrupt nor ErrVersion", err)
				}
				return
			}
			again, err := ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("accepted %d bytes that re-encode to %d other bytes", len(data), len(again))
			}
			for i, text := range fuzzProbes {
				ix.Add(RecordID{Topic: "fuzz", Offset: int64(i)}, text)
			}
			_ = ix.Stats()
			after, err := ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var ix2 Index
			if err := ix2.UnmarshalBinary(after); err != nil {
				t.Fatalf("the index no longer loads after adding to it: %v", err)
			}
		}
		try(data)
		if len(data) > 16 {
			try(withChecksum(data[:len(data)-4]))
		}
	})
}
