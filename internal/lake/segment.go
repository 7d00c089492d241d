package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidSegment is returned by ParseSegmentKey for a key that SegmentKey
// would not produce.
var ErrInvalidSegment = errors.New("lake: invalid segment key")

// Range is an inclusive range of Kafka offsets.
type Range struct{ First, Last int64 }

// Len returns the number of offsets in r.
func (r Range) Len() int64 { return r.Last - r.First + 1 }

// check reports whether r can name a segment: 0 <= First <= Last.
func (r Range) check() error {
	if r.First < 0 || r.Last < r.First {
		return fmt.Errorf("lake: invalid offset range [%d, %d]", r.First, r.Last)
	}
	return nil
}

const (
	offsetDigits  = 20
	segmentSuffix = ".parquet"
	maxTopicLen   = 249
	maxTableLen   = 64
)

// CheckTopic reports whether topic is a legal Kafka topic name: 1 to 249
// bytes of [a-zA-Z0-9._-], and neither "." nor "..".
func CheckTopic(topic string) error {
	if topic == "" || len(topic) > maxTopicLen {
		return fmt.Errorf("lake: invalid topic name %q: want 1 to %d characters", topic, maxTopicLen)
	}
	if topic == "." || topic == ".." {
		return fmt.Errorf("lake: invalid topic name %q", topic)
	}
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("lake: invalid topic name %q: character %q is not one of [a-zA-Z0-9._-]", topic, c)
		}
	}
	return nil
}

// checkTable reports whether table is a table name: 1 to 64 bytes of
// [a-z0-9_] starting with a letter, like "raw" and "dlq".
func checkTable(table string) error {
	if table == "" || len(table) > maxTableLen || table[0] < 'a' || table[0] > 'z' {
		return fmt.Errorf("lake: invalid table name %q", table)
	}
	for i := 0; i < len(table); i++ {
		if c := table[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("lake: invalid table name %q", table)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func checkPartition(table, topic string, partition int32) error {
	if err := checkTable(table); err != nil {
		return err
	}
	if err := CheckTopic(topic); err != nil {
		return err
	}
	if partition < 0 {
		return fmt.Errorf("lake: invalid partition %d", partition)
	}
	return nil
}

// PartitionPrefix returns the key prefix of one partition of a table:
// "raw/topic=T/partition=P/". It panics if the table, topic or partition is
// invalid (see CheckTopic): such names never come from Kafka, and a name that
// ParseSegmentKey would reject must never reach the lake.
func PartitionPrefix(table, topic string, partition int32) string {
	if err := checkPartition(table, topic, partition); err != nil {
		panic(err)
	}
	return partitionPrefix(table, topic, partition)
}

func partitionPrefix(table, topic string, partition int32) string {
	return table + "/topic=" + topic + "/partition=" + strconv.FormatInt(int64(partition), 10) + "/"
}

// SegmentKey returns the key of the segment of a table holding offsets r of a
// partition: PartitionPrefix followed by "%020d-%020d.parquet". It panics,
// like PartitionPrefix, on an invalid table, topic or partition, and on a
// range that is not 0 <= First <= Last.
func SegmentKey(table, topic string, partition int32, r Range) string {
	if err := checkPartition(table, topic, partition); err != nil {
		panic(err)
	}
	if err := r.check(); err != nil {
		panic(err)
	}
	return segmentKey(table, topic, partition, r)
}

func segmentKey(table, topic string, partition int32, r Range) string {
	var b strings.Builder
	b.Grow(len(table) + len(topic) + 2*offsetDigits + 40)
	b.WriteString(partitionPrefix(table, topic, partition))
	b.WriteString(fmt.Sprintf("%020d-%020d", r.First, r.Last))
	b.WriteString(segmentSuffix)
	return b.String()
}

// ParseSegmentKey parses a key made by SegmentKey. It is strict: it rejects,
// with an error wrapping ErrInvalidSegment, every key that SegmentKey would
// not produce (other folders, unpadded or signed numbers, leading zeros in the
// partition, First > Last, offsets beyond int64, other suffixes).
func ParseSegmentKey(key string) (table, topic string, partition int32, r Range, err error) {
	bad := func(why string) (string, string, int32, Range, error) {
		return "", "", 0, Range{}, fmt.Errorf("%w %q: %s", ErrInvalidSegment, key, why)
	}
	elems := strings.Split(key, "/")
	if len(elems) != 4 {
		return bad("want table/topic=T/partition=P/<first>-<last>.parquet")
	}
	table = elems[0]
	if checkTable(table) != nil {
		return bad("invalid table name")
	}
	topic, ok := strings.CutPrefix(elems[1], "topic=")
	if !ok || CheckTopic(topic) != nil {
		return bad("invalid topic element")
	}
	ps, ok := strings.CutPrefix(elems[2], "partition=")
	if !ok || !canonicalUint(ps) {
		return bad("invalid partition element")
	}
	p, perr := strconv.ParseInt(ps, 10, 32)
	if perr != nil {
		return bad("partition out of range")
	}
	name, ok := strings.CutSuffix(elems[3], segmentSuffix)
	if !ok || len(name) != 2*offsetDigits+1 || name[offsetDigits] != '-' {
		return bad("want <20 digits>-<20 digits>.parquet")
	}
	first, ok1 := parseOffset(name[:offsetDigits])
	last, ok2 := parseOffset(name[offsetDigits+1:])
	if !ok1 || !ok2 {
		return bad("offsets must be 20 decimal digits within int64")
	}
	r = Range{First: first, Last: last}
	if r.check() != nil {
		return bad("first offset after last")
	}
	return table, topic, int32(p), r, nil
}

// canonicalUint reports whether s is a decimal number as strconv writes it:
// digits only, no sign, no leading zero unless it is "0".
func canonicalUint(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseOffset(s string) (int64, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// Segments lists the committed segment ranges of one partition of a table,
// sorted by First. Objects under the prefix that are not valid segment keys
// are ignored.
func Segments(ctx context.Context, s Store, table, topic string, partition int32) ([]Range, error) {
	if err := checkPartition(table, topic, partition); err != nil {
		return nil, err
	}
	objs, err := s.List(ctx, partitionPrefix(table, topic, partition))
	if err != nil {
		return nil, err
	}
	ranges := make([]Range, 0, len(objs))
	for _, o := range objs {
		tb, tp, p, r, err := ParseSegmentKey(o.Key)
		if err != nil || tb != table || tp != topic || p != partition {
			continue
		}
		ranges = append(ranges, r)
	}
	slices.SortFunc(ranges, func(a, b Range) int {
		return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
	})
	return ranges, nil
}

// NextOffset returns Last+1 of the highest committed segment of the
// partition, and false if there is none: where a consumer resumes.
func NextOffset(ctx context.Context, s Store, table, topic string, partition int32) (int64, bool, error) {
	ranges, err := Segments(ctx, s, table, topic, partition)
	if err != nil || len(ranges) == 0 {
		return 0, false, err
	}
	var last int64 = -1
	for _, r := range ranges {
		last = max(last, r.Last)
	}
	if last == math.MaxInt64 {
		return 0, false, fmt.Errorf("lake: %s: segment ends at the last possible offset", partitionPrefix(table, topic, partition))
	}
	return last + 1, true, nil
}

// ErrOverlap is wrapped by every error about segments of one partition
// whose ranges overlap without one holding the other: two writers committed
// the same offsets, and a reader must not guess which copy is right.
var ErrOverlap = errors.New("lake: overlapping segments")

// OverlapError names two segments of a partition that share offsets
// without one containing the other.
type OverlapError struct {
	Table, Topic string
	Partition    int32
	A, B         Range
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("%v: %s and %s share offsets %d-%d",
		ErrOverlap, segmentKey(e.Table, e.Topic, e.Partition, e.A), segmentKey(e.Table, e.Topic, e.Partition, e.B),
		max(e.A.First, e.B.First), min(e.A.Last, e.B.Last))
}

func (e *OverlapError) Unwrap() error { return ErrOverlap }

// Resolve splits a partition's segment ranges, sorted as Segments returns
// them, into the live ones and the superseded ones. A range contained in
// another (the run a compaction merged, before its deletion) is superseded:
// its records are in the containing segment, so readers use that one alone.
// Two ranges that overlap without one containing the other are an error
// (*OverlapError). Live ranges are sorted and disjoint; holes between them
// are left to the caller.
func Resolve(table, topic string, partition int32, ranges []Range) (live, superseded []Range, err error) {
	sorted := slices.IsSortedFunc(ranges, func(a, b Range) int {
		return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
	})
	if !sorted {
		return nil, nil, fmt.Errorf("lake: Resolve: ranges of %s are not sorted", partitionPrefix(table, topic, partition))
	}
	for _, r := range ranges {
		// Sorted by First then Last, a range's container (same First and a
		// higher Last) can come after it: look at the last live range and
		// at ranges that start where r starts.
		if n := len(live); n > 0 {
			prev := live[n-1]
			switch {
			case r.First == prev.First: // r ends later: it contains prev
				live[n-1] = r
				superseded = append(superseded, prev)
				continue
			case r.Last <= prev.Last: // prev contains r
				superseded = append(superseded, r)
				continue
			case r.First <= prev.Last:
				return nil, nil, &OverlapError{Table: table, Topic: topic, Partition: partition, A: prev, B: r}
			}
		}
		live = append(live, r)
	}
	return live, superseded, nil
}

// Segment is a committed segment of a table.
type Segment struct {
	Key       string
	Topic     string
	Partition int32
	Range     Range
	Size      int64
}

// ListSegments lists the segments of a table, every topic and partition, and
// resolves each partition (Resolve): live are the segments readers use,
// sorted by topic, partition and offset; superseded are those a live one
// contains (a compaction's run awaiting deletion), which readers skip. An
// error wrapping ErrOverlap lists every pair of partially overlapping
// segments, and then live and superseded are nil.
func ListSegments(ctx context.Context, s Store, table string) (live, superseded []Segment, err error) {
	if err := checkTable(table); err != nil {
		return nil, nil, err
	}
	objs, err := s.List(ctx, table+"/")
	if err != nil {
		return nil, nil, err
	}
	live, superseded, _, err = resolveObjects(table, objs)
	return live, superseded, err
}

// PartitionSegments is ListSegments for one partition of a table.
func PartitionSegments(ctx context.Context, s Store, table, topic string, partition int32) (live, superseded []Segment, err error) {
	if err := checkPartition(table, topic, partition); err != nil {
		return nil, nil, err
	}
	objs, err := s.List(ctx, partitionPrefix(table, topic, partition))
	if err != nil {
		return nil, nil, err
	}
	live, superseded, _, err = resolveObjects(table, objs)
	return live, superseded, err
}

// resolveObjects splits a table's listing into its resolved segments and the
// objects that are not segments of the table.
func resolveObjects(table string, objs []Object) (live, superseded []Segment, others []Object, err error) {
	type pkey struct {
		topic string
		part  int32
	}
	parts := map[pkey][]Segment{}
	var order []pkey
	for _, o := range objs {
		tb, tp, p, r, err := ParseSegmentKey(o.Key)
		if err != nil || tb != table {
			others = append(others, o)
			continue
		}
		k := pkey{tp, p}
		if _, ok := parts[k]; !ok {
			order = append(order, k)
		}
		parts[k] = append(parts[k], Segment{Key: o.Key, Topic: tp, Partition: p, Range: r, Size: o.Size})
	}
	slices.SortFunc(order, func(a, b pkey) int { return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.part, b.part)) })
	var errs []error
	for _, k := range order {
		segs := parts[k]
		slices.SortFunc(segs, func(a, b Segment) int {
			return cmp.Or(cmp.Compare(a.Range.First, b.Range.First), cmp.Compare(a.Range.Last, b.Range.Last))
		})
		l, sup, err := resolveSegments(table, k.topic, k.part, segs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		live = append(live, l...)
		superseded = append(superseded, sup...)
	}
	if len(errs) > 0 {
		return nil, nil, others, errors.Join(errs...)
	}
	return live, superseded, others, nil
}

// resolveSegments is Resolve on the segments of one partition, sorted by
// range; it reports every partial overlap.
func resolveSegments(table, topic string, partition int32, segs []Segment) (live, superseded []Segment, err error) {
	live, superseded, overlaps := resolveOverlaps(table, topic, partition, segs)
	errs := make([]error, len(overlaps))
	for i, o := range overlaps {
		errs[i] = o
	}
	return live, superseded, errors.Join(errs...)
}

func resolveOverlaps(table, topic string, partition int32, segs []Segment) (live, superseded []Segment, overlaps []*OverlapError) {
	for _, sg := range segs {
		r := sg.Range
		if n := len(live); n > 0 {
			prev := live[n-1].Range
			switch {
			case r.First == prev.First: // sg ends later: it contains prev
				superseded = append(superseded, live[n-1])
				live[n-1] = sg
				continue
			case r.Last <= prev.Last: // prev contains sg
				superseded = append(superseded, sg)
				continue
			case r.First <= prev.Last:
				overlaps = append(overlaps, &OverlapError{Table: table, Topic: topic, Partition: partition, A: prev, B: r})
				continue
			}
		}
		live = append(live, sg)
	}
	return live, superseded, overlaps
}
