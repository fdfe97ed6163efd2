package evaluator_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// TestCaseTables runs every shared case (testdata/cases) through the evaluator, with the
// response an adapter would build from the Decision.
func TestCaseTables(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			pol, err := evaluator.Load(tb.Config)
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			var d evaluator.Decision // reused across cases, as adapters do
			for _, c := range tb.Cases {
				got := Simulate(pol, &d, c)
				if err := c.Check(got); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// RequestOf turns a case's request into the evaluator's view of it.
func RequestOf(c casetable.Request) *evaluator.Request {
	r := &evaluator.Request{Method: c.Method, Authority: c.Authority, Path: c.Path}
	r.Origin, r.HasOrigin = c.Get("Origin")
	r.RequestMethod, r.HasRequestMethod = c.Get("Access-Control-Request-Method")
	r.RequestHeaders, r.HasRequestHeaders = c.Get("Access-Control-Request-Headers")
	r.ForwardedHost, r.HasForwardedHost = c.Joined("X-Forwarded-Host")
	r.Forwarded, r.HasForwarded = c.Joined("Forwarded")
	// A Host header in a case is a second Host line beside the authority.
	_, r.RepeatedHost = c.Get("Host")
	return r
}

// Simulate applies a Decision the way a proxy does: a Reply is the response; anything else
// reaches the fake upstream, whose answer is then stripped and decorated as the Decision says.
func Simulate(pol *evaluator.Policy, d *evaluator.Decision, c casetable.Case) casetable.Response {
	pol.Evaluate(RequestOf(c.Request), d)
	if d.Outcome == evaluator.Reply {
		resp := casetable.Response{Status: d.Status, Body: append([]byte(nil), d.Body...)}
		for _, h := range d.Headers {
			resp.Headers = append(resp.Headers, casetable.Header{h.Name, h.Value})
		}
		return resp
	}
	resp := casetable.Response{Status: 200, Body: []byte(casetable.UpstreamBody), ReachedUpstream: true}
	resp.Headers = append(resp.Headers, casetable.Header{"Content-Type", "text/plain"})
	resp.Headers = append(resp.Headers, c.Upstream...)
	if d.Outcome == evaluator.PassThrough {
		return resp
	}
	// The plan, applied as every adapter applies it (evaluator.ResponsePlan).
	pl := d.Response()
	var vary []string
	kept := resp.Headers[:0:0]
	for _, h := range resp.Headers {
		switch pl.Edit(h[0]) {
		case evaluator.RemoveHeader:
		case evaluator.MergeHeader:
			vary = append(vary, h[1])
		default:
			if !hasName(pl.Set, h[0]) {
				kept = append(kept, h)
			}
		}
	}
	resp.Headers = kept
	for _, h := range pl.Set {
		resp.Headers = append(resp.Headers, casetable.Header{h.Name, h.Value})
	}
	if pl.Vary {
		resp.Headers = append(resp.Headers, casetable.Header{evaluator.HeaderVary, evaluator.MergeVary(vary)})
	}
	return resp
}

func hasName(hs []evaluator.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// TestVaryAlwaysOnEveryTable runs every shared case again with "vary": "always" and holds the
// difference to exactly the option's: a forwarded response of a bucket with CORS rules that
// no rule decorates gets S3's Vary alone; every other decision is the same, byte for byte.
func TestVaryAlwaysOnEveryTable(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	varied := 0
	for _, tb := range tables {
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal(tb.Config, &cfg); err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		if _, ok := cfg["vary"]; ok {
			continue
		}
		s3, err := evaluator.Load(tb.Config)
		if err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		cfg["vary"] = json.RawMessage(`"always"`)
		doc, _ := json.Marshal(cfg)
		always, err := evaluator.Load(doc)
		if err != nil {
			t.Fatalf("%s with vary always: %v", tb.File, err)
		}
		for _, c := range tb.Cases {
			var want, got evaluator.Decision
			s3.Evaluate(RequestOf(c.Request), &want)
			always.Evaluate(RequestOf(c.Request), &got)
			wantHeaders := want.Headers
			if want.Outcome == evaluator.Forward && hasRules(s3.Config(), want.Bucket) {
				wantHeaders = []evaluator.Header{{Name: evaluator.HeaderVary, Value: evaluator.VaryValue}}
				varied++
			}
			if got.Outcome != want.Outcome || got.Reason != want.Reason || got.Bucket != want.Bucket ||
				got.Rule != want.Rule || got.Status != want.Status || got.StripUpstream != want.StripUpstream ||
				string(got.Body) != string(want.Body) && want.Outcome != evaluator.Reply ||
				fmt.Sprint(got.Headers) != fmt.Sprint(wantHeaders) && want.Outcome != evaluator.Reply {
				t.Errorf("%s: %s: with vary always got %v %v %q %v, want %v %v %q %v", filepath.Base(tb.File), c.Name,
					got.Outcome, got.Reason, got.Bucket, got.Headers, want.Outcome, want.Reason, want.Bucket, wantHeaders)
			}
		}
	}
	if varied == 0 {
		t.Fatal("no case of the shared tables is a forwarded response of a bucket with rules")
	}
}

// hasRules reports whether bucket's responses are governed by CORS rules: its own, or the
// default's when it is not listed.
func hasRules(cfg *evaluator.Config, bucket string) bool {
	if b, ok := cfg.Buckets[bucket]; ok {
		return b.Form != evaluator.FormNone
	}
	return cfg.Default != nil && cfg.Default.Form != evaluator.FormNone
}
