package dedup

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RecordID is the identity of a record: where it sits in Kafka.
type RecordID struct {
	Topic     string
	Partition int32
	Offset    int64
}

// String returns "topic/partition/offset", the form of the dup_of and
// cluster_id audit columns, and "" for the zero RecordID (the DupOf of a
// unique record). Kafka topic names cannot hold '/', so the form is
// unambiguous (ParseRecordID reads it back).
func (r RecordID) String() string {
	if r.IsZero() {
		return ""
	}
	b, _ := r.AppendText(make([]byte, 0, len(r.Topic)+24))
	return string(b)
}

// AppendText appends the String form to b. It never fails (the error is for
// encoding.TextAppender).
func (r RecordID) AppendText(b []byte) ([]byte, error) {
	if r.IsZero() {
		return b, nil
	}
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, r.Offset, 10), nil
}

// MarshalText implements encoding.TextMarshaler.
func (r RecordID) MarshalText() ([]byte, error) { return r.AppendText(nil) }

// IsZero reports whether r is the zero RecordID (DupOf of a unique record).
func (r RecordID) IsZero() bool { return r == RecordID{} }

// ErrRecordID is wrapped by ParseRecordID's errors.
var ErrRecordID = errors.New("dedup: malformed record id")

// ParseRecordID reads the String form ("" is the zero RecordID).
func ParseRecordID(s string) (RecordID, error) {
	if s == "" {
		return RecordID{}, nil
	}
	j := strings.LastIndexByte(s, '/')
	if j < 0 {
		return RecordID{}, fmt.Errorf("%w %q: want topic/partition/offset", ErrRecordID, s)
	}
	i := strings.LastIndexByte(s[:j], '/')
	if i < 0 {
		return RecordID{}, fmt.Errorf("%w %q: want topic/partition/offset", ErrRecordID, s)
	}
	p, err1 := strconv.ParseInt(s[i+1:j], 10, 32)
	o, err2 := strconv.ParseInt(s[j+1:], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return RecordID{}, fmt.Errorf("%w %q: %v", ErrRecordID, s, err)
	}
	return RecordID{Topic: s[:i], Partition: int32(p), Offset: o}, nil
}

// Decision is what dedup decided about one record.
type Decision uint8

const (
	// Unique: no earlier record is a duplicate; the record starts its own
	// cluster and survives.
	Unique Decision = iota + 1
	// ExactDuplicate: an earlier record has the same normal form.
	ExactDuplicate
	// NearDuplicate: an earlier cluster representative has a verified
	// Jaccard similarity of at least Config.Threshold.
	NearDuplicate
)

// String returns "unique", "exact_duplicate" or "near_duplicate".
func (d Decision) String() string {
	switch d {
	case Unique:
		return "unique"
	case ExactDuplicate:
		return "exact_duplicate"
	case NearDuplicate:
		return "near_duplicate"
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// Result is the decision about one record.
type Result struct {
	Decision Decision
	// ClusterID is the id of the cluster's survivor: the first record of
	// the cluster that the index saw. A unique record is its own cluster
	// (ClusterID == its id), so two records share a ClusterID exactly when
	// dedup judged them duplicates. Its String form is the cluster_id column.
	ClusterID RecordID
	// DupOf is the earlier record this one duplicates (zero when unique):
	// for an exact duplicate, the first record with the same normal form
	// (itself a survivor or a near duplicate); for a near duplicate, the
	// cluster's survivor. Following DupOf at most twice reaches ClusterID.
	DupOf RecordID
	// Similarity is the verified Jaccard similarity to DupOf: 1 for an
	// exact duplicate, 0 for a unique record.
	Similarity float64
}
