package ingest

import (
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
}

func newMetrics(reg prometheus.Registerer) *metrics {
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
	}
	if reg != nil {
		reg.MustRegister(m.records, m.bytes, m.dlq, m.lag, m.commitSecs, m.segments,
			m.assigned, m.rebalances, m.idle)
	}
	return m
}
