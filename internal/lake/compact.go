package lake

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/thresher-ml/thresher/schemas"
)

// DefaultCompactTarget is the size up to which compaction merges segments.
const DefaultCompactTarget = 64 << 20

// ErrCompactRace is wrapped by the error of a merge that another compaction
// of the same partition crossed; the merge was undone and the next
// compaction retries it.
var ErrCompactRace = errors.New("lake: a concurrent compaction crossed this one")

// CompactStats counts what a compaction did.
type CompactStats struct {
	Partitions int   // partitions looked at (raw and dlq of one partition count once)
	Written    int   // merged segments written
	Replaced   int   // segments the merged ones replaced
	Deleted    int   // segments deleted: the replaced ones and any left superseded
	Bytes      int64 // bytes of the merged segments
}

func (c *CompactStats) add(o CompactStats) {
	c.Partitions += o.Partitions
	c.Written += o.Written
	c.Replaced += o.Replaced
	c.Deleted += o.Deleted
	c.Bytes += o.Bytes
}

func (c CompactStats) String() string {
	return fmt.Sprintf("partitions=%d merged=%d replaced=%d deleted=%d bytes=%d",
		c.Partitions, c.Written, c.Replaced, c.Deleted, c.Bytes)
}

// Compact compacts every partition of the raw and dlq tables (see
// CompactPartition). It goes on after a partition fails and returns the
// errors of all that failed.
func Compact(ctx context.Context, s Store, target int64) (CompactStats, error) {
	type pkey struct {
		topic string
		part  int32
	}
	objs := map[pkey]*[2][]Object{}
	var order []pkey
	for i, table := range []string{schemas.TableRaw, schemas.TableDLQ} {
		listed, err := s.List(ctx, table+"/")
		if err != nil {
			return CompactStats{}, err
		}
		for _, o := range listed {
			tb, tp, p, _, err := ParseSegmentKey(o.Key)
			if err != nil || tb != table {
				continue
			}
			k := pkey{tp, p}
			if objs[k] == nil {
				objs[k] = &[2][]Object{}
				order = append(order, k)
			}
			objs[k][i] = append(objs[k][i], o)
		}
	}
	slices.SortFunc(order, func(a, b pkey) int { return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.part, b.part)) })
	var total CompactStats
	var errs []error
	for _, k := range order {
		st, err := compactPartition(ctx, s, k.topic, k.part, objs[k][0], objs[k][1], target)
		total.add(st)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return total, errors.Join(errs...)
}

// CompactPartition merges, in one partition of the raw table and then of the
// dlq table, runs of adjacent segments each smaller than target into one
// segment <first>-<last> of at most about target bytes, however recent they
// are, and deletes the segments it replaced and any that a live segment
// already contains (left by a compaction that stopped between its put and
// its deletes).
//
// A merge is atomic for readers: the merged segment is put first, and from
// then on readers that resolve the partition (ListSegments, Resolve) read it
// and skip the run it contains; only then is the run deleted. A crash in
// between leaves a state readers handle, which the next compaction
// finishes. A raw run holds contiguous segments only (never across a hole
// of offsets); a dlq run holds dlq segments that one live raw segment
// contains, so every dlq segment stays within one raw segment. Segments of
// another format version than this build writes are left alone.
//
// Two compactions of one partition at once are safe: a merge that finds its
// segment crossing another's once put deletes it again (ErrCompactRace)
// before deleting anything else. Readers may fail in that instant with
// ErrOverlap; run one compactor per partition (ingest compacts the
// partitions it holds; `thresher compact` is for lakes whose ingest does
// not).
func CompactPartition(ctx context.Context, s Store, topic string, partition int32, target int64) (CompactStats, error) {
	var objs [2][]Object
	for i, table := range []string{schemas.TableRaw, schemas.TableDLQ} {
		listed, err := s.List(ctx, PartitionPrefix(table, topic, partition))
		if err != nil {
			return CompactStats{}, err
		}
		objs[i] = listed
	}
	return compactPartition(ctx, s, topic, partition, objs[0], objs[1], target)
}

func compactPartition(ctx context.Context, s Store, topic string, partition int32, rawObjs, dlqObjs []Object, target int64) (CompactStats, error) {
	if target <= 0 {
		return CompactStats{}, fmt.Errorf("lake: compaction target size %d must be positive", target)
	}
	st := CompactStats{Partitions: 1}
	rawLive, rawSup, _, err := resolveObjects(schemas.TableRaw, rawObjs)
	if err != nil {
		return st, err
	}
	c := compaction{s: s, topic: topic, partition: partition, target: target, stats: &st}
	rawLive, err = c.table(ctx, schemas.TableRaw, rawLive, rawSup, func(run []Segment, next Segment) bool {
		return next.Range.First == run[len(run)-1].Range.Last+1
	}, mergeRows[schemas.Raw])
	if err != nil {
		return st, err
	}
	dlqLive, dlqSup, _, err := resolveObjects(schemas.TableDLQ, dlqObjs)
	if err != nil {
		return st, err
	}
	// container returns the index of the live raw segment holding r, or -1.
	container := func(r Range) int {
		i, _ := slices.BinarySearchFunc(rawLive, r.First, func(sg Segment, first int64) int {
			return cmp.Compare(sg.Range.Last, first)
		})
		if i < len(rawLive) && rawLive[i].Range.First <= r.First && r.Last <= rawLive[i].Range.Last {
			return i
		}
		return -1
	}
	_, err = c.table(ctx, schemas.TableDLQ, dlqLive, dlqSup, func(run []Segment, next Segment) bool {
		i := container(run[0].Range)
		return i >= 0 && i == container(next.Range)
	}, mergeRows[schemas.DLQ])
	return st, err
}

// compaction is the compaction of one partition.
type compaction struct {
	s         Store
	topic     string
	partition int32
	target    int64
	stats     *CompactStats
}

// mergeFunc writes the rows of a run's segments, in order, into one file.
type mergeFunc func(ctx context.Context, s Store, table string, run []Segment) ([]byte, error)

// errOtherVersion marks a run holding a segment of another format version.
var errOtherVersion = errors.New("lake: segment of another format version")

// table compacts the live segments of one table of the partition: it
// deletes the superseded ones, then merges runs; sameRun says whether next
// may join run. It returns the live segments after the merges.
func (c *compaction) table(ctx context.Context, table string, live, superseded []Segment, sameRun func(run []Segment, next Segment) bool, merge mergeFunc) ([]Segment, error) {
	for _, sg := range superseded {
		if err := c.s.Delete(ctx, sg.Key); err != nil {
			return nil, err
		}
		c.stats.Deleted++
	}
	var out, run []Segment
	var size int64
	flush := func() error {
		defer func() { run, size = nil, 0 }()
		if len(run) < 2 {
			out = append(out, run...)
			return nil
		}
		merged, err := c.merge(ctx, table, run, merge)
		if errors.Is(err, errOtherVersion) {
			out = append(out, run...)
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, merged)
		return nil
	}
	for _, sg := range live {
		if sg.Size >= c.target {
			if err := flush(); err != nil {
				return nil, err
			}
			out = append(out, sg)
			continue
		}
		if len(run) > 0 && (size+sg.Size > c.target || !sameRun(run, sg)) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		run = append(run, sg)
		size += sg.Size
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// mergeFinishTimeout bounds the deletes that finish a merge once its
// segment is put, whatever the caller's context says.
const mergeFinishTimeout = time.Minute

// merge replaces a run by one segment: put the merged segment, check that
// no other compaction's segment crosses it, delete the run.
func (c *compaction) merge(ctx context.Context, table string, run []Segment, merge mergeFunc) (Segment, error) {
	r := Range{First: run[0].Range.First, Last: run[len(run)-1].Range.Last}
	key := segmentKey(table, c.topic, c.partition, r)
	data, err := merge(ctx, c.s, table, run)
	if err != nil {
		return Segment{}, err
	}
	if err := c.s.Put(ctx, key, data); err != nil && !errors.Is(err, ErrExist) {
		return Segment{}, err
	}
	// Once the merged segment is put, finish the merge even if ctx ends
	// meanwhile (an ingest generation ending, a signal): a run left beside
	// its merge is read correctly by readers that resolve the partition, but
	// a plain glob would see its records twice until the next compaction.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mergeFinishTimeout)
	defer cancel()
	objs, err := c.s.List(ctx, partitionPrefix(table, c.topic, c.partition))
	if err != nil {
		return Segment{}, err
	}
	var segs []Segment
	for _, o := range objs {
		if _, _, _, sr, err := ParseSegmentKey(o.Key); err == nil {
			segs = append(segs, Segment{Key: o.Key, Range: sr})
		}
	}
	slices.SortFunc(segs, func(a, b Segment) int {
		return cmp.Or(cmp.Compare(a.Range.First, b.Range.First), cmp.Compare(a.Range.Last, b.Range.Last))
	})
	_, _, overlaps := resolveOverlaps(table, c.topic, c.partition, segs)
	for _, o := range overlaps {
		if o.A == r || o.B == r {
			if err := c.s.Delete(ctx, key); err != nil {
				return Segment{}, err
			}
			return Segment{}, fmt.Errorf("%w: %w", ErrCompactRace, o)
		}
	}
	for _, sg := range run {
		if err := c.s.Delete(ctx, sg.Key); err != nil {
			return Segment{}, err
		}
	}
	c.stats.Written++
	c.stats.Replaced += len(run)
	c.stats.Deleted += len(run)
	c.stats.Bytes += int64(len(data))
	return Segment{Key: key, Topic: c.topic, Partition: c.partition, Range: r, Size: int64(len(data))}, nil
}

// mergeRows copies the rows of the run's segments, as Parquet rows (nulls,
// values and order kept), into one file with the table's schema of T,
// metadata and encodings (as EncodeRows writes them).
func mergeRows[T any](ctx context.Context, s Store, table string, run []Segment) (_ []byte, err error) {
	defer recoverCorrupt(&err)
	version := map[string]int{schemas.TableRaw: schemas.RawVersion, schemas.TableDLQ: schemas.DLQVersion}[table]
	var buf bytes.Buffer
	var w *parquet.GenericWriter[T]
	var want, got int64
	for _, sg := range run {
		data, err := s.Get(ctx, sg.Key)
		if err != nil {
			return nil, err
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
			parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			return nil, fmt.Errorf("lake: %s: %w", sg.Key, err)
		}
		if v, _ := f.Lookup(schemas.MetaVersion); v != strconv.Itoa(version) {
			return nil, fmt.Errorf("%w: %s is version %q", errOtherVersion, sg.Key, v)
		}
		if w == nil {
			w = parquet.NewGenericWriter[T](&buf,
				rowsSchema[T](),
				parquet.KeyValueMetadata(schemas.MetaTable, table),
				parquet.KeyValueMetadata(schemas.MetaVersion, strconv.Itoa(version)),
				parquet.Compression(rowsZstd),
				parquet.PageBufferSize(DefaultPageSize),
				parquet.MaxRowsPerRowGroup(rowGroupRows(f)),
			)
		}
		want += f.NumRows()
		for _, rg := range f.RowGroups() {
			rows := rg.Rows()
			n, err := parquet.CopyRows(w, rows)
			rows.Close()
			got += n
			if err != nil {
				return nil, fmt.Errorf("lake: merging %s: %w", sg.Key, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("lake: merging %s segments: %w", table, err)
	}
	if got != want {
		return nil, fmt.Errorf("lake: merging %s segments copied %d rows of %d", table, got, want)
	}
	return buf.Bytes(), nil
}

// rowGroupRows sizes the merged file's row groups like the Encoder's: at
// most DefaultRowGroupRows rows or about DefaultRowGroupBytes of
// uncompressed data, from the rows' average size in f. The writer buffers a
// row group in memory, so this bounds what a merge holds.
func rowGroupRows(f *parquet.File) int64 {
	var bytes, rows int64
	for _, rg := range f.Metadata().RowGroups {
		bytes += rg.TotalByteSize
		rows += rg.NumRows
	}
	if rows == 0 || bytes <= 0 {
		return DefaultRowGroupRows
	}
	return min(max(DefaultRowGroupBytes/max(bytes/rows, 1), 1024), DefaultRowGroupRows)
}
