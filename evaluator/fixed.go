package evaluator

import "unsafe"

// fixedKey is what a rule's fixed CORS headers depend on. Header values are interned, so
// equal values are equal strings and rules with the same answer get the same key.
type fixedKey struct {
	allowMethod, expose, maxAge string
	anyOrigin                   bool
}

// numberFixedSets gives every compiled rule the number of its fixed header set and builds
// the sets, in bucket-name order so that numbering does not depend on map order. 100,000
// buckets with the same rules make one set.
func (p *Policy) numberFixedSets(order []*compiledCORS) {
	seen := map[fixedKey]int{}
	eachRule(order, func(cr *compiledRule) {
		k := fixedKey{cr.allowMethod, cr.expose, cr.maxAge, cr.anyOrigin}
		n, ok := seen[k]
		if !ok {
			n = len(p.fixed)
			seen[k] = n
			p.fixed = append(p.fixed, fixedHeaders(cr))
		}
		cr.fixed = n
	})
}

// fixedHeaders is appendCORSHeaders without what depends on the request: an echoed
// Allow-Origin and Allow-Headers.
func fixedHeaders(cr *compiledRule) []Header {
	var h []Header
	for _, hd := range appendCORSHeaders(nil, cr, "", "") {
		if hd.Name == HeaderAllowOrigin && !cr.anyOrigin {
			continue
		}
		h = append(h, hd)
	}
	return h[:len(h):len(h)]
}

// FixedHeaderSets is the number of distinct fixed header sets: Decision.HeaderSet is below it.
func (p *Policy) FixedHeaderSets() int {
	if p.img != nil {
		return int(p.img.nFixed)
	}
	return len(p.fixed)
}

// FixedHeaders returns fixed header set n (0 <= n < FixedHeaderSets()): the CORS headers of
// a matched rule that do not depend on the request, in S3's order. They are
// Access-Control-Allow-Origin "*" (only for a rule that allows any origin),
// -Allow-Methods, -Expose-Headers and -Max-Age when set, -Allow-Credentials "true" (only for
// a rule that echoes the origin) and Vary. An allowed preflight adds the ids, the echoed
// Allow-Origin and Allow-Headers (AllowHeaders) and Content-Length; a decorated response
// adds the echoed Allow-Origin. The slice is shared: do not modify it. A policy loaded from
// an image decodes the set on each call.
func (p *Policy) FixedHeaders(n int) []Header {
	if p.img != nil {
		return p.img.fixedHeaders(n)
	}
	return p.fixed[n]
}

// RequestID is the x-amz-request-id of a Reply, "" for other outcomes. Like every string of
// a Decision it is valid until the Decision is used again.
func (d *Decision) RequestID() string {
	if d.Outcome != Reply {
		return ""
	}
	return d.scratch.ids[0]
}

// HostID is the x-amz-id-2 of a Reply, "" for other outcomes.
func (d *Decision) HostID() string {
	if d.Outcome != Reply {
		return ""
	}
	return d.scratch.ids[1]
}

// AllowHeaders is the Access-Control-Allow-Headers value of an allowed preflight (the
// requested names, lower case, joined by ", "), "" when it sends none.
func (d *Decision) AllowHeaders() string {
	if s := &d.scratch; d.Outcome == Reply && d.Status == 200 && len(s.names) > 0 {
		return unsafe.String(&s.acrh[0], len(s.acrh))
	}
	return ""
}
