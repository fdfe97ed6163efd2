package controlplane

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the control plane's Prometheus metrics:
//
//	s3cors_controlplane_requests_total{operation,code}  API requests answered, code "OK" or S3's error code
//	s3cors_controlplane_rejected_total{code}            requests refused before any change: unsigned,
//	                                                    wrongly signed, expired, skewed, not allowed
//	s3cors_controlplane_store_failures_total            changes refused because the store failed
//	s3cors_controlplane_config_version                  version of the configuration now served
//	s3cors_controlplane_xds_pushes_total                configurations handed to the xDS cache
//	s3cors_controlplane_xds_streams                     Envoy ECDS streams open now
//	s3cors_controlplane_xds_acks_total                  configurations Envoys accepted
//	s3cors_controlplane_xds_nacks_total                 configurations Envoys refused (logged with Envoy's reason)
//	s3cors_controlplane_xds_ack_seconds                 time from a push to each Envoy's acknowledgement of it
//
// operation is PutBucketCors, GetBucketCors, DeleteBucketCors or Other.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	storeFailures prometheus.Counter
	version       prometheus.Gauge
	pushes        prometheus.Counter
	streams       prometheus.Gauge
	acks          prometheus.Counter
	nacks         prometheus.Counter
	ackSeconds    prometheus.Histogram
}

// NewMetrics returns the metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry:      prometheus.NewRegistry(),
		requests:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3cors_controlplane_requests_total", Help: "API requests answered, by operation and S3 code (OK for success)."}, []string{"operation", "code"}),
		rejected:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3cors_controlplane_rejected_total", Help: "Requests refused by authentication or authorisation, by S3 code; none changed anything."}, []string{"code"}),
		storeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "s3cors_controlplane_store_failures_total", Help: "Changes refused with 503 because the store could not keep them."}),
		version:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "s3cors_controlplane_config_version", Help: "Version of the configuration now served."}),
		pushes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "s3cors_controlplane_xds_pushes_total", Help: "Configurations handed to the xDS cache."}),
		streams:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "s3cors_controlplane_xds_streams", Help: "Envoy ECDS streams open now."}),
		acks:          prometheus.NewCounter(prometheus.CounterOpts{Name: "s3cors_controlplane_xds_acks_total", Help: "Configurations Envoys accepted."}),
		nacks:         prometheus.NewCounter(prometheus.CounterOpts{Name: "s3cors_controlplane_xds_nacks_total", Help: "Configurations Envoys refused."}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s3cors_controlplane_xds_ack_seconds", Help: "Time from handing a configuration to the xDS cache to an Envoy's acknowledgement of it (Envoy has built the filter on its main thread).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
	}
	m.registry.MustRegister(m.requests, m.rejected, m.storeFailures, m.version, m.pushes, m.streams, m.acks, m.nacks, m.ackSeconds)
	return m
}

// Registry is the registry to serve on /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Rejected returns the number of requests refused with code ("" for all codes).
func (m *Metrics) Rejected(code string) float64 {
	mfs, _ := m.registry.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "s3cors_controlplane_rejected_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "code" && (code == "" || l.GetValue() == code) {
					total += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
