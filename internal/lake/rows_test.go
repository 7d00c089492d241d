package lake_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/schemas"
)

func TestEncodeRowsRoundTrip(t *testing.T) {
	rows := []schemas.AuditRecord{
		{Topic: "t", Partition: 1, Offset: 7, KafkaTS: time.UnixMilli(1700000000123).UTC(), ID: "a", Decision: schemas.DecisionKept,
			ClusterID: "t/1/7", Audit: schemas.Audit{LengthChars: 3, CharEntropy: 1.5, PIIFlags: []string{"email"}, QualityFlags: []string{}}},
		{Topic: "t", Partition: 1, Offset: 8, KafkaTS: time.UnixMilli(1700000000124).UTC(), Decision: schemas.DecisionExactDuplicate,
			ClusterID: "t/1/7", DupOf: "t/1/7", Audit: schemas.Audit{PIIFlags: []string{}, QualityFlags: []string{"too_short", "low_alpha"}}},
	}
	data, err := lake.EncodeRows(schemas.TableAuditRecords, schemas.AuditRecordsVersion, rows)
	if err != nil {
		t.Fatal(err)
	}
	got, err := lake.ReadRows[schemas.AuditRecord](data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].PIIFlags == nil {
			got[i].PIIFlags = []string{}
		}
		if got[i].QualityFlags == nil {
			got[i].QualityFlags = []string{}
		}
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, rows)
	}
	meta, n, err := lake.FileMeta(data)
	if err != nil || n != 2 || meta[schemas.MetaTable] != schemas.TableAuditRecords || meta[schemas.MetaVersion] != "1" {
		t.Fatalf("meta %v rows %d err %v", meta, n, err)
	}
}
