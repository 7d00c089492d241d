package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// startBroker runs an embedded broker on a random loopback port.
func startBroker(t testing.TB, topic string, partitions int) *broker.Broker {
	t.Helper()
	return realtest.Broker(t, partitions, topic)
}

// produce writes values to topic, keyed by keys[i] when keys is not nil.
func produce(t testing.TB, addr, topic string, values, keys [][]byte) {
	t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{},
		BatchSize: 2000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	defer w.Close()
	const chunk = 5000
	for i := 0; i < len(values); i += chunk {
		j := min(i+chunk, len(values))
		msgs := make([]kafka.Message, 0, j-i)
		for k := i; k < j; k++ {
			m := kafka.Message{Value: values[k]}
			if keys != nil {
				m.Key = keys[k]
			}
			msgs = append(msgs, m)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := w.WriteMessages(ctx, msgs...)
		cancel()
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// highWatermarks returns the end offset of every partition of topic.
func highWatermarks(t testing.TB, addr, topic string, partitions int) map[int32]int64 {
	t.Helper()
	return listEnds(t, &kafka.Client{Addr: kafka.TCP(addr)}, topic, partitions)
}

// listEnds returns the end offset of every partition of topic, asked
// through c.
func listEnds(t testing.TB, c *kafka.Client, topic string, partitions int) map[int32]int64 {
	t.Helper()
	req := map[string][]kafka.OffsetRequest{}
	for p := range partitions {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		out[int32(po.Partition)] = po.LastOffset
	}
	return out
}

// lakeContent is what a reader globbing the lake sees.
type lakeContent struct {
	raw  []schemas.Raw
	dlq  []schemas.DLQ
	gaps []schemas.Gap
	// ranges per table and partition, as named by the committed files
	ranges map[string]map[int32][]lake.Range
}

// readLake reads every committed segment of topic and checks the lake
// contract: only whole, well-named Parquet files, no temporary file that a
// glob would pick up, no overlapping ranges within a table.
func readLake(t testing.TB, dir, topic string) lakeContent {
	t.Helper()
	lc := lakeContent{ranges: map[string]map[int32][]lake.Range{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, ".parquet") {
			return nil
		}
		table, top, part, r, err := lake.ParseSegmentKey(rel)
		if err != nil {
			t.Errorf("a .parquet file that is not a segment: %s: %v", rel, err)
			return nil
		}
		if top != topic {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if lc.ranges[table] == nil {
			lc.ranges[table] = map[int32][]lake.Range{}
		}
		lc.ranges[table][part] = append(lc.ranges[table][part], r)
		switch table {
		case schemas.TableRaw:
			rows, err := lake.ReadRows[schemas.Raw](data)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			for _, row := range rows {
				if row.Partition != part || row.Offset < r.First || row.Offset > r.Last {
					t.Errorf("%s holds %d/%d outside its name", rel, row.Partition, row.Offset)
				}
			}
			lc.raw = append(lc.raw, rows...)
		case schemas.TableDLQ:
			rows, err := lake.ReadRows[schemas.DLQ](data)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			lc.dlq = append(lc.dlq, rows...)
		case schemas.TableGaps:
			rows, err := lake.ReadRows[schemas.Gap](data)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if len(rows) != 1 || rows[0].Partition != part || rows[0].FirstOffset != r.First || rows[0].LastOffset != r.Last {
				t.Errorf("%s holds %+v, want one row naming its range", rel, rows)
			}
			lc.gaps = append(lc.gaps, rows...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for table, parts := range lc.ranges {
		for p, rs := range parts {
			sort.Slice(rs, func(i, j int) bool { return rs[i].First < rs[j].First })
			for i := 1; i < len(rs); i++ {
				if rs[i].First <= rs[i-1].Last {
					t.Errorf("%s partition %d: ranges %v and %v overlap", table, p, rs[i-1], rs[i])
				}
			}
		}
	}
	// Raw and gaps segments together follow each other without a hole.
	for p := range lc.ranges[schemas.TableRaw] {
		rs := lc.positions(p)
		for i := 1; i < len(rs); i++ {
			if rs[i].First != rs[i-1].Last+1 {
				t.Errorf("partition %d: raw and gaps ranges %v and %v are not contiguous", p, rs[i-1], rs[i])
			}
		}
	}
	return lc
}

// positions returns the raw and gaps ranges of partition p, sorted.
func (lc lakeContent) positions(p int32) []lake.Range {
	rs := append(slices.Clone(lc.ranges[schemas.TableRaw][p]), lc.ranges[schemas.TableGaps][p]...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].First < rs[j].First })
	return rs
}

// checkCovered asserts that raw and gaps segments of each partition cover
// its offsets from 0 to its end (the high watermark) exactly, with no hole.
func checkCovered(t testing.TB, lc lakeContent, ends map[int32]int64) {
	t.Helper()
	for p, end := range ends {
		rs := lc.positions(p)
		if len(rs) == 0 || rs[0].First != 0 || rs[len(rs)-1].Last != end-1 {
			t.Errorf("partition %d: raw and gaps ranges %v do not cover offsets 0-%d", p, rs, end-1)
		}
	}
}

// checkExact asserts that raw and DLQ together hold every offset below the
// high watermarks exactly once.
func checkExact(t testing.TB, lc lakeContent, hwm map[int32]int64) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range lc.raw {
		seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
	}
	for _, r := range lc.dlq {
		seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
	}
	var total int64
	missing, dup := 0, 0
	for p, end := range hwm {
		total += end
		for o := int64(0); o < end; o++ {
			switch seen[fmt.Sprintf("%d/%d", p, o)] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
	}
	if missing > 0 || dup > 0 || int64(len(seen)) != total {
		t.Fatalf("lake is not exact: %d offsets missing, %d held more than once, %d distinct held, %d produced",
			missing, dup, len(seen), total)
	}
}

// textsOf returns the sorted "text" fields of JSON lines.
// checkTexts checks that the raw rows hold exactly the texts of lines.
func checkTexts(t testing.TB, raw []schemas.Raw, lines [][]byte) {
	t.Helper()
	got := make([]string, 0, len(raw))
	for _, r := range raw {
		got = append(got, r.Text)
	}
	sort.Strings(got)
	want := textsOf(t, lines)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("text %d differs (%d bytes, want %d): %.80q", i, len(got[i]), len(want[i]), got[i])
		}
	}
}

func textsOf(t testing.TB, lines [][]byte) []string {
	t.Helper()
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		var v struct{ Text string }
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Text)
	}
	sort.Strings(out)
	return out
}

// checkResolved checks the lake as a reader resolves it: in every partition
// of raw and dlq no two segments overlap partially (lake.ListSegments), and
// none is left superseded.
func checkResolved(t testing.TB, dir, topic string) {
	t.Helper()
	store := openLakeDir(t, dir)
	for _, table := range []string{schemas.TableRaw, schemas.TableDLQ} {
		live, sup, err := lake.ListSegments(context.Background(), store, table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if len(sup) > 0 {
			t.Errorf("%s: %d superseded segments left, like %s", table, len(sup), sup[0].Key)
		}
		if len(live) == 0 && table == schemas.TableRaw {
			t.Errorf("%s: no segment", table)
		}
	}
	rep, err := lake.Check(context.Background(), store, lake.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Severity != lake.SeverityInfo {
			t.Errorf("lake check: %s", f)
		}
	}
}

func openLakeDir(t testing.TB, dir string) *lake.Dir {
	t.Helper()
	d, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
