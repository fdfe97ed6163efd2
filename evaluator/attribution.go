package evaluator

import "strings"

// Ambiguity says why the evaluator cannot be sure that the store serves a request from the
// bucket the evaluator reads in it. A request whose bucket is uncertain gets no CORS at all
// (ReasonAmbiguous, ReasonActualAmbiguous): granting the rules of the bucket s3cors reads
// would hand them to whatever bucket the store reads instead. RATIONALE.md ("Which requests
// get no CORS because their bucket is uncertain?") gives each case's reasoning.
type Ambiguity uint8

const (
	AmbiguityNone Ambiguity = iota
	// The authority is no DNS name or IP literal with an optional port: a byte no host name
	// holds (control, non-ASCII, "%", "@", space), an empty label, more than one trailing
	// dot, a port that is not digits.
	AmbiguityMalformedHost
	// A configured suffix occurs inside the host, not at its end, and a store that matches
	// suffixes anywhere ("<bucket>.<suffix>" followed by anything) reads another bucket:
	// beta.s3.local.evil.example, beta.s3.localhost.
	AmbiguitySuffixInHost
	// A Host header besides :authority names another bucket (or is malformed).
	AmbiguityHostMismatch
	// More than one Host or :authority; Envoy joins repeated values with ",".
	AmbiguityRepeatedHost
	// X-Forwarded-Host names another bucket (or is malformed): a store behind a proxy may
	// take the bucket from it.
	AmbiguityForwardedHost
	// A Forwarded header (RFC 7239) has a host= parameter naming another bucket (or
	// malformed), read by its grammar or by a parser that splits at every "," and ";"
	// regardless of quotes; or the grammar refuses the header and it holds "host" at all.
	AmbiguityForwarded
	// The target is not origin-form ("http://host/path"): a store may take the host from
	// the target or from Host.
	AmbiguityAbsoluteForm
	// The path holds a control or non-ASCII byte, a raw "#", or a "%" not followed by two
	// hex digits: stores differ in what they make of each.
	AmbiguityPathBytes
	// A "." or ".." segment, raw or encoded (%2e), with or without ";" parameters, between
	// "/", "\", %2F or %5C: a store that normalises the path may climb out of the bucket.
	AmbiguityDotSegment
	// The path begins with "//" (or "/\"): a store that merges slashes reads the next
	// segment as the bucket, and one that reads "//host/..." as a network-path reference
	// takes the host from the path.
	AmbiguityEmptySegment
	// A path-style bucket segment holding a byte no bucket name holds once decoded: %2F and
	// %5C (a store that decodes before splitting reads a shorter bucket), "\", ";", "%25".
	AmbiguityBucketSegment
)

var ambiguityNames = [...]string{
	AmbiguityNone:          "none",
	AmbiguityMalformedHost: "malformed_host",
	AmbiguitySuffixInHost:  "suffix_in_host",
	AmbiguityHostMismatch:  "host_mismatch",
	AmbiguityRepeatedHost:  "repeated_host",
	AmbiguityForwardedHost: "forwarded_host",
	AmbiguityForwarded:     "forwarded",
	AmbiguityAbsoluteForm:  "absolute_form",
	AmbiguityPathBytes:     "path_bytes",
	AmbiguityDotSegment:    "dot_segment",
	AmbiguityEmptySegment:  "empty_segment",
	AmbiguityBucketSegment: "bucket_segment",
}

// String returns the ambiguity's snake_case name, as used in log lines.
func (a Ambiguity) String() string {
	if int(a) < len(ambiguityNames) {
		return ambiguityNames[a]
	}
	return "unknown"
}

// reading is one way of finding the bucket in a request: what the evaluator reads, or what a
// store reading the request another way would.
type reading struct {
	bucket string
	ok     bool // a bucket request at all
}

func (a reading) differs(b reading) bool { return a.ok != b.ok || a.bucket != b.bucket }

// ambiguity applies the attribution rule to r, whose bucket the evaluator reads as own
// (vhost when from the host). Checks that need only r come first; those that read the
// request again another way run only when r carries what they look at.
func (p *Policy) ambiguity(r *Request, sc targetScan, own reading, vhost bool, s *decisionScratch) Ambiguity {
	if a := targetAmbiguity(r.Path, sc, vhost); a != AmbiguityNone {
		return a
	}
	if r.RepeatedHost {
		return AmbiguityRepeatedHost
	}
	host, a := splitHost(r.Authority)
	if a != AmbiguityNone {
		return a
	}
	if p.suffixInHost(host, r.Path, sc, own, s) {
		return AmbiguitySuffixInHost
	}
	if r.HasHost && r.Host != r.Authority && p.otherAuthority(r.Host, r.Path, sc, own, s) {
		return AmbiguityHostMismatch
	}
	if r.HasForwardedHost || r.HasForwarded {
		return p.forwardedAmbiguity(r, sc, own, s)
	}
	return AmbiguityNone
}

// forwardedAmbiguity applies the rule to X-Forwarded-Host and Forwarded, out of line: most
// requests carry neither.
func (p *Policy) forwardedAmbiguity(r *Request, sc targetScan, own reading, s *decisionScratch) Ambiguity {
	if r.HasForwardedHost {
		for v := range strings.SplitSeq(r.ForwardedHost, ",") {
			if p.otherAuthority(strings.Trim(v, " \t"), r.Path, sc, own, s) {
				return AmbiguityForwardedHost
			}
		}
	}
	if r.HasForwarded && p.forwardedOther(r.Forwarded, r.Path, sc, own, s) {
		return AmbiguityForwarded
	}
	return AmbiguityNone
}

// forwardedOther reports whether a store or an intermediary that takes the host from a
// Forwarded header (RFC 7239; repeated lines joined by ",") could read another bucket than
// own. Elements are separated by ",", pairs by ";" (spaces around either tolerated, empty
// ones skipped); a pair is a token, "=", and a token or a quoted string. Every host= value,
// its name in any case, is read as otherAuthority reads an X-Forwarded-Host, quoted ones
// raw: a backslash escape is no host byte, so parsers that unescape and parsers that do not
// cannot read two hosts. When the header holds a quoted string, it is read again as a parser
// blind to quotes would, splitting at every "," and ";". A header the grammar refuses is
// ambiguous if it holds "host" anywhere: no one knows what a lenient parser makes of it.
func (p *Policy) forwardedOther(v, path string, sc targetScan, own reading, s *decisionScratch) bool {
	quoted := false
	for i := 0; ; {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',' || v[i] == ';') {
			i++ // empty elements and pairs, and the separator after a pair
		}
		if i == len(v) {
			break
		}
		start := i
		for i < len(v) && isTokenByte(v[i]) {
			i++
		}
		name := v[start:i]
		if name == "" || i == len(v) || v[i] != '=' {
			return containsFoldASCII(v, "host")
		}
		i++
		var val string
		if i < len(v) && v[i] == '"' {
			end := quotedEnd(v, i)
			if end < 0 {
				return containsFoldASCII(v, "host")
			}
			quoted, val, i = true, v[i+1:end], end+1
		} else {
			start = i
			for i < len(v) && v[i] > ' ' && v[i] != 0x7f && v[i] != '"' && v[i] != ',' && v[i] != ';' {
				i++ // a token, or any other byte but a separator: splitHost judges a host
			}
			if i == start {
				return containsFoldASCII(v, "host")
			}
			val = v[start:i]
		}
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] != ',' && v[i] != ';' {
			return containsFoldASCII(v, "host")
		}
		if equalFoldASCII(name, "host") && p.otherAuthority(val, path, sc, own, s) {
			return true
		}
	}
	if !quoted {
		return false
	}
	// Blind to quotes: every piece between "," and ";" whose name is host.
	for len(v) > 0 {
		end := strings.IndexAny(v, ",;")
		if end < 0 {
			end = len(v)
		}
		name, val, ok := strings.Cut(v[:end], "=")
		if ok && equalFoldASCII(strings.Trim(name, " \t"), "host") {
			val = strings.Trim(val, " \t")
			val = strings.TrimPrefix(strings.TrimSuffix(val, `"`), `"`)
			if p.otherAuthority(val, path, sc, own, s) {
				return true
			}
		}
		v = v[min(end+1, len(v)):]
	}
	return false
}

// quotedEnd returns the index of the '"' closing the quoted string (RFC 9110) opening at
// v[i], or -1 if it is unterminated or holds a control byte other than HTAB.
func quotedEnd(v string, i int) int {
	for i++; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			i++
			c = v[i]
		} else if c == '"' {
			return i
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			return -1
		}
	}
	return -1
}

// isTokenByte reports a tchar of RFC 9110: letters, digits and !#$%&'*+-.^_`|~.
func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// containsFoldASCII reports whether s holds sub, a lower-case ASCII word, in any case.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// otherAuthority reports whether a store taking the bucket from authority a instead of
// :authority could read another bucket than own.
func (p *Policy) otherAuthority(a, path string, sc targetScan, own reading, s *decisionScratch) bool {
	host, bad := splitHost(a)
	if bad != AmbiguityNone {
		return true
	}
	return p.otherReading(a, path, sc, own, s) || p.suffixInHost(host, path, sc, own, s)
}

// maxOtherReadings bounds how many other readings of one request the attribution rule makes
// (one per X-Forwarded-Host or Forwarded host, Host, and suffix inside a host). Each decodes
// the path again, so a request packing thousands of hosts would cost thousands of decodes; a
// request needing more than this many is ambiguous. Legitimate chains have a few hops.
const maxOtherReadings = 32

// otherReading reports whether a store reading the bucket from authority a could name
// another bucket than own, or whether the request needs more readings than maxOtherReadings.
// What locate decodes is needed only for the comparison: s.addr is cut back after it, so
// hostile requests cannot grow the scratch (own's strings lie before the cut).
func (p *Policy) otherReading(a, path string, sc targetScan, own reading, s *decisionScratch) bool {
	if s.readings++; s.readings > maxOtherReadings {
		return true
	}
	mark := len(s.addr)
	bucket, _, _, _, found := p.locate(a, path, sc, s)
	differs := own.differs(reading{bucket, found})
	s.addr = s.addr[:mark]
	return differs
}

// suffixInHost reports whether a configured suffix starts a label of host but ends before
// host does, and a store that matches suffixes anywhere, reading host as if it ended with
// that suffix, would name another bucket than own. "site.s3.example.testx" with path
// "/site/k" names site either way, and stays unambiguous.
func (p *Policy) suffixInHost(host, path string, sc targetScan, own reading, s *decisionScratch) bool {
	for _, sfx := range p.suffixes {
		for i := 0; i+len(sfx) < len(host); i++ {
			if i > 0 && host[i-1] != '.' || !equalFoldASCII(host[i:i+len(sfx)], sfx) {
				continue
			}
			if p.otherReading(host[:i+len(sfx)], path, sc, own, s) {
				return true
			}
		}
	}
	return false
}

// splitHost returns an authority's host without its port and without one trailing dot, or
// why it is ambiguous: a "," (Envoy joins repeated Host lines with one) is
// AmbiguityRepeatedHost; anything but a DNS name (letters, digits, "-", "_", non-empty
// labels) or an IPv6 literal, with an optional ":port" of digits, is AmbiguityMalformedHost.
// An empty authority (HTTP/1.0 without Host) names no host and is not ambiguous.
func splitHost(a string) (string, Ambiguity) {
	if a == "" {
		return "", AmbiguityNone
	}
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 || !isPort(a[end+1:]) {
			return "", hostFault(a)
		}
		for i := 1; i < end; i++ {
			if c := a[i]; c != ':' && c != '.' && (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return "", hostFault(a)
			}
		}
		return a[:end+1], AmbiguityNone
	}
	// One pass checks the bytes and finds the last ":" and the empty labels.
	colon, prev := -1, byte('.')
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c >= 'A' && c <= 'Z', c == '_':
		case c == '.':
			if prev == '.' && colon < 0 {
				if i == len(a)-1 && i > 0 {
					break // one trailing dot
				}
				return "", hostFault(a)
			}
		case c == ':':
			if colon >= 0 {
				return "", hostFault(a)
			}
			colon = i
		default:
			return "", hostFault(a)
		}
		prev = c
	}
	host := a
	if colon >= 0 {
		if !isPort(a[colon:]) {
			return "", hostFault(a)
		}
		host = a[:colon]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if host == "" || host[len(host)-1] == '.' {
		return "", hostFault(a)
	}
	return host, AmbiguityNone
}

// hostFault tells a repeated Host (joined by ",") from any other malformed one.
func hostFault(a string) Ambiguity {
	if strings.IndexByte(a, ',') >= 0 {
		return AmbiguityRepeatedHost
	}
	return AmbiguityMalformedHost
}

// isPort reports "" or ":" followed by digits.
func isPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// targetAmbiguity applies the rule to a request target, given scanTarget's sc; vhost says
// the bucket came from the host, so the first path segment is part of the key, not the
// bucket. The query string is not read: no store takes the bucket from it.
func targetAmbiguity(target string, sc targetScan, vhost bool) Ambiguity {
	if target == "" || target == "*" {
		return AmbiguityNone // CONNECT has no path; "*" is OPTIONS's asterisk-form
	}
	if target[0] != '/' {
		return AmbiguityAbsoluteForm
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return AmbiguityEmptySegment
	}
	if !sc.odd {
		// No escape, "\\", ";", "#", control or non-ASCII byte, and no segment starting with
		// ".": only a path-style bucket segment's letters are left to check.
		end := sc.end
		if sc.slash >= 0 {
			end = sc.slash
		}
		if !vhost && !isBucketSegment(target[1:end]) {
			return AmbiguityBucketSegment
		}
		return AmbiguityNone
	}
	path := target
	if q := strings.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	start := 1      // the current segment's first byte
	bucketEnd := -1 // the first raw "/" after the leading one: the end of a path-style bucket
	dot := false    // a dot segment was seen; a bad byte after it still wins
	// One pass; a segment ends at "/", "\", %2F, %5C or the end.
	for i := 1; ; i++ {
		sep := 0
		if i < len(path) {
			switch c := path[i]; {
			case c < 0x20 || c >= 0x7f || c == '#':
				return AmbiguityPathBytes
			case c == '/' || c == '\\':
				sep = 1
			case c == '%':
				v, ok := escapeAt(path, i)
				if !ok {
					return AmbiguityPathBytes
				}
				if v == '/' || v == '\\' {
					sep = 3
				}
			}
			if sep == 0 {
				continue
			}
		}
		dot = dot || isDotSegment(path[start:i])
		if i == len(path) {
			break
		}
		if bucketEnd < 0 && path[i] == '/' {
			bucketEnd = i
		}
		start = i + sep
		i += sep - 1
	}
	if dot {
		return AmbiguityDotSegment
	}
	if bucketEnd < 0 {
		bucketEnd = len(path)
	}
	if !vhost && !isBucketSegment(path[1:bucketEnd]) {
		return AmbiguityBucketSegment
	}
	return AmbiguityNone
}

// escapeAt decodes the "%XX" at s[i].
func escapeAt(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, lo := unhex(s[i+1]), unhex(s[i+2])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return byte(hi<<4 | lo), true
}

// isDotSegment reports "." or ".." with each dot raw or %2e, before any ";" parameters
// (Tomcat-style servers read "..;x" as "..").
func isDotSegment(seg string) bool {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	dots := 0
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] == '.':
		case seg[i] == '%' && i+2 < len(seg) && seg[i+1] == '2' && (seg[i+2] == 'e' || seg[i+2] == 'E'):
			i += 2
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// isBucketSegment reports whether a raw path-style bucket segment, decoded, holds only
// bytes a bucket name can (letters, digits, ".", "-", "_"); the empty segment (the service
// root) is one too.
func isBucketSegment(seg string) bool {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			c, _ = escapeAt(seg, i)
			i += 2
		}
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
