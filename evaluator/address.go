package evaluator

import (
	"strings"
	"unsafe"
)

// locate finds the bucket and key a request names (s3-cors-semantics.md §3 of the
// configuration contract): virtual-hosted style when the host is "<bucket>.<suffix>" for a
// configured suffix, otherwise path style when enabled. It returns ok=false for anything that
// is not a bucket request: no bucket in host or path, a target that is not origin-form, or a
// bad percent-encoding.
//
// The bucket segment and the key are percent-decoded after the path is split at the first
// "/", so "%2F" inside the key is part of the key and "%2F" in the first segment does not
// split it (such a bucket name is rejected, and the request is ambiguous: attribution.go).
// The query string is ignored.
//
// Returned strings may point into s (see Decision), which locate only appends to; bp is the
// bucket's policy when listed; vhost says the bucket came from the host.
//
// sc is scanTarget(path): one pass over the target finds the query or fragment, the bucket
// segment's end and whether anything is percent-encoded, instead of one IndexByte for each,
// and serves every reading of the same target.
func (p *Policy) locate(authority, path string, sc targetScan, s *decisionScratch) (bucket, key string, bp *bucketPolicy, vhost, ok bool) {
	if path == "" || path[0] != '/' {
		return "", "", nil, false, false
	}
	slash, pct := sc.slash, sc.pct
	path = path[:sc.end]
	if len(p.suffixes) > 0 {
		if name, ok := p.virtualHost(authority, s); ok {
			key := path[1:]
			if pct >= 0 {
				if key, ok = p.decode(s, key); !ok {
					return "", "", nil, true, false
				}
			}
			if bp := p.lookup(name, s); bp != nil {
				return bp.name, key, bp, true, true
			}
			return name, key, nil, true, true
		}
	}
	if !p.path {
		return "", "", nil, false, false
	}
	seg, key := path[1:], ""
	if slash >= 0 {
		seg, key = path[1:slash], path[slash+1:]
	}
	if seg == "" {
		return "", "", nil, false, false
	}
	name := seg
	if pct >= 0 {
		if pct < slash || slash < 0 {
			if name, ok = p.decode(s, seg); !ok || name == "" {
				return "", "", nil, false, false
			}
		}
		if slash >= 0 {
			if key, ok = p.decode(s, key); !ok {
				return "", "", nil, false, false
			}
		}
	}
	if bp := p.lookup(name, s); bp != nil {
		if !bp.pathName {
			return "", "", nil, false, false
		}
		// The configuration's own copy of the name outlives the scratch buffer.
		return bp.name, key, bp, false, true
	}
	if !isPathBucketName(name) {
		return "", "", nil, false, false
	}
	return name, key, nil, false, true
}

// isPathBucketName reports whether a decoded path segment can name a bucket: no "/" (from
// "%2F") and no control character.
func isPathBucketName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// lookup returns the listed bucket of that name, or nil. A policy of a few buckets compares
// names (length first) instead of hashing: cheaper than the map's hash below five.
func (p *Policy) lookup(name string, s *decisionScratch) *bucketPolicy {
	if p.img != nil {
		return p.img.lookup(name, s)
	}
	if p.few != nil {
		for _, bp := range p.few {
			if len(bp.name) == len(name) && bp.name == name {
				return bp
			}
		}
		return nil
	}
	return p.buckets[name]
}

// targetScan is what one pass over a request target finds (scanTarget).
type targetScan struct {
	end   int  // offset of the first '?' or '#', len(path) when none
	slash int  // offset of the first '/' after offset 0 and before end, -1 when none
	pct   int  // offset of the first '%' before end, -1 when none
	odd   bool // a byte the attribution rule must look at closely (targetAmbiguity)
}

// scanTarget scans a request target eight bytes at a time. odd is set by a '%', '#', ';',
// '\\', a control or non-ASCII byte, or a '.' starting a segment, before end.
//
// One test per word marks a superset of those characters: h|0x10 is 0x3f for '/' and '?'
// only, h|0x06 is 0x27 for '!', '#', '%' and the apostrophe only, then '.', ';', '\\', DEL,
// controls and non-ASCII bytes each. Marked bytes, a few per path (a '.' in "cat.jpg"), are
// then told apart one by one.
func scanTarget(path string) (sc targetScan) {
	b := bytesOf(path)
	sc.slash, sc.pct = -1, -1
	for i := 1; i < len(b); i += 8 {
		w, t := wordAt(b, i)
		h := w & low7
		fine := ((h | 0x10*lsb) ^ 0x3f*lsb + low7) & ((h | 0x06*lsb) ^ 0x27*lsb + low7) &
			(h ^ '.'*lsb + low7) & (h ^ ';'*lsb + low7) & (h ^ '\\'*lsb + low7) & (h ^ 0x7f*lsb + low7) &
			(h + (0x80-0x20)*lsb) &^ w
		for m := ^fine & msb & below(t); m != 0; m &= m - 1 {
			k := firstByte(m)
			switch c := byte(w >> (8 * uint(k))); c {
			case '/':
				if sc.slash < 0 {
					sc.slash = i + k
				}
			case '%':
				if sc.pct < 0 {
					sc.pct = i + k
				}
				sc.odd = true
			case '?':
				sc.end = i + k
				return sc
			case '#':
				sc.end, sc.odd = i+k, true
				return sc
			case '.':
				sc.odd = sc.odd || b[i+k-1] == '/'
			case '!', '\'':
			default: // ';', '\\', a control, DEL or non-ASCII byte
				sc.odd = true
			}
		}
	}
	sc.end = len(b)
	return sc
}

// virtualHost returns the bucket of a "<bucket>.<suffix>" authority, lower case (host names
// are case-insensitive, bucket names lower case); the longest suffix wins.
func (p *Policy) virtualHost(authority string, s *decisionScratch) (string, bool) {
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
			// Appended after what an earlier reading of this request left in s.addr.
			start := len(s.addr)
			s.addr = appendLower(s.addr, name)
			name = unsafe.String(&s.addr[start], len(name))
		}
		return name, true
	}
	return "", false
}

// isSuffix reports a host that is itself a configured suffix: the service endpoint, path
// style, even when a shorter suffix would read it as "<bucket>.<suffix>" (with suffixes
// "s3.example.test" and "example.test", host s3.example.test is not bucket "s3").
func (p *Policy) isSuffix(host string) bool {
	for _, s := range p.suffixes {
		if equalFoldASCII(host, s) {
			return true
		}
	}
	return false
}

// decode percent-decodes v; it returns v itself when there is nothing to decode.
func (p *Policy) decode(s *decisionScratch, v string) (string, bool) {
	pct := strings.IndexByte(v, '%')
	if pct < 0 {
		return v, true
	}
	// Only appends: strings already taken from s.addr keep their bytes even if it grows.
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

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// hostOnly strips the port and a trailing dot from an authority: "b.s3.local.:9000" is
// "b.s3.local", "[::1]:9000" is "[::1]". A user-info part is not valid in :authority and makes
// the host unusable.
func hostOnly(a string) string {
	if a == "" {
		return ""
	}
	if a[0] == '[' {
		for i := 1; i < len(a); i++ {
			if a[i] == ']' {
				return a[:i+1]
			}
		}
		return ""
	}
	for i := len(a) - 1; i >= 0; i-- {
		c := a[i]
		if c == ':' {
			a = a[:i]
			break
		}
		if c < '0' || c > '9' {
			break
		}
	}
	for i := 0; i < len(a); i++ {
		if a[i] == '@' || a[i] == ':' {
			return ""
		}
	}
	if len(a) > 0 && a[len(a)-1] == '.' {
		a = a[:len(a)-1]
	}
	return a
}

// isHostLabelText reports whether s can be the bucket part of a host name: letters,
// digits, dots, hyphens and (legacy buckets) underscores.
func isHostLabelText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			continue
		}
		return false
	}
	return true
}

func equalFoldASCII(a, lower string) bool {
	if len(a) != len(lower) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
