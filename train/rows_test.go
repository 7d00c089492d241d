package train

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"math/rand"
	"slices"
	"testing"
)

// The row kernels (pool, poolKey, addIDs, updateEmbRows, rowsUpdate) must
// give exactly the bits of their Go references: each test runs a kernel and
// its reference on the same random inputs and compares every float's bits.

var rowDims = []int{8, 64, 128, 1, 6, 12, 36} // the last four take the Go path

var rowCounts = []int{0, 1, 7, 300}

// rowsGo runs f with the row kernels off (their Go references).
func rowsGo(f func()) {
	old := rowsPureGo
	rowsPureGo = true
	defer func() { rowsPureGo = old }()
	f()
}

// needRowKernels skips a test of the kernels where they cannot run.
func needRowKernels(t *testing.T) {
	t.Helper()
	if !rowKernels() {
		t.Skip("no AVX2 kernels in this build or on this CPU")
	}
}

// rowEdgeFloat draws a float32 that is mostly in [-1, 1], sometimes an edge
// value: zeros of both signs, huge, tiny (subnormal) or infinite.
func rowEdgeFloat(r *rand.Rand) float32 {
	switch r.Intn(40) {
	case 0:
		return 0
	case 1:
		return float32(math.Copysign(0, -1))
	case 2:
		return float32(r.NormFloat64()) * 3e38
	case 3:
		return float32(r.NormFloat64()) * 1e-41
	case 4:
		return float32(math.Inf(-1))
	case 5:
		return float32(math.Inf(1))
	case 6:
		return float32(r.NormFloat64()) * 1e20
	}
	return 2*r.Float32() - 1
}

func rowFloats(r *rand.Rand, n int, edges bool) []float32 {
	s := make([]float32, n)
	for i := range s {
		if edges {
			s[i] = rowEdgeFloat(r)
		} else {
			s[i] = 2*r.Float32() - 1
		}
	}
	return s
}

// rowFirstDiff reports the first index where a and b differ in bits, or -1.
func rowFirstDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func rowCheckBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if i := rowFirstDiff(got, want); i >= 0 {
		if len(got) != len(want) {
			t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
		}
		t.Fatalf("%s[%d] = %g (%#08x), want %g (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
	}
}

// rowIDs draws n row ids below rows, with repeats.
func rowIDs(r *rand.Rand, n, rows int) []uint32 {
	ids := make([]uint32, n)
	for i := range ids {
		if i > 0 && r.Intn(5) == 0 {
			ids[i] = ids[r.Intn(i)]
		} else {
			ids[i] = uint32(r.Intn(rows))
		}
	}
	return ids
}

// rowPanics reports whether f rowPanics.
func rowPanics(f func()) (p bool) {
	defer func() {
		if recover() != nil {
			p = true
		}
	}()
	f()
	return false
}

func TestPoolKernel(t *testing.T) {
	needRowKernels(t)
	r := rand.New(rand.NewSource(1))
	const rows = 500
	for _, d := range rowDims {
		for _, edges := range []bool{false, true} {
			table := rowFloats(r, rows*d, edges)
			for _, n := range rowCounts {
				for rep := 0; rep < 3; rep++ {
					ids := rowIDs(r, n, rows)
					got, want := rowFloats(r, d, false), rowFloats(r, d, false)
					pool(got, table, ids, d)
					poolGo(want, table, ids, d)
					rowCheckBits(t, fmt.Sprintf("d=%d n=%d edges=%v: dst", d, n, edges), got, want)
				}
			}
			// An id beyond the table rowPanics as the Go loop does.
			ids := rowIDs(r, 9, rows)
			ids[5] = rows
			if !rowPanics(func() { pool(make([]float32, d), table, ids, d) }) {
				t.Fatalf("d=%d: no panic on an id beyond the table", d)
			}
		}
	}
}

// rowLearner is a Learner with only what the row functions use: tables of
// rows x d, a momentum age per row drawn from ages, and a powM of np
// entries (short ones make rows older than it, taken by math.Pow).
func rowLearner(r *rand.Rand, rows, d, np int, step int64, adagrad, edges bool, ages []int64) *Learner {
	l := &Learner{cfg: Config{EmbedDim: d, Momentum: 0.9}, step: step}
	l.emb = rowFloats(r, rows*d, edges)
	l.keyEmb = rowFloats(r, rows*d, edges)
	if adagrad {
		l.embAcc = rowFloats(r, rows*d, false)
		for i, v := range l.embAcc {
			l.embAcc[i] = v * v
			if edges && r.Intn(50) == 0 {
				l.embAcc[i] = float32(math.Inf(1))
			}
		}
	}
	l.keySync = make([]int64, rows)
	for i := range l.keySync {
		l.keySync[i] = step - ages[r.Intn(len(ages))]
	}
	l.powM = make([]float32, np)
	p := 1.0
	for i := range l.powM {
		l.powM[i] = float32(p)
		p *= l.cfg.Momentum
	}
	return l
}

func (l *Learner) rowClone() *Learner {
	return &Learner{cfg: l.cfg, step: l.step, powM: l.powM,
		emb: slices.Clone(l.emb), keyEmb: slices.Clone(l.keyEmb), embAcc: slices.Clone(l.embAcc),
		keySync: slices.Clone(l.keySync)}
}

func TestPoolKeyKernel(t *testing.T) {
	needRowKernels(t)
	r := rand.New(rand.NewSource(2))
	const rows = 400
	for _, d := range rowDims {
		for _, np := range []int{4096, 5} {
			for _, edges := range []bool{false, true} {
				// Ages 0 (the momentum row as it is), inside powM, and
				// beyond a short powM (math.Pow).
				l := rowLearner(r, rows, d, np, 10000, false, edges, []int64{0, 0, 1, 2, 3, 7, 40, 9999})
				for _, n := range rowCounts {
					for rep := 0; rep < 4; rep++ {
						ids := rowIDs(r, n, rows)
						got, want := rowFloats(r, d, false), rowFloats(r, d, false)
						l.poolKey(got, ids)
						l.poolKeyGo(want, ids)
						rowCheckBits(t, fmt.Sprintf("d=%d np=%d n=%d edges=%v: dst", d, np, n, edges), got, want)
					}
				}
				// The last id alone beyond powM: Go adds it and scales.
				ids := rowIDs(r, 7, rows)
				l.keySync[ids[6]] = l.step - int64(np) - 3
				got, want := make([]float32, d), make([]float32, d)
				l.poolKey(got, ids)
				l.poolKeyGo(want, ids)
				rowCheckBits(t, fmt.Sprintf("d=%d np=%d: last id old", d, np), got, want)
				// Ids beyond the tables, and rows ahead of the step, panic.
				ids[3] = rows
				if !rowPanics(func() { l.poolKey(got, ids) }) {
					t.Fatalf("d=%d: no panic on an id beyond the tables", d)
				}
				ids[3] = 0
				l.keySync[ids[2]] = l.step + 1
				if !rowPanics(func() { l.poolKey(got, ids) }) {
					t.Fatalf("d=%d: no panic on a negative age", d)
				}
			}
		}
	}
}

func rowGradEqual(t *testing.T, what string, got, want *sparseGrad) {
	t.Helper()
	if !slices.Equal(got.slot, want.slot) {
		t.Fatalf("%s: slots differ", what)
	}
	for k := range want.shards {
		if !slices.Equal(got.shards[k].rows, want.shards[k].rows) {
			t.Fatalf("%s: shard %d rows %v, want %v", what, k, got.shards[k].rows, want.shards[k].rows)
		}
		rowCheckBits(t, fmt.Sprintf("%s: shard %d grad", what, k), got.shards[k].grad, want.shards[k].grad)
	}
}

func TestGradAddKernel(t *testing.T) {
	needRowKernels(t)
	r := rand.New(rand.NewSource(3))
	const rows = 700
	for _, d := range rowDims {
		for _, w := range []int{1, 2, 3, 7} {
			for _, edges := range []bool{false, true} {
				got, want := newSparseGrad(rows, d, w), newSparseGrad(rows, d, w)
				// Texts of every length, added one after another, so later
				// ones meet rows that are already there.
				for rep := 0; rep < 3; rep++ {
					for _, n := range rowCounts {
						ids := rowIDs(r, n, rows)
						vec := rowFloats(r, d, edges)
						coef := 1 / float32(max(n, 1))
						if edges && rep == 1 {
							coef = rowEdgeFloat(r)
						}
						for k := 0; k < w; k++ {
							got.addIDs(&got.shards[k], k, w, ids, coef, vec)
							want.addIDsGo(&want.shards[k], k, w, ids, coef, vec)
						}
						rowGradEqual(t, fmt.Sprintf("d=%d w=%d n=%d edges=%v", d, w, n, edges), &got, &want)
					}
				}
				ids := rowIDs(r, 9, rows)
				ids[4] = uint32((rows + w) / w * w) // in shard 0 of w, beyond the slots
				if !rowPanics(func() { got.addIDs(&got.shards[0], 0, w, ids, 1, make([]float32, d)) }) {
					t.Fatalf("d=%d w=%d: no panic on a row beyond the slots", d, w)
				}
			}
		}
	}
}

// TestShardOf: the kernel's shard of a row, ((mod r) w) >> 64 with mod =
// 2^64/w rounded up, is r % w for 32-bit rows.
func TestShardOf(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, w := range []uint64{1, 2, 3, 5, 7, 64, 255, 256, 1<<31 + 11, 1<<32 - 1} {
		mod := ^uint64(0)/w + 1
		for i := 0; i < 10000; i++ {
			x := uint64(r.Uint32())
			switch i {
			case 0:
				x = 0
			case 1:
				x = 1<<32 - 1
			case 2:
				x = w - 1
			}
			hi, _ := bits.Mul64(mod*x, w)
			if hi != x%w {
				t.Fatalf("w=%d r=%d: %d, want %d", w, x, hi, x%w)
			}
		}
	}
}

func TestEmaRowsKernel(t *testing.T) {
	needRowKernels(t)
	r := rand.New(rand.NewSource(5))
	const rows = 600
	for _, d := range rowDims {
		for _, adagrad := range []bool{true, false} {
			for _, np := range []int{4096, 5} {
				for _, edges := range []bool{false, true} {
					// Ages against step-1: negative and zero (factor 1),
					// inside powM, and beyond a short one.
					l := rowLearner(r, rows, d, np, 5000, adagrad, edges, []int64{0, 1, 1, 2, 3, 9, 30, 4999})
					for _, n := range rowCounts {
						perm := r.Perm(rows)[:n]
						sh := make([]uint32, n)
						for i, p := range perm {
							sh[i] = uint32(p)
						}
						grad := rowFloats(r, n*d, edges)
						lr, eps, m := float32(0.05), float32(1e-8), float32(0.9)
						if edges && n == 7 {
							lr, m = rowEdgeFloat(r), rowEdgeFloat(r)
						}
						a, b := l.rowClone(), l.rowClone()
						ga, gb := slices.Clone(grad), slices.Clone(grad)
						a.updateEmbRows(sh, ga, lr, eps, m)
						rowsGo(func() { b.updateEmbRows(sh, gb, lr, eps, m) })
						what := fmt.Sprintf("d=%d adagrad=%v np=%d n=%d edges=%v", d, adagrad, np, n, edges)
						rowCheckBits(t, what+": emb", a.emb, b.emb)
						rowCheckBits(t, what+": keyEmb", a.keyEmb, b.keyEmb)
						rowCheckBits(t, what+": embAcc", a.embAcc, b.embAcc)
						rowCheckBits(t, what+": grad", ga, gb)
						if !slices.Equal(a.keySync, b.keySync) {
							t.Fatalf("%s: keySync differs", what)
						}
						l = a
						l.step++
					}
					sh := []uint32{3, 9, rows, 4}
					if !rowPanics(func() { l.updateEmbRows(sh, make([]float32, len(sh)*d), 0.1, 1e-8, 0.9) }) {
						t.Fatalf("d=%d: no panic on a row beyond the tables", d)
					}
				}
			}
		}
	}
}

func TestRowsUpdateKernel(t *testing.T) {
	needRowKernels(t)
	r := rand.New(rand.NewSource(6))
	const rows = 300
	for _, d := range rowDims {
		for _, adagrad := range []bool{true, false} {
			for _, edges := range []bool{false, true} {
				w := rowFloats(r, rows*d, edges)
				var acc []float32
				if adagrad {
					acc = rowFloats(r, rows*d, false)
					for i, v := range acc {
						acc[i] = v * v
					}
				}
				for _, n := range rowCounts {
					perm := r.Perm(rows)[:n]
					sh := make([]uint32, n)
					for i, p := range perm {
						sh[i] = uint32(p)
					}
					grad := rowFloats(r, n*d, edges)
					lr, eps := float32(0.05), float32(1e-8)
					if edges && n == 7 {
						lr = rowEdgeFloat(r)
					}
					wa, wb := slices.Clone(w), slices.Clone(w)
					aa, ab := slices.Clone(acc), slices.Clone(acc)
					ga, gb := slices.Clone(grad), slices.Clone(grad)
					rowsUpdate(wa, aa, sh, ga, d, lr, eps)
					rowsGo(func() { rowsUpdate(wb, ab, sh, gb, d, lr, eps) })
					what := fmt.Sprintf("d=%d adagrad=%v n=%d edges=%v", d, adagrad, n, edges)
					rowCheckBits(t, what+": w", wa, wb)
					rowCheckBits(t, what+": acc", aa, ab)
					rowCheckBits(t, what+": grad", ga, gb)
					w, acc = wa, aa
				}
				sh := []uint32{1, rows + 1000} // beyond the capacity too
				if !rowPanics(func() { rowsUpdate(w, acc, sh, make([]float32, 2*d), d, 0.1, 1e-8) }) {
					t.Fatalf("d=%d: no panic on a row beyond the table", d)
				}
			}
		}
	}
}

// TestRowKernelsStep: whole learners stepped with the row kernels and with
// their Go references end in the same bytes (parameters, optimiser state,
// momentum ages, queue, accumulated gradients), with Adagrad and SGD rows,
// the masked-token head, extra negatives, AccumSteps 2 and three workers.
// rowsPureGo tells the two runs apart, as turning haveAVX2 off would also
// swap the dense products' sgemm, whose AVX2 kernel rounds differently
// from gonum's; in the openblas build, whose sgemm does not depend on it,
// haveAVX2 itself is also turned off and on.
func TestRowKernelsStep(t *testing.T) {
	needRowKernels(t)
	for _, opt := range []string{EmbedAdagrad, EmbedSGD} {
		cfg := Config{
			Buckets: 1 << 12, EmbedDim: 64, HiddenDim: 32, OutDim: 16, QueueSize: 64,
			CharNgramMin: 2, CharNgramMax: 4, Symmetric: true, MLMWeight: 0.5, MLMBuckets: 64,
			MLMNegatives: 3, AccumSteps: 2, Workers: 3, Seed: 7, EmbedOptimizer: opt,
		}
		run := func(avx2, pureGo bool) []byte {
			oa, og := haveAVX2, rowsPureGo
			haveAVX2, rowsPureGo = avx2, pureGo
			defer func() { haveAVX2, rowsPureGo = oa, og }()
			l, err := NewLearner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range testBatches(9, 6) {
				l.StepNegatives(b, tinyNegatives)
			}
			state, err := l.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return state
		}
		asm := run(true, false)
		if ref := run(true, true); !bytes.Equal(asm, ref) {
			t.Fatalf("%s: learner state with the row kernels differs from the Go references", opt)
		}
		if BLAS == "openblas" {
			if ref := run(false, false); !bytes.Equal(asm, ref) {
				t.Fatalf("%s: learner state with haveAVX2 differs from without", opt)
			}
		}
	}
}

// rowBenchData is a realistic batch for the row kernels: tables of 2^18
// rows of 64 (online, momentum, Adagrad accumulators, huge pages as the
// learner's), 512 texts of 100 to 300 ids drawn with a Zipf skew (a few
// common n-grams, a long tail) and scattered over the table as hashing
// scatters them, the batch's distinct rows in first-touch order with a
// gradient row each, and an input gradient per text.
type rowBenchData struct {
	l     *Learner
	texts [][]uint32
	rows  []uint32
	grad  []float32
	dx    []float32
}

var rowBench *rowBenchData

func getRowBench() *rowBenchData {
	if rowBench != nil {
		return rowBench
	}
	const buckets, d, texts = 1 << 18, 64, 512
	r := rand.New(rand.NewSource(9))
	l := &Learner{cfg: Config{EmbedDim: d, Momentum: 0.99}, step: 20000}
	l.emb = make([]float32, buckets*d)
	l.keyEmb = make([]float32, buckets*d)
	l.embAcc = make([]float32, buckets*d)
	hugePages(l.emb)
	hugePages(l.keyEmb)
	hugePages(l.embAcc)
	for i := range l.emb {
		l.emb[i] = 2*r.Float32() - 1
		l.keyEmb[i] = 2*r.Float32() - 1
		l.embAcc[i] = r.Float32()
	}
	// Momentum ages: most rows of a batch were touched a few steps ago.
	l.keySync = make([]int64, buckets)
	for i := range l.keySync {
		l.keySync[i] = l.step - int64(r.ExpFloat64()*30)
	}
	l.powM = make([]float32, 4096)
	p := 1.0
	for i := range l.powM {
		l.powM[i] = float32(p)
		p *= l.cfg.Momentum
	}
	z := rand.NewZipf(r, 1.1, 2, buckets-1)
	seen := make(map[uint32]bool)
	b := &rowBenchData{l: l}
	for t := 0; t < texts; t++ {
		ids := make([]uint32, 100+r.Intn(201))
		for i := range ids {
			ids[i] = uint32(z.Uint64()*2654435761) % buckets
			if !seen[ids[i]] {
				seen[ids[i]] = true
				b.rows = append(b.rows, ids[i])
			}
		}
		b.texts = append(b.texts, ids)
	}
	b.grad = rowFloats(r, len(b.rows)*d, false)
	for i := range b.grad {
		b.grad[i] *= 1e-3
	}
	b.dx = rowFloats(r, texts*d, false)
	rowBench = b
	return b
}

// BenchmarkRowKernels times each row kernel against its Go reference on
// one realistic batch (getRowBench):
//
//	go test -run '^$' -bench RowKernels -count 5 ./train/
func BenchmarkRowKernels(b *testing.B) {
	if !rowKernels() {
		b.Skip("no AVX2 kernels in this build or on this CPU")
	}
	data := getRowBench()
	l, d := data.l, data.l.cfg.EmbedDim
	ids := 0
	for _, t := range data.texts {
		ids += len(t)
	}
	dst := make([]float32, d)
	kernels := []struct {
		name  string
		items int // ids or rows per op (reported per id either way)
		run   func()
	}{
		{"pool", ids, func() {
			for _, t := range data.texts {
				pool(dst, l.emb, t, d)
			}
		}},
		{"poolKey", ids, func() {
			for _, t := range data.texts {
				l.poolKey(dst, t)
			}
		}},
		{"gradAdd", ids, func() {
			// The learner's two shards, one after the other.
			g := &l.embGrad
			if g.slot == nil {
				*g = newSparseGrad(len(l.keySync), d, 2)
			}
			for k := range g.shards {
				for q, t := range data.texts {
					g.addIDs(&g.shards[k], k, 2, t, 1/float32(len(t)), data.dx[q*d:(q+1)*d])
				}
			}
			for k := range g.shards {
				g.reset(k)
			}
		}},
		{"emaRows", len(data.rows), func() {
			l.step++
			l.updateEmbRows(data.rows, data.grad, 0.05, 1e-8, 0.99)
		}},
		{"rowsUpdate", len(data.rows), func() {
			rowsUpdate(l.emb, l.embAcc, data.rows, data.grad, d, 0.05, 1e-8)
		}},
	}
	for _, k := range kernels {
		for _, mode := range []string{"go", "avx2"} {
			b.Run(k.name+"/"+mode, func(b *testing.B) {
				old := rowsPureGo
				rowsPureGo = mode == "go"
				defer func() { rowsPureGo = old }()
				k.run()
				cpu0 := cpuSeconds()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					k.run()
				}
				b.StopTimer()
				// CPU time is steadier than wall time on a shared machine.
				b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N*k.items), "cpu-ns/id")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k.items), "ns/id")
			})
		}
	}
}

// BenchmarkStepRows is BenchmarkStep (queue 4096) with the row kernels and
// with their Go references, in one run:
//
//	go test -run '^$' -bench StepRows -benchtime 30x -count 3 ./train/
func BenchmarkStepRows(b *testing.B) {
	if !rowKernels() {
		b.Skip("no AVX2 kernels in this build or on this CPU")
	}
	const batch, q = 256, 4096
	ex, _, _ := realExamples(b, 40*batch, 1)
	for _, mode := range []string{"go", "avx2"} {
		b.Run(mode, func(b *testing.B) {
			old := rowsPureGo
			rowsPureGo = mode == "go"
			defer func() { rowsPureGo = old }()
			l, err := NewLearner(Config{QueueSize: q, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i*batch < q+batch; i++ {
				l.Step(ex[(i%40)*batch : (i%40+1)*batch])
			}
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l.Step(ex[(i%40)*batch : (i%40+1)*batch])
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/(cpuSeconds()-cpu0), "examples/cpu-s")
		})
	}
}
