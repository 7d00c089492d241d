package curate

import (
	"math"
	"sort"
	"time"

	"github.com/thresher-ml/thresher/schemas"
)

// AllDomains is the domain of the summary row that covers every domain.
const AllDomains = "*"

// Histogram bins of audit/summary: char entropy in half bits from 0 to 8
// (the last bin takes the rest); words in powers of two: 0, 1, 2-3, 4-7, ...,
// 1024 and more.
const (
	entropyBins = 16
	lengthBins  = 12
)

// sampleRecords bounds, per domain and window, the records whose words feed
// the diversity, vocabulary and overlap figures, so a window costs bounded
// memory however large it is.
const sampleRecords = 2000

// domainStats accumulates one domain's figures over one window.
type domainStats struct {
	row     schemas.AuditSummary
	sumCE   float64
	sumWE   float64
	sumW    float64
	sumSim  float64
	sampled int
	vocab   u64set
	bigrams u64set
	nBigram int64
}

// window accumulates audit/summary rows for one curate commit.
type window struct {
	seq        int64
	start, end time.Time
	domains    map[string]*domainStats
	// domainOf maps a record of this window to its domain, to count
	// duplicates whose original is in another domain.
	domainOf map[winKey]uint16 // index in names
	names    []string
	stat     []*domainStats // stats of names[i]
	all      *domainStats   // stats of AllDomains
	nameIdx  map[string]uint16
	topics   map[string]uint32
}

// recKey is a record's identity.
type recKey struct {
	topic     string
	partition int32
	offset    int64
}

// winKey is a record's identity within a window, cheap to hash.
type winKey struct {
	topic     uint32
	partition int32
	offset    int64
}

// newWindow makes a window for about records records.
func newWindow(seq int64, records int) *window {
	return &window{seq: seq, domains: map[string]*domainStats{}, domainOf: make(map[winKey]uint16, records),
		nameIdx: map[string]uint16{}, topics: map[string]uint32{}}
}

func (w *window) key(r recKey) winKey {
	t, ok := w.topics[r.topic]
	if !ok {
		t = uint32(len(w.topics))
		w.topics[r.topic] = t
	}
	return winKey{t, r.partition, r.offset}
}

func (w *window) stats(domain string) *domainStats {
	d, ok := w.domains[domain]
	if !ok {
		d = &domainStats{}
		d.row.EntropyHist = make([]int64, entropyBins)
		d.row.LengthHist = make([]int64, lengthBins)
		w.domains[domain] = d
	}
	return d
}

// add counts one audit row; dupOf is the record it duplicates (zero when
// none) and feats its hashed word unigrams then bigrams (Analyzer.Features),
// for the vocabulary and diversity figures.
func (w *window) add(r *schemas.AuditRecord, dupOf recKey, feats []uint64) {
	if w.start.IsZero() || r.KafkaTS.Before(w.start) {
		w.start = r.KafkaTS
	}
	if r.KafkaTS.After(w.end) {
		w.end = r.KafkaTS
	}
	dom := r.Domain
	if dom == "" {
		dom = "(none)"
	}
	di, ok := w.nameIdx[dom]
	if !ok {
		di = uint16(len(w.names))
		w.names = append(w.names, dom)
		w.stat = append(w.stat, w.stats(dom))
		w.nameIdx[dom] = di
	}
	if w.all == nil {
		w.all = w.stats(AllDomains)
	}
	w.domainOf[w.key(recKey{r.Topic, r.Partition, r.Offset})] = di
	cross := false
	if dupOf != (recKey{}) {
		if od, ok := w.domainOf[w.key(dupOf)]; ok && od != di {
			cross = true
		}
	}
	words := (len(feats) + 1) / 2
	for _, d := range [2]*domainStats{w.stat[di], w.all} {
		d.row.Records++
		switch r.Decision {
		case schemas.DecisionKept:
			d.row.Kept++
		case schemas.DecisionExactDuplicate:
			d.row.ExactDuplicates++
		case schemas.DecisionNearDuplicate:
			d.row.NearDuplicates++
		case schemas.DecisionFiltered:
			d.row.Filtered++
		}
		if cross {
			d.row.CrossDomainDups++
		}
		if len(r.PIIFlags) > 0 {
			d.row.PIIRecords++
		}
		d.sumCE += float64(r.CharEntropy)
		d.sumWE += float64(r.WordEntropy)
		d.sumW += float64(r.LengthWords)
		d.sumSim += float64(r.TargetSimilarity)
		d.row.EntropyHist[min(entropyBins-1, max(0, int(r.CharEntropy*2)))]++
		lb := 0
		if r.LengthWords > 0 {
			lb = min(lengthBins-1, 1+int(math.Log2(float64(r.LengthWords))))
		}
		d.row.LengthHist[lb]++
		if d.sampled < sampleRecords {
			d.sampled++
			for _, h := range feats[:words] {
				d.vocab.add(h)
			}
			for _, h := range feats[words:] {
				d.bigrams.add(h)
				d.nBigram++
			}
		}
	}
}

// rows returns the summary rows of the window, the all-domains row first.
func (w *window) rows() []schemas.AuditSummary {
	all := w.domains[AllDomains]
	if all == nil {
		return nil
	}
	names := make([]string, 0, len(w.domains))
	for n := range w.domains {
		if n != AllDomains {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	names = append([]string{AllDomains}, names...)
	allMean := all.sumSim / float64(all.row.Records)
	out := make([]schemas.AuditSummary, 0, len(names))
	for _, n := range names {
		d := w.domains[n]
		r := d.row
		r.Window, r.WindowStart, r.WindowEnd, r.Domain = w.seq, w.start, w.end, n
		rec := float64(r.Records)
		r.DupRate = float64(r.ExactDuplicates+r.NearDuplicates) / rec
		r.MeanCharEntropy = d.sumCE / rec
		r.MeanWordEntropy = d.sumWE / rec
		r.MeanWords = d.sumW / rec
		r.MeanTargetSim = d.sumSim / rec
		r.TargetGap = allMean - r.MeanTargetSim
		r.DomainShare = rec / float64(all.row.Records)
		r.VocabSize = int64(d.vocab.len())
		if d.nBigram > 0 {
			r.DistinctBigrams = float64(d.bigrams.len()) / float64(d.nBigram)
		}
		if n != AllDomains {
			r.VocabOverlap = w.overlap(n)
		} else {
			r.VocabOverlap = 1
		}
		out = append(out, r)
	}
	return out
}

// overlap is the share of the domain's sampled vocabulary that some other
// domain of the window also uses.
func (w *window) overlap(domain string) float64 {
	d := w.domains[domain]
	if d.vocab.len() == 0 {
		return 0
	}
	shared := 0
	for h := range d.vocab.all() {
		for n, o := range w.domains {
			if n == domain || n == AllDomains {
				continue
			}
			if o.vocab.has(h) {
				shared++
				break
			}
		}
	}
	return float64(shared) / float64(d.vocab.len())
}

// u64set is a set of hashes (open addressing, linear probing), cheaper
// than a map for the millions of insertions of a window's vocabulary.
type u64set struct {
	slots []uint64 // 0 is a free slot; the hash 0 is kept in zero
	n     int
	zero  bool
}

func (s *u64set) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *u64set) slot(h uint64) int {
	mask := len(s.slots) - 1
	i := int((h*0x9e3779b97f4a7c15)>>32) & mask
	for s.slots[i] != 0 && s.slots[i] != h {
		i = (i + 1) & mask
	}
	return i
}

func (s *u64set) add(h uint64) {
	if h == 0 {
		s.zero = true
		return
	}
	if 4*(s.n+1) > 3*len(s.slots) {
		old := s.slots
		s.slots = make([]uint64, max(1024, 2*len(old)))
		for _, k := range old {
			if k != 0 {
				s.slots[s.slot(k)] = k
			}
		}
	}
	if i := s.slot(h); s.slots[i] == 0 {
		s.slots[i] = h
		s.n++
	}
}

func (s *u64set) has(h uint64) bool {
	if h == 0 {
		return s.zero
	}
	return len(s.slots) > 0 && s.slots[s.slot(h)] == h
}

// all yields every element once, in no particular order.
func (s *u64set) all() func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		if s.zero && !yield(0) {
			return
		}
		for _, k := range s.slots {
			if k != 0 && !yield(k) {
				return
			}
		}
	}
}
