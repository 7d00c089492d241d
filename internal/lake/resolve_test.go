package lake

import (
	"errors"
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	for _, c := range []struct {
		name             string
		in               []Range
		live, superseded []Range
		overlap          bool
	}{
		{"empty", nil, nil, nil, false},
		{"contiguous", []Range{{0, 9}, {10, 19}}, []Range{{0, 9}, {10, 19}}, nil, false},
		{"hole kept", []Range{{0, 9}, {20, 29}}, []Range{{0, 9}, {20, 29}}, nil, false},
		{"merge with its run", []Range{{0, 9}, {0, 29}, {10, 19}, {20, 29}, {30, 39}},
			[]Range{{0, 29}, {30, 39}}, []Range{{0, 9}, {10, 19}, {20, 29}}, false},
		{"merge starting later", []Range{{0, 9}, {10, 19}, {10, 29}, {20, 29}},
			[]Range{{0, 9}, {10, 29}}, []Range{{10, 19}, {20, 29}}, false},
		{"same range twice", []Range{{0, 9}, {0, 9}}, []Range{{0, 9}}, []Range{{0, 9}}, false},
		{"zombie span", []Range{{0, 9}, {10, 19}, {10, 14}, {15, 24}}, nil, nil, true},
		{"partial overlap", []Range{{0, 9}, {5, 14}}, nil, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			slices.SortFunc(c.in, func(a, b Range) int {
				if a.First != b.First {
					return int(a.First - b.First)
				}
				return int(a.Last - b.Last)
			})
			live, sup, err := Resolve("raw", "t", 0, c.in)
			if c.overlap {
				var oe *OverlapError
				if !errors.Is(err, ErrOverlap) || !errors.As(err, &oe) {
					t.Fatalf("err = %v, want an OverlapError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(live, c.live) || !slices.Equal(sup, c.superseded) {
				t.Fatalf("live %v superseded %v, want %v and %v", live, sup, c.live, c.superseded)
			}
		})
	}
}
