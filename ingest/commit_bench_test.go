package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// BenchmarkCommit commits a span of 100 records to a partition that already
// holds 1,000 or 100,000 segments, on the local Dir store, two ways:
//
//   - position=listed: the lake is listed before each commit to check where
//     the partition ends (lake.NextOffset), as commits did before claims;
//     its cost grows with the partition's segments.
//   - position=claimed: the position is kept in memory and the span's first
//     offset is claimed with a put-if-absent (partition.commit): one small
//     object more, whatever the lake holds.
//
// Both encode and put the same DLQ and raw segments.
//
//	go test -run '^$' -bench Commit -benchtime 20x ./ingest/ | tee new.txt
//	benchstat new.txt
func BenchmarkCommit(b *testing.B) {
	for _, segments := range []int64{1000, 100_000} {
		benchCommit(b, segments)
	}
}

func benchCommit(b *testing.B, segments int64) {
	const spanLen = 100
	dir := b.TempDir()
	// Lay the segments out directly: Put would fsync each one.
	prefix := filepath.Join(dir, filepath.FromSlash(lake.PartitionPrefix(schemas.TableRaw, "t", 0)))
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range segments {
		key := lake.SegmentKey(schemas.TableRaw, "t", 0, lake.Range{First: i * spanLen, Last: i*spanLen + spanLen - 1})
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), []byte("PAR1"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	store, err := lake.OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	next := segments * spanLen
	for _, mode := range []string{"listed", "claimed"} {
		b.Run(fmt.Sprintf("segments=%d/position=%s", segments, mode), func(b *testing.B) {
			p := benchPartition(b, store)
			p.owner, p.point = "bench", next
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := testSpan(next, next+spanLen-1)
				b.StartTimer()
				var err error
				if mode == "listed" {
					err = commitListed(ctx, p, s)
					p.point = s.last + 1
				} else {
					err = p.commit(ctx, s)
				}
				s.release()
				if err != nil {
					b.Fatal(err)
				}
				next += spanLen
			}
		})
	}
}

// commitListed commits a span as commits did before claims: list the
// partition to check that the lake ends where the span starts, then put the
// DLQ and raw segments.
func commitListed(ctx context.Context, p *partition, s *span) error {
	n, ok, err := lake.NextOffset(ctx, p.in.store, schemas.TableRaw, p.topic, p.id)
	if err != nil {
		return err
	}
	if ok && n != s.first {
		return fmt.Errorf("%w: lake is at offset %d, this member at %d", ErrFenced, n, s.first)
	}
	r := lake.Range{First: s.first, Last: s.last}
	if s.dlq != nil {
		data, err := p.dlqEnc.Encode(s.dlq)
		if err != nil {
			return err
		}
		if err := p.in.store.Put(ctx, lake.SegmentKey(schemas.TableDLQ, p.topic, p.id, r), data); err != nil {
			return err
		}
	}
	data, err := p.rawEnc.Encode(s.raw)
	if err != nil {
		return err
	}
	return p.in.store.Put(ctx, lake.SegmentKey(schemas.TableRaw, p.topic, p.id, r), data)
}

func benchPartition(b *testing.B, store lake.Store) *partition {
	b.Helper()
	cfg := Config{Brokers: []string{"127.0.0.1:9"}, Topics: []string{"t"}, Group: "g", Lake: "bench"}
	cfg.SetDefaults()
	off := Duration(0)
	cfg.CompactInterval = &off
	in, err := New(cfg, store, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &partition{in: in, topic: "t", id: 0}
	if p.rawEnc, err = lake.NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion); err != nil {
		b.Fatal(err)
	}
	if p.dlqEnc, err = lake.NewEncoder[schemas.DLQ](schemas.TableDLQ, schemas.DLQVersion); err != nil {
		b.Fatal(err)
	}
	return p
}
