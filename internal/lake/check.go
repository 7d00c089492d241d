package lake

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go/format"

	"github.com/thresher-ml/thresher/schemas"
)

// Severity grades a Finding of Check.
type Severity string

const (
	// SeverityError: the lake breaks its contract; a reader could miss
	// records or read some twice.
	SeverityError Severity = "error"
	// SeverityWarning: a state that ingest resolves by itself when it
	// resumes (a span whose raw segment is not committed yet).
	SeverityWarning Severity = "warning"
	// SeverityInfo: a state readers handle (a compaction's run awaiting
	// deletion).
	SeverityInfo Severity = "info"
)

// Kinds of Finding, in the order the package comment describes them.
const (
	FindingStray         = "stray"             // error: a .parquet object that is not a segment key
	FindingOverlap       = "overlap"           // error: segments share offsets, neither containing the other
	FindingSuperseded    = "superseded"        // info: a segment contained in another of its table
	FindingHole          = "hole"              // error: offsets in no raw or gaps segment
	FindingDLQOutsideRaw = "dlq_outside_raw"   // error: dlq offsets in no raw segment
	FindingDLQPending    = "dlq_pending"       // warning: dlq offsets past the partition's last raw segment
	FindingUnreadable    = "unreadable"        // error: not a Parquet file of its table
	FindingRowOutside    = "row_outside_range" // error: rows of another partition or outside the segment's range
	FindingRowOrder      = "row_order"         // error: offsets not strictly increasing within a file
	FindingRawAndDLQ     = "raw_and_dlq"       // error: an offset with a row in both raw and dlq
	FindingGapRows       = "gap_rows"          // error: a gaps segment whose rows do not cover its range
	FindingVanished      = "vanished"          // warning: a segment deleted while the check ran
)

// Finding is one thing Check found. Partition, First and Last are -1 when
// the finding has no partition or offsets (a stray object).
type Finding struct {
	Severity  Severity `json:"severity"`
	Kind      string   `json:"kind"`
	Table     string   `json:"table"`
	Topic     string   `json:"topic,omitempty"`
	Partition int32    `json:"partition"`
	First     int64    `json:"first"`
	Last      int64    `json:"last"`
	Keys      []string `json:"keys"`
	Detail    string   `json:"detail"`
}

// String formats f on one line:
//
//	error hole raw topic=T partition=P offsets=100-149 keys=K1,K2: detail
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", f.Severity, f.Kind, f.Table)
	if f.Topic != "" {
		fmt.Fprintf(&b, " topic=%s partition=%d", f.Topic, f.Partition)
	}
	if f.First >= 0 {
		fmt.Fprintf(&b, " offsets=%d-%d", f.First, f.Last)
	}
	if len(f.Keys) > 0 {
		fmt.Fprintf(&b, " keys=%s", strings.Join(f.Keys, ","))
	}
	b.WriteString(": ")
	b.WriteString(f.Detail)
	return b.String()
}

// TableSummary counts one table of a checked lake. Rows and Offsets are
// those of its live segments (superseded ones hold copies).
type TableSummary struct {
	Table      string `json:"table"`
	Partitions int    `json:"partitions"`
	Segments   int    `json:"segments"`
	Superseded int    `json:"superseded"`
	Rows       int64  `json:"rows"`
	Offsets    int64  `json:"offsets"`
	Bytes      int64  `json:"bytes"`
}

// CheckReport is the result of Check: a summary of the raw, dlq and gaps
// tables, in that order, and the findings, errors first, then by topic,
// partition and offset.
type CheckReport struct {
	Tables   []TableSummary `json:"tables"`
	Findings []Finding      `json:"findings"`
}

// Count returns the number of findings of severity s.
func (r *CheckReport) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// CheckProgress tells how far Check has read the lake's segments.
type CheckProgress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
}

// CheckOptions tune Check. The zero value reads GOMAXPROCS files at once
// and reports no progress.
type CheckOptions struct {
	// Workers bounds the segments read at once (each is held in memory
	// whole while it is read).
	Workers int
	// Progress, when set, is called after each segment is read, one call
	// at a time.
	Progress func(CheckProgress)
}

// Check reads every segment of the raw, dlq and gaps tables of a lake and
// reports what breaks the lake's contract (see the package comment). The
// error is for a store that cannot be listed or read, and for ctx; what is
// wrong with the lake itself is in the report.
func Check(ctx context.Context, s Store, opts CheckOptions) (*CheckReport, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	c := &checker{store: s, opts: opts, parts: map[partID]*checkPart{}}
	if err := c.list(ctx); err != nil {
		return nil, err
	}
	for _, p := range c.sorted {
		c.resolve(p)
	}
	// dlq and gaps first: the raw segments are then checked against the
	// dlq's offsets, which are few, instead of holding every raw offset.
	var first, second []*checkSeg
	for _, p := range c.sorted {
		first = append(first, p.tables[tDLQ]...)
		first = append(first, p.tables[tGaps]...)
		second = append(second, p.tables[tRaw]...)
	}
	if err := c.read(ctx, first); err != nil {
		return nil, err
	}
	for _, p := range c.sorted {
		p.indexDLQ()
	}
	if err := c.read(ctx, second); err != nil {
		return nil, err
	}
	return c.report(), nil
}

const (
	tRaw = iota
	tDLQ
	tGaps
	nTables
)

var checkTables = [nTables]string{schemas.TableRaw, schemas.TableDLQ, schemas.TableGaps}

type partID struct {
	topic     string
	partition int32
}

type checker struct {
	store    Store
	opts     CheckOptions
	parts    map[partID]*checkPart
	sorted   []*checkPart
	findings []Finding // of the listing and of the ranges

	files, totalFiles int
	bytes, totalBytes int64
	progressMu        sync.Mutex
}

// checkPart is one partition: its segments per table, sorted by range.
type checkPart struct {
	partID
	tables [nTables][]*checkSeg
	// dlq holds the offsets of the rows of the live dlq segments, sorted,
	// with the segment of each.
	dlq []dlqRow
}

type dlqRow struct {
	offset int64
	seg    *checkSeg
}

// checkSeg is one segment and what reading it found.
type checkSeg struct {
	part  *checkPart
	table int
	r     Range
	key   string
	size  int64
	live  bool

	rows     int64
	offsets  []int64 // the rows' offsets, kept for live dlq segments
	findings []Finding
}

func (c *checker) list(ctx context.Context) error {
	for t, table := range checkTables {
		objs, err := c.store.List(ctx, table+"/")
		if err != nil {
			return fmt.Errorf("lake: check: listing %s: %w", table, err)
		}
		for _, o := range objs {
			if !strings.HasSuffix(o.Key, segmentSuffix) {
				continue // not read by a glob of the table
			}
			tb, topic, partition, r, err := ParseSegmentKey(o.Key)
			if err != nil || tb != table {
				c.findings = append(c.findings, Finding{Severity: SeverityError, Kind: FindingStray, Table: table,
					Partition: -1, First: -1, Last: -1, Keys: []string{o.Key},
					Detail: "not a segment key (<table>/topic=T/partition=P/<first>-<last>.parquet); a glob of the table reads it"})
				continue
			}
			id := partID{topic, partition}
			p := c.parts[id]
			if p == nil {
				p = &checkPart{partID: id}
				c.parts[id] = p
				c.sorted = append(c.sorted, p)
			}
			p.tables[t] = append(p.tables[t], &checkSeg{part: p, table: t, r: r, key: o.Key, size: o.Size})
			c.totalFiles++
			c.totalBytes += o.Size
		}
	}
	slices.SortFunc(c.sorted, func(a, b *checkPart) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	for _, p := range c.sorted {
		for _, segs := range p.tables {
			slices.SortFunc(segs, func(a, b *checkSeg) int { return compareRanges(a.r, b.r) })
		}
	}
	return nil
}

func compareRanges(a, b Range) int {
	return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
}

// finding returns a finding about partition p.
func (p *checkPart) finding(sev Severity, kind string, table int, r Range, detail string, keys ...string) Finding {
	return Finding{Severity: sev, Kind: kind, Table: checkTables[table], Topic: p.topic, Partition: p.partition,
		First: r.First, Last: r.Last, Keys: keys, Detail: detail}
}

func (p *checkPart) key(table int, r Range) string {
	return segmentKey(checkTables[table], p.topic, p.partition, r)
}

// resolve checks the ranges of one partition: overlaps and superseded
// segments within each table, holes in raw and gaps together, overlaps
// between them, and dlq ranges against raw.
func (c *checker) resolve(p *checkPart) {
	var live [nTables][]Range
	for t, segs := range p.tables {
		ranges := make([]Range, len(segs))
		for i, s := range segs {
			ranges[i] = s.r
		}
		var superseded []Range
		var overlaps [][2]Range
		live[t], superseded, overlaps = resolveAll(checkTables[t], p.topic, p.partition, ranges)
		for _, o := range overlaps {
			shared := Range{max(o[0].First, o[1].First), min(o[0].Last, o[1].Last)}
			c.findings = append(c.findings, p.finding(SeverityError, FindingOverlap, t, shared,
				"two segments share offsets and neither contains the other (two writers committed them); readers refuse the partition",
				p.key(t, o[0]), p.key(t, o[1])))
		}
		for _, s := range superseded {
			in := live[t][containing(live[t], s)]
			c.findings = append(c.findings, p.finding(SeverityInfo, FindingSuperseded, t, s,
				"contained in another segment (a compaction's run awaiting deletion); readers use the containing one",
				p.key(t, s), p.key(t, in)))
		}
		// Segments are unique by range; a superseded range equal to a
		// live one (impossible with one key per range) stays live.
		for _, s := range segs {
			_, s.live = slices.BinarySearchFunc(live[t], s.r, compareRanges)
		}
	}

	// Raw and gaps together cover the partition once, from its first
	// segment to its last.
	type covering struct {
		r     Range
		table int
	}
	var cover []covering
	for _, t := range []int{tRaw, tGaps} {
		for _, r := range live[t] {
			cover = append(cover, covering{r, t})
		}
	}
	slices.SortFunc(cover, func(a, b covering) int { return compareRanges(a.r, b.r) })
	var end covering // of the coverings before cv, the one reaching furthest
	for i, cv := range cover {
		if i > 0 && cv.r.First > end.r.Last+1 {
			hole := Range{end.r.Last + 1, cv.r.First - 1}
			c.findings = append(c.findings, p.finding(SeverityError, FindingHole, tRaw, hole,
				fmt.Sprintf("%d %s in no raw or gaps segment, between two segments", hole.Len(), plural(hole.Len(), "offset", "offsets")),
				p.key(end.table, end.r), p.key(cv.table, cv.r)))
		}
		if i == 0 || cv.r.Last > end.r.Last {
			end = cv
		}
	}
	for _, g := range live[tGaps] {
		for _, r := range intersecting(live[tRaw], g) {
			shared := Range{max(r.First, g.First), min(r.Last, g.Last)}
			c.findings = append(c.findings, p.finding(SeverityError, FindingOverlap, tGaps, shared,
				"a gaps segment records as missing offsets that a raw segment holds",
				p.key(tRaw, r), p.key(tGaps, g)))
		}
	}

	// Each dlq range lies in the raw ranges: ingest commits a span's dlq
	// segment, then its raw segment over the same offsets (a redo after a
	// crash between the two may cut the raw ranges elsewhere, so a dlq
	// range may span several). Past the last raw segment it is a span
	// whose raw segment ingest commits when it resumes.
	rawEnd := int64(-1)
	if n := len(live[tRaw]); n > 0 {
		rawEnd = live[tRaw][n-1].Last
	}
	for _, d := range live[tDLQ] {
		for _, piece := range uncovered(d, live[tRaw]) {
			if piece.First > rawEnd {
				c.findings = append(c.findings, p.finding(SeverityWarning, FindingDLQPending, tDLQ, piece,
					"past the partition's last raw segment: a span whose raw segment is not committed yet (ingest commits it when it resumes)",
					p.key(tDLQ, d)))
				continue
			}
			c.findings = append(c.findings, p.finding(SeverityError, FindingDLQOutsideRaw, tDLQ, piece,
				"dlq offsets in no raw segment", p.key(tDLQ, d)))
		}
	}
}

// resolveAll is Resolve that goes on past partial overlaps: it lists every
// pair of overlapping segments neither of which contains the other, and
// calls live the ranges no other range contains.
func resolveAll(table, topic string, partition int32, ranges []Range) (live, superseded []Range, overlaps [][2]Range) {
	live, superseded, err := Resolve(table, topic, partition, ranges)
	var oe *OverlapError
	if !errors.As(err, &oe) {
		return live, superseded, nil
	}
	live, superseded = nil, nil
	maxLast := int64(-1)
	for i, r := range ranges {
		// Sorted by First then Last: r is contained in an earlier range
		// reaching as far, or in the next one if it starts there too.
		if i > 0 && maxLast >= r.Last || i+1 < len(ranges) && ranges[i+1].First == r.First {
			superseded = append(superseded, r)
		} else {
			live = append(live, r)
		}
		maxLast = max(maxLast, r.Last)
	}
	// Live ranges now increase in both First and Last.
	for i, a := range live {
		for _, b := range live[i+1:] {
			if b.First > a.Last {
				break
			}
			overlaps = append(overlaps, [2]Range{a, b})
		}
	}
	return live, superseded, overlaps
}

// containing returns the index of the range of live (increasing in First
// and in Last) that contains r.
func containing(live []Range, r Range) int {
	i, _ := slices.BinarySearchFunc(live, r.First+1, func(l Range, first int64) int { return cmp.Compare(l.First, first) })
	return max(i-1, 0)
}

// intersecting returns the ranges of live (increasing in First and in
// Last) that share offsets with r.
func intersecting(live []Range, r Range) []Range {
	i, _ := slices.BinarySearchFunc(live, r.First, func(l Range, first int64) int { return cmp.Compare(l.Last, first) })
	j := i
	for j < len(live) && live[j].First <= r.Last {
		j++
	}
	return live[i:j]
}

// uncovered returns the parts of r outside every range of live.
func uncovered(r Range, live []Range) []Range {
	var out []Range
	next := r.First
	for _, l := range intersecting(live, r) {
		if l.First > next {
			out = append(out, Range{next, l.First - 1})
		}
		next = max(next, l.Last+1)
	}
	if next <= r.Last {
		out = append(out, Range{next, r.Last})
	}
	return out
}

// read reads segs with a bounded number of workers.
func (c *checker) read(ctx context.Context, segs []*checkSeg) error {
	if len(segs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range min(c.opts.Workers, len(segs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(segs) || ctx.Err() != nil {
					return
				}
				if err := c.readSeg(ctx, segs[i]); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					cancel()
					return
				}
				c.progress(segs[i].size)
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (c *checker) progress(size int64) {
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	c.files++
	c.bytes += size
	if c.opts.Progress != nil {
		c.opts.Progress(CheckProgress{Files: c.files, TotalFiles: c.totalFiles, Bytes: c.bytes, TotalBytes: c.totalBytes})
	}
}

func (c *checker) readSeg(ctx context.Context, s *checkSeg) error {
	p := s.part
	data, err := c.store.Get(ctx, s.key)
	switch {
	case errors.Is(err, ErrNotExist):
		s.findings = append(s.findings, p.finding(SeverityWarning, FindingVanished, s.table, s.r,
			"deleted while the check ran (a compaction?): run the check again", s.key))
		return nil
	case err != nil:
		return fmt.Errorf("lake: check: %w", err)
	}
	if s.table == tGaps {
		s.checkGaps(data)
	} else {
		s.checkRows(data)
	}
	return nil
}

// unreadable records that s is not a Parquet file of its table.
func (s *checkSeg) unreadable(format string, args ...any) {
	s.findings = append(s.findings, s.part.finding(SeverityError, FindingUnreadable, s.table, s.r,
		fmt.Sprintf(format, args...), s.key))
}

// offsetStats gathers rows that fail one check of a segment.
type offsetStats struct {
	n        int64
	min, max int64
}

func (o *offsetStats) add(lo, hi int64) {
	if o.n == 0 || lo < o.min {
		o.min = lo
	}
	if o.n == 0 || hi > o.max {
		o.max = hi
	}
	o.n++
}

func (o *offsetStats) report(s *checkSeg, kind, detail string, keys ...string) {
	if o.n == 0 {
		return
	}
	s.findings = append(s.findings, s.part.finding(SeverityError, kind, s.table, Range{o.min, o.max},
		fmt.Sprintf("%d %s %s", o.n, plural(o.n, "row", "rows"), detail), append([]string{s.key}, keys...)...))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// footerFits reports whether data is framed like a Parquet file whose
// footer fits in it: the Parquet library allocates the footer's declared
// length before it compares it with the file's.
func footerFits(data []byte) error {
	const magic = "PAR1"
	n := len(data)
	if n < 12 || string(data[:4]) != magic || string(data[n-4:]) != magic {
		return errors.New("lake: not a parquet file")
	}
	if l := binary.LittleEndian.Uint32(data[n-8:]); int64(l) > int64(n-12) {
		return fmt.Errorf("lake: a parquet footer of %d bytes in a file of %d", l, n)
	}
	return nil
}

// maxGapRows bounds the rows of a gaps segment Check reads (one per run of
// missing offsets; ingest writes one), so that a damaged footer cannot make
// it allocate without bound.
const maxGapRows = 1 << 16

// checkRows reads the topic, partition and offset columns of a raw or dlq
// segment with the raw reader's column decoder, a row group at a time.
func (s *checkSeg) checkRows(data []byte) {
	p := s.part
	if err := footerFits(data); err != nil {
		s.unreadable("%v", err)
		return
	}
	f, err := openRaw(data)
	if err != nil {
		s.unreadable("%v", err)
		return
	}
	if table := metaValue(f.Metadata().KeyValueMetadata, schemas.MetaTable); table != checkTables[s.table] {
		s.unreadable("its metadata names table %q", table)
		return
	}
	cols := map[string]int{}
	for i, path := range f.Schema().Columns() {
		if len(path) == 1 {
			cols[path[0]] = i
		}
	}
	names := []string{"topic", "partition", "offset"}
	for _, name := range names {
		if _, ok := cols[name]; !ok {
			s.unreadable("no %s column", name)
			return
		}
	}
	// The live raw segment's rows are checked against the dlq's offsets in
	// its range.
	var dlq []dlqRow
	if s.table == tRaw && s.live {
		lo, _ := slices.BinarySearchFunc(p.dlq, s.r.First, func(d dlqRow, o int64) int { return cmp.Compare(d.offset, o) })
		hi, _ := slices.BinarySearchFunc(p.dlq, s.r.Last+1, func(d dlqRow, o int64) int { return cmp.Compare(d.offset, o) })
		dlq = p.dlq[lo:hi]
	}
	var foreign, outside, order offsetStats
	both := map[*checkSeg]*offsetStats{}
	var buf []schemas.Raw
	prev, started := int64(0), false
	err = func() (err error) {
		defer recoverCorrupt(&err)
		for _, rg := range f.RowGroups() {
			n := int(rg.NumRows())
			if n < 0 || n > maxRawRowGroup {
				return fmt.Errorf("a row group of %d rows", n)
			}
			buf = slices.Grow(buf[:0], n)[:n]
			chunks := rg.ColumnChunks()
			for _, name := range names {
				c := &rawColumn{rows: buf, name: name}
				if err := c.read(chunks[cols[name]]); err != nil {
					return fmt.Errorf("column %s: %w", name, err)
				}
				if c.row != n {
					return fmt.Errorf("column %s: %d values for %d rows", name, c.row, n)
				}
			}
			for i := range buf {
				r := &buf[i]
				off := r.Offset
				switch {
				case r.Topic != p.topic || r.Partition != p.partition:
					foreign.add(off, off)
				case off < s.r.First || off > s.r.Last:
					outside.add(off, off)
				}
				if started && off <= prev {
					order.add(off, off)
				}
				prev, started = off, true
				if s.table == tDLQ && s.live {
					s.offsets = append(s.offsets, off)
				}
				if len(dlq) > 0 {
					if j, ok := slices.BinarySearchFunc(dlq, off, func(d dlqRow, o int64) int { return cmp.Compare(d.offset, o) }); ok {
						st := both[dlq[j].seg]
						if st == nil {
							st = &offsetStats{}
							both[dlq[j].seg] = st
						}
						st.add(off, off)
					}
				}
				s.rows++
			}
		}
		return nil
	}()
	if err != nil {
		s.unreadable("reading rows: %v", err)
		return
	}
	foreign.report(s, FindingRowOutside, "of another topic or partition")
	outside.report(s, FindingRowOutside, "outside the segment's range")
	order.report(s, FindingRowOrder, "whose offset is not above the previous row's")
	dsegs := make([]*checkSeg, 0, len(both))
	for d := range both {
		dsegs = append(dsegs, d)
	}
	slices.SortFunc(dsegs, func(a, b *checkSeg) int { return compareRanges(a.r, b.r) })
	for _, d := range dsegs {
		both[d].report(s, FindingRawAndDLQ, "whose offset also has a row in the dlq", d.key)
	}
}

func metaValue(kv []format.KeyValue, key string) string {
	for _, m := range kv {
		if m.Key == key {
			return m.Value
		}
	}
	return ""
}

// checkGaps reads a gaps segment: its rows, sorted and disjoint, cover
// its range exactly.
func (s *checkSeg) checkGaps(data []byte) {
	p := s.part
	if err := footerFits(data); err != nil {
		s.unreadable("%v", err)
		return
	}
	meta, n, err := FileMeta(data)
	if err != nil {
		s.unreadable("%v", err)
		return
	}
	if n < 0 || n > maxGapRows {
		s.unreadable("a gaps segment of %d rows", n)
		return
	}
	if table := meta[schemas.MetaTable]; table != schemas.TableGaps {
		s.unreadable("its metadata names table %q", table)
		return
	}
	rows, err := ReadRows[schemas.Gap](data)
	if err != nil {
		s.unreadable("%v", err)
		return
	}
	var foreign, outside, order offsetStats
	var covered []Range
	for i, g := range rows {
		r := Range{g.FirstOffset, g.LastOffset}
		switch {
		case g.Topic != p.topic || g.Partition != p.partition:
			foreign.add(r.First, r.Last)
		case r.First > r.Last || r.First < s.r.First || r.Last > s.r.Last:
			outside.add(r.First, r.Last)
		default:
			covered = append(covered, r)
		}
		if i > 0 && r.First <= rows[i-1].LastOffset {
			order.add(r.First, r.Last)
		}
	}
	s.rows = int64(len(rows))
	foreign.report(s, FindingRowOutside, "of another topic or partition")
	outside.report(s, FindingRowOutside, "whose missing range is empty or outside the segment's range")
	order.report(s, FindingRowOrder, "whose missing range does not start after the previous row's")
	slices.SortFunc(covered, compareRanges)
	var merged []Range
	for _, r := range covered {
		if n := len(merged); n > 0 && r.First <= merged[n-1].Last+1 {
			merged[n-1].Last = max(merged[n-1].Last, r.Last)
			continue
		}
		merged = append(merged, r)
	}
	for _, piece := range uncovered(s.r, merged) {
		s.findings = append(s.findings, p.finding(SeverityError, FindingGapRows, tGaps, piece,
			"offsets of the segment's range that none of its rows records as missing", s.key))
	}
}

// indexDLQ gathers the offsets of the partition's live dlq rows.
func (p *checkPart) indexDLQ() {
	for _, s := range p.tables[tDLQ] {
		for _, o := range s.offsets {
			p.dlq = append(p.dlq, dlqRow{o, s})
		}
		s.offsets = nil
	}
	slices.SortFunc(p.dlq, func(a, b dlqRow) int { return cmp.Compare(a.offset, b.offset) })
}

func (c *checker) report() *CheckReport {
	rep := &CheckReport{Findings: c.findings}
	for t, table := range checkTables {
		sum := TableSummary{Table: table}
		for _, p := range c.sorted {
			if len(p.tables[t]) > 0 {
				sum.Partitions++
			}
			for _, s := range p.tables[t] {
				sum.Segments++
				sum.Bytes += s.size
				if s.live {
					sum.Rows += s.rows
					sum.Offsets += s.r.Len()
				} else {
					sum.Superseded++
				}
				rep.Findings = append(rep.Findings, s.findings...)
			}
		}
		rep.Tables = append(rep.Tables, sum)
	}
	rank := map[Severity]int{SeverityError: 0, SeverityWarning: 1, SeverityInfo: 2}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(rank[a.Severity], rank[b.Severity]),
			strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition),
			cmp.Compare(a.First, b.First), strings.Compare(a.Table, b.Table), strings.Compare(a.Kind, b.Kind))
	})
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep
}

// String formats a summary as one line.
func (t TableSummary) String() string {
	return t.Table + ": partitions=" + strconv.Itoa(t.Partitions) + " segments=" + strconv.Itoa(t.Segments) +
		" superseded=" + strconv.Itoa(t.Superseded) + " rows=" + strconv.FormatInt(t.Rows, 10) +
		" offsets=" + strconv.FormatInt(t.Offsets, 10) + " bytes=" + strconv.FormatInt(t.Bytes, 10)
}
