package lake

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// corpusRecord is one line of the stream; absent fields are nil.
type corpusRecord struct {
	ID     *string `json:"id"`
	Source *string `json:"source"`
	Domain *string `json:"domain"`
	Lang   *string `json:"lang"`
	Text   string  `json:"text"`
}

var corpus struct {
	sync.Mutex
	recs []corpusRecord // the longest prefix read so far
}

// loadCorpus returns the first n records of the real stream (fewer if it is
// shorter), decoded. realtest.CorpusLines skips the test without the file,
// or fails it when CI=true.
func loadCorpus(tb testing.TB, n int) []corpusRecord {
	tb.Helper()
	corpus.Lock()
	defer corpus.Unlock()
	if len(corpus.recs) >= n {
		return corpus.recs[:n]
	}
	lines := realtest.CorpusLines(tb, n)
	recs := make([]corpusRecord, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal(l, &recs[i]); err != nil {
			tb.Fatalf("real corpus, record %d: %v", i, err)
		}
	}
	corpus.recs = recs
	return recs
}

// corpusBatch turns records into a raw batch as ingest would: topic
// "records", partition 0, offset i, kafka_ts now, key = id, ts, attrs and
// headers null.
// It also returns the bytes of text.
func corpusBatch(recs []corpusRecord) (arrow.RecordBatch, int64) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.RawSchema)
	defer b.Release()
	now := arrow.Timestamp(time.Now().UnixMilli())
	var textBytes int64
	for i, r := range recs {
		b.Field(0).(*array.StringBuilder).Append("records")
		b.Field(1).(*array.Int32Builder).Append(0)
		b.Field(2).(*array.Int64Builder).Append(int64(i))
		b.Field(3).(*array.TimestampBuilder).Append(now)
		if r.ID == nil {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BinaryBuilder).Append([]byte(*r.ID))
		}
		appendStr(b.Field(5), r.ID)
		appendStr(b.Field(6), r.Source)
		appendStr(b.Field(7), r.Domain)
		appendStr(b.Field(8), r.Lang)
		b.Field(9).AppendNull()
		b.Field(10).(*array.StringBuilder).Append(r.Text)
		b.Field(11).AppendNull()
		b.Field(12).AppendNull()
		textBytes += int64(len(r.Text))
	}
	return b.NewRecordBatch(), textBytes
}

func TestEncodeCorpus(t *testing.T) {
	recs := loadCorpus(t, 5000)
	rec, _ := corpusBatch(recs)
	defer rec.Release()
	enc, err := NewEncoder[schemas.Raw](schemas.TableRaw, schemas.RawVersion, WithRowGroupRows(2000))
	if err != nil {
		t.Fatal(err)
	}
	data, err := enc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows[schemas.Raw](data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(recs) {
		t.Fatalf("read %d rows, want %d", len(rows), len(recs))
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	for i, r := range recs {
		g := rows[i]
		if g.Text != r.Text || g.ID != str(r.ID) || string(g.Key) != str(r.ID) || g.Source != str(r.Source) ||
			g.Domain != str(r.Domain) || g.Lang != str(r.Lang) || g.Offset != int64(i) || g.Topic != "records" ||
			!g.TS.IsZero() || g.Attrs != "" {
			t.Fatalf("row %d: got %+v, want %+v", i, g, r)
		}
	}
	sameAsReadRows(t, data, rows)
}
