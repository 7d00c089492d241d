package lake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// stores returns a fresh instance of every Store implementation.
func stores(t *testing.T) map[string]Store {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"dir": d, "mem": NewMem()}
}

// storeOp is one step of a Store script: op is put, replace, get, list or
// delete; arg is the key or prefix.
type storeOp struct {
	op, arg string
	data    string   // put, replace: the data; get: the data wanted
	keys    []string // list: the keys wanted, in order
	err     error    // the error wanted (errors.Is), or nil
}

func TestStoreContract(t *testing.T) {
	const seg = "raw/topic=a/partition=1/00000000000000000000-00000000000000000009.parquet"
	scripts := map[string][]storeOp{
		"put get": {
			{op: "get", arg: seg, err: ErrNotExist},
			{op: "put", arg: seg, data: "one"},
			{op: "get", arg: seg, data: "one"},
			{op: "put", arg: seg, data: "two", err: ErrExist},
			{op: "get", arg: seg, data: "one"},
			{op: "put", arg: "empty", data: ""},
			{op: "get", arg: "empty", data: ""},
		},
		"replace": {
			{op: "replace", arg: "checkpoints/CURRENT", data: "ckpt-1"},
			{op: "get", arg: "checkpoints/CURRENT", data: "ckpt-1"},
			{op: "replace", arg: "checkpoints/CURRENT", data: "ckpt-2"},
			{op: "get", arg: "checkpoints/CURRENT", data: "ckpt-2"},
			{op: "put", arg: "checkpoints/CURRENT", data: "x", err: ErrExist},
			{op: "list", arg: "checkpoints/", keys: []string{"checkpoints/CURRENT"}},
		},
		"delete": {
			{op: "delete", arg: seg},
			{op: "put", arg: seg, data: "one"},
			{op: "delete", arg: seg},
			{op: "get", arg: seg, err: ErrNotExist},
			{op: "delete", arg: seg},
			{op: "list", arg: "", keys: nil},
			{op: "put", arg: seg, data: "again"},
			{op: "get", arg: seg, data: "again"},
			{op: "delete", arg: "raw/topic=a"}, // a folder in Dir, nothing in Mem: no object
			{op: "get", arg: seg, data: "again"},
		},
		"list": {
			{op: "put", arg: "raw/topic=a/partition=1/x", data: "1"},
			{op: "put", arg: "raw/topic=a/partition=10/y", data: "22"},
			{op: "put", arg: "raw/topic=ab/partition=1/z", data: "333"},
			{op: "put", arg: "raw.b", data: "4"},
			{op: "put", arg: "rawx/q", data: "5"},
			{op: "put", arg: "dlq/topic=a/partition=1/x", data: "6"},
			{op: "list", arg: "raw/topic=a/partition=1/", keys: []string{"raw/topic=a/partition=1/x"}},
			{op: "list", arg: "raw/topic=a/partition=1", keys: []string{"raw/topic=a/partition=1/x", "raw/topic=a/partition=10/y"}},
			{op: "list", arg: "raw/topic=a", keys: []string{"raw/topic=a/partition=1/x", "raw/topic=a/partition=10/y", "raw/topic=ab/partition=1/z"}},
			{op: "list", arg: "raw/", keys: []string{"raw/topic=a/partition=1/x", "raw/topic=a/partition=10/y", "raw/topic=ab/partition=1/z"}},
			{op: "list", arg: "raw", keys: []string{"raw.b", "raw/topic=a/partition=1/x", "raw/topic=a/partition=10/y", "raw/topic=ab/partition=1/z", "rawx/q"}},
			{op: "list", arg: "", keys: []string{"dlq/topic=a/partition=1/x", "raw.b", "raw/topic=a/partition=1/x", "raw/topic=a/partition=10/y", "raw/topic=ab/partition=1/z", "rawx/q"}},
			{op: "list", arg: "raw/topic=a/partition=1/x", keys: []string{"raw/topic=a/partition=1/x"}},
			{op: "list", arg: "nothing/here/", keys: nil},
			{op: "list", arg: "raw/topic=c", keys: nil},
		},
		"invalid keys": {
			{op: "put", arg: "", err: ErrInvalidKey},
			{op: "put", arg: "/abs", err: ErrInvalidKey},
			{op: "put", arg: "a//b", err: ErrInvalidKey},
			{op: "put", arg: "a/", err: ErrInvalidKey},
			{op: "put", arg: "a/../b", err: ErrInvalidKey},
			{op: "put", arg: "..", err: ErrInvalidKey},
			{op: "put", arg: "./a", err: ErrInvalidKey},
			{op: "put", arg: "a/.tmp-x", err: ErrInvalidKey},
			{op: "put", arg: "a\\b", err: ErrInvalidKey},
			{op: "replace", arg: "../CURRENT", err: ErrInvalidKey},
			{op: "get", arg: "a/../../etc/passwd", err: ErrInvalidKey},
			{op: "delete", arg: "/etc/passwd", err: ErrInvalidKey},
			{op: "list", arg: "/", err: ErrInvalidKey},
			{op: "list", arg: "../", err: ErrInvalidKey},
			{op: "list", arg: "a//", err: ErrInvalidKey},
			{op: "list", arg: "raw/.tmp-", err: ErrInvalidKey},
			{op: "list", arg: "", keys: nil},
		},
	}
	for name, st := range map[string]func(*testing.T) Store{
		"dir": func(t *testing.T) Store { return stores(t)["dir"] },
		"mem": func(t *testing.T) Store { return NewMem() },
	} {
		for script, ops := range scripts {
			t.Run(name+"/"+script, func(t *testing.T) {
				runStoreScript(t, st(t), ops)
			})
		}
	}
}

func runStoreScript(t *testing.T, s Store, ops []storeOp) {
	t.Helper()
	ctx := context.Background()
	for i, o := range ops {
		step := fmt.Sprintf("step %d: %s %q", i, o.op, o.arg)
		var err error
		switch o.op {
		case "put":
			err = s.Put(ctx, o.arg, []byte(o.data))
		case "replace":
			err = s.Replace(ctx, o.arg, []byte(o.data))
		case "delete":
			err = s.Delete(ctx, o.arg)
		case "get":
			var data []byte
			data, err = s.Get(ctx, o.arg)
			if err == nil && string(data) != o.data {
				t.Errorf("%s = %q, want %q", step, data, o.data)
			}
		case "list":
			var objs []Object
			objs, err = s.List(ctx, o.arg)
			var keys []string
			for _, obj := range objs {
				keys = append(keys, obj.Key)
			}
			if err == nil && !slices.Equal(keys, o.keys) {
				t.Errorf("%s = %q, want %q", step, keys, o.keys)
			}
		default:
			t.Fatalf("%s: unknown op", step)
		}
		if !errors.Is(err, o.err) {
			t.Errorf("%s: error %v, want %v", step, err, o.err)
		}
	}
}

func TestStoreListSizes(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, k := range []string{"t/b", "t/a/x", "t/a.x"} {
				if err := s.Put(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.List(ctx, "t/")
			if err != nil {
				t.Fatal(err)
			}
			// Sorted by key bytes: '.' < '/', whatever the folder layout.
			want := []Object{{"t/a.x", 5}, {"t/a/x", 5}, {"t/b", 3}}
			if !slices.Equal(got, want) {
				t.Errorf("List = %v, want %v", got, want)
			}
		})
	}
}

// TestStoreConcurrentPut races Puts of one key: exactly one must win, every
// other must see ErrExist, and the object must be the winner's, whole.
func TestStoreConcurrentPut(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			const n = 16
			key := "raw/topic=race/partition=0/00000000000000000000-00000000000000000000.parquet"
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = s.Put(ctx, key, payload(i))
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("Puts %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, ErrExist):
					t.Errorf("Put %d: %v, want ErrExist", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no Put succeeded")
			}
			got, err := s.Get(ctx, key)
			if err != nil || string(got) != string(payload(winner)) {
				t.Errorf("Get = %d bytes, %v; want the %d bytes of Put %d", len(got), err, len(payload(winner)), winner)
			}
		})
	}
}

// payload is a distinct, large enough value for writer i.
func payload(i int) []byte {
	b := make([]byte, 64<<10+i)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

func TestStoreCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, s := range stores(t) {
		if err := s.Put(ctx, "k", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Put on a canceled context: %v", name, err)
		}
		if _, err := s.List(ctx, ""); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: List on a canceled context: %v", name, err)
		}
	}
}
