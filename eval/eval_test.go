package eval

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMetrics(t *testing.T) {
	for _, tc := range []struct {
		name        string
		truth, pred []int
		classes     int
		acc, f1     float64
	}{
		// Confusion (rows truth, columns predicted):
		//   0: 2 1 0      F1_0 = 2*2/(2*2+0+1) = 0.8
		//   1: 0 1 1      F1_1 = 2*1/(2*1+1+1) = 0.5
		//   2: 0 0 1      F1_2 = 2*1/(2*1+1+0) = 2/3
		// Class 3 is absent from the truth and not averaged.
		{"three classes", []int{0, 0, 0, 1, 1, 2}, []int{0, 0, 1, 1, 2, 2}, 4, 4.0 / 6, (0.8 + 0.5 + 2.0/3) / 3},
		// A prediction of a class absent from the truth is a false
		// negative of the true class: F1_0 = 0, F1_1 = 1.
		{"predicted absent class", []int{0, 1}, []int{3, 1}, 4, 0.5, 0.5},
		{"perfect", []int{2, 0, 1}, []int{2, 0, 1}, 3, 1, 1},
		{"never predicted", []int{0, 0, 1}, []int{0, 0, 0}, 2, 2.0 / 3, (2.0*2/(2*2+1) + 0) / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Accuracy(tc.truth, tc.pred); !near(got, tc.acc) {
				t.Errorf("accuracy %v, want %v", got, tc.acc)
			}
			if got := MacroF1(tc.truth, tc.pred, tc.classes); !near(got, tc.f1) {
				t.Errorf("macro-F1 %v, want %v", got, tc.f1)
			}
		})
	}
	m, s := meanStd([]float64{1, 2, 3, 4})
	if !near(m, 2.5) || !near(s, math.Sqrt(5.0/3)) {
		t.Errorf("meanStd: %v %v", m, s)
	}
}

// blobs returns n points per class around the unit vectors of a dims-D
// space (class c near axis c), dense.
func blobs(n, classes int, jitter float32) (*Matrix, []int) {
	var rows [][]float32
	var y []int
	for c := range classes {
		for i := range n {
			r := make([]float32, classes)
			r[c] = 1
			r[(c+1)%classes] = jitter * float32(i%3)
			rows = append(rows, r)
			y = append(y, c)
		}
	}
	return NewDense(rows, classes), y
}

func TestLogRegSeparable(t *testing.T) {
	x, y := blobs(10, 3, 0.3)
	m := FitLogReg(x, y, 3, 100)
	if acc := Accuracy(y, m.Predict(x)); acc != 1 {
		t.Fatalf("train accuracy %v on a separable set", acc)
	}
	if len(m.Losses) < 3 || m.Iterations < 2 {
		t.Fatalf("%d iterations, losses %v", m.Iterations, m.Losses)
	}
	for i := 1; i < len(m.Losses); i++ {
		if m.Losses[i] > m.Losses[i-1] {
			t.Fatalf("loss rose at iteration %d: %v", i, m.Losses)
		}
	}
	if first, last := m.Losses[0], m.Losses[len(m.Losses)-1]; !near(first, math.Log(3)) || last > 0.1*first {
		t.Fatalf("loss %v -> %v, want ln 3 -> under a tenth of it", first, last)
	}
	// Stronger regularisation leaves a higher loss and smaller weights.
	weak := FitLogReg(x, y, 3, 0.01)
	if weak.Losses[len(weak.Losses)-1] <= m.Losses[len(m.Losses)-1] || norm2(weak.w) >= norm2(m.w) {
		t.Fatalf("C=0.01 loss %v |w| %v, C=100 loss %v |w| %v", weak.Losses[len(weak.Losses)-1], norm2(weak.w), m.Losses[len(m.Losses)-1], norm2(m.w))
	}
}

func TestLogRegSparse(t *testing.T) {
	// Class c is marked by column 1000*c+7 among 10^5 columns; row i also
	// has ten noise columns of its own. 30 rows over 303 used columns: the
	// kernel form.
	x := &Matrix{Cols: 100_000, Ptr: []int{0}}
	var y []int
	for i := range 30 {
		c := i % 3
		x.Idx = append(x.Idx, int32(1000*c+7))
		x.Val = append(x.Val, 0.8)
		for q := range 10 {
			x.Idx = append(x.Idx, int32(50_000+10*i+q))
			x.Val = append(x.Val, 0.2)
		}
		x.Ptr = append(x.Ptr, len(x.Idx))
		x.Rows++
		y = append(y, c)
	}
	m := FitLogReg(x, y, 3, 10)
	if m.local != 303 || m.dual == nil {
		t.Fatalf("%d local columns (want the 303 the rows use), kernel form %v", m.local, m.dual != nil)
	}
	for i := 1; i < len(m.Losses); i++ {
		if m.Losses[i] > m.Losses[i-1] {
			t.Fatalf("kernel form: loss rose at iteration %d: %v", i, m.Losses)
		}
	}
	// Unseen rows: the class column with a column never seen in training.
	test := &Matrix{Rows: 3, Cols: 100_000, Ptr: []int{0, 2, 4, 6},
		Idx: []int32{7, 99_999, 1007, 99_999, 2007, 99_998}, Val: []float32{0.5, 0.5, 0.5, 0.5, 0.5, 0.5}}
	if got := m.Predict(test); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("predicted %v, want [0 1 2]", got)
	}
	// Weights: the scores of the unseen rows from the exported rows.
	cols, w := m.Weights()
	if len(cols) != 303 || len(w) != 304*3 {
		t.Fatalf("Weights: %d columns and %d weights, want 303 and 304x3", len(cols), len(w))
	}
	row := map[int32]int{}
	for l, g := range cols {
		row[g] = l
	}
	for i, z := range m.Scores(test) {
		for c := range 3 {
			s := w[303*3+c]
			for t := test.Ptr[i]; t < test.Ptr[i+1]; t++ {
				if l, ok := row[test.Idx[t]]; ok {
					s += float64(test.Val[t]) * w[l*3+c]
				}
			}
			if math.Abs(s-z[c]) > 1e-9 {
				t.Fatalf("row %d class %d: %v from the weights, %v scored", i, c, s, z[c])
			}
		}
	}
	// The same data dense (the primal form) gives the same model.
	dense := make([][]float32, x.Rows)
	for i := range dense {
		dense[i] = make([]float32, x.Cols)
		for t := x.Ptr[i]; t < x.Ptr[i+1]; t++ {
			dense[i][x.Idx[t]] = x.Val[t]
		}
	}
	dm := FitLogReg(NewDense(dense, x.Cols), y, 3, 10)
	if a, b := dm.Losses[len(dm.Losses)-1], m.Losses[len(m.Losses)-1]; math.Abs(a-b) > 1e-5*a {
		t.Fatalf("dense loss %v, sparse (remapped) loss %v", a, b)
	}
	denseTest := make([][]float32, test.Rows)
	for i := range denseTest {
		denseTest[i] = make([]float32, x.Cols)
		for t := test.Ptr[i]; t < test.Ptr[i+1]; t++ {
			denseTest[i][test.Idx[t]] = test.Val[t]
		}
	}
	if got := dm.Predict(NewDense(denseTest, x.Cols)); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("dense model predicted %v", got)
	}
}

// TestSelectC: the same training set, two dev splits that disagree about
// how much to regularise. Train: 20 examples of class 0 at x=-1, 2 of
// class 1 at x=+1. A strongly regularised model answers the majority class
// everywhere; a weakly regularised one puts its boundary near 0.
func TestSelectC(t *testing.T) {
	var rows [][]float32
	var y []int
	for i := range 22 {
		if i < 20 {
			rows, y = append(rows, []float32{-1}), append(y, 0)
		} else {
			rows, y = append(rows, []float32{1}), append(y, 1)
		}
	}
	x := NewDense(rows, 1)
	dev := NewDense([][]float32{{0.5}, {0.5}, {0.5}}, 1)
	cs := []float64{0.01, 0.1, 1, 10, 100}
	for _, tc := range []struct {
		devLabel int
		want     float64
	}{{0, 0.01}, {1, 100}} {
		devY := []int{tc.devLabel, tc.devLabel, tc.devLabel}
		m, accs := SelectC(x, y, 2, dev, devY, cs)
		// Every accuracy equals an independent fit's.
		for i, c := range cs {
			if a := Accuracy(devY, FitLogReg(x, y, 2, c).Predict(dev)); a != accs[i] {
				t.Errorf("dev label %d, C=%v: selection saw accuracy %v, an independent fit %v", tc.devLabel, c, accs[i], a)
			}
		}
		first := slices.Index(accs, slices.Max(accs))
		if m.C != cs[first] {
			t.Errorf("dev label %d: chose C=%v with accuracies %v", tc.devLabel, m.C, accs)
		}
		if tc.want == 0.01 && m.C != 0.01 || tc.want == 100 && m.C < 1 {
			t.Errorf("dev label %d: chose C=%v (accuracies %v), want %v", tc.devLabel, m.C, accs, tc.want)
		}
	}
}

func TestKNN(t *testing.T) {
	train := NewDense([][]float32{{1, 0}, {0.8, 0.6}, {0.6, 0.8}, {0, 2}}, 2)
	ty := []int{0, 1, 1, 1}
	q := NewDense([][]float32{{0.99, 0.14}, {0, 3}}, 2) // not normalised
	nbs := Neighbours(train, q, 3)
	if got := []int{nbs[0][0].Row, nbs[0][1].Row, nbs[0][2].Row}; !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("neighbours of q0: %v", nbs[0])
	}
	if nbs[1][0].Row != 3 || math.Abs(float64(nbs[1][0].Sim)-1) > 1e-6 {
		t.Fatalf("neighbours of q1: %v", nbs[1])
	}
	for _, tc := range []struct{ k, want int }{{1, 0}, {2, 0}, {3, 1}} { // k=2: one vote each, class 0 is more similar
		if got := KNNPredict(nbs, ty, 2, tc.k); got[0] != tc.want || got[1] != 1 {
			t.Errorf("k=%d: %v, want [%d 1]", tc.k, got, tc.want)
		}
	}
	dev := q.Select([]int{0})
	devNbs := Neighbours(train, dev, 20)
	if k, accs := SelectK(devNbs, ty, 2, []int{1}, []int{1, 3, 5}); k != 3 || !slices.Equal(accs, []float64{0, 1, 1}) {
		t.Errorf("dev says class 1: chose k=%d (%v)", k, accs)
	}
	if k, _ := SelectK(devNbs, ty, 2, []int{0}, []int{1, 3, 5}); k != 1 {
		t.Errorf("dev says class 0: chose k=%d", k)
	}

	// Sparse rows give the same neighbours as their dense copies.
	sp := &Matrix{Rows: 4, Cols: 2, Ptr: []int{0, 1, 3, 5, 6}, Idx: []int32{0, 0, 1, 0, 1, 1}, Val: []float32{1, 0.8, 0.6, 0.6, 0.8, 2}}
	sq := &Matrix{Rows: 2, Cols: 2, Ptr: []int{0, 2, 3}, Idx: []int32{0, 1, 1}, Val: []float32{0.99, 0.14, 3}}
	snbs := Neighbours(sp, sq, 3)
	for i := range nbs {
		for j := range nbs[i] {
			if snbs[i][j].Row != nbs[i][j].Row || math.Abs(float64(snbs[i][j].Sim-nbs[i][j].Sim)) > 1e-6 {
				t.Fatalf("sparse neighbours %v, dense %v", snbs, nbs)
			}
		}
	}
}

func TestDraw(t *testing.T) {
	// Class 0: 100 examples, class 1: 40, class 2: 5, interleaved.
	var labels []int
	for i := range 145 {
		switch {
		case i%29 == 0 && i/29 < 5:
			labels = append(labels, 2)
		case len(labels)%3 == 0:
			labels = append(labels, 1)
		default:
			labels = append(labels, 0)
		}
	}
	counts := func(idx []int) [3]int {
		var c [3]int
		for _, i := range idx {
			c[labels[i]]++
		}
		return c
	}
	total := counts(allIndexes(len(labels)))
	d := Draw(labels, 3, 16, 7, 0)
	if c := counts(d); c != [3]int{16, 16, total[2]} || total[2] >= 16 {
		t.Fatalf("16 per class: counts %v (class totals %v)", c, total)
	}
	if !slices.IsSorted(d) || len(slices.Compact(slices.Clone(d))) != len(d) {
		t.Fatalf("draw not sorted and distinct: %v", d)
	}
	if !slices.Equal(Draw(labels, 3, 16, 7, 0), d) {
		t.Fatal("the same seed and draw gave another sample")
	}
	if slices.Equal(Draw(labels, 3, 16, 8, 0), d) || slices.Equal(Draw(labels, 3, 16, 7, 1), d) {
		t.Fatal("another seed or draw gave the same sample")
	}
	if all := Draw(labels, 3, AllLabels, 7, 3); !slices.Equal(all, allIndexes(len(labels))) {
		t.Fatalf("all: %v", all)
	}
	if c := counts(Draw(labels, 3, 1000, 7, 0)); c != total {
		t.Fatalf("more than any class has: %v, want %v", c, total)
	}
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestTFIDF(t *testing.T) {
	// Fitted on "ab cd" and "AB ef!": ab (df 2), cd, ef, "ab cd", "ab ef"
	// (df 1); N = 2. Single-letter words are no terms, and a pair skips
	// them, as scikit-learn's default token pattern does.
	f := NewTFIDF([]string{"ab cd", "AB ef!"})
	if f.Vocabulary() != 5 {
		t.Fatalf("vocabulary %d, want 5", f.Vocabulary())
	}
	// "ab, x cd AB zz": ab x2, cd, "ab cd" x1 ("x" is skipped), "cd ab",
	// zz and "ab zz" unknown.
	m, err := f.Transform(context.Background(), []string{"ab, x cd AB zz", "", "q"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idf := func(df float64) float64 { return math.Log(3/(1+df)) + 1 }
	want := []float64{(1 + math.Log(2)) * idf(2), idf(1), idf(1)} // ab, cd, "ab cd"
	var ss float64
	for _, v := range want {
		ss += v * v
	}
	if m.Rows != 3 || m.Ptr[1] != 3 || m.Ptr[2] != 3 || m.Ptr[3] != 3 {
		t.Fatalf("rows %v", m.Ptr)
	}
	got := map[float64]bool{}
	for j := 0; j < 3; j++ {
		if j > 0 && m.Idx[j] <= m.Idx[j-1] {
			t.Fatalf("columns not ascending: %v", m.Idx)
		}
		got[math.Round(float64(m.Val[j])*1e5)/1e5] = true
	}
	for _, v := range want {
		if !got[math.Round(v/math.Sqrt(ss)*1e5)/1e5] {
			t.Errorf("value %v missing from %v", v/math.Sqrt(ss), m.Val)
		}
	}
	// Concretely: idf(2) = 1, idf(1) = 1+ln 1.5.
	if !near(idf(2), 1) || !near(idf(1), 1+math.Log(1.5)) {
		t.Fatal("idf formula")
	}
}

func writeSplit(t *testing.T, path string, lines []string) {
	t.Helper()
	data := []byte(strings.Join(lines, "\n") + "\n")
	if strings.HasSuffix(path, ".gz") {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		gz := gzip.NewWriter(f)
		gz.Write(data)
		gz.Close()
		f.Close()
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadTask(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "toy")
	os.Mkdir(dir, 0o755)
	writeSplit(t, filepath.Join(dir, "train.jsonl.gz"), []string{
		`{"id": 1, "text": "one", "label": "b", "group": "g1", "extra": [1]}`,
		``,
		`{"id": "x", "text": "two", "label": "a"}`,
	})
	writeSplit(t, filepath.Join(dir, "dev.jsonl"), []string{`{"text": "three", "label": "c"}`})
	writeSplit(t, filepath.Join(dir, "test.jsonl.gz"), []string{`{"text": "four", "label": 7}`})
	task, err := LoadTask(dir)
	if err != nil {
		t.Fatal(err)
	}
	if task.Name != "toy" || !slices.Equal(task.Classes, []string{"7", "a", "b", "c"}) {
		t.Fatalf("name %q classes %v", task.Name, task.Classes)
	}
	if !slices.Equal(task.Train.Texts, []string{"one", "two"}) || !slices.Equal(task.Train.Labels, []int{2, 1}) ||
		!slices.Equal(task.Train.IDs, []string{"1", "x"}) || !slices.Equal(task.Dev.Labels, []int{3}) || !slices.Equal(task.Test.Labels, []int{0}) {
		t.Fatalf("splits %+v %+v %+v", task.Train, task.Dev, task.Test)
	}

	writeSplit(t, filepath.Join(dir, "dev.jsonl"), []string{`{"text": "three", "label": "c"}`, `{"text": 3, "label": "c"}`})
	_, err = LoadTask(dir)
	if !errors.Is(err, ErrTask) || !strings.Contains(err.Error(), "dev.jsonl line 2") {
		t.Fatalf("bad line: %v", err)
	}
	os.Remove(filepath.Join(dir, "dev.jsonl"))
	if _, err = LoadTask(dir); !errors.Is(err, ErrTask) || !strings.Contains(err.Error(), "no dev.jsonl.gz or dev.jsonl") {
		t.Fatalf("missing split: %v", err)
	}
	if _, err = LoadTask(filepath.Join(dir, "nope")); !errors.Is(err, ErrTask) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
}

func TestDecodeLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Example
		err  string
	}{
		{`{"id":"a","text":"t","label":"l","group":"g"}`, Example{ID: "a", Text: "t", Label: "l", Group: "g"}, ""},
		{`{"id":12,"text":"","label":3.5}`, Example{ID: "12", Label: "3.5"}, ""},
		{`{"text":"t"}`, Example{}, `"label"`},
		{`{"text":"t","label":""}`, Example{}, `"label"`},
		{`{"text":"t","label":true}`, Example{}, `"label"`},
		{`{"label":"l"}`, Example{}, `"text"`},
		{`{"text":"t","label":"l","id":{}}`, Example{}, `"id"`},
		{`[1]`, Example{}, "cannot unmarshal"},
		{`{"text":`, Example{}, "unexpected end"},
	} {
		got, err := decodeLine([]byte(tc.line))
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %+v, %v; want %+v, %q", tc.line, got, err, tc.want, tc.err)
		}
	}
}

func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"id": "00034479", "text": "an action; how could you do such a thing?", "label": "noun.act", "group": "00034479"}`))
	f.Add([]byte(`{"id": 46812, "text": "A day", "label": "fortunes", "group": "f46812"}`))
	f.Add([]byte(`{"text": "x", "label": 1e400}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ex, err := decodeLine(line)
		if err != nil {
			return
		}
		if ex.Label == "" {
			t.Fatalf("accepted an empty label: %q", line)
		}
		// A decoded line re-encodes into one that decodes the same.
		b, _ := json.Marshal(map[string]string{"id": ex.ID, "text": ex.Text, "label": ex.Label, "group": ex.Group})
		ex2, err := decodeLine(b)
		if err != nil || ex2.Text != ex.Text || ex2.Label != ex.Label || ex2.Group != ex.Group || ex2.ID != ex.ID {
			t.Fatalf("%q -> %+v -> %s -> %+v, %v", line, ex, b, ex2, err)
		}
	})
}

func TestLabelsPerClassJSON(t *testing.T) {
	l, err := ParseLabelsPerClass("16, 64,all")
	if err != nil || !slices.Equal(l, []LabelsPerClass{16, 64, AllLabels}) {
		t.Fatalf("%v %v", l, err)
	}
	b, _ := json.Marshal(l)
	if string(b) != `[16,64,"all"]` {
		t.Fatalf("%s", b)
	}
	var back []LabelsPerClass
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, l) {
		t.Fatalf("%v %v", back, err)
	}
	for _, bad := range []string{"", "0", "-3", "many", "16,x"} {
		if _, err := ParseLabelsPerClass(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	cfg := Config{Draws: -1, Cs: []float64{1, 0.1}, Ks: []int{0}, Workers: 0}
	cfg.SetDefaults()
	err = cfg.Validate()
	for _, want := range []string{"draws", "cs", "ks"} {
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v does not name %s", err, want)
		}
	}
}
