package evaluator

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"unsafe"
)

// Response header names, in S3's Title-Case.
const (
	HeaderAllowOrigin      = "Access-Control-Allow-Origin"
	HeaderAllowMethods     = "Access-Control-Allow-Methods"
	HeaderAllowHeaders     = "Access-Control-Allow-Headers"
	HeaderExposeHeaders    = "Access-Control-Expose-Headers"
	HeaderMaxAge           = "Access-Control-Max-Age"
	HeaderAllowCredentials = "Access-Control-Allow-Credentials"
	HeaderVary             = "Vary"
	HeaderContentType      = "Content-Type"
	HeaderContentLength    = "Content-Length"
	HeaderConnection       = "Connection"
	HeaderRequestID        = "x-amz-request-id"
	HeaderID2              = "x-amz-id-2"
)

// VaryValue is the Vary header S3 puts on every CORS-decorated response (and only there).
const VaryValue = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

// decisionScratch is the reusable memory behind a Decision, so that a Decision used again
// and again costs no allocation.
type decisionScratch struct {
	headers   [12]Header
	template  *Header // the template headers holds, nil when unknown (headersFrom)
	addr      []byte  // decoded bucket and key
	readings  int     // other readings of this request the attribution rule made (maxOtherReadings)
	acrh      []byte  // requested header names, lower case, joined by ", "
	names     []span  // each name's place in acrh
	badACRH   bool    // the ACRH value holds CR, LF or NUL: no rule can match it
	body      []byte
	bodyHead  *errorReply // the error whose head body starts with, nil when none
	bodyTail  uint8       // what follows its Method value (replyError)
	requestID [16]byte
	hostID    [76]byte
	ids       [2]string // the last reply's x-amz-request-id and x-amz-id-2, wherever written

	bucket bucketPolicy // the bucket an image policy found (imageIndex.lookup)
}

// headersFrom returns s.headers holding template t, ready for its request-dependent values
// to be filled in. A Decision serving one rule again and again already holds t (its other
// values are constant, and Headers are not modified by callers): then nothing is copied.
func (s *decisionScratch) headersFrom(t []Header) []Header {
	h := s.headers[:len(t)]
	if s.template != &t[0] {
		copy(h, t)
		s.template = &t[0]
	}
	return h
}

// span is one requested header name's place in acrh.
type span struct{ start, end int32 }

// nameKey returns requested name i, when it has at most 16 bytes, as two zero-padded words,
// for comparison with an AllowedHeader's key (headerKey) in three integer compares instead of
// a string comparison. parseACRH leaves 16 bytes of room after each name's start, so the two
// loads stay inside acrh's capacity.
func (s *decisionScratch) nameKey(i int) (w0, w1 uint64) {
	sp := s.names[i]
	l := int(sp.end - sp.start)
	b := s.acrh[sp.start : int(sp.start)+16]
	return load64(b[:8]) & below(min(l, 8)), load64(b[8:16]) & below(max(l-8, 0))
}

func (s *decisionScratch) name(i int) string {
	sp := s.names[i]
	return unsafe.String(&s.acrh[sp.start], int(sp.end-sp.start))
}

// Evaluate decides r into d, following S3's preflight ladder and actual-request rules
// (s3-cors-semantics.md §2, §3, §6). It does not allocate on allowed paths once d has been
// used a few times. d's previous contents, and the strings that pointed into them, are
// overwritten.
func (p *Policy) Evaluate(r *Request, d *Decision) {
	d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule, d.HeaderSet = PassThrough, ReasonNotBucket, "", "", -1, -1
	d.Status, d.Headers, d.Body, d.StripUpstream, d.Ambiguity = 0, nil, nil, false, AmbiguityNone
	s := &d.scratch
	s.addr, s.readings = s.addr[:0], 0
	sc := scanTarget(r.Path)
	bucket, key, bp, vhost, ok := p.locate(r.Authority, r.Path, sc, s)
	if a := p.ambiguity(r, sc, reading{bucket, ok}, vhost, s); a != AmbiguityNone {
		p.ambiguous(r, d, a, key != "")
		return
	}
	if !ok {
		return
	}
	d.Bucket, d.Key = bucket, key
	if bp == nil {
		if bp = p.unlisted; bp == nil {
			d.Reason = ReasonUnlistedForward
			return
		}
	}
	// An empty Origin (or Access-Control-Request-Method) is taken as absent; see RATIONALE.md.
	hasOrigin := r.HasOrigin && r.Origin != ""
	hasACRM := r.HasRequestMethod && r.RequestMethod != ""
	if r.Method == "OPTIONS" {
		p.preflight(r, d, bp, hasOrigin, hasACRM)
		return
	}
	d.Outcome, d.StripUpstream = Forward, p.strip
	if p.vary && bp.state == bucketRules {
		// "vary": "always": whatever the origin, the response varies by it (set before the
		// match, which replaces Headers when a rule decorates).
		d.Headers = varyOnly
	}
	switch {
	case !hasOrigin:
		d.Reason = ReasonActualNoOrigin
		return
	case bp.state != bucketRules:
		d.Reason = ReasonActualNoMatch
		return
	}
	// The method is the Access-Control-Request-Method when the request carries one, and
	// requested headers count too; the request's real headers never do (§3).
	method := r.Method
	if hasACRM {
		method = r.RequestMethod
	}
	parseACRH(r, s)
	i := bp.match(r.Origin, method, s)
	if i < 0 {
		d.Reason = ReasonActualNoMatch
		return
	}
	d.Outcome, d.Reason, d.Rule, d.HeaderSet = Decorate, ReasonAllowed, i, bp.rules[i].fixed
	d.Headers = decorateHeaders(s, &bp.rules[i], r.Origin)
}

// ambiguous decides a request whose bucket is uncertain (a): no CORS at all. A preflight gets
// S3's 403 for a CORS request no rule allows, naming the requested method (OPTIONS when
// none) and OBJECT when s3cors's own reading names a key; an actual request is forwarded
// with the store's Access-Control-* headers stripped whatever upstreamCORSHeaders says, as
// nothing the store sends can be checked against a bucket. Bucket and Key stay empty.
func (p *Policy) ambiguous(r *Request, d *Decision, a Ambiguity, object bool) {
	d.Ambiguity = a
	if r.Method != "OPTIONS" {
		d.Outcome, d.Reason, d.StripUpstream = Forward, ReasonActualAmbiguous, true
		return
	}
	method := "OPTIONS"
	if r.HasRequestMethod && r.RequestMethod != "" {
		method = r.RequestMethod
	}
	d.Outcome, d.Reason = Reply, ReasonAmbiguous
	replyError(d, rand.Uint64(), &errNotAllowed, method, object)
}

// varyOnly is what a Forward response of a bucket with rules gets under "vary": "always".
var varyOnly = []Header{{Name: HeaderVary, Value: VaryValue}}

// decorateHeaders returns the CORS headers of a decorated response: cr's template, with the
// echoed origin in s.headers, or the template itself (shared, as Headers may be) when the
// rule allows "*" and there is nothing to fill in.
func decorateHeaders(s *decisionScratch, cr *compiledRule, origin string) []Header {
	if cr.anyOrigin {
		return cr.tmpl.actual
	}
	h := s.headersFrom(cr.tmpl.actual)
	h[0].Value = origin
	return h
}

func (p *Policy) preflight(r *Request, d *Decision, bp *bucketPolicy, hasOrigin, hasACRM bool) {
	s := &d.scratch
	d.Outcome = Reply
	method := "OPTIONS"
	if hasACRM {
		method = r.RequestMethod
	}
	switch {
	case !hasOrigin:
		d.Reason = ReasonNoOrigin
		replyError(d, rand.Uint64(), &errNoOrigin, "", false)
		return
	case bp.state == bucketMissing:
		d.Reason = ReasonBucketNotFound
		replyError(d, rand.Uint64(), &errBucketNotFound, method, false)
		return
	case bp.state == bucketNoCORS:
		d.Reason = ReasonNotEnabled
		replyError(d, rand.Uint64(), &errNotEnabled, method, false)
		return
	case !hasACRM:
		d.Reason = ReasonMissingRequestMethod
		replyError(d, rand.Uint64(), &errMissingRequestMethod, "", false)
		return
	}
	parseACRH(r, s)
	i := bp.match(r.Origin, r.RequestMethod, s)
	if i < 0 {
		d.Reason = ReasonNotAllowed
		replyError(d, rand.Uint64(), &errNotAllowed, method, d.Key != "")
		return
	}
	d.Reason, d.Rule, d.HeaderSet, d.Status = ReasonAllowed, i, bp.rules[i].fixed, 200
	fillIDs(s, rand.Uint64())
	d.Headers = preflightHeaders(s, &bp.rules[i], r.Origin)
}

// preflightHeaders fills s.headers with an allowed preflight's headers from cr's template:
// the ids already in s, the echoed origin unless the rule allows "*", and the requested
// names when there are any.
func preflightHeaders(s *decisionScratch, cr *compiledRule, origin string) []Header {
	var h []Header
	if len(s.names) > 0 {
		h = s.headersFrom(cr.tmpl.preflight)
		h[slotAllowHeaders].Value = unsafe.String(&s.acrh[0], len(s.acrh))
	} else {
		h = s.headersFrom(cr.tmpl.preflightNoAllowHeaders)
	}
	h[0].Value = unsafe.String(&s.hostID[0], len(s.hostID))
	h[1].Value = unsafe.String(&s.requestID[0], len(s.requestID))
	if !cr.anyOrigin {
		h[slotAllowOrigin].Value = origin
	}
	return h
}

// msgNotAllowed is S3's text, "evalution" included.
const msgNotAllowed = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."

// headerTemplate is a matched rule's whole header list, built once per distinct rule answer
// (rules with equal values share one): a decision copies it and fills in the ids, the echoed
// Allow-Origin and Allow-Headers.
type headerTemplate struct {
	preflight               []Header // x-amz-id-2, x-amz-request-id, the CORS headers with Allow-Headers, Content-Length
	preflightNoAllowHeaders []Header // the same without Allow-Headers
	actual                  []Header // the CORS headers of a decorated response
}

// Where a preflight template leaves a value to fill in; Allow-Origin is first in actual.
const (
	slotAllowOrigin  = 2
	slotAllowHeaders = 4
)

func newHeaderTemplate(cr *compiledRule) *headerTemplate {
	ids := []Header{{HeaderID2, ""}, {HeaderRequestID, ""}}
	pre := appendCORSHeaders(slices.Clone(ids), cr, "", "-")
	preNo := appendCORSHeaders(slices.Clone(ids), cr, "", "")
	pre = append(pre, Header{HeaderContentLength, "0"})
	preNo = append(preNo, Header{HeaderContentLength, "0"})
	actual := appendCORSHeaders(nil, cr, "", "")
	return &headerTemplate{pre[:len(pre):len(pre)], preNo[:len(preNo):len(preNo)], actual[:len(actual):len(actual)]}
}

// appendCORSHeaders appends a matched rule's CORS headers in S3's order (§2.6).
// allowHeaders is "" on actual requests, which get no Access-Control-Allow-Headers.
func appendCORSHeaders(h []Header, cr *compiledRule, origin, allowHeaders string) []Header {
	if cr.anyOrigin {
		h = append(h, Header{HeaderAllowOrigin, "*"})
	} else {
		h = append(h, Header{HeaderAllowOrigin, origin})
	}
	h = append(h, Header{HeaderAllowMethods, cr.allowMethod})
	if allowHeaders != "" {
		h = append(h, Header{HeaderAllowHeaders, allowHeaders})
	}
	if cr.expose != "" {
		h = append(h, Header{HeaderExposeHeaders, cr.expose})
	}
	if cr.maxAge != "" {
		h = append(h, Header{HeaderMaxAge, cr.maxAge})
	}
	if !cr.anyOrigin {
		h = append(h, Header{HeaderAllowCredentials, "true"})
	}
	return append(h, Header{HeaderVary, VaryValue})
}

// parseACRH splits Access-Control-Request-Headers on commas, trims spaces and tabs, drops
// empty items and lower-cases the rest into s.acrh joined by ", " (the Allow-Headers echo).
// It goes eight bytes at a time (swar.go), so a hostile value of 1 KB of separators is 128
// steps, and a name is copied, lower-cased and checked for CR, LF and NUL a word at a time.
func parseACRH(r *Request, s *decisionScratch) {
	s.acrh, s.names, s.badACRH = s.acrh[:0], s.names[:0], false
	if !r.HasRequestHeaders {
		return
	}
	v := bytesOf(r.RequestHeaders)
	n := len(v)
	var unsafeSeen uint64
	for i := skipSeparators(v, 0); i < n; {
		out := s.acrh
		if len(s.names) > 0 {
			out = append(out, ',', ' ')
		}
		start := len(out)
		// The copy stores whole words and nameKey reads two from a name's start: room for
		// the rest of v and two words past it.
		if cap(out)-start < n-i+16 {
			out = slices.Grow(out, n-i+16)
		}
		buf := out[:cap(out)]
		j := start
		for {
			w, t := wordAt(v, i)
			k := t
			if comma := zeroBytes(w^','*lsb) & below(t); comma != 0 {
				k = firstByte(comma)
			}
			binary.LittleEndian.PutUint64(buf[j:j+8], lowerWord(w))
			unsafeSeen |= controlBytes(w) & below(k)
			i, j = i+k, j+k
			if k < 8 {
				break // a comma, or the end of v
			}
		}
		for buf[j-1] == ' ' || buf[j-1] == '\t' {
			j--
		}
		s.acrh = buf[:j]
		s.names = append(s.names, span{int32(start), int32(j)})
		if i < n && v[i] == ',' && i+1 < n && !isSeparator(v[i+1]) {
			i++ // one comma, then a name: the usual case, without the call
		} else {
			i = skipSeparators(v, i)
		}
	}
	// Control bytes are rare in names (a tab before a comma): only then is the exact test run.
	s.badACRH = unsafeSeen != 0 && hasUnsafeByte(r.RequestHeaders)
}

// separatorMasks are ' ', ',' and '\t' in every byte, then low7 (skipSeparators).
var separatorMasks = [4]uint64{' ' * lsb, ',' * lsb, '\t' * lsb, low7}

func isSeparator(c byte) bool { return c == ',' || c == ' ' || c == '\t' }

// skipSeparators returns the offset of the first byte at or after i that is not ',', ' ' or
// '\t', or len(v).
func skipSeparators(v []byte, i int) int {
	n := len(v)
	if i < n && !isSeparator(v[i]) {
		return i // a name starts right here: the usual case after one comma
	}
	// 32 bytes a step while all are separators; the word loop below finds where they end.
	// The masks are read from a variable, not written as constants, so that they stay in
	// registers across the loop instead of being rematerialised for every word.
	if i+32 <= n {
		m := &separatorMasks
		sp, cm, tb, l7 := m[0], m[1], m[2], m[3]
		non := func(x uint64) uint64 {
			h := x & l7
			return (h^sp+l7)&(h^cm+l7)&(h^tb+l7) | x
		}
		for ; i+32 <= n; i += 32 {
			w := v[i : i+32 : i+32]
			if (non(load64(w[0:8]))|non(load64(w[8:16]))|non(load64(w[16:24]))|non(load64(w[24:32])))&msb != 0 {
				break
			}
		}
	}
	for i < n {
		w, t := wordAt(v, i)
		if m := nonSeparators(w) & below(t); m != 0 {
			return i + firstByte(m)
		}
		i += t
	}
	return n
}

// methodIndex is the bit position of methodBit(m), or -1.
func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "PUT":
		return 1
	case "HEAD":
		return 2
	case "POST":
		return 3
	case "DELETE":
		return 4
	}
	return -1
}

// unsafeOrigin reports an Origin that must never be echoed: CR, LF or NUL would split or
// truncate the response header. Such an origin matches only AllowedOrigin "*", whose answer
// is "*" and echoes nothing.
func unsafeOrigin(o string) bool { return hasUnsafeByte(o) }

// match returns the index of the first rule (document order) that allows origin, method
// and every requested header, or -1 (§2.3).
func (bp *compiledCORS) match(origin, method string, s *decisionScratch) int {
	mi := methodIndex(method)
	if mi < 0 || s.badACRH {
		return -1
	}
	cand := bp.byMethod[mi]
	var exact ruleSet
	indexed := bp.exact != nil
	switch {
	case indexed:
		exact = bp.exact[origin]
		cand = cand.and(exact.or(bp.wildCandidates(origin)))
	case bp.wildBySuffix != nil:
		cand = cand.and(bp.withExact.or(bp.wildCandidates(origin)))
	}
	// An origin holding CR, LF or NUL may match only AllowedOrigin "*" (unsafeOrigin). The
	// scan for those bytes is put off until a rule matches the origin by a pattern (or by a
	// configured origin that itself holds them): an origin equal to a clean configured one is
	// clean, and "*" takes any. Every "*" rule is a candidate above, so skipping the others
	// once the origin is found unsafe gives what scanning the "*" rules alone would.
	checked, bad := false, false
	for i := cand.next(0); i >= 0; i = cand.next(i + 1) {
		cr := &bp.rules[i]
		switch cr.originMatches(origin, indexed, exact.has(i)) {
		case originNoMatch:
			continue
		case originMatchUnchecked:
			if !checked {
				checked, bad = true, unsafeOrigin(origin)
			}
			if bad {
				continue
			}
		}
		if cr.allowsHeaders(s) < 0 {
			return i
		}
	}
	return -1
}

// How an origin matched a rule.
const (
	originNoMatch        = iota
	originMatchClean     // AllowedOrigin "*", or equal to a configured origin without CR, LF or NUL
	originMatchUnchecked // by a pattern, or equal to a configured origin holding CR, LF or NUL
)

func (cr *compiledRule) originMatches(origin string, indexed, inExact bool) int {
	if cr.anyOrigin {
		return originMatchClean
	}
	exact := inExact
	if !indexed {
		for _, o := range cr.origins {
			if len(o) == len(origin) && o == origin {
				exact = true
				break
			}
		}
	}
	if exact {
		if cr.unsafeOrigins {
			return originMatchUnchecked
		}
		return originMatchClean
	}
	for _, w := range cr.wild {
		if w.match(origin) {
			return originMatchUnchecked
		}
	}
	return originNoMatch
}

// allowsHeaders returns -1 when every requested name matches an AllowedHeader (case-
// insensitively, one-"*" patterns allowed), else the index of the first name that fails.
func (cr *compiledRule) allowsHeaders(s *decisionScratch) int {
	if cr.anyHeader {
		return -1
	}
	for n := range s.names {
		if cr.noHeaders {
			return n
		}
		if !cr.allowsHeader(s, n) {
			return n
		}
	}
	return -1
}

func (cr *compiledRule) allowsHeader(s *decisionScratch, n int) bool {
	sp := s.names[n]
	if cr.headerSet == nil && sp.end-sp.start <= 16 {
		l := int(sp.end - sp.start)
		w0, w1 := s.nameKey(n)
		for _, k := range cr.headerKeys {
			if k.w0 == w0 && k.w1 == w1 && k.n == l {
				return true
			}
		}
		if len(cr.headerWild) == 0 {
			return false
		}
	}
	name := s.name(n)
	if cr.headerSet != nil {
		if _, ok := cr.headerSet[name]; ok {
			return true
		}
	} else if len(name) > 16 {
		for _, h := range cr.headers {
			if h == name {
				return true
			}
		}
	}
	for _, w := range cr.headerWild {
		if w.match(name) {
			return true
		}
	}
	return false
}
