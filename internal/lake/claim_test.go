package lake

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestClaimKey(t *testing.T) {
	if got, want := ClaimKey("records", 3, 42), "_claims/topic=records/partition=3/00000000000000000042"; got != want {
		t.Fatalf("ClaimKey = %q, want %q", got, want)
	}
	if err := CheckKey(ClaimKey("a.b-c_d", 0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(){
		func() { ClaimKey("bad topic", 0, 0) },
		func() { ClaimKey("t", -1, 0) },
		func() { ClaimKey("t", 0, -1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on an invalid claim key")
				}
			}()
			f()
		}()
	}
}

func TestPutClaim(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a := Claim{Range: Range{First: 10, Last: 19}, Owner: "a"}
			if err := PutClaim(ctx, s, "t", 0, a); err != nil {
				t.Fatal(err)
			}
			// A retry of the same claim succeeds.
			if err := PutClaim(ctx, s, "t", 0, a); err != nil {
				t.Fatalf("retry: %v", err)
			}
			// Another owner, or another range, loses.
			for _, c := range []Claim{
				{Range: Range{First: 10, Last: 19}, Owner: "b"},
				{Range: Range{First: 10, Last: 14}, Owner: "a"},
			} {
				err := PutClaim(ctx, s, "t", 0, c)
				var ce *ClaimedError
				if !errors.Is(err, ErrClaimed) || !errors.As(err, &ce) || ce.Held != a || ce.Want != c {
					t.Fatalf("PutClaim(%v) = %v, want a ClaimedError holding %v", c, err, a)
				}
			}
			// Claims of other partitions and offsets are independent.
			if err := PutClaim(ctx, s, "t", 1, Claim{Range: Range{First: 10, Last: 12}, Owner: "b"}); err != nil {
				t.Fatal(err)
			}
			got, ok, err := GetClaim(ctx, s, "t", 0, 10)
			if err != nil || !ok || got != a {
				t.Fatalf("GetClaim = %v %v %v, want %v", got, ok, err, a)
			}
			if _, ok, err := GetClaim(ctx, s, "t", 0, 20); ok || err != nil {
				t.Fatalf("GetClaim of a free offset = %v %v", ok, err)
			}
			if first, ok, err := FirstClaim(ctx, s, "t", 0); first != 10 || !ok || err != nil {
				t.Fatalf("FirstClaim = %d %v %v", first, ok, err)
			}
			if _, ok, err := FirstClaim(ctx, s, "t", 2); ok || err != nil {
				t.Fatalf("FirstClaim of an unclaimed partition = %v %v", ok, err)
			}
			// A claim object whose name and content disagree is refused.
			data, _ := EncodeClaim(Claim{Range: Range{First: 7, Last: 9}, Owner: "x"})
			if err := s.Put(ctx, ClaimKey("t", 0, 30), data); err != nil {
				t.Fatal(err)
			}
			if _, _, err := GetClaim(ctx, s, "t", 0, 30); !errors.Is(err, ErrInvalidClaim) {
				t.Fatalf("GetClaim of a misnamed claim: %v", err)
			}
		})
	}
}

// TestTakeover checks the chain of claims: a new holder follows the claims
// earlier holders made and claims the first free offset, after which a
// paused earlier holder can commit only what it had claimed.
func TestTakeover(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	put := func(c Claim) {
		t.Helper()
		if err := PutClaim(ctx, s, "t", 0, c); err != nil {
			t.Fatal(err)
		}
	}
	// Holder a took over at 0, committed 0-99 and claimed 100-149 before
	// pausing (its segment 100-149 is not written).
	a0 := Claim{Range: Range{First: 0, Last: 0}, Owner: "a"}
	a1 := Claim{Range: Range{First: 1, Last: 99}, Owner: "a"}
	a2 := Claim{Range: Range{First: 100, Last: 149}, Owner: "a"}
	put(a0)
	put(a1)
	put(a2)
	// Holder b resumes where the lake ends (100): it must cut 100-149 as
	// a claimed, and claims 150 alone.
	chain, err := Takeover(ctx, s, "t", 0, 100, "b")
	if err != nil {
		t.Fatal(err)
	}
	b0 := Claim{Range: Range{First: 150, Last: 150}, Owner: "b"}
	if !slices.Equal(chain, []Claim{a2, b0}) {
		t.Fatalf("chain %v, want %v", chain, []Claim{a2, b0})
	}
	// a wakes with a span 150-180 and is fenced; b goes on at 151.
	if err := PutClaim(ctx, s, "t", 0, Claim{Range: Range{First: 150, Last: 180}, Owner: "a"}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("the paused holder's claim: %v, want ErrClaimed", err)
	}
	put(Claim{Range: Range{First: 151, Last: 170}, Owner: "b"})
	// A third holder, starting from an older lake position, walks the
	// whole chain.
	chain, err = Takeover(ctx, s, "t", 0, 0, "c")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(chain); n != 6 || chain[n-1] != (Claim{Range: Range{First: 171, Last: 171}, Owner: "c"}) {
		t.Fatalf("chain %v", chain)
	}
}

// TestTakeoverRace runs takeovers of one partition at once: each claims a
// different offset, and the chain stays one line.
func TestTakeoverRace(t *testing.T) {
	ctx := context.Background()
	s := NewMem()
	const n = 8
	owns := make(chan Claim, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			chain, err := Takeover(ctx, s, "t", 0, 0, string(rune('a'+i)))
			if err != nil {
				errs <- err
				return
			}
			owns <- chain[len(chain)-1]
		}()
	}
	seen := map[int64]string{}
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case c := <-owns:
			if c.First != c.Last || seen[c.First] != "" {
				t.Fatalf("takeover claim %v (seen %v)", c, seen)
			}
			seen[c.First] = c.Owner
		}
	}
	for off := range int64(n) {
		if seen[off] == "" {
			t.Fatalf("offsets claimed %v: not one line from 0", seen)
		}
	}
}

func TestDecodeClaim(t *testing.T) {
	good, err := EncodeClaim(Claim{Range: Range{First: 5, Last: 9}, Owner: "m/generation=3/ab"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DecodeClaim(good); err != nil || c.First != 5 || c.Last != 9 || c.Owner != "m/generation=3/ab" {
		t.Fatalf("DecodeClaim = %v, %v", c, err)
	}
	for _, bad := range []string{
		``, `{}`, `[1]`, `{"version":2,"first":1,"last":2,"owner":"a"}`,
		`{"version":1,"first":3,"last":2,"owner":"a"}`, `{"version":1,"first":-1,"last":2,"owner":"a"}`,
		`{"version":1,"first":1,"last":2,"owner":""}`, `{"version":1,"first":1,"last":2,"owner":"a","x":1}`,
		`{"version":1,"first":1,"last":2,"owner":"a"} {}`, `{"version":1,"first":1,"last":2,"owner":"` + strings.Repeat("a", 300) + `"}`,
	} {
		if _, err := DecodeClaim([]byte(bad)); !errors.Is(err, ErrInvalidClaim) {
			t.Errorf("DecodeClaim(%q) = %v, want ErrInvalidClaim", bad, err)
		}
	}
}

func FuzzDecodeClaim(f *testing.F) {
	good, _ := EncodeClaim(Claim{Range: Range{First: 5, Last: 9}, Owner: "m"})
	f.Add(good)
	f.Add([]byte(`{"version":1,"first":0,"last":0,"owner":"x"}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeClaim(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidClaim) {
				t.Fatalf("error %v does not wrap ErrInvalidClaim", err)
			}
			return
		}
		// What decodes re-encodes to an object that decodes the same.
		again, err := EncodeClaim(c)
		if err != nil {
			t.Fatalf("decoded claim %v does not encode: %v", c, err)
		}
		if c2, err := DecodeClaim(again); err != nil || c2 != c {
			t.Fatalf("round trip %v -> %v, %v", c, c2, err)
		}
	})
}
