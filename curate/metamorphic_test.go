package curate_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// layout is one way to lay the same records out as raw segments and
// windows.
type layout struct {
	partitions, segment, window int
}

// curateLayout curates lines under a layout and returns, per input line,
// the input lines of its cluster (as the line of the cluster's id) and the
// audit rows keyed by line.
func curateLayout(t *testing.T, lines [][]byte, l layout) (cluster []int, rows map[int]schemas.AuditRecord) {
	t.Helper()
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, store, lines, l.partitions, l.segment)
	if err := runStage(t, testConfig(dir, l.window), store); err != nil {
		t.Fatal(err)
	}
	// writeRaw puts line i in partition i%P at offset i/P.
	line := func(p int32, off int64) int { return int(off)*l.partitions + int(p) }
	rows = map[int]schemas.AuditRecord{}
	cluster = make([]int, len(lines))
	for _, a := range checkAudit(t, store, len(lines)) {
		var p int32
		var off int64
		if _, err := fmt.Sscanf(a.ClusterID, "records/%d/%d", &p, &off); err != nil {
			t.Fatalf("cluster id %q: %v", a.ClusterID, err)
		}
		i := line(a.Partition, a.Offset)
		cluster[i] = line(p, off)
		rows[i] = a
	}
	return cluster, rows
}

// TestCurateMetamorphic lays the same real records out in other segment
// sizes, window sizes and partition counts. In the same record order
// (one partition) every audit row must be identical. Across orders, records
// with the same text must always share a cluster, and the cluster structure
// may differ only where near-duplicate chains (A~B, B~C, A≁C) resolve
// another way (see package dedup), which is rare.
func TestCurateMetamorphic(t *testing.T) {
	lines := realtest.CorpusLines(t, 12_000)
	base, baseRows := curateLayout(t, lines, layout{1, 3000, 12_000})

	t.Run("same order, other segments and windows", func(t *testing.T) {
		_, rows := curateLayout(t, lines, layout{1, 700, 2500})
		for i, want := range baseRows {
			got := rows[i]
			// Difficulty and stage depend on the window the plan closes.
			got.Difficulty, got.CurriculumStage = want.Difficulty, want.CurriculumStage
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("line %d:\n got %+v\nwant %+v", i, got, want)
			}
		}
	})

	texts := map[string][]int{}
	for i, l := range lines {
		var v struct{ Text string }
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatal(err)
		}
		texts[v.Text] = append(texts[v.Text], i)
	}
	members := func(cluster []int) map[int]map[int]bool {
		m := map[int]map[int]bool{}
		for i, c := range cluster {
			if m[c] == nil {
				m[c] = map[int]bool{}
			}
			m[c][i] = true
		}
		return m
	}
	baseMembers := members(base)
	for _, l := range []layout{{3, 1000, 4000}, {5, 400, 12_000}} {
		t.Run(fmt.Sprintf("partitions=%d/segment=%d/window=%d", l.partitions, l.segment, l.window), func(t *testing.T) {
			cluster, _ := curateLayout(t, lines, l)
			for _, same := range texts {
				for _, i := range same[1:] {
					if cluster[i] != cluster[same[0]] {
						t.Fatalf("lines %d and %d hold the same text but are in clusters %d and %d", same[0], i, cluster[same[0]], cluster[i])
					}
				}
			}
			got := members(cluster)
			moved := 0
			for i := range lines {
				a, b := baseMembers[base[i]], got[cluster[i]]
				if len(a) != len(b) {
					moved++
					continue
				}
				for j := range a {
					if !b[j] {
						moved++
						break
					}
				}
			}
			t.Logf("%d of %d records are in a cluster with other members than in the base layout", moved, len(lines))
			if moved*1000 > len(lines)*5 {
				t.Fatalf("%d of %d records changed cluster (more than 0.5%%)", moved, len(lines))
			}
		})
	}
}
