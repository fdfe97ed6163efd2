package evaluator_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// TestResponsePlanIsTheDecision holds the plan to the Decision it views, on every shared
// case and under "vary": "always": Set and Vary are exactly a Decorate's or Forward's
// Headers (Vary last), Strip is StripUpstream, and every other outcome gets the zero plan.
func TestResponsePlanIsTheDecision(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[evaluator.Outcome]int{}
	for _, tb := range tables {
		for _, cfg := range [][]byte{tb.Config, withVaryAlways(t, tb.Config)} {
			if cfg == nil {
				continue
			}
			pol, err := evaluator.Load(cfg)
			if err != nil {
				t.Fatalf("%s: %v", tb.File, err)
			}
			var d evaluator.Decision
			for _, c := range tb.Cases {
				pol.Evaluate(RequestOf(c.Request), &d)
				pl := d.Response()
				seen[d.Outcome]++
				if d.Outcome != evaluator.Decorate && d.Outcome != evaluator.Forward {
					if pl.Changes() || pl.Set != nil {
						t.Errorf("%s: %s: %v decision, plan %+v, want none", tb.File, c.Name, d.Outcome, pl)
					}
					continue
				}
				want := d.Headers
				if pl.Vary {
					want = want[:len(want)-1]
				}
				hasVary := slices.ContainsFunc(d.Headers, func(h evaluator.Header) bool { return h.Name == evaluator.HeaderVary })
				if pl.Strip != d.StripUpstream || pl.Vary != hasVary || !slices.Equal(pl.Set, want) ||
					slices.ContainsFunc(pl.Set, func(h evaluator.Header) bool { return h.Name == evaluator.HeaderVary }) {
					t.Errorf("%s: %s: plan %+v of headers %q (strip %v)", tb.File, c.Name, pl, d.Headers, d.StripUpstream)
				}
				if d.Outcome == evaluator.Decorate && (!pl.Vary || !pl.SetsHeaders()) {
					t.Errorf("%s: %s: a Decorate's plan %+v sets no Vary", tb.File, c.Name, pl)
				}
				if pl.Changes() != (pl.Strip || pl.Vary || len(pl.Set) > 0) {
					t.Errorf("%s: %s: Changes() = %v for %+v", tb.File, c.Name, pl.Changes(), pl)
				}
			}
		}
	}
	for _, o := range []evaluator.Outcome{evaluator.PassThrough, evaluator.Reply, evaluator.Decorate, evaluator.Forward} {
		if seen[o] == 0 {
			t.Errorf("no case decided %v", o)
		}
	}
}

func TestResponsePlanEdit(t *testing.T) {
	strip := evaluator.ResponsePlan{Strip: true, Vary: true}
	keep := evaluator.ResponsePlan{Vary: true}
	forward := evaluator.ResponsePlan{Strip: true}
	for _, c := range []struct {
		name                 string
		strip, keep, forward evaluator.HeaderEdit
	}{
		{"access-control-allow-origin", evaluator.RemoveHeader, evaluator.KeepHeader, evaluator.RemoveHeader},
		{"Access-Control-Foo", evaluator.RemoveHeader, evaluator.KeepHeader, evaluator.RemoveHeader},
		{"access-control", evaluator.KeepHeader, evaluator.KeepHeader, evaluator.KeepHeader},
		{"vary", evaluator.MergeHeader, evaluator.MergeHeader, evaluator.KeepHeader},
		{"VARY", evaluator.MergeHeader, evaluator.MergeHeader, evaluator.KeepHeader},
		{"varying", evaluator.KeepHeader, evaluator.KeepHeader, evaluator.KeepHeader},
		{"etag", evaluator.KeepHeader, evaluator.KeepHeader, evaluator.KeepHeader},
	} {
		if got := strip.Edit(c.name); got != c.strip {
			t.Errorf("strip plan: Edit(%q) = %v, want %v", c.name, got, c.strip)
		}
		if got := keep.Edit(c.name); got != c.keep {
			t.Errorf("keep plan: Edit(%q) = %v, want %v", c.name, got, c.keep)
		}
		if got := forward.Edit(c.name); got != c.forward {
			t.Errorf("forward plan: Edit(%q) = %v, want %v", c.name, got, c.forward)
		}
	}
}

// withVaryAlways returns cfg with "vary": "always", or nil when cfg sets "vary" itself.
func withVaryAlways(t *testing.T, cfg []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["vary"]; ok {
		return nil
	}
	m["vary"] = json.RawMessage(`"always"`)
	doc, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
