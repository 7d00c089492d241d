package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series an Ingester exports; see the package
// comment for the list.
type metrics struct {
	records    *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	dlq        *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	commitSecs prometheus.Histogram
	segments   *prometheus.CounterVec
	assigned   prometheus.Gauge
	rebalances prometheus.Counter
	idle       prometheus.Gauge
	degraded   prometheus.GaugeFunc
	lastFetch  prometheus.GaugeFunc
	fenced     *prometheus.CounterVec
	compacted  prometheus.Counter
	gaps       *prometheus.CounterVec
}

// newMetrics returns in's metrics; the health gauges read in at scrape time.
func newMetrics(reg prometheus.Registerer, in *Ingester) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_records_total",
			Help: "Valid records committed to the raw table.",
		}, []string{"topic"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_bytes_total",
			Help: "Bytes of record values committed to the lake (raw and DLQ).",
		}, []string{"topic"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_dlq_records_total",
			Help: "Malformed records committed to the DLQ table, by reason.",
		}, []string{"topic", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "thresher_ingest_lag_records",
			Help: "High watermark minus the next offset this member will read, per assigned partition.",
		}, []string{"topic", "partition"}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thresher_ingest_commit_seconds",
			Help:    "Time to encode and commit one segment span (raw and DLQ) to the lake.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_segments_total",
			Help: "Parquet segments committed, by table.",
		}, []string{"table"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thresher_ingest_assigned_partitions",
			Help: "Partitions assigned to this member in the current generation.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thresher_ingest_generations_total",
			Help: "Consumer group generations this member has joined.",
		}),
		idle: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thresher_ingest_idle",
			Help: "1 when this member holds its assignment and every partition of its topics is caught up.",
		}),
		degraded: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "thresher_ingest_degraded",
			Help: "1 when no fetch has succeeded for stall_timeout while this member's partitions are not caught up (or it holds no generation).",
		}, func() float64 {
			if in.stall(time.Now()) != nil {
				return 1
			}
			return 0
		}),
		lastFetch: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "thresher_ingest_last_fetch_timestamp_seconds",
			Help: "Unix time of the last fetch that returned records (0 before the first).",
		}, func() float64 {
			if ns := in.lastFetch.Load(); ns != 0 {
				return float64(ns) / 1e9
			}
			return 0
		}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_fenced_total",
			Help: "Partitions this member gave up because a newer holder claimed their next offsets.",
		}, []string{"topic"}),
		compacted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thresher_ingest_compacted_segments_total",
			Help: "Segments of held partitions (raw and dlq) that compaction replaced by merged ones.",
		}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thresher_ingest_offset_gaps_total",
			Help: "Runs of offsets the broker no longer had when this member asked for them, landed in the gaps table (on_gap: record).",
		}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.bytes, m.dlq, m.lag, m.commitSecs, m.segments,
			m.assigned, m.rebalances, m.idle, m.degraded, m.lastFetch, m.fenced, m.compacted, m.gaps)
	}
	return m
}
