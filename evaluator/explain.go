package evaluator

import "strings"

// Explain evaluates r and records why each rule of the bucket did or did not match, for
// `s3cors explain` and debugging. It allocates (the Explanation owns all its memory) and is
// not meant for the request path.
func (p *Policy) Explain(r *Request) *Explanation {
	e := &Explanation{}
	var d Decision
	p.Evaluate(r, &d)
	e.Decision = d
	e.Decision.scratch = decisionScratch{}
	e.Decision.Bucket = strings.Clone(d.Bucket)
	e.Decision.Key = strings.Clone(d.Key)
	if d.Headers != nil {
		e.Decision.Headers = make([]Header, len(d.Headers))
		for i, h := range d.Headers {
			e.Decision.Headers[i] = Header{h.Name, strings.Clone(h.Value)}
			switch h.Name {
			case HeaderRequestID:
				e.Decision.scratch.ids[0] = e.Decision.Headers[i].Value
			case HeaderID2:
				e.Decision.scratch.ids[1] = e.Decision.Headers[i].Value
			}
		}
	}
	// d is this function's own: its requested names (AllowHeaders) can stay where they are.
	e.Decision.scratch.acrh, e.Decision.scratch.names = d.scratch.acrh, d.scratch.names
	if d.Body != nil {
		e.Decision.Body = append([]byte(nil), d.Body...)
	}
	if d.Outcome == PassThrough && d.Reason == ReasonNotBucket || d.Ambiguity != AmbiguityNone {
		return e
	}
	var s decisionScratch
	bp, _ := p.bucketFor(r, &s)
	if bp == nil {
		return e
	}
	e.Source = bp.source
	if bp.state != bucketRules {
		return e
	}
	method := r.Method
	if r.HasRequestMethod && r.RequestMethod != "" {
		method = r.RequestMethod
	}
	parseACRH(r, &s)
	bit := methodBit(method)
	bad := unsafeOrigin(r.Origin)
	hasOrigin := r.HasOrigin && r.Origin != ""
	for i := range bp.rules {
		cr := &bp.rules[i]
		t := RuleTrace{Index: i, ID: cr.id}
		t.OriginMatched = hasOrigin && (cr.anyOrigin || !bad && cr.originMatches(r.Origin, false, false) != originNoMatch)
		t.MethodMatched = bit != 0 && cr.methods&bit != 0
		if s.badACRH {
			t.FailedHeader = strings.Clone(r.RequestHeaders)
		} else if n := cr.allowsHeaders(&s); n >= 0 {
			t.FailedHeader = strings.Clone(s.name(n))
		} else {
			t.HeadersMatched = true
		}
		t.Matched = d.Rule == i
		e.Rules = append(e.Rules, t)
	}
	return e
}

// bucketFor returns the policy that applies to the bucket r names (listed or fallback).
func (p *Policy) bucketFor(r *Request, s *decisionScratch) (*bucketPolicy, bool) {
	_, _, bp, _, ok := p.locate(r.Authority, r.Path, scanTarget(r.Path), s)
	if !ok {
		return nil, false
	}
	if bp == nil {
		return p.unlisted, true
	}
	return bp, true
}
