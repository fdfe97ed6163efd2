package evaluator

// ResponsePlan is what a Decorate or a Forward does to the upstream's response headers, as
// data: every adapter applies the same plan and writes only its own I/O. Applied in order:
//
//  1. Each upstream header is sorted by Edit: a RemoveHeader (one of the upstream's own
//     Access-Control-* headers, under Strip) goes; the values of the MergeHeader lines
//     (Vary, when the plan sets S3's) are kept for step 3; everything else stays.
//  2. Each header of Set replaces any upstream header of the same name, compared without
//     case: under "upstreamCORSHeaders": "keep" the upstream may carry one, and two
//     Access-Control-Allow-Origin values make a browser fail the request.
//  3. With Vary, the upstream's Vary lines are replaced by one line, MergeVary of their
//     values (S3's VaryValue when there were none).
//
// The zero plan changes nothing: a PassThrough, a Reply (the proxy's own answer) and a
// Forward under "keep" without "vary": "always" get it. Set is part of the Decision's
// Headers and valid as long as they are; Decision.HeaderSet numbers its request-independent
// part, for adapters that prepare those once per policy. Building, iterating and sorting
// with a plan allocate nothing; only MergeVary with upstream values does.
type ResponsePlan struct {
	// Strip removes the upstream's own Access-Control-* headers.
	Strip bool
	// Set are S3's headers other than Vary, in S3's order, each replacing the upstream's.
	Set []Header
	// Vary sets S3's Vary, merged with the upstream's.
	Vary bool
}

// HeaderEdit is what step 1 of a ResponsePlan does with one upstream response header.
type HeaderEdit uint8

const (
	KeepHeader   HeaderEdit = iota // left as it is
	RemoveHeader                   // removed: one of the upstream's own Access-Control-* headers
	MergeHeader                    // a Vary line: its value joins MergeVary, the merged line replaces it
)

// Response returns the plan for the upstream's response. S3's Vary is the last of a
// Decorate's Headers (and the only one of a Forward's), so the plan is a view of the
// Decision, built without copying.
func (d *Decision) Response() ResponsePlan {
	if d.Outcome != Decorate && d.Outcome != Forward {
		return ResponsePlan{}
	}
	pl := ResponsePlan{Strip: d.StripUpstream, Set: d.Headers}
	if n := len(pl.Set); n > 0 && pl.Set[n-1].Name == HeaderVary {
		pl.Set, pl.Vary = pl.Set[:n-1:n-1], true
	}
	return pl
}

// Edit sorts one upstream response header by its name, in any case.
func (pl *ResponsePlan) Edit(name string) HeaderEdit {
	switch {
	case pl.Strip && IsCORSHeader(name):
		return RemoveHeader
	case pl.Vary && equalFoldASCII(name, "vary"):
		return MergeHeader
	}
	return KeepHeader
}

// SetsHeaders reports whether the plan sets headers (S3's, or its Vary alone).
func (pl *ResponsePlan) SetsHeaders() bool { return pl.Vary || len(pl.Set) > 0 }

// Changes reports whether the plan changes the response at all; otherwise an adapter need
// not look at it.
func (pl *ResponsePlan) Changes() bool { return pl.Strip || pl.SetsHeaders() }
