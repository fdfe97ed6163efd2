package evaluator_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// TestFixedHeaders checks, on every shared case, that an adapter which sends a decision's
// fixed header set (Policy.FixedHeaders(d.HeaderSet)) plus the request-dependent values
// (RequestID, HostID, the echoed Allow-Origin, AllowHeaders) sends exactly d.Headers.
func TestFixedHeaders(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, tb := range tables {
		pol, err := evaluator.Load(tb.Config)
		if err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		var d evaluator.Decision
		for _, c := range tb.Cases {
			r := RequestOf(c.Request)
			pol.Evaluate(r, &d)
			name := filepath.Base(tb.File) + ": " + c.Name
			if d.Outcome == evaluator.Reply {
				if d.RequestID() == "" || d.HostID() == "" || !casetable.IsRequestID(d.RequestID()) || !casetable.IsHostID(d.HostID()) {
					t.Errorf("%s: ids %q %q", name, d.RequestID(), d.HostID())
				}
			} else if d.RequestID() != "" || d.HostID() != "" || d.AllowHeaders() != "" {
				t.Errorf("%s: %v decision has reply values", name, d.Outcome)
			}
			if (d.Rule >= 0) != (d.HeaderSet >= 0) {
				t.Errorf("%s: rule %d, header set %d", name, d.Rule, d.HeaderSet)
			}
			if d.HeaderSet < 0 {
				continue
			}
			matched++
			if d.HeaderSet >= pol.FixedHeaderSets() {
				t.Fatalf("%s: header set %d of %d", name, d.HeaderSet, pol.FixedHeaderSets())
			}
			var rest []evaluator.Header
			for _, h := range d.Headers {
				switch {
				case h.Name == evaluator.HeaderRequestID && h.Value == d.RequestID(),
					h.Name == evaluator.HeaderID2 && h.Value == d.HostID(),
					h.Name == evaluator.HeaderAllowHeaders && h.Value == d.AllowHeaders(),
					h.Name == evaluator.HeaderAllowOrigin && h.Value == r.Origin && h.Value != "*",
					h.Name == evaluator.HeaderContentLength && d.Outcome == evaluator.Reply:
				default:
					rest = append(rest, h)
				}
			}
			if fixed := pol.FixedHeaders(d.HeaderSet); !slices.Equal(rest, fixed) {
				t.Errorf("%s: headers %q\nless the request's values: %q\nfixed set %d: %q", name, d.Headers, rest, d.HeaderSet, fixed)
			}
		}
	}
	if matched < 20 {
		t.Errorf("only %d cases matched a rule", matched)
	}
}

// TestFixedHeaderSetsAreShared: buckets with the same rules share their sets.
func TestFixedHeaderSetsAreShared(t *testing.T) {
	rule := `{"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}, {"AllowedOrigins": ["https://a.test"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 5}]}`
	pol, err := evaluator.Load([]byte(`{"buckets": {"a": ` + rule + `, "b": ` + rule + `, "c": null}, "default": ` + rule + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := pol.FixedHeaderSets(); n != 2 {
		t.Errorf("%d fixed header sets, want 2", n)
	}
}
