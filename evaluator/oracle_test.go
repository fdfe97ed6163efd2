package evaluator

// The implementations Evaluate used before the hot paths were rewritten for speed, kept as
// oracles: the differential fuzz tests (differential_test.go) hold the rewritten routines to
// byte-identical output against these on arbitrary input. Change them only to follow a
// deliberate change of behaviour, never to make a differential test pass.

import (
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// refScratch is the scratch memory the oracles write into.
type refScratch struct {
	headers   [12]Header
	addr      []byte
	acrh      []byte
	names     []span
	badACRH   bool
	body      []byte
	requestID [16]byte
	hostID    [76]byte
}

func (s *refScratch) name(i int) string {
	sp := s.names[i]
	return unsafe.String(&s.acrh[sp.start], int(sp.end-sp.start))
}

// refDecision is a Decision as the oracles produce it.
type refDecision struct {
	Outcome       Outcome
	Reason        Reason
	Bucket, Key   string
	Rule          int
	Status        int
	Headers       []Header
	Body          []byte
	StripUpstream bool
	Ambiguity     Ambiguity
	scratch       refScratch
}

// refEvaluate is Evaluate as it was, with the ids taken from seed.
func (p *Policy) refEvaluate(r *Request, d *refDecision, seed uint64) {
	d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule = PassThrough, ReasonNotBucket, "", "", -1
	d.Status, d.Headers, d.Body, d.StripUpstream, d.Ambiguity = 0, nil, nil, false, AmbiguityNone
	s := &d.scratch
	bucket, key, bp, ok := p.refLocate(r, s)
	if a := p.refAmbiguity(r); a != AmbiguityNone {
		d.Ambiguity, d.Bucket, d.Key = a, "", ""
		if r.Method != "OPTIONS" {
			d.Outcome, d.Reason, d.StripUpstream = Forward, ReasonActualAmbiguous, true
			return
		}
		d.Outcome, d.Reason = Reply, ReasonAmbiguous
		method, resource := "OPTIONS", "BUCKET"
		if r.HasRequestMethod && r.RequestMethod != "" {
			method = r.RequestMethod
		}
		if key != "" {
			resource = "OBJECT"
		}
		refReplyError(d, seed, 403, "AccessForbidden", msgNotAllowed, method, resource)
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
	hasOrigin := r.HasOrigin && r.Origin != ""
	hasACRM := r.HasRequestMethod && r.RequestMethod != ""
	if r.Method == "OPTIONS" {
		p.refPreflight(r, d, bp, hasOrigin, hasACRM, seed)
		return
	}
	d.Outcome, d.StripUpstream = Forward, p.strip
	// "vary": "always": a response of a bucket with rules that no rule decorates still varies.
	undecorated := func(reason Reason) {
		d.Reason = reason
		if p.vary && bp.state == bucketRules {
			d.Headers = append(s.headers[:0], Header{Name: "Vary", Value: VaryValue})
		}
	}
	switch {
	case !hasOrigin:
		undecorated(ReasonActualNoOrigin)
		return
	case bp.state != bucketRules:
		d.Reason = ReasonActualNoMatch
		return
	}
	method := r.Method
	if hasACRM {
		method = r.RequestMethod
	}
	refParseACRH(r, s)
	i := bp.refMatch(r.Origin, method, s)
	if i < 0 {
		undecorated(ReasonActualNoMatch)
		return
	}
	d.Outcome, d.Reason, d.Rule = Decorate, ReasonAllowed, i
	d.Headers = refAppendCORSHeaders(s.headers[:0], &bp.rules[i], r.Origin, "")
}

func (p *Policy) refPreflight(r *Request, d *refDecision, bp *bucketPolicy, hasOrigin, hasACRM bool, seed uint64) {
	s := &d.scratch
	d.Outcome = Reply
	method := "OPTIONS"
	if hasACRM {
		method = r.RequestMethod
	}
	switch {
	case !hasOrigin:
		d.Reason = ReasonNoOrigin
		refReplyError(d, seed, 400, "BadRequest", "Insufficient information. Origin request header needed.", "", "")
		return
	case bp.state == bucketMissing:
		d.Reason = ReasonBucketNotFound
		refReplyError(d, seed, 403, "AccessForbidden", "CORSResponse: Bucket not found", method, "BUCKET")
		return
	case bp.state == bucketNoCORS:
		d.Reason = ReasonNotEnabled
		refReplyError(d, seed, 403, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", method, "BUCKET")
		return
	case !hasACRM:
		d.Reason = ReasonMissingRequestMethod
		refReplyError(d, seed, 400, "BadRequest", "Invalid Access-Control-Request-Method: null", "", "")
		return
	}
	refParseACRH(r, s)
	i := bp.refMatch(r.Origin, r.RequestMethod, s)
	if i < 0 {
		d.Reason = ReasonNotAllowed
		resource := "BUCKET"
		if d.Key != "" {
			resource = "OBJECT"
		}
		refReplyError(d, seed, 403, "AccessForbidden", msgNotAllowed, method, resource)
		return
	}
	d.Reason, d.Rule, d.Status = ReasonAllowed, i, 200
	refFillIDs(&s.requestID, &s.hostID, seed)
	h := s.headers[:0]
	h = append(h,
		Header{HeaderID2, unsafe.String(&s.hostID[0], len(s.hostID))},
		Header{HeaderRequestID, unsafe.String(&s.requestID[0], len(s.requestID))})
	allowHeaders := ""
	if len(s.names) > 0 {
		allowHeaders = unsafe.String(&s.acrh[0], len(s.acrh))
	}
	h = refAppendCORSHeaders(h, &bp.rules[i], r.Origin, allowHeaders)
	d.Headers = append(h, Header{HeaderContentLength, "0"})
}

func refAppendCORSHeaders(h []Header, cr *compiledRule, origin, allowHeaders string) []Header {
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

func refParseACRH(r *Request, s *refScratch) {
	s.acrh, s.names, s.badACRH = s.acrh[:0], s.names[:0], false
	if !r.HasRequestHeaders {
		return
	}
	v := r.RequestHeaders
	for i := 0; ; {
		for i < len(v) && (v[i] == ',' || v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			return
		}
		a := i
		for i < len(v) && v[i] != ',' {
			i++
		}
		b := i
		for v[b-1] == ' ' || v[b-1] == '\t' {
			b--
		}
		if len(s.names) > 0 {
			s.acrh = append(s.acrh, ',', ' ')
		}
		start := len(s.acrh)
		s.acrh = append(s.acrh, v[a:b]...)
		name := s.acrh[start:]
		for k, c := range name {
			if c-'A' < 26 {
				name[k] = c + 'a' - 'A'
			} else if c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
				s.badACRH = true
			}
		}
		s.names = append(s.names, span{int32(start), int32(len(s.acrh))})
	}
}

func (bp *bucketPolicy) refMatch(origin, method string, s *refScratch) int {
	mi := methodIndex(method)
	if mi < 0 || s.badACRH {
		return -1
	}
	cand := bp.byMethod[mi]
	var exact ruleSet
	indexed := bp.exact != nil
	bad := refUnsafeOrigin(origin)
	switch {
	case bad:
		cand = cand.and(bp.anyOrigin)
	case indexed:
		exact = bp.exact[origin]
		cand = cand.and(exact.or(bp.wildCandidates(origin)))
	case bp.wildBySuffix != nil:
		cand = cand.and(bp.withExact.or(bp.wildCandidates(origin)))
	}
	for i := cand.next(0); i >= 0; i = cand.next(i + 1) {
		cr := &bp.rules[i]
		if !bad && !cr.refOriginMatches(origin, indexed, exact.has(i)) {
			continue
		}
		if cr.refAllowsHeaders(s) < 0 {
			return i
		}
	}
	return -1
}

func refUnsafeOrigin(o string) bool {
	for i := 0; i < len(o); i++ {
		if c := o[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
			return true
		}
	}
	return false
}

func (cr *compiledRule) refOriginMatches(origin string, indexed, inExact bool) bool {
	if cr.anyOrigin || inExact {
		return true
	}
	if !indexed {
		for _, o := range cr.origins {
			if o == origin {
				return true
			}
		}
	}
	for _, w := range cr.wild {
		if w.match(origin) {
			return true
		}
	}
	return false
}

func (cr *compiledRule) refAllowsHeaders(s *refScratch) int {
	if cr.anyHeader {
		return -1
	}
	for n := range s.names {
		if cr.noHeaders {
			return n
		}
		if !cr.refAllowsHeader(s.name(n)) {
			return n
		}
	}
	return -1
}

func (cr *compiledRule) refAllowsHeader(name string) bool {
	for _, h := range cr.headers {
		if h == name {
			return true
		}
	}
	for _, w := range cr.headerWild {
		if w.match(name) {
			return true
		}
	}
	return false
}

func refReplyError(d *refDecision, seed uint64, status int, code, message, method, resource string) {
	s := &d.scratch
	refFillIDs(&s.requestID, &s.hostID, seed)
	requestID := unsafe.String(&s.requestID[0], len(s.requestID))
	hostID := unsafe.String(&s.hostID[0], len(s.hostID))
	b := append(s.body[:0], xmlDeclaration+"<Error><Code>"...)
	b = append(b, code...)
	b = append(b, "</Code><Message>"...)
	b = append(b, message...)
	b = append(b, "</Message>"...)
	if status == 403 {
		b = append(b, "<Method>"...)
		b = refAppendEscaped(b, method)
		b = append(b, "</Method><ResourceType>"...)
		b = append(b, resource...)
		b = append(b, "</ResourceType>"...)
	}
	b = append(b, "<RequestId>"...)
	b = append(b, requestID...)
	b = append(b, "</RequestId><HostId>"...)
	b = append(b, hostID...)
	b = append(b, "</HostId></Error>"...)
	s.body = b
	d.Status, d.Body = status, b
	h := append(s.headers[:0],
		Header{HeaderRequestID, requestID},
		Header{HeaderID2, hostID},
		Header{HeaderContentType, "application/xml"})
	if status == 400 {
		h = append(h, Header{HeaderConnection, "close"})
	}
	d.Headers = h
}

func refAppendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '\'':
				b = append(b, "&apos;"...)
			case c < ' ' && c != '\t' || c == 0x7f:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return b
}

const refUpperHex = "0123456789ABCDEF"

// refFillIDs is the id formatting as it was: seed in upper-case hex, and the base64 of the
// 56 bytes SplitMix64 stretches it to.
func refFillIDs(requestID *[16]byte, hostID *[76]byte, seed uint64) {
	for i := 0; i < 8; i++ {
		b := byte(seed >> (56 - 8*i))
		requestID[2*i] = refUpperHex[b>>4]
		requestID[2*i+1] = refUpperHex[b&0xf]
	}
	var raw [56]byte
	x := seed
	for i := 0; i < len(raw); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(raw[i:], z^z>>31)
	}
	base64.StdEncoding.Encode(hostID[:], raw[:])
}

func (p *Policy) refLocate(r *Request, s *refScratch) (bucket, key string, bp *bucketPolicy, ok bool) {
	path := r.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	if path == "" || path[0] != '/' {
		return "", "", nil, false
	}
	s.addr = s.addr[:0]
	if len(p.suffixes) > 0 {
		if name, ok := p.refVirtualHost(r.Authority, s); ok {
			key, ok := refDecode(s, path[1:])
			if !ok {
				return "", "", nil, false
			}
			if bp := p.buckets[name]; bp != nil {
				return bp.name, key, bp, true
			}
			return name, key, nil, true
		}
	}
	if !p.path {
		return "", "", nil, false
	}
	seg, key, hasKey := strings.Cut(path[1:], "/")
	if seg == "" {
		return "", "", nil, false
	}
	name, ok := refDecode(s, seg)
	if !ok || name == "" {
		return "", "", nil, false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c < ' ' || c == 0x7f {
			return "", "", nil, false
		}
	}
	if hasKey {
		if key, ok = refDecode(s, key); !ok {
			return "", "", nil, false
		}
	}
	if bp := p.buckets[name]; bp != nil {
		return bp.name, key, bp, true
	}
	return name, key, nil, true
}

func (p *Policy) refVirtualHost(authority string, s *refScratch) (string, bool) {
	host := hostOnly(authority)
	if host == "" || p.isSuffix(host) {
		return "", false
	}
	for _, suffix := range p.suffixes {
		n := len(host) - len(suffix)
		if n < 2 || host[n-1] != '.' || !equalFoldASCII(host[n:], suffix) {
			continue
		}
		name := host[:n-1]
		if !isHostLabelText(name) {
			return "", false
		}
		if hasUpper(name) {
			s.addr = appendLower(s.addr, name)
			name = unsafe.String(unsafe.SliceData(s.addr), len(s.addr))
		}
		return name, true
	}
	return "", false
}

func refDecode(s *refScratch, v string) (string, bool) {
	pct := strings.IndexByte(v, '%')
	if pct < 0 {
		return v, true
	}
	start := len(s.addr)
	s.addr = append(s.addr, v[:pct]...)
	for i := pct; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			s.addr = append(s.addr, c)
			continue
		}
		if i+2 >= len(v) {
			return "", false
		}
		hi, lo := unhex(v[i+1]), unhex(v[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		s.addr = append(s.addr, byte(hi<<4|lo))
		i += 2
	}
	out := s.addr[start:]
	if len(out) == 0 {
		return "", true
	}
	return unsafe.String(&out[0], len(out)), true
}

// refAmbiguity is the attribution rule (attribution.go) written plainly, with the standard
// library's helpers and a fresh scratch for every reading.
func (p *Policy) refAmbiguity(r *Request) Ambiguity {
	read := func(authority string) (string, bool, bool) {
		var s refScratch
		b, _, _, ok := p.refLocate(&Request{Authority: authority, Path: r.Path}, &s)
		_, vhost := p.refVirtualHost(authority, &s)
		return strings.Clone(b), ok, vhost && strings.HasPrefix(r.Path, "/")
	}
	own, ownOK, vhost := read(r.Authority)
	if t := r.Path; t != "" && t != "*" {
		if t[0] != '/' {
			return AmbiguityAbsoluteForm
		}
		path, _, _ := strings.Cut(t, "?")
		if strings.HasPrefix(path, "//") || strings.HasPrefix(path, "/\\") {
			return AmbiguityEmptySegment
		}
		for i := 0; i < len(path); i++ {
			if c := path[i]; c < 0x20 || c >= 0x7f || c == '#' {
				return AmbiguityPathBytes
			}
			if path[i] == '%' && (i+2 >= len(path) || unhex(path[i+1]) < 0 || unhex(path[i+2]) < 0) {
				return AmbiguityPathBytes
			}
		}
		seps := strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", "/", "%5c", "/", "\\", "/")
		dots := strings.NewReplacer("%2e", ".", "%2E", ".")
		for _, seg := range strings.Split(seps.Replace(path[1:]), "/") {
			seg, _, _ = strings.Cut(seg, ";")
			if seg = dots.Replace(seg); seg == "." || seg == ".." {
				return AmbiguityDotSegment
			}
		}
		if !vhost {
			seg, _, _ := strings.Cut(path[1:], "/")
			name, err := url.PathUnescape(seg)
			if err != nil || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
				return AmbiguityBucketSegment
			}
		}
	}
	if r.RepeatedHost || strings.Contains(r.Authority, ",") {
		return AmbiguityRepeatedHost
	}
	differs := func(authority string) bool {
		b, ok, _ := read(authority)
		return b != own || ok != ownOK
	}
	inside := func(authority string) bool {
		m := refAuthority.FindStringSubmatch(authority)
		host := strings.TrimSuffix(m[1], ".")
		for _, sfx := range p.suffixes {
			for i := 0; i+len(sfx) < len(host); i++ {
				if (i == 0 || host[i-1] == '.') && strings.EqualFold(host[i:i+len(sfx)], sfx) && differs(host[:i+len(sfx)]) {
					return true
				}
			}
		}
		return false
	}
	if !refAuthority.MatchString(r.Authority) {
		return AmbiguityMalformedHost
	}
	if inside(r.Authority) {
		return AmbiguitySuffixInHost
	}
	other := func(a string) bool {
		return strings.Contains(a, ",") || !refAuthority.MatchString(a) || differs(a) || inside(a)
	}
	if r.HasHost && r.Host != r.Authority && other(r.Host) {
		return AmbiguityHostMismatch
	}
	if r.HasForwardedHost {
		for _, v := range strings.Split(r.ForwardedHost, ",") {
			if other(strings.Trim(v, " \t")) {
				return AmbiguityForwardedHost
			}
		}
	}
	if r.HasForwarded {
		hosts, ok := refForwardedHosts(r.Forwarded)
		if !ok && strings.Contains(strings.ToLower(r.Forwarded), "host") {
			return AmbiguityForwarded
		}
		for _, h := range hosts {
			if other(h) {
				return AmbiguityForwarded
			}
		}
	}
	return AmbiguityNone
}

// The Forwarded grammar as attribution.go reads it: pairs of a token, "=", and a quoted
// string or a run of bytes other than controls, space, '"', "," and ";", between separators
// "," or ";" with spaces and tabs around them.
var (
	refForwardedPair   = `([!#$%&'*+.^_` + "`" + `|~0-9A-Za-z-]+)=("(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"|[^\x00-\x20\x7f",;]+)`
	refForwardedHeader = regexp.MustCompile(`^[ \t]*(?:(?:` + refForwardedPair + `)?[ \t]*[,;][ \t]*)*(?:` + refForwardedPair + `)?[ \t]*$`)
	refForwardedPairs  = regexp.MustCompile(refForwardedPair)
)

// refForwardedHosts returns the host= values of a Forwarded header, read by the grammar
// (quoted values unquoted but not unescaped) and, if it has quotes, read again split at every
// "," and ";", or false if the grammar refuses it.
func refForwardedHosts(v string) ([]string, bool) {
	if !refForwardedHeader.MatchString(v) {
		return nil, false
	}
	var hosts []string
	for _, m := range refForwardedPairs.FindAllStringSubmatch(v, -1) {
		if strings.EqualFold(m[1], "host") {
			hosts = append(hosts, strings.TrimSuffix(strings.TrimPrefix(m[2], `"`), `"`))
		}
	}
	if strings.Contains(v, `"`) {
		for _, piece := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
			if name, val, ok := strings.Cut(piece, "="); ok && strings.EqualFold(strings.Trim(name, " \t"), "host") {
				val = strings.Trim(val, " \t")
				hosts = append(hosts, strings.TrimPrefix(strings.TrimSuffix(val, `"`), `"`))
			}
		}
	}
	return hosts, true
}

// refAuthority is an empty authority, or a DNS name (non-empty labels of letters, digits,
// "-" and "_", one trailing dot at most) or an IPv6 literal, with an optional port (":0"
// alone is no authority).
var refAuthority = regexp.MustCompile(`^(?:|(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?)(?::[0-9]*)?)$`)
