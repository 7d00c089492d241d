package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Roles of the rows of a batch record.
const (
	RoleExample  = "example"
	RoleNegative = "negative"
)

// BatchVersion is the version of the batch record layout (Schema).
const BatchVersion = 1

// ErrFormat is wrapped by FromRecord's errors: the record is not a batch
// of this layout.
var ErrFormat = errors.New("sampler: not a sampler batch record")

// Schema is the Arrow schema of a batch record: one row per example, then
// one per candidate negative (role), and the batch's own fields repeated on
// every row (batch_*), so that every record of an IPC stream, which shares
// one schema, carries them.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "role", Type: arrow.BinaryTypes.String},
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "cluster_id", Type: arrow.BinaryTypes.String},
	{Name: "domain", Type: arrow.BinaryTypes.String},
	{Name: "text", Type: arrow.BinaryTypes.String},
	{Name: "words", Type: arrow.PrimitiveTypes.Int32},
	{Name: "stage", Type: arrow.PrimitiveTypes.Int32},
	{Name: "difficulty", Type: arrow.PrimitiveTypes.Float32},
	{Name: "char_entropy", Type: arrow.PrimitiveTypes.Float32},
	{Name: "word_entropy", Type: arrow.PrimitiveTypes.Float32},
	{Name: "length_words", Type: arrow.PrimitiveTypes.Int32},
	{Name: "view_a", Type: arrow.BinaryTypes.String},
	{Name: "view_b", Type: arrow.BinaryTypes.String},
	{Name: "masked_a", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	{Name: "masked_b", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	{Name: "replay", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "batch_seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "batch_stage", Type: arrow.PrimitiveTypes.Int32},
	{Name: "batch_competence", Type: arrow.PrimitiveTypes.Float64},
	{Name: "batch_plan_version", Type: arrow.PrimitiveTypes.Int64},
	{Name: "batch_epoch", Type: arrow.PrimitiveTypes.Int64},
}, func() *arrow.Metadata {
	m := arrow.NewMetadata([]string{"thresher.table", "thresher.version"}, []string{"sampler/batch", fmt.Sprint(BatchVersion)})
	return &m
}())

const (
	colRole = iota
	colTopic
	colPartition
	colOffset
	colCluster
	colDomain
	colText
	colWords
	colStage
	colDifficulty
	colCharEnt
	colWordEnt
	colLenWords
	colViewA
	colViewB
	colMaskedA
	colMaskedB
	colReplay
	colSeq
	colBStage
	colComp
	colPlan
	colEpoch
	numCols
)

// maxRows bounds the rows FromRecord accepts.
const maxRows = 1 << 20

// Record returns the batch as an Arrow record (Schema), allocated from
// memory.DefaultAllocator; the caller releases it.
func (b *Batch) Record() arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer rb.Release()
	n := len(b.Examples) + len(b.Negatives)
	rb.Reserve(n)
	str := func(i int) *array.StringBuilder { return rb.Field(i).(*array.StringBuilder) }
	i32 := func(i int) *array.Int32Builder { return rb.Field(i).(*array.Int32Builder) }
	i64 := func(i int) *array.Int64Builder { return rb.Field(i).(*array.Int64Builder) }
	f32 := func(i int) *array.Float32Builder { return rb.Field(i).(*array.Float32Builder) }
	list := func(i int, words []string) {
		lb := rb.Field(i).(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for _, w := range words {
			vb.Append(w)
		}
	}
	add := func(e *Example, role string) {
		str(colRole).Append(role)
		str(colTopic).Append(e.Topic)
		i32(colPartition).Append(e.Partition)
		i64(colOffset).Append(e.Offset)
		str(colCluster).Append(e.ClusterID)
		str(colDomain).Append(e.Domain)
		str(colText).Append(e.Text)
		i32(colWords).Append(e.Words)
		i32(colStage).Append(e.Stage)
		f32(colDifficulty).Append(e.Difficulty)
		f32(colCharEnt).Append(e.CharEntropy)
		f32(colWordEnt).Append(e.WordEntropy)
		i32(colLenWords).Append(e.LengthWords)
		str(colViewA).Append(e.ViewA)
		str(colViewB).Append(e.ViewB)
		list(colMaskedA, e.MaskedA)
		list(colMaskedB, e.MaskedB)
		rb.Field(colReplay).(*array.BooleanBuilder).Append(e.Replay)
		i64(colSeq).Append(b.Seq)
		i32(colBStage).Append(b.Stage)
		rb.Field(colComp).(*array.Float64Builder).Append(b.Competence)
		i64(colPlan).Append(b.PlanVersion)
		i64(colEpoch).Append(b.Epoch)
	}
	for i := range b.Examples {
		add(&b.Examples[i], RoleExample)
	}
	for i := range b.Negatives {
		add(&b.Negatives[i], RoleNegative)
	}
	return rb.NewRecordBatch()
}

// FromRecord decodes a batch record (Schema) into a Batch, copying every
// value out of the record, so the record may be released afterwards. A
// record of another layout, with nulls, with differing batch_* values or
// without any row is an error wrapping ErrFormat.
func FromRecord(rec arrow.RecordBatch) (b *Batch, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("%w: malformed arrays: %v", ErrFormat, p)
		}
	}()
	if rec == nil {
		return nil, fmt.Errorf("%w: nil record", ErrFormat)
	}
	sc := rec.Schema()
	if sc.NumFields() != numCols || int(rec.NumCols()) != numCols {
		return nil, fmt.Errorf("%w: %d columns, want %d", ErrFormat, rec.NumCols(), numCols)
	}
	for i := range numCols {
		want, got := Schema.Field(i), sc.Field(i)
		if got.Name != want.Name || !arrow.TypeEqual(got.Type, want.Type) {
			return nil, fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrFormat, i, got.Name, got.Type, want.Name, want.Type)
		}
	}
	n := int(rec.NumRows())
	if n <= 0 || n > maxRows {
		return nil, fmt.Errorf("%w: %d rows, want 1 to %d", ErrFormat, n, maxRows)
	}
	for i := range numCols {
		c := rec.Column(i)
		if c.Len() != n {
			return nil, fmt.Errorf("%w: column %s has %d rows, want %d", ErrFormat, sc.Field(i).Name, c.Len(), n)
		}
		if c.NullN() != 0 {
			return nil, fmt.Errorf("%w: column %s has nulls", ErrFormat, sc.Field(i).Name)
		}
	}
	strs := make([][]string, numCols)
	for _, i := range []int{colRole, colTopic, colCluster, colDomain, colText, colViewA, colViewB} {
		if strs[i], err = copyStrings(rec.Column(i).(*array.String)); err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", ErrFormat, sc.Field(i).Name, err)
		}
	}
	maskedA, err := copyLists(rec.Column(colMaskedA).(*array.List), n)
	if err != nil {
		return nil, fmt.Errorf("%w: masked_a: %v", ErrFormat, err)
	}
	maskedB, err := copyLists(rec.Column(colMaskedB).(*array.List), n)
	if err != nil {
		return nil, fmt.Errorf("%w: masked_b: %v", ErrFormat, err)
	}
	i32 := func(i int) []int32 { return rec.Column(i).(*array.Int32).Int32Values() }
	i64 := func(i int) []int64 { return rec.Column(i).(*array.Int64).Int64Values() }
	f32 := func(i int) []float32 { return rec.Column(i).(*array.Float32).Float32Values() }
	part, off, words, stage, lw := i32(colPartition), i64(colOffset), i32(colWords), i32(colStage), i32(colLenWords)
	diff, ce, we := f32(colDifficulty), f32(colCharEnt), f32(colWordEnt)
	replay := rec.Column(colReplay).(*array.Boolean)
	seq, bst, plan, epoch := i64(colSeq), i32(colBStage), i64(colPlan), i64(colEpoch)
	comp := rec.Column(colComp).(*array.Float64).Float64Values()
	if len(part) < n || len(off) < n || len(words) < n || len(stage) < n || len(lw) < n || len(diff) < n ||
		len(ce) < n || len(we) < n || len(seq) < n || len(bst) < n || len(plan) < n || len(epoch) < n || len(comp) < n {
		return nil, fmt.Errorf("%w: short column buffers", ErrFormat)
	}
	b = &Batch{Seq: seq[0], Stage: bst[0], Competence: comp[0], PlanVersion: plan[0], Epoch: epoch[0]}
	negatives := false
	for i := range n {
		if seq[i] != b.Seq || bst[i] != b.Stage || plan[i] != b.PlanVersion || epoch[i] != b.Epoch ||
			math.Float64bits(comp[i]) != math.Float64bits(b.Competence) {
			return nil, fmt.Errorf("%w: row %d: batch fields differ from row 0's", ErrFormat, i)
		}
		e := Example{
			Topic: strs[colTopic][i], Partition: part[i], Offset: off[i], ClusterID: strs[colCluster][i],
			Domain: strs[colDomain][i], Text: strs[colText][i], Words: words[i], Stage: stage[i],
			Difficulty: diff[i], CharEntropy: ce[i], WordEntropy: we[i], LengthWords: lw[i],
			ViewA: strs[colViewA][i], ViewB: strs[colViewB][i], MaskedA: maskedA[i], MaskedB: maskedB[i],
			Replay: replay.Value(i),
		}
		switch strs[colRole][i] {
		case RoleExample:
			if negatives {
				return nil, fmt.Errorf("%w: row %d: an example after a negative", ErrFormat, i)
			}
			b.Examples = append(b.Examples, e)
		case RoleNegative:
			negatives = true
			b.Negatives = append(b.Negatives, e)
		default:
			return nil, fmt.Errorf("%w: row %d: role %q", ErrFormat, i, strs[colRole][i])
		}
	}
	return b, nil
}

// copyStrings copies a string column: one allocation for all its bytes,
// each value a substring of it.
func copyStrings(a *array.String) ([]string, error) {
	n := a.Len()
	if n == 0 {
		return nil, nil
	}
	offs := a.ValueOffsets()
	if len(offs) != n+1 {
		return nil, errors.New("bad offsets")
	}
	lo, hi := offs[0], offs[n]
	data := a.ValueBytes()
	if lo < 0 || hi < lo || int(hi-lo) != len(data) {
		return nil, errors.New("bad offsets")
	}
	all := string(data)
	out := make([]string, n)
	for i := range n {
		s, e := offs[i]-lo, offs[i+1]-lo
		if s < 0 || e < s || int(e) > len(all) {
			return nil, errors.New("bad offsets")
		}
		out[i] = all[s:e]
	}
	return out, nil
}

// copyLists copies a list<utf8> column; an empty list reads as nil.
func copyLists(a *array.List, n int) ([][]string, error) {
	vals, ok := a.ListValues().(*array.String)
	if !ok {
		return nil, errors.New("list values are not strings")
	}
	if vals.NullN() != 0 {
		return nil, errors.New("null list values")
	}
	words, err := copyStrings(vals)
	if err != nil {
		return nil, err
	}
	out := make([][]string, n)
	for i := range n {
		s, e := a.ValueOffsets(i)
		if s < 0 || e < s || e > int64(len(words)) {
			return nil, errors.New("bad list offsets")
		}
		if e > s {
			out[i] = words[s:e:e]
		}
	}
	return out, nil
}
