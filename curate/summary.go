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
	vocab   map[uint64]struct{}
	bigrams map[uint64]struct{}
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

func newWindow(seq int64) *window {
	return &window{seq: seq, domains: map[string]*domainStats{}, domainOf: map[winKey]uint16{},
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
		d = &domainStats{vocab: map[uint64]struct{}{}, bigrams: map[uint64]struct{}{}}
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
		w.nameIdx[dom] = di
	}
	w.domainOf[w.key(recKey{r.Topic, r.Partition, r.Offset})] = di
	cross := false
	if dupOf != (recKey{}) {
		if od, ok := w.domainOf[w.key(dupOf)]; ok && od != di {
			cross = true
		}
	}
	words := (len(feats) + 1) / 2
	for _, name := range []string{dom, AllDomains} {
		d := w.stats(name)
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
				d.vocab[h] = struct{}{}
			}
			for _, h := range feats[words:] {
				d.bigrams[h] = struct{}{}
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
		r.VocabSize = int64(len(d.vocab))
		if d.nBigram > 0 {
			r.DistinctBigrams = float64(len(d.bigrams)) / float64(d.nBigram)
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
	if len(d.vocab) == 0 {
		return 0
	}
	shared := 0
	for h := range d.vocab {
		for n, o := range w.domains {
			if n == domain || n == AllDomains {
				continue
			}
			if _, ok := o.vocab[h]; ok {
				shared++
				break
			}
		}
	}
	return float64(shared) / float64(len(d.vocab))
}
