package dedup

import (
	"bytes"
	"testing"
)

// TestMarshalRawCopy checks that MarshalBinary's whole-array copies (on a
// little-endian machine) give exactly the bytes of the per-value encoding,
// with several generations, evictions and multi-chunk arrays.
func TestMarshalRawCopy(t *testing.T) {
	if !littleEndian || !rawEntries {
		t.Skip("the per-value encoding is the only one on this machine")
	}
	recs := devRecords(t)
	for _, cfg := range []Config{small, {}} {
		ix := mustIndex(t, cfg)
		feed(ix, recs)
		fast := mustMarshal(t, ix)
		littleEndian, rawEntries = false, false
		slow, err := ix.MarshalBinary()
		littleEndian, rawEntries = true, true
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("config %+v: raw copy gives %d bytes, per-value encoding %d, and they differ", cfg, len(fast), len(slow))
		}
		if len(fast) != ix.encodedSize() {
			t.Errorf("config %+v: %d bytes, encodedSize says %d", cfg, len(fast), ix.encodedSize())
		}
		if n := ix.BinarySize(); n != len(fast) {
			t.Errorf("config %+v: BinarySize %d, MarshalBinary gives %d bytes", cfg, n, len(fast))
		}
		prefix := []byte("prefix")
		app, err := ix.AppendBinary(prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(app[:len(prefix)], prefix) || !bytes.Equal(app[len(prefix):], fast) {
			t.Fatal("AppendBinary does not append MarshalBinary's bytes")
		}
		var back Index
		if err := back.UnmarshalBinary(fast); err != nil {
			t.Fatal(err)
		}
		if again := mustMarshal(t, &back); !bytes.Equal(again, fast) {
			t.Fatal("a loaded index saves other bytes")
		}
	}
}
