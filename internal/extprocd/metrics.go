package extprocd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// Metrics are the process's Prometheus metrics: the [extproc.Observer] its server reports to,
// and the configuration reloads. Every name starts with "s3cors_".
//
//	s3cors_decisions_total{outcome,reason}             decisions taken, one per stream
//	s3cors_config_reloads_total                        configurations swapped in by a reload
//	s3cors_config_reload_errors_total{reason}          reloads refused: invalid, unreadable, missing
//	s3cors_config_last_reload_successful               1 if the last reload attempt succeeded
//	s3cors_config_last_reload_success_timestamp_seconds
//	s3cors_config_info{hash,source}                    1 for the live configuration
//	s3cors_extproc_errors_total{kind}                  protocol and transport errors, by kind
//	s3cors_extproc_streams_active                      streams open now
//	s3cors_extproc_stream_duration_seconds             stream lifetimes (an actual request's
//	                                                   stream spans the upstream's response time)
//	s3cors_extproc_message_duration_seconds{phase}     server time per message, receive to send
//
// Label values: outcome is reply, decorate, forward or pass_through; reason is one of the
// evaluator's reasons ([evaluator.Reason]); kind is one of [extproc.ErrorKinds]: out_of_order,
// missing_header, unknown_message, no_policy, unexpected_phase, recv, send, observability_mode. The outcome
// and reason pairs the server can produce today (decisionPairs, thirteen; docs/deploy.md lists
// them) are exported from the start at zero, as are every reload error reason and error kind:
// rate() and absent() queries behave before the first request, and no series exists that no
// request can move. A pair outside decisionPairs (one a newer evaluator adds) is still
// counted, in a series created when it first happens.
type Metrics struct {
	registry *prometheus.Registry

	decisionVec     *prometheus.CounterVec
	decisions       [outcomeCount][reasonCount]prometheus.Counter // nil for a pair not in decisionPairs
	reloads         prometheus.Counter
	reloadErrors    *prometheus.CounterVec
	lastReloadOK    prometheus.Gauge
	lastReloadTime  prometheus.Gauge
	configInfo      *prometheus.GaugeVec
	errors          *prometheus.CounterVec
	streamsActive   prometheus.Gauge
	streamDuration  prometheus.Histogram
	requestLatency  prometheus.Observer
	responseLatency prometheus.Observer
}

var _ extproc.Observer = (*Metrics)(nil)

const (
	outcomeCount = int(evaluator.Forward) + 1
	reasonCount  = int(evaluator.ReasonActualAmbiguous) + 1
)

// decisionPairs are the outcome and reason pairs a decision can have, read from the
// evaluator's paths (evaluator/evaluate.go) and the server's own CONNECT pass-through:
// a request addressing no bucket, or an unlisted one under "forward", passes through; a
// preflight is replied to, allowed or for one of five refusals; an actual request is decorated
// when a rule matches and forwarded bare otherwise. TestDecisionSeriesMatchCaseTables holds
// this list to what the case tables produce, both ways.
var decisionPairs = []struct {
	outcome evaluator.Outcome
	reason  evaluator.Reason
}{
	{evaluator.PassThrough, evaluator.ReasonNotBucket},
	{evaluator.PassThrough, evaluator.ReasonUnlistedForward},
	{evaluator.Reply, evaluator.ReasonAllowed},
	{evaluator.Reply, evaluator.ReasonNoOrigin},
	{evaluator.Reply, evaluator.ReasonBucketNotFound},
	{evaluator.Reply, evaluator.ReasonNotEnabled},
	{evaluator.Reply, evaluator.ReasonMissingRequestMethod},
	{evaluator.Reply, evaluator.ReasonNotAllowed},
	{evaluator.Decorate, evaluator.ReasonAllowed},
	{evaluator.Forward, evaluator.ReasonActualNoOrigin},
	{evaluator.Forward, evaluator.ReasonActualNoMatch},
	{evaluator.Reply, evaluator.ReasonAmbiguous},
	{evaluator.Forward, evaluator.ReasonActualAmbiguous},
}

// NewMetrics returns the server's metrics registered in a registry of their own, together
// with the Go runtime and process collectors; [Metrics.Registry] serves them.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{registry: reg}

	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s3cors_decisions_total",
		Help: "CORS decisions taken, one per HTTP request, by outcome (reply, decorate, forward, pass_through) and reason.",
	}, []string{"outcome", "reason"})
	m.decisionVec = decisions
	for _, p := range decisionPairs {
		m.decisions[p.outcome][p.reason] = decisions.WithLabelValues(extproc.OutcomeName(p.outcome), p.reason.String())
	}
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "s3cors_config_reloads_total",
		Help: "Configurations swapped in by a reload (file change or SIGHUP).",
	})
	m.reloadErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s3cors_config_reload_errors_total",
		Help: "Reloads refused, by reason (invalid, unreadable, missing); the last good configuration stays live.",
	}, []string{"reason"})
	for _, r := range []string{reloadInvalid, reloadUnreadable, reloadMissing} {
		m.reloadErrors.WithLabelValues(r)
	}
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "s3cors_config_last_reload_successful",
		Help: "1 if the last configuration load or reload succeeded, 0 if it was refused.",
	})
	m.lastReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "s3cors_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load or reload.",
	})
	m.configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "s3cors_config_info",
		Help: "1 for the live configuration, labelled with the SHA-256 of its file and the file's path.",
	}, []string{"hash", "source"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "s3cors_extproc_errors_total",
		Help: "ext_proc protocol and transport errors, by kind.",
	}, []string{"kind"})
	for _, k := range extproc.ErrorKinds {
		m.errors.WithLabelValues(string(k))
	}
	m.streamsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "s3cors_extproc_streams_active",
		Help: "ext_proc streams open now.",
	})
	m.streamDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "s3cors_extproc_stream_duration_seconds",
		Help: "ext_proc stream lifetimes; for a decorated request this includes the upstream's response time.",
		// 50µs to ~210s: a preflight's stream is sub-millisecond, an actual request's spans
		// the store's answer.
		Buckets: prometheus.ExponentialBuckets(50e-6, 4, 12),
	})
	messageLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "s3cors_extproc_message_duration_seconds",
		Help: "Server time per ext_proc message, from receiving it to sending the answer, by phase.",
		// 5µs to ~1.3s: the evaluator answers in microseconds; the tail shows CPU starvation.
		Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10),
	}, []string{"phase"})
	m.requestLatency = messageLatency.WithLabelValues("request_headers")
	m.responseLatency = messageLatency.WithLabelValues("response_headers")

	reg.MustRegister(decisions, m.reloads, m.reloadErrors, m.lastReloadOK, m.lastReloadTime,
		m.configInfo, m.errors, m.streamsActive, m.streamDuration, messageLatency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry holding the metrics, for promhttp.HandlerFor or for a test's
// testutil.GatherAndCompare.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// StreamStarted counts a stream open.
func (m *Metrics) StreamStarted() { m.streamsActive.Inc() }

// StreamEnded counts a stream closed and records its lifetime.
func (m *Metrics) StreamEnded(d time.Duration) {
	m.streamsActive.Dec()
	m.streamDuration.Observe(d.Seconds())
}

// Answered records the server time of an answer.
func (m *Metrics) Answered(phase extproc.Phase, d time.Duration) {
	if phase == extproc.PhaseResponseHeaders {
		m.responseLatency.Observe(d.Seconds())
		return
	}
	m.requestLatency.Observe(d.Seconds())
}

// Decided counts a decision by outcome and reason.
func (m *Metrics) Decided(d *evaluator.Decision) {
	if int(d.Outcome) < outcomeCount && int(d.Reason) < reasonCount {
		if c := m.decisions[d.Outcome][d.Reason]; c != nil {
			c.Inc()
			return
		}
	}
	// A pair decisionPairs lacks (a newer evaluator's) is still counted, in a series made on
	// first use, rather than lost.
	m.decisionVec.WithLabelValues(extproc.OutcomeName(d.Outcome), d.Reason.String()).Inc()
}

// Failed counts an error by kind.
func (m *Metrics) Failed(kind extproc.ErrorKind) { m.errors.WithLabelValues(string(kind)).Inc() }

// configLoaded records p as the live configuration.
func (m *Metrics) configLoaded(p *extproc.LoadedPolicy, reload bool) {
	if reload {
		m.reloads.Inc()
	}
	m.lastReloadOK.Set(1)
	m.lastReloadTime.Set(float64(p.LoadedAt.UnixNano()) / 1e9)
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(p.Hash, p.Source).Set(1)
}

func (m *Metrics) reloadFailed(reason string) {
	m.reloadErrors.WithLabelValues(reason).Inc()
	m.lastReloadOK.Set(0)
}
