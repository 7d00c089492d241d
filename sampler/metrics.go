package sampler

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Register exports the sampler's figures (listed in the package comment)
// to reg; they are read from Status at scrape time.
func (s *Sampler) Register(reg prometheus.Registerer) error {
	return reg.Register(&collector{s: s})
}

var (
	descBatches   = prometheus.NewDesc("thresher_sampler_batches_total", "Batches made.", nil, nil)
	descExamples  = prometheus.NewDesc("thresher_sampler_examples_total", "Examples emitted, by domain.", []string{"domain"}, nil)
	descReplayed  = prometheus.NewDesc("thresher_sampler_replayed_total", "Examples drawn from the replay reservoir.", nil, nil)
	descWindow    = prometheus.NewDesc("thresher_sampler_window", "Newest committed curated window loaded.", nil, nil)
	descPool      = prometheus.NewDesc("thresher_sampler_pool_records", "Records in the pool.", nil, nil)
	descReservoir = prometheus.NewDesc("thresher_sampler_reservoir_records", "Records in the replay reservoir.", nil, nil)
	descEpoch     = prometheus.NewDesc("thresher_sampler_epoch", "Passes completed over the sampled data.", nil, nil)
	descStage     = prometheus.NewDesc("thresher_sampler_stage", "Highest open curriculum stage.", nil, nil)
	descComp      = prometheus.NewDesc("thresher_sampler_competence", "Curriculum competence c(t).", nil, nil)
	descDrift     = prometheus.NewDesc("thresher_sampler_drift", "Shift of the newest window against the emitted examples.", []string{"measure"}, nil)
)

type collector struct{ s *Sampler }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBatches, descExamples, descReplayed, descWindow, descPool, descReservoir, descEpoch, descStage, descComp, descDrift} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Batches))
	doms := make([]string, 0, len(st.Domains))
	for d := range st.Domains {
		doms = append(doms, d)
	}
	sort.Strings(doms)
	for _, d := range doms {
		ch <- prometheus.MustNewConstMetric(descExamples, prometheus.CounterValue, float64(st.Domains[d]), d)
	}
	ch <- prometheus.MustNewConstMetric(descReplayed, prometheus.CounterValue, float64(st.Replayed))
	ch <- prometheus.MustNewConstMetric(descWindow, prometheus.GaugeValue, float64(st.Window))
	ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.PoolRecords))
	ch <- prometheus.MustNewConstMetric(descReservoir, prometheus.GaugeValue, float64(st.ReservoirRecords))
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(st.Epoch))
	ch <- prometheus.MustNewConstMetric(descStage, prometheus.GaugeValue, float64(st.Stage))
	ch <- prometheus.MustNewConstMetric(descComp, prometheus.GaugeValue, st.Competence)
	ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, st.Drift.DomainTV, "domain_tv")
	ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, st.Drift.EntropyPSI, "entropy_psi")
	ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, st.Drift.LengthPSI, "length_psi")
}
