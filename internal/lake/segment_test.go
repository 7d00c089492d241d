package lake

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSegmentKey(t *testing.T) {
	tests := []struct {
		table, topic string
		partition    int32
		r            Range
		want         string
	}{
		{"raw", "records", 3, Range{0, 99}, "raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet"},
		{"dlq", "a.b_c-D9", 0, Range{7, 7}, "dlq/topic=a.b_c-D9/partition=0/00000000000000000007-00000000000000000007.parquet"},
		{"curated_v2", "t", math.MaxInt32, Range{math.MaxInt64, math.MaxInt64},
			"curated_v2/topic=t/partition=2147483647/09223372036854775807-09223372036854775807.parquet"},
		{"raw", strings.Repeat("x", 249), 10, Range{123456789, 987654321},
			"raw/topic=" + strings.Repeat("x", 249) + "/partition=10/00000000000123456789-00000000000987654321.parquet"},
	}
	for _, tt := range tests {
		got := SegmentKey(tt.table, tt.topic, tt.partition, tt.r)
		if got != tt.want {
			t.Errorf("SegmentKey(%q, %q, %d, %v) = %q, want %q", tt.table, tt.topic, tt.partition, tt.r, got, tt.want)
		}
		if p := PartitionPrefix(tt.table, tt.topic, tt.partition); !strings.HasPrefix(got, p) || strings.Contains(got[len(p):], "/") {
			t.Errorf("PartitionPrefix = %q, not the folder of %q", p, got)
		}
		table, topic, partition, r, err := ParseSegmentKey(got)
		if err != nil || table != tt.table || topic != tt.topic || partition != tt.partition || r != tt.r {
			t.Errorf("ParseSegmentKey(%q) = %q, %q, %d, %v, %v", got, table, topic, partition, r, err)
		}
		if err := CheckKey(got); err != nil {
			t.Errorf("segment key %q is not a valid object key: %v", got, err)
		}
	}
}

func TestSegmentKeyPanics(t *testing.T) {
	tests := []struct {
		name         string
		table, topic string
		partition    int32
		r            Range
	}{
		{"empty topic", "raw", "", 0, Range{0, 0}},
		{"slash in topic", "raw", "a/b", 0, Range{0, 0}},
		{"dot topic", "raw", ".", 0, Range{0, 0}},
		{"dotdot topic", "raw", "..", 0, Range{0, 0}},
		{"long topic", "raw", strings.Repeat("x", 250), 0, Range{0, 0}},
		{"equals in topic", "raw", "a=b", 0, Range{0, 0}},
		{"empty table", "", "t", 0, Range{0, 0}},
		{"table with slash", "raw/x", "t", 0, Range{0, 0}},
		{"upper-case table", "Raw", "t", 0, Range{0, 0}},
		{"negative partition", "raw", "t", -1, Range{0, 0}},
		{"negative offset", "raw", "t", 0, Range{-1, 5}},
		{"first after last", "raw", "t", 0, Range{6, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("SegmentKey(%q, %q, %d, %v) did not panic", tt.table, tt.topic, tt.partition, tt.r)
				}
			}()
			SegmentKey(tt.table, tt.topic, tt.partition, tt.r)
		})
	}
}

func TestParseSegmentKeyRejects(t *testing.T) {
	const good = "raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet"
	if _, _, _, _, err := ParseSegmentKey(good); err != nil {
		t.Fatalf("ParseSegmentKey(%q): %v", good, err)
	}
	bad := []string{
		"",
		"raw",
		"raw/topic=records/partition=3/",
		"/raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet",
		"lake/raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/x/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet/",
		"Raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/records/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=rec ords/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=../partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=" + strings.Repeat("x", 250) + "/partition=3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=03/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=+3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=-3/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=2147483648/00000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/0000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/000000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/0-99.parquet",
		"raw/topic=records/partition=3/00000000000000000000_00000000000000000099.parquet",
		"raw/topic=records/partition=3/00000000000000000000-0000000000000000009x.parquet",
		"raw/topic=records/partition=3/+0000000000000000000-00000000000000000099.parquet",
		"raw/topic=records/partition=3/-0000000000000000001-00000000000000000099.parquet",
		"raw/topic=records/partition=3/00000000000000000100-00000000000000000099.parquet",
		"raw/topic=records/partition=3/09223372036854775808-09223372036854775808.parquet",
		"raw/topic=records/partition=3/99999999999999999999-99999999999999999999.parquet",
		"raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet.partial",
		"raw/topic=records/partition=3/00000000000000000000-00000000000000000099.PARQUET",
		"raw/topic=records/partition=3/00000000000000000000-00000000000000000099",
		"raw/topic=records/partition=3/.tmp-1-00000000000000000000-00000000000000000099.parquet.partial",
	}
	for _, key := range bad {
		if table, topic, p, r, err := ParseSegmentKey(key); !errors.Is(err, ErrInvalidSegment) {
			t.Errorf("ParseSegmentKey(%q) = %q, %q, %d, %v, %v; want ErrInvalidSegment", key, table, topic, p, r, err)
		}
	}
}

// FuzzParseSegmentKey checks that ParseSegmentKey accepts exactly what
// SegmentKey produces: whatever it accepts, SegmentKey gives back unchanged.
// Seeds are in testdata/fuzz/FuzzParseSegmentKey.
func FuzzParseSegmentKey(f *testing.F) {
	f.Add("raw/topic=records/partition=3/00000000000000000000-00000000000000000099.parquet")
	f.Fuzz(func(t *testing.T, key string) {
		table, topic, partition, r, err := ParseSegmentKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidSegment) {
				t.Fatalf("ParseSegmentKey(%q): error %v does not wrap ErrInvalidSegment", key, err)
			}
			return
		}
		if got := SegmentKey(table, topic, partition, r); got != key {
			t.Fatalf("ParseSegmentKey(%q) = %q, %q, %d, %v; SegmentKey of that = %q", key, table, topic, partition, r, got)
		}
		if err := CheckKey(key); err != nil {
			t.Fatalf("accepted segment key %q is not a valid object key: %v", key, err)
		}
	})
}

func TestSegmentsAndNextOffset(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			keys := []string{
				SegmentKey("raw", "t", 1, Range{100, 199}),
				SegmentKey("raw", "t", 1, Range{0, 99}),
				SegmentKey("raw", "t", 1, Range{200, 200}),
				"raw/topic=t/partition=1/notes.txt",                                         // not a segment
				"raw/topic=t/partition=1/00000000000000000300-00000000000000000200.parquet", // malformed
				"raw/topic=t/partition=1/sub/00000000000000000500-00000000000000000599.parquet",
				SegmentKey("raw", "t", 10, Range{1000, 1999}), // another partition, same prefix digits
				SegmentKey("raw", "t2", 1, Range{5000, 5999}), // another topic
				SegmentKey("dlq", "t", 1, Range{7000, 7000}),  // another table
			}
			for _, k := range keys {
				if err := s.Put(ctx, k, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Segments(ctx, s, "raw", "t", 1)
			if want := []Range{{0, 99}, {100, 199}, {200, 200}}; err != nil || !slices.Equal(got, want) {
				t.Errorf("Segments = %v, %v; want %v", got, err, want)
			}
			for _, tt := range []struct {
				table, topic string
				partition    int32
				next         int64
				ok           bool
			}{
				{"raw", "t", 1, 201, true},
				{"raw", "t", 10, 2000, true},
				{"dlq", "t", 1, 7001, true},
				{"raw", "t", 2, 0, false},
				{"raw", "nope", 0, 0, false},
			} {
				next, ok, err := NextOffset(ctx, s, tt.table, tt.topic, tt.partition)
				if err != nil || next != tt.next || ok != tt.ok {
					t.Errorf("NextOffset(%s, %s, %d) = %d, %v, %v; want %d, %v", tt.table, tt.topic, tt.partition, next, ok, err, tt.next, tt.ok)
				}
			}
			if _, err := Segments(ctx, s, "raw", "bad/topic", 0); err == nil {
				t.Error("Segments accepted an invalid topic")
			}
			if _, _, err := NextOffset(ctx, s, "raw", "t", -1); err == nil {
				t.Error("NextOffset accepted a negative partition")
			}
		})
	}
}
