package filter

import (
	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter/abi"
)

// Metric indexes, in the order of MetricNames.
const (
	metricPreflightAllowed = iota
	metricPreflightDeniedBucketNotFound
	metricPreflightDeniedNotEnabled
	metricPreflightDeniedNotAllowed
	metricPreflightBadRequestNoOrigin
	metricPreflightBadRequestNoMethod
	metricPreflightDeniedAmbiguous
	metricActualDecorated
	metricActualUndecoratedNoOrigin
	metricActualUndecoratedNoMatch
	metricActualUndecoratedAmbiguous
	metricPassThroughNotBucket
	metricPassThroughUnlistedForward
	metricConfigAccepted
	metricConfigRejected
	metricInternalErrors
	metricCount
)

// MetricNames lists every metric the filter defines; all are counters. Envoy's /stats shows
// them under its custom-stat namespace, as wasmcustom.s3cors.preflight.allowed; its
// /stats/prometheus strips that namespace and adds no envoy_ prefix (Envoy PR 17357), so the
// Prometheus name is s3cors_preflight_allowed. Every worker VM counts into the same Envoy stat,
// so the values are per proxy, not per worker.
var MetricNames = [metricCount]string{
	metricPreflightAllowed:              "s3cors.preflight.allowed",
	metricPreflightDeniedBucketNotFound: "s3cors.preflight.denied.bucket_not_found",
	metricPreflightDeniedNotEnabled:     "s3cors.preflight.denied.not_enabled",
	metricPreflightDeniedNotAllowed:     "s3cors.preflight.denied.not_allowed",
	metricPreflightBadRequestNoOrigin:   "s3cors.preflight.bad_request.no_origin",
	metricPreflightBadRequestNoMethod:   "s3cors.preflight.bad_request.missing_request_method",
	metricPreflightDeniedAmbiguous:      "s3cors.preflight.denied.ambiguous",
	metricActualDecorated:               "s3cors.actual.decorated",
	metricActualUndecoratedNoOrigin:     "s3cors.actual.undecorated.no_origin",
	metricActualUndecoratedNoMatch:      "s3cors.actual.undecorated.no_match",
	metricActualUndecoratedAmbiguous:    "s3cors.actual.undecorated.ambiguous",
	metricPassThroughNotBucket:          "s3cors.passthrough.not_bucket",
	metricPassThroughUnlistedForward:    "s3cors.passthrough.unlisted_forward",
	metricConfigAccepted:                "s3cors.config.accepted",
	metricConfigRejected:                "s3cors.config.rejected",
	metricInternalErrors:                "s3cors.internal_errors",
}

// reasonMetric maps the reason of a decision the filter acts on at request time (a reply, a
// forward without decoration, a pass-through) to its counter; -1 for none. A decorated actual
// request is counted when its response is decorated.
var reasonMetric = func() (m [16]int) {
	for i := range m {
		m[i] = -1
	}
	m[evaluator.ReasonAllowed] = metricPreflightAllowed
	m[evaluator.ReasonBucketNotFound] = metricPreflightDeniedBucketNotFound
	m[evaluator.ReasonNotEnabled] = metricPreflightDeniedNotEnabled
	m[evaluator.ReasonNotAllowed] = metricPreflightDeniedNotAllowed
	m[evaluator.ReasonNoOrigin] = metricPreflightBadRequestNoOrigin
	m[evaluator.ReasonMissingRequestMethod] = metricPreflightBadRequestNoMethod
	m[evaluator.ReasonActualNoOrigin] = metricActualUndecoratedNoOrigin
	m[evaluator.ReasonActualNoMatch] = metricActualUndecoratedNoMatch
	m[evaluator.ReasonAmbiguous] = metricPreflightDeniedAmbiguous
	m[evaluator.ReasonActualAmbiguous] = metricActualUndecoratedAmbiguous
	m[evaluator.ReasonNotBucket] = metricPassThroughNotBucket
	m[evaluator.ReasonUnlistedForward] = metricPassThroughUnlistedForward
	return m
}()

// metrics holds one root context's metric ids; 0 means "not defined" (the host refused), and
// such a metric is silently not counted: metrics must never stop traffic.
type metrics struct {
	defined bool
	ids     [metricCount]uint32
}

// define defines every metric once per root context. Envoy hands out a new id for a name
// defined twice, so a reconfiguration must not define them again.
func (m *metrics) define(h abi.Host) error {
	if m.defined {
		return nil
	}
	m.defined = true
	var first error
	for i, name := range MetricNames {
		id, err := h.DefineMetric(abi.Counter, name)
		if err != nil && first == nil {
			first = err
		}
		m.ids[i] = id
	}
	return first
}

func (m *metrics) inc(h abi.Host, index int) {
	if id := m.ids[index]; id != 0 {
		_ = h.IncrementMetric(id, 1)
	}
}

// incReason counts a decision by its reason.
func (m *metrics) incReason(h abi.Host, r evaluator.Reason) {
	if int(r) < len(reasonMetric) && reasonMetric[r] >= 0 {
		m.inc(h, reasonMetric[r])
	}
}
