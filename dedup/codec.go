package dedup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"unsafe"
)

// The saved form of an Index (MarshalBinary). The package comment gives
// the layout.
const (
	formatMagic   = "thrdedup"
	formatVersion = 1
)

var (
	// ErrCorrupt is wrapped by UnmarshalBinary when the data is not a
	// well-formed saved index (truncated, altered or not an index at all).
	ErrCorrupt = errors.New("dedup: corrupt index state")
	// ErrVersion is wrapped by UnmarshalBinary for a format version this
	// build does not read.
	ErrVersion = errors.New("dedup: unsupported index state version")
	// ErrIncompatible is wrapped by UnmarshalBinary when the saved index
	// was built with other state fields of Config than the receiver's.
	ErrIncompatible = errors.New("dedup: index state saved with another configuration")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary returns the whole state of the index in the versioned
// format described in the package comment. Loading it with UnmarshalBinary
// gives an index that decides every later record exactly as this one would.
func (ix *Index) MarshalBinary() ([]byte, error) {
	ix.ready()
	return ix.AppendBinary(make([]byte, 0, ix.encodedSize()))
}

// BinarySize returns the length of what MarshalBinary would return now,
// for a caller that lays the state out in a larger buffer (AppendBinary).
func (ix *Index) BinarySize() int {
	ix.ready()
	return ix.encodedSize()
}

// AppendBinary appends the form MarshalBinary returns to b
// (encoding.BinaryAppender), without an intermediate copy.
func (ix *Index) AppendBinary(b []byte) ([]byte, error) {
	ix.ready()
	start := len(b)
	b = append(b, formatMagic...)
	b = le.AppendUint32(b, formatVersion)
	c := &ix.cfg
	b = append(b, byte(c.Punctuation))
	for _, v := range []int{c.ShingleWords, c.NumPerm, c.Bands, c.Rows, c.SketchSize} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = le.AppendUint64(b, c.Seed)
	b = le.AppendUint64(b, math.Float64bits(c.Threshold))
	b = le.AppendUint32(b, uint32(c.MaxCandidates))
	b = le.AppendUint64(b, uint64(c.MaxRecords))
	b = le.AppendUint32(b, uint32(c.Generations))
	for _, v := range []int64{ix.added, ix.unique, ix.exact, ix.near, ix.verified, ix.evicted} {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint32(b, uint32(len(ix.topics)))
	for _, t := range ix.topics {
		b = le.AppendUint32(b, uint32(len(t)))
		b = append(b, t...)
	}
	b = le.AppendUint32(b, uint32(len(ix.gens)))
	for _, g := range ix.gens {
		b = le.AppendUint32(b, g.entries.len())
		if rawEntries {
			for _, ch := range g.entries.chunks {
				b = appendRaw(b, ch)
			}
		} else {
			for i := range g.entries.len() {
				e := g.entries.at(i)
				b = appendRef(b, e.id)
				b = appendRef(b, e.cluster)
			}
		}
		b = le.AppendUint32(b, g.reps.len())
		for i := range g.reps.len() {
			r := g.reps.at(i)
			b = le.AppendUint32(b, r.entry)
			b = le.AppendUint32(b, uint32(r.n))
			if littleEndian {
				b = appendRaw(b, g.sketch(i))
				continue
			}
			for _, v := range g.sketch(i) {
				b = le.AppendUint32(b, v)
			}
		}
		b = appendTable(b, &g.exact)
		b = appendTable(b, &g.bands)
	}
	return le.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

var le = binary.LittleEndian

// On a little-endian machine the saved form of integers is their memory
// form, and that of an entry (two recRefs: topic, partition, offset) too,
// so that MarshalBinary copies whole arrays; elsewhere it encodes each.
var (
	littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	rawEntries   = littleEndian && unsafe.Sizeof(entry{}) == 32 &&
		unsafe.Offsetof(entry{}.cluster) == 16 && unsafe.Offsetof(recRef{}.part) == 4 && unsafe.Offsetof(recRef{}.off) == 8
)

// appendRaw appends the memory of s.
func appendRaw[T any](b []byte, s []T) []byte {
	if len(s) == 0 {
		return b
	}
	return append(b, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))...)
}

func appendRef(b []byte, r recRef) []byte {
	b = le.AppendUint32(b, r.topic)
	b = le.AppendUint32(b, uint32(r.part))
	return le.AppendUint64(b, uint64(r.off))
}

func appendTable[K uint32 | uint64](b []byte, t *table[K]) []byte {
	b = le.AppendUint32(b, uint32(len(t.keys)))
	b = le.AppendUint32(b, uint32(t.n))
	if littleEndian {
		return appendRaw(appendRaw(b, t.keys), t.vals)
	}
	wide := keySize[K]() == 8
	for _, k := range t.keys {
		if wide {
			b = le.AppendUint64(b, uint64(k))
		} else {
			b = le.AppendUint32(b, uint32(k))
		}
	}
	for _, v := range t.vals {
		b = le.AppendUint32(b, v)
	}
	return b
}

func keySize[K uint32 | uint64]() int {
	var k K
	return int(unsafe.Sizeof(k))
}

func (ix *Index) encodedSize() int {
	n := 8 + 4 + 1 + 5*4 + 8 + 8 + 4 + 8 + 4 + 6*8 + 4 + 4 + 4
	for _, t := range ix.topics {
		n += 4 + len(t)
	}
	for _, g := range ix.gens {
		n += 4 + int(g.entries.len())*32 + 4 + int(g.reps.len())*8
		for i := range g.reps.len() {
			n += 4 * int(g.reps.at(i).n)
		}
		n += 8 + len(g.exact.keys)*12 + 8 + len(g.bands.keys)*8
	}
	return n
}

// UnmarshalBinary replaces the state of the index with one saved by
// MarshalBinary. Loaded into a zero Index, it adopts the saved Config.
// Loaded into an index made by NewIndex, the state fields of both Configs
// must be equal (else the error wraps ErrIncompatible), and the receiver's
// other fields (Threshold, MaxCandidates, MaxRecords, Generations) apply
// from then on. On error the index is unchanged.
func (ix *Index) UnmarshalBinary(data []byte) error {
	n, err := decode(data)
	if err != nil {
		return err
	}
	if ix.signer != nil {
		if diff := n.cfg.stateDiff(&ix.cfg); len(diff) > 0 {
			return fmt.Errorf("%w (%s): load it with the saved configuration or rebuild the index",
				ErrIncompatible, strings.Join(diff, "; "))
		}
		n.cfg.Threshold, n.cfg.MaxCandidates = ix.cfg.Threshold, ix.cfg.MaxCandidates
		n.cfg.MaxRecords, n.cfg.Generations = ix.cfg.MaxRecords, ix.cfg.Generations
		n.sizeSeen()
		n.trim(n.cfg.Generations)
	}
	*ix = *n
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("%s: %d bytes needed, %d left", what, n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return le.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return le.Uint64(p)
	}
	return 0
}

// count reads a count of items of size bytes each, at most limit, and
// checks that the data holds them before anything is allocated.
func (d *decoder) count(size int, limit uint64, what string) int {
	n := d.u32(what)
	if d.err != nil {
		return 0
	}
	if uint64(n) > limit {
		d.fail("%s: %d is more than %d", what, n, limit)
		return 0
	}
	if uint64(n)*uint64(size) > uint64(len(d.b)) {
		d.fail("%s: %d of %d bytes need more than the %d bytes left", what, n, size, len(d.b))
		return 0
	}
	return int(n)
}

// decode parses and checks a saved index completely: whatever it accepts,
// the index can use without panicking.
func decode(data []byte) (*Index, error) {
	if len(data) < len(formatMagic)+8 || string(data[:len(formatMagic)]) != formatMagic {
		return nil, fmt.Errorf("%w: not a saved dedup index", ErrCorrupt)
	}
	if v := le.Uint32(data[len(formatMagic):]); v != formatVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads %d)", ErrVersion, v, formatVersion)
	}
	body := data[:len(data)-4]
	if want, got := le.Uint32(data[len(data)-4:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	d := &decoder{b: body[len(formatMagic)+4:]}

	var c Config
	c.Punctuation = PunctPolicy(d.u8("punctuation"))
	for _, p := range []*int{&c.ShingleWords, &c.NumPerm, &c.Bands, &c.Rows, &c.SketchSize} {
		*p = int(int32(d.u32("config")))
	}
	c.Seed = d.u64("seed")
	c.Threshold = math.Float64frombits(d.u64("threshold"))
	c.MaxCandidates = int(int32(d.u32("max candidates")))
	c.MaxRecords = int64(d.u64("max records"))
	c.Generations = int(int32(d.u32("generations")))
	if d.err != nil {
		return nil, d.err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: saved configuration: %w", ErrCorrupt, err)
	}
	ix := &Index{}
	ix.init(c)
	var counters [6]int64
	for i := range counters {
		counters[i] = int64(d.u64("counters"))
		if counters[i] < 0 {
			d.fail("negative counter")
		}
	}
	ix.added, ix.unique, ix.exact, ix.near, ix.verified, ix.evicted =
		counters[0], counters[1], counters[2], counters[3], counters[4], counters[5]
	if d.err == nil && ix.added != ix.unique+ix.exact+ix.near {
		d.fail("counters: %d added but %d+%d+%d decided", ix.added, ix.unique, ix.exact, ix.near)
	}

	nt := d.count(4, math.MaxInt32, "topics")
	for range nt {
		t := string(d.take(int(d.u32("topic length")), "topic"))
		if d.err != nil {
			break
		}
		if _, dup := ix.topicIdx[t]; dup {
			d.fail("topic %q twice", t)
			break
		}
		ix.topicIdx[t] = uint32(len(ix.topics))
		ix.topics = append(ix.topics, t)
	}

	genSize := c.genSize()
	ng := d.count(4, uint64(c.Generations), "generations")
	for gi := range ng {
		g := &generation{}
		ix.gens = append(ix.gens, g)
		ne := d.count(32, uint64(genSize), "entries")
		if d.err == nil && (ne == 0 || gi < ng-1 && ne != genSize) {
			d.fail("generation %d of %d holds %d entries (a full one holds %d)", gi, ng, ne, genSize)
		}
		for range ne {
			id, cl := decodeRef(d, nt), decodeRef(d, nt)
			if d.err != nil {
				break
			}
			g.addEntry(entry{id: id, cluster: cl})
		}
		nr := d.count(8, uint64(ne), "representatives")
		sketch := make([]uint32, 0, c.SketchSize)
		for range nr {
			e, n := d.u32("representative"), d.u32("sketch length")
			if d.err == nil && (e >= uint32(ne) || n == 0 || n > uint32(c.SketchSize)) {
				d.fail("representative of entry %d with a sketch of %d (%d entries, sketch size %d)", e, n, ne, c.SketchSize)
			}
			raw := d.take(4*int(n), "sketch")
			if d.err != nil {
				break
			}
			sketch = sketch[:n]
			for i := range sketch {
				sketch[i] = le.Uint32(raw[4*i:])
			}
			g.addRep(e, sketch)
		}
		decodeTable(d, &g.exact, uint32(ne), "exact table")
		decodeTable(d, &g.bands, uint32(nr), "band table")
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the last generation", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return ix, nil
}

func decodeRef(d *decoder, topics int) recRef {
	r := recRef{topic: d.u32("topic"), part: int32(d.u32("partition")), off: int64(d.u64("offset"))}
	if d.err == nil && r.topic >= uint32(topics) {
		d.fail("topic %d of %d", r.topic, topics)
	}
	return r
}

func decodeTable[K uint32 | uint64](d *decoder, t *table[K], limit uint32, what string) {
	slots, used := d.u32(what), d.u32(what)
	if d.err != nil {
		return
	}
	ks := keySize[K]()
	switch {
	case slots == 0 && used == 0:
		return
	case slots < minTableCap || slots&(slots-1) != 0 || uint64(used)*4 > uint64(slots)*3:
		d.fail("%s: %d of %d slots used", what, used, slots)
		return
	case uint64(slots)*uint64(ks+4) > uint64(len(d.b)):
		d.fail("%s: %d slots need more than the %d bytes left", what, slots, len(d.b))
		return
	}
	t.keys, t.vals, t.n = make([]K, slots), make([]uint32, slots), int(used)
	raw := d.take(int(slots)*ks, what)
	n := uint32(0)
	for i := range t.keys {
		if ks == 4 {
			t.keys[i] = K(le.Uint32(raw[4*i:]))
		} else {
			t.keys[i] = K(le.Uint64(raw[8*i:]))
		}
		if t.keys[i] != 0 {
			n++
		}
	}
	raw = d.take(int(slots)*4, what)
	for i := range t.vals {
		t.vals[i] = le.Uint32(raw[4*i:])
		if t.keys[i] != 0 && t.vals[i] >= limit {
			d.fail("%s: value %d of %d", what, t.vals[i], limit)
			return
		}
	}
	if n != used {
		d.fail("%s: %d keys, header says %d", what, n, used)
	}
}
