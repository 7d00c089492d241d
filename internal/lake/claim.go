package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/thresher-ml/thresher/schemas"
)

// ErrClaimed is wrapped by the error PutClaim returns when another writer
// holds the claim: a writer that gets it must not write the span.
var ErrClaimed = errors.New("lake: offsets claimed by another writer")

// ErrInvalidClaim is wrapped by the errors of reading a claim object that
// DecodeClaim rejects.
var ErrInvalidClaim = errors.New("lake: invalid claim")

// Claim is a writer's claim on the span of one partition's offsets that
// starts at First: whoever writes that span writes exactly Range, so two
// writers of the partition cut the same segments and put-if-absent makes
// them one. Owner identifies one holding of the partition by one writer.
type Claim struct {
	Range
	Owner string
}

// claimsDir holds every claim: _claims/topic=<topic>/partition=<p>/<first>,
// first as 20 zero-padded digits. It is beside the tables, so no reader or
// glob of a table lists it.
const claimsDir = "_claims/"

// claimVersion is the format version of a claim object.
const claimVersion = 1

// maxClaimLen bounds the bytes of a claim object that DecodeClaim reads.
const maxClaimLen = 4096

// ClaimPrefix returns the key prefix of the claims of one partition. It
// panics on an invalid topic or partition, as PartitionPrefix does.
func ClaimPrefix(topic string, partition int32) string {
	if err := checkPartition(schemas.TableRaw, topic, partition); err != nil {
		panic(err)
	}
	return claimsDir + "topic=" + topic + "/partition=" + strconv.FormatInt(int64(partition), 10) + "/"
}

// ClaimKey returns the key of the claim on the span of a partition that
// starts at first. It panics on an invalid topic, partition or offset.
func ClaimKey(topic string, partition int32, first int64) string {
	if first < 0 {
		panic(fmt.Sprintf("lake: invalid claim offset %d", first))
	}
	return ClaimPrefix(topic, partition) + fmt.Sprintf("%020d", first)
}

// claimDoc is a claim object: JSON, small, versioned.
type claimDoc struct {
	Version int    `json:"version"`
	First   int64  `json:"first"`
	Last    int64  `json:"last"`
	Owner   string `json:"owner"`
}

// EncodeClaim returns the object of a claim.
func EncodeClaim(c Claim) ([]byte, error) {
	if err := c.Range.check(); err != nil {
		return nil, err
	}
	if c.Owner == "" || len(c.Owner) > 256 {
		return nil, fmt.Errorf("lake: claim owner must be 1 to 256 bytes, not %d", len(c.Owner))
	}
	b, err := json.Marshal(claimDoc{Version: claimVersion, First: c.First, Last: c.Last, Owner: c.Owner})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeClaim reads a claim object, checking its version, range and owner.
func DecodeClaim(data []byte) (Claim, error) {
	if len(data) > maxClaimLen {
		return Claim{}, fmt.Errorf("%w: %d bytes", ErrInvalidClaim, len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d claimDoc
	if err := dec.Decode(&d); err != nil {
		return Claim{}, fmt.Errorf("%w: %v", ErrInvalidClaim, err)
	}
	if dec.More() {
		return Claim{}, fmt.Errorf("%w: trailing data", ErrInvalidClaim)
	}
	c := Claim{Range: Range{First: d.First, Last: d.Last}, Owner: d.Owner}
	switch {
	case d.Version != claimVersion:
		return Claim{}, fmt.Errorf("%w: version %d, this build reads %d", ErrInvalidClaim, d.Version, claimVersion)
	case c.Range.check() != nil:
		return Claim{}, fmt.Errorf("%w: range [%d, %d]", ErrInvalidClaim, d.First, d.Last)
	case d.Owner == "" || len(d.Owner) > 256:
		return Claim{}, fmt.Errorf("%w: owner of %d bytes", ErrInvalidClaim, len(d.Owner))
	}
	return c, nil
}

// ClaimedError is the error of a claim that another writer holds.
type ClaimedError struct {
	Topic     string
	Partition int32
	Want      Claim // the claim that was refused
	Held      Claim // the claim in the lake
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("%v: %s/%d offset %d: wanted %d-%d, held for %d-%d by %s", ErrClaimed,
		e.Topic, e.Partition, e.Want.First, e.Want.First, e.Want.Last, e.Held.First, e.Held.Last, e.Held.Owner)
}

func (e *ClaimedError) Unwrap() error { return ErrClaimed }

// PutClaim claims c on a partition with a put-if-absent. It returns nil when
// the claim is c's (also when this very claim was put before: a retry), and
// a *ClaimedError wrapping ErrClaimed when another claim holds c.First.
func PutClaim(ctx context.Context, s Store, topic string, partition int32, c Claim) error {
	data, err := EncodeClaim(c)
	if err != nil {
		return err
	}
	key := ClaimKey(topic, partition, c.First)
	err = s.Put(ctx, key, data)
	if err == nil || !errors.Is(err, ErrExist) {
		return err
	}
	held, ok, err := GetClaim(ctx, s, topic, partition, c.First)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("lake: claim %s exists and then does not: claims must never be deleted", key)
	}
	if held == c {
		return nil
	}
	return &ClaimedError{Topic: topic, Partition: partition, Want: c, Held: held}
}

// GetClaim returns the claim on the span of a partition starting at first,
// and false when there is none.
func GetClaim(ctx context.Context, s Store, topic string, partition int32, first int64) (Claim, bool, error) {
	key := ClaimKey(topic, partition, first)
	data, err := s.Get(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return Claim{}, false, nil
	}
	if err != nil {
		return Claim{}, false, err
	}
	c, err := DecodeClaim(data)
	if err != nil {
		return Claim{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if c.First != first {
		return Claim{}, false, fmt.Errorf("%s: %w: it claims offset %d", key, ErrInvalidClaim, c.First)
	}
	return c, true, nil
}

// FirstClaim returns the lowest offset claimed in a partition, and false when
// nothing is. It lists the partition's claims: a writer calls it only for a
// partition with no segment, whose claims are the few its earlier writers
// made before committing anything.
func FirstClaim(ctx context.Context, s Store, topic string, partition int32) (int64, bool, error) {
	prefix := ClaimPrefix(topic, partition)
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, false, err
	}
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		if len(name) != offsetDigits {
			continue
		}
		if off, ok := parseOffset(name); ok {
			return off, true, nil // List is sorted, and names sort like offsets
		}
	}
	return 0, false, nil
}

// Takeover starts a writer's holding of a partition whose lake ends at next
// (NextOffset, or where the partition starts when the lake holds none of it).
// It walks the chain of claims from next: each claim found belongs to a
// writer that may still write its span, so the new writer must cut the same
// span; and it claims the first free offset, q, as the span [q, q] for
// owner. It returns the claims walked and its own, in offset order: the
// writer's first segments are exactly these ranges, and its later spans
// start at q+1.
//
// Once the takeover claim is put, every writer that held the partition
// before is fenced: its next span starts at an offset of the chain that
// holds a claim of another owner (PutClaim fails with ErrClaimed), so it
// can only write spans that were claimed, with the same ranges and keys.
func Takeover(ctx context.Context, s Store, topic string, partition int32, next int64, owner string) ([]Claim, error) {
	var chain []Claim
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, ok, err := GetClaim(ctx, s, topic, partition, next)
		if err != nil {
			return nil, err
		}
		if ok {
			chain = append(chain, c)
			next = c.Last + 1
			continue
		}
		own := Claim{Range: Range{First: next, Last: next}, Owner: owner}
		err = PutClaim(ctx, s, topic, partition, own)
		if errors.Is(err, ErrClaimed) {
			continue // claimed meanwhile: walk past it
		}
		if err != nil {
			return nil, err
		}
		return append(chain, own), nil
	}
}
