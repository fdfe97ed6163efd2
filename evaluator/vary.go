package evaluator

import "strings"

var varyNames = [...]string{"Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method"}

// MergeVary returns S3's Vary value merged with the upstream's Vary values: the upstream's
// names first, in their order, then S3's names that were missing, compared case-insensitively,
// joined by ", ". A "*" from upstream wins alone. With no upstream Vary it returns VaryValue
// without allocating.
//
//	MergeVary([]string{"Accept-Encoding"}) // "Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
func MergeVary(upstream []string) string {
	var names []string
	for _, v := range upstream {
		for _, n := range strings.Split(v, ",") {
			n = strings.Trim(n, " \t")
			if n == "" {
				continue
			}
			if n == "*" {
				return "*"
			}
			if !containsFold(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return VaryValue
	}
	for _, n := range varyNames {
		if !containsFold(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

func containsFold(names []string, n string) bool {
	for _, x := range names {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
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
