package report

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/thresher-ml/thresher/curate"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

// committedKeys lists the objects of a curate table that belong to it:
// windows 1 to committed (an object above it may be left by a crash).
func committedKeys(ctx context.Context, store lake.Store, table string, committed int64) ([]string, error) {
	objs, err := store.List(ctx, table+"/")
	if err != nil {
		return nil, fmt.Errorf("report: list %s: %w", table, err)
	}
	var keys []string
	for _, o := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, table+"/"), ".parquet")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		seq, err := strconv.ParseInt(name, 10, 64)
		if err != nil || seq < 1 || seq > committed || o.Key != curate.WindowKey(table, seq) {
			continue
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// readKeys reads the rows of the objects at keys, in order, into T (which
// may name a subset of the file's columns).
func readKeys[T any](ctx context.Context, store lake.Store, keys []string) ([]T, error) {
	var out []T
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := store.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", k, err)
		}
		rows, err := lake.ReadRows[T](data)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", k, err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

// readTable reads every Parquet object under a table's prefix.
func readTable[T any](ctx context.Context, store lake.Store, table string) ([]T, error) {
	objs, err := store.List(ctx, table+"/")
	if err != nil {
		return nil, fmt.Errorf("report: list %s: %w", table, err)
	}
	var keys []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			keys = append(keys, o.Key)
		}
	}
	return readKeys[T](ctx, store, keys)
}

// auditRow is the part of an audit/records row the report reads.
type auditRow struct {
	KafkaTS     time.Time `parquet:"kafka_ts,timestamp(millisecond),delta"`
	Domain      string    `parquet:"domain,optional,dict"`
	Decision    string    `parquet:"decision,dict"`
	LengthWords int32     `parquet:"length_words"`
	CharEntropy float32   `parquet:"char_entropy"`
	WordEntropy float32   `parquet:"word_entropy"`
	Difficulty  float32   `parquet:"difficulty"`
	TargetSim   float32   `parquet:"target_similarity"`
}

// record is an audit row held compactly.
type record struct {
	ts          int64 // Unix ms
	domain      int32 // index into lakeData.domains
	decision    uint8
	words       int32
	charH, word float32
	difficulty  float32
	targetSim   float32
}

// Decisions, as record.decision.
const (
	decKept uint8 = iota
	decExact
	decNear
	decFiltered
)

func decisionCode(s string) uint8 {
	switch s {
	case schemas.DecisionExactDuplicate:
		return decExact
	case schemas.DecisionNearDuplicate:
		return decNear
	case schemas.DecisionFiltered:
		return decFiltered
	}
	return decKept
}

// noDomain names records without a domain.
const noDomain = "(none)"

func domainName(d string) string {
	if d == "" {
		return noDomain
	}
	return d
}

// lakeData is everything the report reads from the lake.
type lakeData struct {
	committed int64
	records   []record
	domains   []string // by descending record count
	colors    map[string]string

	summary    []schemas.AuditSummary
	curriculum []schemas.CurriculumPlan
	history    []schemas.TrainHistory
	evals      []schemas.Eval

	// target describes the target sample curate fitted, when it did.
	target   curate.TargetInfo
	targeted bool

	// errors met while reading each part, by section id.
	errs map[string]error
}

// loadCurate reads the curate tables up to the committed window.
func (d *lakeData) loadCurate(ctx context.Context, store lake.Store) error {
	committed, err := curate.CommittedWindow(ctx, store)
	if err != nil {
		return fmt.Errorf("report: committed window: %w", err)
	}
	d.committed = committed
	if committed == 0 {
		return nil
	}
	if d.target, d.targeted, err = curate.ReadTargetInfo(ctx, store); err != nil {
		d.errs[secBalance] = err
	}
	keys, err := committedKeys(ctx, store, schemas.TableAuditRecords, committed)
	if err != nil {
		return err
	}
	index := map[string]int32{}
	var names []string
	counts := map[string]int64{}
	for _, k := range keys {
		rows, err := readKeys[auditRow](ctx, store, []string{k})
		if err != nil {
			d.errs[secTimeline] = err
			break
		}
		for _, r := range rows {
			dom := domainName(r.Domain)
			i, ok := index[dom]
			if !ok {
				i = int32(len(names))
				index[dom] = i
				names = append(names, dom)
			}
			counts[dom]++
			d.records = append(d.records, record{
				ts: r.KafkaTS.UnixMilli(), domain: i, decision: decisionCode(r.Decision),
				words: r.LengthWords, charH: r.CharEntropy, word: r.WordEntropy, difficulty: r.Difficulty,
				targetSim: r.TargetSim,
			})
		}
	}
	if keys, err = committedKeys(ctx, store, schemas.TableAuditSummary, committed); err == nil {
		d.summary, err = readKeys[schemas.AuditSummary](ctx, store, keys)
	}
	if err != nil {
		d.errs[secBalance] = err
	}
	if len(d.records) == 0 {
		for _, s := range d.summary {
			if s.Domain != "*" {
				counts[domainName(s.Domain)] += s.Records
			}
		}
	}
	if keys, err = committedKeys(ctx, store, schemas.TableCurriculum, committed); err == nil {
		d.curriculum, err = readKeys[schemas.CurriculumPlan](ctx, store, keys)
	}
	if err != nil {
		d.errs[secCurriculum] = err
	}
	// Domains by record count; records re-indexed to that order.
	d.domains = sortedKeys(counts)
	pos := map[string]int32{}
	for i, n := range d.domains {
		pos[n] = int32(i)
		d.colors[n] = colorFor(i)
	}
	remap := make([]int32, len(names))
	for i, n := range names {
		remap[i] = pos[n]
	}
	for i := range d.records {
		d.records[i].domain = remap[d.records[i].domain]
	}
	return ctx.Err()
}

// color returns a domain's colour, adding domains first seen late.
func (d *lakeData) color(domain string) string {
	if c, ok := d.colors[domain]; ok {
		return c
	}
	c := colorFor(len(d.colors))
	d.colors[domain] = c
	return c
}

// curatedRow is the part of a curated row the embedding sample reads.
type curatedRow struct {
	Topic     string `parquet:"topic,dict"`
	Partition int32  `parquet:"partition"`
	Offset    int64  `parquet:"offset,delta"`
	Domain    string `parquet:"domain,optional,dict"`
	Text      string `parquet:"text"`
}

// sampled is one record of the embedding sample.
type sampled struct {
	key    uint64
	domain string
	text   string
}

// sampleCurated draws up to n curated records, stratified by domain: every
// domain gets an equal share (a domain with fewer records gives all it
// has, and the rest goes to the others). Within a domain the records with
// the smallest seeded hash of their identity are taken, so the sample does
// not depend on how the table is split into windows.
func sampleCurated(ctx context.Context, store lake.Store, committed int64, n int, seed uint64) ([]sampled, error) {
	keys, err := committedKeys(ctx, store, schemas.TableCurated, committed)
	if err != nil {
		return nil, err
	}
	salt := strconv.FormatUint(seed, 10) + "/"
	by := map[string][]sampled{}
	for _, k := range keys {
		rows, err := readKeys[curatedRow](ctx, store, []string{k})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			dom := domainName(r.Domain)
			h := xxhash.Sum64String(salt + r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))
			s := append(by[dom], sampled{key: h, domain: dom, text: r.Text})
			if len(s) > 2*n {
				s = smallest(s, n)
			}
			by[dom] = s
		}
	}
	domains := make([]string, 0, len(by))
	for dom, s := range by {
		by[dom] = smallest(s, n)
		domains = append(domains, dom)
	}
	// Equal shares, smallest domains first so what they cannot use passes on.
	sort.Slice(domains, func(i, j int) bool {
		if len(by[domains[i]]) != len(by[domains[j]]) {
			return len(by[domains[i]]) < len(by[domains[j]])
		}
		return domains[i] < domains[j]
	})
	var out []sampled
	left := n
	for i, dom := range domains {
		share := left / (len(domains) - i)
		take := by[dom][:min(share, len(by[dom]))]
		out = append(out, take...)
		left -= len(take)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// smallest keeps the n entries of s with the smallest keys, sorted.
func smallest(s []sampled, n int) []sampled {
	sort.Slice(s, func(i, j int) bool { return s[i].key < s[j].key })
	if len(s) > n {
		s = s[:n]
	}
	return s
}
