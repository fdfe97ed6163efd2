package evaluator

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

var varyNames = [...]string{"Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method"}

// MergeVary returns S3's Vary value merged with the upstream's Vary values: the upstream's
// names first, in their order, then S3's names that were missing, compared case-insensitively,
// joined by ", ". A "*" from upstream wins alone. With no upstream Vary it returns VaryValue
// without allocating.
//
//	MergeVary([]string{"Accept-Encoding"}) // "Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
func MergeVary(upstream []string) string {
	// A few names fit on the stack: merging into a short upstream Vary allocates the result
	// alone (a response's Vary rarely holds more).
	var small [varyScan + len(varyNames)]string
	names := small[:0]
	var seen map[string]bool // folded names, once there are too many to compare in turn
	have := func(n string) bool {
		if seen != nil {
			return seen[foldKey(n)]
		}
		return containsFold(names, n)
	}
	add := func(n string) {
		names = append(names, n)
		switch {
		case seen != nil:
			seen[foldKey(n)] = true
		case len(names) > varyScan:
			// An upstream may send thousands of names; comparing each with all before it
			// would cost their square.
			seen = make(map[string]bool, 2*len(names))
			for _, x := range names {
				seen[foldKey(x)] = true
			}
		}
	}
	for _, v := range upstream {
		for n := range strings.SplitSeq(v, ",") {
			n = strings.Trim(n, " \t")
			if n == "" {
				continue
			}
			if n == "*" {
				return "*"
			}
			if !have(n) {
				add(n)
			}
		}
	}
	if len(names) == 0 {
		return VaryValue
	}
	for _, n := range varyNames {
		if !have(n) {
			add(n)
		}
	}
	return strings.Join(names, ", ")
}

// varyScan is how many names MergeVary compares one by one before it keeps a set.
const varyScan = 16

func containsFold(names []string, n string) bool {
	for _, x := range names {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
}

// foldKey maps s to a key shared by exactly the strings strings.EqualFold says equal it:
// each rune becomes the smallest rune of its case-folding orbit.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest rune of an ASCII letter's orbit is its upper case (K before k and
		// the Kelvin sign).
		return strings.ToUpper(s)
	}
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// IsCORSHeader reports whether name is an Access-Control-* header (any case): the headers
// an upstream's own CORS handling sets, which StripUpstream removes.
func IsCORSHeader(name string) bool {
	const prefix = "access-control-"
	if len(name) < len(prefix) {
		return false
	}
	return equalFoldASCII(name[:len(prefix)], prefix)
}
