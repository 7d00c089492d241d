package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
)

// Checkpoint object keys under the lake.
const (
	// CheckpointPrefix is the folder of checkpoint objects.
	CheckpointPrefix = "checkpoints/"
	// CurrentKey is the pointer object naming the checkpoint to resume from.
	CurrentKey = CheckpointPrefix + "CURRENT"
	// PromotedKey is the pointer object naming the promoted checkpoint: the
	// newest one that passed the promotion gate (see Trainer). Retention
	// never deletes it.
	PromotedKey = CheckpointPrefix + "PROMOTED"
	// checkpointExt ends the key of every checkpoint object.
	checkpointExt = ".ckpt"
)

// CheckpointVersion is the version of the checkpoint object format.
const CheckpointVersion = 1

// checkpointMagic starts every checkpoint object.
var checkpointMagic = [8]byte{'T', 'H', 'R', 'C', 'K', 'P', 'T', 0}

// Checkpoint errors; wrapped, so test with errors.Is.
var (
	// ErrNoCheckpoint is returned by CheckpointStore.Load when the lake holds
	// no valid checkpoint: the trainer starts fresh.
	ErrNoCheckpoint = errors.New("train: no checkpoint")
	// ErrCorruptCheckpoint is returned for a checkpoint object that is torn,
	// truncated, of another format or fails its checksum.
	ErrCorruptCheckpoint = errors.New("train: corrupt checkpoint")
)

// CheckpointMeta is the JSON metadata of a checkpoint object.
type CheckpointMeta struct {
	Step         int64     `json:"step"`          // optimiser updates of the learner
	Batches      int64     `json:"batches"`       // sampler batches consumed
	ExamplesSeen int64     `json:"examples_seen"` // examples trained on
	TokensSeen   int64     `json:"tokens_seen"`   // words of the source texts trained on
	Time         time.Time `json:"time"`          // when it was written (UTC)
	LakeWindow   int64     `json:"lake_window"`   // newest committed curated window the sampler had loaded
	Epoch        int64     `json:"epoch"`         // the sampler's epoch
	ConfigHash   string    `json:"config_hash"`   // ConfigHash of the learner and sampler configuration
}

// Checkpoint is everything the trainer needs to resume: its counters, the
// learner's state (Learner.MarshalBinary) and the sampler's cursor.
type Checkpoint struct {
	Meta    CheckpointMeta
	Learner []byte
	Cursor  []byte
}

// MarshalBinary encodes the checkpoint object:
//
//	magic    8 bytes  "THRCKPT\x00"
//	version  uint16   CheckpointVersion
//	flags    uint16   0
//	metaLen  uint32   length of the JSON metadata
//	learnLen uint64   length of the learner blob
//	curLen   uint64   length of the sampler cursor
//	meta     metaLen bytes, JSON CheckpointMeta
//	learner  learnLen bytes
//	cursor   curLen bytes
//	crc      uint32   CRC-32C (Castagnoli) of every byte before it
//
// Integers are little-endian.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	meta, err := json.Marshal(c.Meta)
	if err != nil {
		return nil, fmt.Errorf("train: checkpoint metadata: %w", err)
	}
	n := checkpointHeaderLen + len(meta) + len(c.Learner) + len(c.Cursor) + 4
	buf := make([]byte, 0, n)
	buf = append(buf, checkpointMagic[:]...)
	buf = binary.LittleEndian.AppendUint16(buf, CheckpointVersion)
	buf = binary.LittleEndian.AppendUint16(buf, 0)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(meta)))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(c.Learner)))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(c.Cursor)))
	buf = append(buf, meta...)
	buf = append(buf, c.Learner...)
	buf = append(buf, c.Cursor...)
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, checkpointCRC))
	return buf, nil
}

const checkpointHeaderLen = 8 + 2 + 2 + 4 + 8 + 8

var checkpointCRC = crc32.MakeTable(crc32.Castagnoli)

// UnmarshalBinary decodes and verifies a checkpoint object; any damage is
// an error wrapping ErrCorruptCheckpoint. The blobs are copies.
func (c *Checkpoint) UnmarshalBinary(data []byte) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(data) < checkpointHeaderLen+4 {
		return corrupt("%d bytes, shorter than a header", len(data))
	}
	if !bytes.Equal(data[:8], checkpointMagic[:]) {
		return corrupt("not a checkpoint object (bad magic)")
	}
	if v := binary.LittleEndian.Uint16(data[8:]); v != CheckpointVersion {
		return corrupt("format version %d, this build reads %d", v, CheckpointVersion)
	}
	metaLen := uint64(binary.LittleEndian.Uint32(data[12:]))
	learnLen := binary.LittleEndian.Uint64(data[16:])
	curLen := binary.LittleEndian.Uint64(data[24:])
	body := uint64(len(data) - checkpointHeaderLen - 4)
	if metaLen > body || learnLen > body || curLen > body || metaLen+learnLen+curLen != body {
		return corrupt("section lengths %d+%d+%d do not match %d bytes", metaLen, learnLen, curLen, body)
	}
	end := len(data) - 4
	if got, want := crc32.Checksum(data[:end], checkpointCRC), binary.LittleEndian.Uint32(data[end:]); got != want {
		return corrupt("checksum %08x, want %08x", got, want)
	}
	p := uint64(checkpointHeaderLen)
	var meta CheckpointMeta
	if err := json.Unmarshal(data[p:p+metaLen], &meta); err != nil {
		return corrupt("metadata: %v", err)
	}
	p += metaLen
	c.Meta = meta
	c.Learner = bytes.Clone(data[p : p+learnLen])
	p += learnLen
	c.Cursor = bytes.Clone(data[p : p+curLen])
	return nil
}

// CheckpointKey returns the object key of the checkpoint at step:
// checkpoints/<step, 12 digits>.ckpt, so keys sort like steps.
func CheckpointKey(step int64) string {
	return fmt.Sprintf("%s%012d%s", CheckpointPrefix, step, checkpointExt)
}

// parseCheckpointKey returns the step of a checkpoint key.
func parseCheckpointKey(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, CheckpointPrefix)
	if !ok {
		return 0, false
	}
	name, ok = strings.CutSuffix(name, checkpointExt)
	if !ok || len(name) < 12 || strings.Contains(name, "/") {
		return 0, false
	}
	step, err := strconv.ParseInt(name, 10, 64)
	return step, err == nil && step >= 0
}

// CheckpointStore writes and reads the checkpoints of a lake:
//
//   - Save puts checkpoints/<step>.ckpt (immutable, put-if-absent), then
//     replaces checkpoints/CURRENT with that key, then deletes all but the
//     newest Keep checkpoints, never the one CURRENT or PROMOTED names (when
//     PROMOTED cannot be read for another reason than its absence, nothing
//     is deleted). A crash at any
//     point leaves CURRENT naming a complete, verified object.
//   - Load reads the checkpoint CURRENT names; if CURRENT is missing, torn or
//     names a missing or corrupt object, it logs why and falls back to the
//     newest checkpoint object that verifies.
//
// It is safe for concurrent use only in the sense that the Store is; one
// trainer writes one lake's checkpoints.
type CheckpointStore struct {
	store lake.Store
	keep  int
	log   *slog.Logger
}

// NewCheckpointStore returns the checkpoint store of a lake, keeping the
// newest keep checkpoints (keep < 1 keeps 1). log may be nil.
func NewCheckpointStore(store lake.Store, keep int, log *slog.Logger) *CheckpointStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CheckpointStore{store: store, keep: max(keep, 1), log: log}
}

// Save commits ck as the checkpoint of ck.Meta.Step and points CURRENT at
// it; it returns the key. If an object of that step already exists (a step
// redone after a crash between its put and the CURRENT update) and
// verifies, it is kept: the one written first stays authoritative, and
// Save logs whether its state equals ck's (it does in deterministic mode).
// A corrupt object in the way is deleted and written again.
func (s *CheckpointStore) Save(ctx context.Context, ck *Checkpoint) (string, error) {
	data, err := ck.MarshalBinary()
	if err != nil {
		return "", err
	}
	key := CheckpointKey(ck.Meta.Step)
	if err := s.put(ctx, key, data, ck); err != nil {
		return "", err
	}
	if err := s.store.Replace(ctx, CurrentKey, []byte(key+"\n")); err != nil {
		return "", fmt.Errorf("train: point %s at %s: %w", CurrentKey, key, err)
	}
	if err := s.prune(ctx, key); err != nil {
		// The checkpoint is committed; an old one left behind is harmless.
		s.log.Warn("checkpoint retention", "err", err)
	}
	return key, nil
}

func (s *CheckpointStore) put(ctx context.Context, key string, data []byte, ck *Checkpoint) error {
	err := s.store.Put(ctx, key, data)
	if err == nil || !errors.Is(err, lake.ErrExist) {
		if err != nil {
			return fmt.Errorf("train: write checkpoint %s: %w", key, err)
		}
		return nil
	}
	old, rerr := s.read(ctx, key)
	switch {
	case rerr == nil:
		same := bytes.Equal(old.Learner, ck.Learner) && bytes.Equal(old.Cursor, ck.Cursor)
		s.log.Info("checkpoint of this step already committed; keeping it", "key", key, "same_state", same)
		return nil
	case errors.Is(rerr, ErrCorruptCheckpoint):
		s.log.Warn("replacing corrupt checkpoint object", "key", key, "err", rerr)
		if err := s.store.Delete(ctx, key); err != nil {
			return fmt.Errorf("train: delete corrupt checkpoint %s: %w", key, err)
		}
		if err := s.store.Put(ctx, key, data); err != nil {
			return fmt.Errorf("train: write checkpoint %s: %w", key, err)
		}
		return nil
	default:
		return fmt.Errorf("train: read existing checkpoint %s: %w", key, rerr)
	}
}

// prune deletes all but the newest keep checkpoints, never current nor
// the promoted one.
func (s *CheckpointStore) prune(ctx context.Context, current string) error {
	keys, err := s.Keys(ctx)
	if err != nil {
		return err
	}
	promoted, err := s.Promoted(ctx)
	if err != nil && !errors.Is(err, lake.ErrNotExist) {
		return fmt.Errorf("train: retention skipped: %w", err)
	}
	heads, pinned, err := s.heads(ctx)
	if err != nil {
		return fmt.Errorf("train: retention skipped: %w", err)
	}
	var errs []error
	for i := 0; i < len(keys)-s.keep; i++ {
		step, _ := parseCheckpointKey(keys[i])
		if keys[i] == current || keys[i] == promoted || pinned[step] {
			continue
		}
		// Heads first: a crash between the two deletes leaves a checkpoint
		// without heads, never a head without its checkpoint.
		var headErr error
		for _, h := range heads[step] {
			if err := s.store.Delete(ctx, h); err != nil && !errors.Is(err, lake.ErrNotExist) {
				headErr = err
			}
		}
		if headErr != nil {
			errs = append(errs, headErr)
			continue
		}
		if err := s.store.Delete(ctx, keys[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// heads lists the adapter heads beside the checkpoints by step, and the
// steps that hold the newest head of some task: retention keeps those
// checkpoints, since /v1/classify embeds with the head's own checkpoint.
func (s *CheckpointStore) heads(ctx context.Context) (map[int64][]string, map[int64]bool, error) {
	objs, err := s.store.List(ctx, CheckpointPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list heads: %w", err)
	}
	heads := map[int64][]string{}
	newest := map[string]int64{}
	for _, o := range objs {
		step, task, ok := parseHeadKey(o.Key)
		if !ok {
			continue
		}
		heads[step] = append(heads[step], o.Key)
		if cur, seen := newest[task]; !seen || step > cur {
			newest[task] = step
		}
	}
	pinned := make(map[int64]bool, len(newest))
	for _, step := range newest {
		pinned[step] = true
	}
	return heads, pinned, nil
}

// Keys lists the keys of the checkpoint objects, oldest step first.
func (s *CheckpointStore) Keys(ctx context.Context) ([]string, error) {
	objs, err := s.store.List(ctx, CheckpointPrefix)
	if err != nil {
		return nil, fmt.Errorf("train: list checkpoints: %w", err)
	}
	var keys []string
	for _, o := range objs {
		if _, ok := parseCheckpointKey(o.Key); ok {
			keys = append(keys, o.Key)
		}
	}
	return keys, nil // List sorts by key, and 12-digit keys sort like steps
}

// Current returns the key CURRENT names, or an error wrapping
// lake.ErrNotExist when there is no CURRENT.
func (s *CheckpointStore) Current(ctx context.Context) (string, error) {
	data, err := s.store.Get(ctx, CurrentKey)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(data))
	if _, ok := parseCheckpointKey(key); !ok {
		return "", fmt.Errorf("%w: %s holds %q, not a checkpoint key", ErrCorruptCheckpoint, CurrentKey, truncate(key, 64))
	}
	return key, nil
}

// Promoted returns the key PROMOTED names, or an error wrapping
// lake.ErrNotExist when no checkpoint has been promoted.
func (s *CheckpointStore) Promoted(ctx context.Context) (string, error) {
	data, err := s.store.Get(ctx, PromotedKey)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(data))
	if _, ok := parseCheckpointKey(key); !ok {
		return "", fmt.Errorf("%w: %s holds %q, not a checkpoint key", ErrCorruptCheckpoint, PromotedKey, truncate(key, 64))
	}
	return key, nil
}

// Promote points PROMOTED at the checkpoint key (an atomic whole
// replace, like CURRENT).
func (s *CheckpointStore) Promote(ctx context.Context, key string) error {
	if _, ok := parseCheckpointKey(key); !ok {
		return fmt.Errorf("train: promote %q: not a checkpoint key", key)
	}
	if err := s.store.Replace(ctx, PromotedKey, []byte(key+"\n")); err != nil {
		return fmt.Errorf("train: point %s at %s: %w", PromotedKey, key, err)
	}
	return nil
}

// Unpromote deletes PROMOTED (no error when it is absent).
func (s *CheckpointStore) Unpromote(ctx context.Context) error {
	if err := s.store.Delete(ctx, PromotedKey); err != nil && !errors.Is(err, lake.ErrNotExist) {
		return fmt.Errorf("train: delete %s: %w", PromotedKey, err)
	}
	return nil
}

// Read reads and verifies the checkpoint object at key.
func (s *CheckpointStore) Read(ctx context.Context, key string) (*Checkpoint, error) {
	return s.read(ctx, key)
}

func (s *CheckpointStore) read(ctx context.Context, key string) (*Checkpoint, error) {
	data, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("train: read checkpoint %s: %w", key, err)
	}
	ck := new(Checkpoint)
	if err := ck.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if step, _ := parseCheckpointKey(key); step != ck.Meta.Step {
		return nil, fmt.Errorf("%w: %s holds step %d", ErrCorruptCheckpoint, key, ck.Meta.Step)
	}
	return ck, nil
}

// Load returns the checkpoint to resume from and its key: the one CURRENT
// names, or, when that cannot be read, the newest checkpoint object that
// verifies (the reason is logged). It returns an error wrapping
// ErrNoCheckpoint when there is none.
func (s *CheckpointStore) Load(ctx context.Context) (*Checkpoint, string, error) {
	key, err := s.Current(ctx)
	if err == nil {
		ck, rerr := s.read(ctx, key)
		if rerr == nil {
			return ck, key, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		err = rerr
	}
	keys, lerr := s.Keys(ctx)
	if lerr != nil {
		return nil, "", lerr
	}
	if errors.Is(err, lake.ErrNotExist) && key == "" && len(keys) == 0 {
		return nil, "", ErrNoCheckpoint // a fresh lake
	}
	s.log.Warn("cannot resume from "+CurrentKey+"; falling back to the newest valid checkpoint", "err", err)
	for i := len(keys) - 1; i >= 0; i-- {
		ck, rerr := s.read(ctx, keys[i])
		if rerr == nil {
			s.log.Warn("resuming from fallback checkpoint", "key", keys[i])
			return ck, keys[i], nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		s.log.Warn("skipping checkpoint", "key", keys[i], "err", rerr)
	}
	return nil, "", fmt.Errorf("%w: %d checkpoint objects, none valid", ErrNoCheckpoint, len(keys))
}

// DropAfter deletes the checkpoint objects of steps after step: objects
// put by a run that crashed before it pointed CURRENT at them, which a
// resumed run would otherwise meet again under the same keys. The
// checkpoint PROMOTED names is kept whatever its step (the trainer points
// PROMOTED at a checkpoint of the resumed run's past before it calls
// DropAfter).
func (s *CheckpointStore) DropAfter(ctx context.Context, step int64) error {
	keys, err := s.Keys(ctx)
	if err != nil {
		return err
	}
	promoted, err := s.Promoted(ctx)
	if err != nil && !errors.Is(err, lake.ErrNotExist) {
		return fmt.Errorf("train: drop checkpoints after %d skipped: %w", step, err)
	}
	var errs []error
	for _, k := range keys {
		if st, _ := parseCheckpointKey(k); st > step && k != promoted {
			s.log.Info("deleting checkpoint newer than the one resumed from", "key", k, "resumed_step", step)
			if err := s.store.Delete(ctx, k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ReadCheckpointFile reads and verifies a checkpoint object from a file.
func ReadCheckpointFile(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ck := new(Checkpoint)
	if err := ck.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ck, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
