package e2e_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

// worstCaseConfig is one bucket at the rule limit where every rule allows the origin and the
// method, carries many AllowedHeaders and patterns, and so must be checked name by name.
func worstCaseConfig(t testing.TB, rules, headersPerRule int) []byte {
	t.Helper()
	type rule struct {
		AllowedOrigins []string
		AllowedMethods []string
		AllowedHeaders []string
	}
	rs := make([]rule, rules)
	for i := range rs {
		hs := make([]string, 0, headersPerRule)
		for j := range headersPerRule - 2 {
			hs = append(hs, fmt.Sprintf("x-r%03d-h%03d", i, j))
		}
		hs = append(hs, "x-amz-meta-*", fmt.Sprintf("*-r%03d", i))
		rs[i] = rule{AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"PUT"}, AllowedHeaders: hs}
	}
	doc, err := json.Marshal(map[string]any{"buckets": map[string]any{"b": map[string]any{"CORSRules": rs}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestHostileWorstCaseRuleWalk: 100 rules, each failing on the last of 10,000 requested names,
// is the most work one preflight can ask for; it must still allocate nothing.
func TestHostileWorstCaseRuleWalk(t *testing.T) {
	pol, err := evaluator.Load(worstCaseConfig(t, 100, 12))
	if err != nil {
		t.Fatal(err)
	}
	names := manyNames("x-amz-meta-", 10000, ",") + ",x-not-allowed"
	req := &evaluator.Request{
		Method: "OPTIONS", Authority: "s3.local", Path: "/b/k",
		Origin: "https://app.example.com", HasOrigin: true,
		RequestMethod: "PUT", HasRequestMethod: true,
		RequestHeaders: names, HasRequestHeaders: true,
	}
	var d evaluator.Decision
	pol.Evaluate(req, &d)
	if d.Reason != evaluator.ReasonNotAllowed {
		t.Fatalf("reason %v, want not_allowed", d.Reason)
	}
	if n := testing.AllocsPerRun(5, func() { pol.Evaluate(req, &d) }); n != 0 {
		t.Errorf("%.1f allocations per worst-case preflight, want 0", n)
	}
	req.RequestHeaders = strings.TrimSuffix(names, ",x-not-allowed")
	pol.Evaluate(req, &d)
	if d.Reason != evaluator.ReasonAllowed || d.Rule != 0 {
		t.Fatalf("reason %v rule %d, want allowed by rule 0", d.Reason, d.Rule)
	}
}

// BenchmarkHostile measures the evaluator on the corpus's largest inputs, for BENCHMARKS.md.
func BenchmarkHostile(b *testing.B) {
	pol, err := evaluator.Load(hostileConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	worst, err := evaluator.Load(worstCaseConfig(b, 100, 12))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 100, 1000, 10000} {
		names := manyNames("x-amz-meta-", n, ",")
		for _, c := range []struct {
			name string
			pol  *evaluator.Policy
			acrh string
		}{
			{fmt.Sprintf("case=acrh-allowed/names=%d", n), pol, names},
			{fmt.Sprintf("case=acrh-100-rules-denied/names=%d", n), worst, names + ",x-not-allowed"},
		} {
			req := &evaluator.Request{
				Method: "OPTIONS", Authority: "s3.example.test", Path: "/site/k",
				Origin: "https://app.example.com", HasOrigin: true,
				RequestMethod: "PUT", HasRequestMethod: true,
				RequestHeaders: c.acrh, HasRequestHeaders: true,
			}
			if c.pol == worst {
				req.Path = "/b/k"
			}
			b.Run(c.name, func(b *testing.B) {
				var d evaluator.Decision
				b.ReportAllocs()
				b.SetBytes(int64(len(c.acrh)))
				for b.Loop() {
					c.pol.Evaluate(req, &d)
				}
			})
		}
	}
}
