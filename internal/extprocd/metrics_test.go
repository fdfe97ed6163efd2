package extprocd

import (
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// decisionSeries returns the s3cors_decisions_total series of m, "outcome/reason" to value.
func decisionSeries(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "s3cors_decisions_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			series[label(s, "outcome")+"/"+label(s, "reason")] = s.GetCounter().GetValue()
		}
	}
	return series
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestDecisionSeriesMatchCaseTables: s3cors_decisions_total exports, from the start, exactly
// the outcome and reason pairs the server produces. Every case of every table goes through
// one server; then each pre-created series must have counted something (a series no request
// can reach is noise on every dashboard, and an alert on it never fires), and every series
// that counted must have been pre-created (or rate() and absent() misbehave until its first
// request).
func TestDecisionSeriesMatchCaseTables(t *testing.T) {
	noLeaks(t)
	m := NewMetrics()
	var want []string
	for _, p := range decisionPairs {
		want = append(want, extproc.OutcomeName(p.outcome)+"/"+p.reason.String())
	}
	slices.Sort(want)
	var fresh []string
	for s, v := range decisionSeries(t, m) {
		if v != 0 {
			t.Errorf("fresh metrics: %s = %v, want 0", s, v)
		}
		fresh = append(fresh, s)
	}
	slices.Sort(fresh)
	if !slices.Equal(fresh, want) {
		t.Errorf("pre-created series %q, want decisionPairs %q", fresh, want)
	}

	for _, tb := range tables(t) {
		srv := extproc.NewServer(extproc.NewPolicyHolder(tablePolicy(t, tb)), extproc.ServerOptions{Logger: discardLogger(), Observer: m})
		client := extproctest.Loopback(t, srv, extproc.ServerCodecOption())
		for _, c := range tb.Cases {
			if _, err := (extproctest.Envoy{AllowModeOverride: true}).Do(t.Context(), client, c); err != nil {
				t.Fatalf("%s/%s: %v", tb.File, c.Name, err)
			}
		}
	}
	for s, v := range decisionSeries(t, m) {
		switch {
		case !slices.Contains(want, s):
			t.Errorf("the case tables produce %s (%v times), which is not pre-created: add it to decisionPairs", s, v)
		case v == 0:
			t.Errorf("%s is pre-created but no case produces it: drop it from decisionPairs, or add a case that reaches it", s)
		}
	}
}

// TestDecisionOutsidePairsCounted: a pair decisionPairs lacks (an evaluator newer than the
// list) is counted in a series of its own, not dropped.
func TestDecisionOutsidePairsCounted(t *testing.T) {
	m := NewMetrics()
	m.Decided(&evaluator.Decision{Outcome: evaluator.Reply, Reason: evaluator.ReasonActualNoMatch})
	m.Decided(&evaluator.Decision{Outcome: evaluator.Outcome(9), Reason: evaluator.Reason(99)})
	got := decisionSeries(t, m)
	if got["reply/actual_no_match"] != 1 || got["unknown/unknown"] != 1 {
		t.Errorf("series %v: want reply/actual_no_match and unknown/unknown counted once", got)
	}
}

// TestReplyPairsHaveFilterDetails: every reply reason the server can produce has the details
// evaluator.TestReplyDetails (evaluator/api_reason_test.go) pins for both the wasm filter and
// this server, not the fallback an unknown reason gets.
func TestReplyPairsHaveFilterDetails(t *testing.T) {
	for _, p := range decisionPairs {
		if p.outcome != evaluator.Reply {
			continue
		}
		if d := p.reason.ReplyDetails(); d != "s3cors_preflight_allowed" && d != "s3cors_preflight_denied_"+p.reason.String() {
			t.Errorf("a %s reply has details %q, not the filter's", p.reason, d)
		}
	}
}

// BenchmarkObserver is what the Prometheus metrics add to one stream of the extproc server
// (its BenchmarkProcess runs without an Observer): the calls a preflight's stream makes.
func BenchmarkObserver(b *testing.B) {
	d := &evaluator.Decision{Outcome: evaluator.Reply, Reason: evaluator.ReasonAllowed}
	var obs extproc.Observer = NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		obs.StreamStarted()
		obs.Decided(d)
		obs.Answered(extproc.PhaseRequestHeaders, time.Microsecond)
		obs.StreamEnded(time.Microsecond)
	}
}
