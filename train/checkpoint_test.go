package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
)

func testCheckpoint(step int64) *Checkpoint {
	learner := bytes.Repeat([]byte(fmt.Sprintf("learner-%d;", step)), 100)
	return &Checkpoint{
		Meta: CheckpointMeta{
			Step: step, Batches: step * 2, ExamplesSeen: step * 64, TokensSeen: step * 900,
			Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), LakeWindow: 3, Epoch: 1, ConfigHash: "abc",
		},
		Learner: learner,
		Cursor:  []byte(fmt.Sprintf("cursor-%d", step)),
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, ck := range []*Checkpoint{
		testCheckpoint(0),
		testCheckpoint(123456789),
		{Meta: CheckpointMeta{Step: 7}}, // empty blobs
	} {
		data, err := ck.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Checkpoint
		if err := got.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		if got.Meta != ck.Meta || !bytes.Equal(got.Learner, ck.Learner) || !bytes.Equal(got.Cursor, ck.Cursor) {
			t.Fatalf("round trip: got %+v, want %+v", got.Meta, ck.Meta)
		}
	}
}

func TestCheckpointDetectsCorruption(t *testing.T) {
	data, err := testCheckpoint(42).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Every single-bit flip and every truncation is detected.
	for i := 0; i < len(data); i++ {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= bit
			if err := new(Checkpoint).UnmarshalBinary(bad); !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("flip of bit %x at byte %d: err %v", bit, i, err)
			}
		}
	}
	for n := 0; n < len(data); n++ {
		if err := new(Checkpoint).UnmarshalBinary(data[:n]); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
	if err := new(Checkpoint).UnmarshalBinary(append(bytes.Clone(data), 0)); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("trailing byte: err %v", err)
	}
}

func TestCheckpointKey(t *testing.T) {
	if got, want := CheckpointKey(1000), "checkpoints/000000001000.ckpt"; got != want {
		t.Fatalf("CheckpointKey = %q, want %q", got, want)
	}
	for key, want := range map[string]int64{
		"checkpoints/000000001000.ckpt": 1000, "checkpoints/CURRENT": -1, "checkpoints/12.ckpt": -1,
		"checkpoints/000000001000.ckpt.x": -1, "other/000000001000.ckpt": -1,
	} {
		step, ok := parseCheckpointKey(key)
		if !ok {
			step = -1
		}
		if step != want {
			t.Errorf("parseCheckpointKey(%q) = %d, want %d", key, step, want)
		}
	}
}

func mustSave(t *testing.T, cs *CheckpointStore, step int64) string {
	t.Helper()
	key, err := cs.Save(context.Background(), testCheckpoint(step))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func mustKeys(t *testing.T, cs *CheckpointStore) []string {
	t.Helper()
	keys, err := cs.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestCheckpointStoreSaveLoadRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cs := NewCheckpointStore(store, 3, nil)
	if _, _, err := cs.Load(ctx); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty lake: Load err %v, want ErrNoCheckpoint", err)
	}
	for _, step := range []int64{10, 20, 30, 40, 50} {
		mustSave(t, cs, step)
	}
	want := []string{CheckpointKey(30), CheckpointKey(40), CheckpointKey(50)}
	if got := mustKeys(t, cs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after retention: %v, want %v", got, want)
	}
	ck, key, err := cs.Load(ctx)
	if err != nil || key != CheckpointKey(50) || ck.Meta.Step != 50 || string(ck.Cursor) != "cursor-50" {
		t.Fatalf("Load = step %v key %q err %v", ck, key, err)
	}
	cur, err := os.ReadFile(filepath.Join(dir, "checkpoints", "CURRENT"))
	if err != nil || string(cur) != CheckpointKey(50)+"\n" {
		t.Fatalf("CURRENT holds %q (%v)", cur, err)
	}

	// A redo of a committed step keeps the object already there.
	if key := mustSave(t, cs, 50); key != CheckpointKey(50) {
		t.Fatalf("redo saved %q", key)
	}
	other := testCheckpoint(50)
	other.Learner = []byte("a different state")
	if _, err := cs.Save(ctx, other); err != nil {
		t.Fatalf("redo with another state: %v", err)
	}
	if ck, _, _ := cs.Load(ctx); !bytes.Equal(ck.Learner, testCheckpoint(50).Learner) {
		t.Fatal("a redo replaced a committed checkpoint object")
	}
}

func TestCheckpointRetentionKeepsCurrent(t *testing.T) {
	ctx := context.Background()
	store := lake.NewMem()
	cs := NewCheckpointStore(store, 2, nil)
	mustSave(t, cs, 10)
	// Objects of later steps that never became CURRENT (a run that died
	// between put and pointer update, twice).
	for _, step := range []int64{100, 200, 300} {
		data, _ := testCheckpoint(step).MarshalBinary()
		if err := store.Put(ctx, CheckpointKey(step), data); err != nil {
			t.Fatal(err)
		}
	}
	key := mustSave(t, cs, 20) // the newest 2 are 200 and 300, but 20 is CURRENT
	keys := mustKeys(t, cs)
	if fmt.Sprint(keys) != fmt.Sprint([]string{key, CheckpointKey(200), CheckpointKey(300)}) {
		t.Fatalf("keys %v: CURRENT's target %s must survive retention", keys, key)
	}
	if ck, got, err := cs.Load(ctx); err != nil || got != key || ck.Meta.Step != 20 {
		t.Fatalf("Load = %q, %v; want %s", got, err, key)
	}
	// DropAfter removes the objects that were never committed.
	if err := cs.DropAfter(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if keys := mustKeys(t, cs); fmt.Sprint(keys) != fmt.Sprint([]string{key}) {
		t.Fatalf("after DropAfter: %v", keys)
	}
}

func TestCheckpointLoadFallsBack(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		damage   func(t *testing.T, store lake.Store)
		wantStep int64
	}{
		{"garbage CURRENT", func(t *testing.T, s lake.Store) {
			must(t, s.Replace(ctx, CurrentKey, []byte("\x00\xffnot a key")))
		}, 30},
		{"empty CURRENT", func(t *testing.T, s lake.Store) {
			must(t, s.Replace(ctx, CurrentKey, nil))
		}, 30},
		{"CURRENT names a missing object", func(t *testing.T, s lake.Store) {
			must(t, s.Replace(ctx, CurrentKey, []byte(CheckpointKey(99)+"\n")))
		}, 30},
		{"no CURRENT", func(t *testing.T, s lake.Store) {
			must(t, s.Delete(ctx, CurrentKey))
		}, 30},
		{"CURRENT's object corrupt", func(t *testing.T, s lake.Store) {
			corrupt(t, s, CheckpointKey(30))
		}, 20},
		{"CURRENT's object and the next corrupt", func(t *testing.T, s lake.Store) {
			corrupt(t, s, CheckpointKey(30))
			corrupt(t, s, CheckpointKey(20))
		}, 10},
		{"object under another step's key", func(t *testing.T, s lake.Store) {
			data, _ := testCheckpoint(10).MarshalBinary()
			must(t, s.Delete(ctx, CheckpointKey(30)))
			must(t, s.Put(ctx, CheckpointKey(30), data))
		}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := lake.OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cs := NewCheckpointStore(store, 3, nil)
			for _, step := range []int64{10, 20, 30} {
				mustSave(t, cs, step)
			}
			tt.damage(t, store)
			ck, key, err := cs.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Meta.Step != tt.wantStep || key != CheckpointKey(tt.wantStep) {
				t.Fatalf("resumed from %s (step %d), want step %d", key, ck.Meta.Step, tt.wantStep)
			}
		})
	}
	t.Run("nothing valid", func(t *testing.T) {
		store := lake.NewMem()
		cs := NewCheckpointStore(store, 3, nil)
		mustSave(t, cs, 10)
		corrupt(t, store, CheckpointKey(10))
		if _, _, err := cs.Load(ctx); !errors.Is(err, ErrNoCheckpoint) {
			t.Fatalf("err %v, want ErrNoCheckpoint", err)
		}
		// Saving over the corrupt object repairs it.
		mustSave(t, cs, 10)
		if ck, _, err := cs.Load(ctx); err != nil || ck.Meta.Step != 10 {
			t.Fatalf("after repair: %v", err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// corrupt rewrites the object at key with one byte flipped in the middle.
func corrupt(t *testing.T, s lake.Store, key string) {
	t.Helper()
	ctx := context.Background()
	data, err := s.Get(ctx, key)
	must(t, err)
	data[len(data)/2] ^= 0x10
	must(t, s.Delete(ctx, key))
	must(t, s.Put(ctx, key, data))
}

func TestReadCheckpointFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.ckpt")
	data, _ := testCheckpoint(5).MarshalBinary()
	must(t, os.WriteFile(path, data, 0o644))
	ck, err := ReadCheckpointFile(path)
	if err != nil || ck.Meta.Step != 5 {
		t.Fatalf("ReadCheckpointFile: %v", err)
	}
	must(t, os.WriteFile(path, data[:len(data)-1], 0o644))
	if _, err := ReadCheckpointFile(path); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("torn file: %v", err)
	}
}

// FuzzCheckpointUnmarshal checks that no input makes the decoder panic and
// that whatever it accepts encodes and decodes back to itself.
func FuzzCheckpointUnmarshal(f *testing.F) {
	for _, ck := range []*Checkpoint{testCheckpoint(0), testCheckpoint(99), {}} {
		data, _ := ck.MarshalBinary()
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte("THRCKPT\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var ck Checkpoint
		if err := ck.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("error %v does not wrap ErrCorruptCheckpoint", err)
			}
			return
		}
		again, err := ck.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Checkpoint
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
		if !back.Meta.Time.Equal(ck.Meta.Time) || !bytes.Equal(back.Learner, ck.Learner) || !bytes.Equal(back.Cursor, ck.Cursor) {
			t.Fatal("round trip changed the checkpoint")
		}
	})
}

// TestRetentionKeepsPromoted: retention and DropAfter never delete the
// checkpoint PROMOTED names; a torn PROMOTED stops retention rather than
// risking it.
func TestRetentionKeepsPromoted(t *testing.T) {
	ctx := context.Background()
	s := lake.NewMem()
	cs := NewCheckpointStore(s, 2, nil)
	if _, err := cs.Promoted(ctx); !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("Promoted on a fresh lake: %v", err)
	}
	mustSave(t, cs, 10)
	must(t, cs.Promote(ctx, CheckpointKey(10)))
	for _, step := range []int64{20, 30, 40} {
		mustSave(t, cs, step)
	}
	if got, want := mustKeys(t, cs), []string{CheckpointKey(10), CheckpointKey(30), CheckpointKey(40)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after retention: %v, want %v", got, want)
	}
	must(t, cs.Promote(ctx, CheckpointKey(40)))
	mustSave(t, cs, 50)
	if got, want := mustKeys(t, cs), []string{CheckpointKey(40), CheckpointKey(50)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the promotion moved on: %v, want %v", got, want)
	}
	must(t, cs.DropAfter(ctx, 30))
	if got, want := mustKeys(t, cs), []string{CheckpointKey(40)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("DropAfter(30): %v, want %v (the promoted one spared)", got, want)
	}
	must(t, s.Replace(ctx, PromotedKey, []byte("garbage")))
	if _, err := cs.Promoted(ctx); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("torn PROMOTED: %v", err)
	}
	for _, step := range []int64{60, 70, 80} {
		mustSave(t, cs, step)
	}
	if got := mustKeys(t, cs); len(got) != 4 {
		t.Fatalf("retention with a torn PROMOTED deleted checkpoints: %v", got)
	}
	if err := cs.Promote(ctx, "checkpoints/CURRENT"); err == nil {
		t.Fatal("promoted a key that is not a checkpoint's")
	}
	must(t, cs.Unpromote(ctx))
	must(t, cs.Unpromote(ctx))
}

// TestRetentionKeepsHeads: the checkpoint holding a task's newest adapter
// head outlives retention (the head embeds with it); older heads go with
// their checkpoints, heads first.
func TestRetentionKeepsHeads(t *testing.T) {
	ctx := context.Background()
	s := lake.NewMem()
	cs := NewCheckpointStore(s, 2, nil)
	for _, step := range []int64{10, 20} {
		mustSave(t, cs, step)
	}
	must(t, s.Put(ctx, HeadKey(10, "wordnet"), []byte("old head")))
	must(t, s.Put(ctx, HeadKey(20, "wordnet"), []byte("new head")))
	must(t, s.Put(ctx, HeadKey(10, "debian"), []byte("only head")))
	for _, step := range []int64{30, 40, 50} {
		mustSave(t, cs, step)
	}
	if got, want := mustKeys(t, cs), []string{CheckpointKey(10), CheckpointKey(20), CheckpointKey(40), CheckpointKey(50)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after retention: %v, want %v", got, want)
	}
	must(t, s.Put(ctx, HeadKey(50, "debian"), []byte("newer head")))
	mustSave(t, cs, 60)
	// Step 10 no longer holds a newest head: it goes, with both its heads.
	if got, want := mustKeys(t, cs), []string{CheckpointKey(20), CheckpointKey(50), CheckpointKey(60)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the newer head: %v, want %v", got, want)
	}
	for _, k := range []string{HeadKey(10, "wordnet"), HeadKey(10, "debian")} {
		if _, err := s.Get(ctx, k); !errors.Is(err, lake.ErrNotExist) {
			t.Errorf("%s outlived its checkpoint: %v", k, err)
		}
	}
	for _, k := range []string{HeadKey(20, "wordnet"), HeadKey(50, "debian")} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}
