package evaluator

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// S3's error codes and messages for PutBucketCors (s3-cors-semantics.md §1.4), plus our own
// code for faults that S3 never sees (the s3cors document around the rules).
const (
	CodeInvalidConfiguration = "InvalidConfiguration"
	CodeInvalidRequest       = "InvalidRequest"
	CodeMalformedXML         = "MalformedXML"
	// CodeMaxMessageLengthExceeded is S3's code for a request body over its limit; s3cors
	// uses it for a bucket document over PutBucketCors's 64 KB (see RATIONALE.md).
	CodeMaxMessageLengthExceeded = "MaxMessageLengthExceeded"

	msgMalformedXML    = "The XML you provided was not well-formed or did not validate against our published schema"
	msgTooBig          = "Your request was too big."
	msgBadMethodPrefix = "Found unsupported HTTP method in CORS config. Unsupported method is "
)

// Limits PutBucketCors enforces.
const (
	maxRules    = 100
	maxDocBytes = 64 * 1024
	maxIDLen    = 255
	// maxMaxAge is the largest MaxAgeSeconds: the member is an xsd:int in S3's schema.
	maxMaxAge = 1<<31 - 1
)

// s3Namespace is the XML namespace of S3's documents.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// problems collects every fault of a document in the order it is found, which is document
// order because the parsers walk the input front to back.
type problems struct {
	list []Problem
}

func (ps *problems) add(path, code, msg, detail string) {
	ps.list = append(ps.list, Problem{Path: path, Code: code, Message: msg, Detail: detail})
}

func (ps *problems) config(path, msg string) {
	ps.add(path, CodeInvalidConfiguration, msg, "")
}

func (ps *problems) malformed(path, detail string) {
	ps.add(path, CodeMalformedXML, msgMalformedXML, detail)
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.list}
}

// member joins a field name onto a path: "" + "CORSRules" is "CORSRules",
// `buckets["a"]` + "CORSRules" is `buckets["a"].CORSRules`.
func member(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func bucketPath(name string) string {
	return "buckets[" + strconv.Quote(name) + "]"
}

// methodBit maps each of S3's five CORS methods to a bit; config order is kept elsewhere.
func methodBit(m string) uint8 {
	switch m {
	case "GET":
		return 1 << 0
	case "PUT":
		return 1 << 1
	case "HEAD":
		return 1 << 2
	case "POST":
		return 1 << 3
	case "DELETE":
		return 1 << 4
	}
	return 0
}

// fault is one problem before its path is known: paths are built only for values that are
// wrong, so a large valid configuration costs no path strings.
type fault struct {
	code, msg, detail string
}

func (ps *problems) fault(path string, f fault) {
	ps.add(path, f.code, f.msg, f.detail)
}

// valueCheck is one of PutBucketCors's value checks (s3-cors-semantics.md §1.3); both
// parsers and Compile (for a Config built in code) run them on every value, in document
// order.
type valueCheck func(v string) (fault, bool)

func malformedFault(detail string) fault {
	return fault{CodeMalformedXML, msgMalformedXML, detail}
}

func idFault(id string) (fault, bool) {
	if n := utf8.RuneCountInString(id); n > maxIDLen {
		return malformedFault("ID is " + strconv.Itoa(n) + " characters long; S3 allows at most 255"), true
	}
	return fault{}, false
}

func originFault(v string) (fault, bool) {
	if strings.Count(v, "*") > 1 {
		return fault{CodeInvalidRequest, `AllowedOrigin "` + v + `" can not have more than one wildcard.`, ""}, true
	}
	return fault{}, false
}

func methodFault(v string) (fault, bool) {
	if methodBit(v) == 0 {
		return fault{CodeInvalidRequest, msgBadMethodPrefix + v, ""}, true
	}
	return fault{}, false
}

func allowedHeaderFault(v string) (fault, bool) {
	if strings.Count(v, "*") > 1 {
		return fault{CodeInvalidRequest, `AllowedHeader "` + v + `" can not have more than one wildcard.`, ""}, true
	}
	return fault{}, false
}

func exposeHeaderFault(v string) (fault, bool) {
	if strings.IndexByte(v, '*') >= 0 {
		return fault{CodeInvalidRequest, `ExposeHeader "` + v + `" contains wildcard. We currently do not support wildcard for ExposeHeader.`, ""}, true
	}
	// S3 refuses a space (s3-cors-semantics.md §1.3); any whitespace or control byte would
	// also break the Access-Control-Expose-Headers line it is sent in.
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return fault{CodeInvalidRequest, `ExposeHeader "` + v + `" contains an invalid character.`, "whitespace and control characters cannot appear in a header name"}, true
		}
	}
	return fault{}, false
}

func maxAgeFault(v int64) (fault, bool) {
	if v < 0 || v > maxMaxAge {
		return malformedFault("MaxAgeSeconds must be an integer from 0 to 2147483647, not " + strconv.FormatInt(v, 10)), true
	}
	return fault{}, false
}

// xmlTextFault reports a string that an XML document cannot carry: S3 receives every
// configuration as XML, so such a value could never reach it (and could not round-trip).
func xmlTextFault(v string) (fault, bool) {
	for i := 0; i < len(v); {
		c := v[i]
		if c >= 0x20 && c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			return malformedFault("value is not valid UTF-8"), true
		}
		if !isXMLChar(r) {
			return malformedFault("value contains the character " + strconv.QuoteRune(r) + ", which XML cannot carry"), true
		}
		i += size
	}
	return fault{}, false
}

// checkValue runs the XML-text check, then check, reporting at path.
func checkValue(ps *problems, path, v string, check valueCheck) {
	if f, bad := valueFault(v, check); bad {
		ps.fault(path, f)
	}
}

// valueFault is v's fault as an XML text and then under check.
func valueFault(v string, check valueCheck) (fault, bool) {
	if f, bad := xmlTextFault(v); bad {
		return f, true
	}
	return check(v)
}

// isXMLChar is the XML 1.0 Char production.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// checkRules validates a bucket's rules as they are held in memory. The parsers check values
// as they read them (so that problems come out in document order); this walk serves Compile,
// whose Config may have been built in code.
func checkRules(ps *problems, path string, form Form, rules []Rule) {
	rulesPath := member(path, "CORSRules")
	if form == FormConsoleJSON {
		rulesPath = path
	}
	if len(rules) == 0 {
		ps.malformed(rulesPath, detailNoRules)
		return
	}
	for i := range rules {
		r := &rules[i]
		rp := index(rulesPath, i)
		if i == maxRules {
			ps.malformed(rp, "S3 allows at most 100 CORS rules; this bucket has "+strconv.Itoa(len(rules)))
		}
		if r.ID != nil {
			checkValue(ps, member(rp, "ID"), *r.ID, idFault)
		}
		checkList(ps, member(rp, "AllowedOrigins"), r.AllowedOrigins, originFault)
		checkList(ps, member(rp, "AllowedMethods"), r.AllowedMethods, methodFault)
		checkList(ps, member(rp, "AllowedHeaders"), r.AllowedHeaders, allowedHeaderFault)
		checkList(ps, member(rp, "ExposeHeaders"), r.ExposeHeaders, exposeHeaderFault)
		if r.MaxAgeSeconds != nil {
			if f, bad := maxAgeFault(*r.MaxAgeSeconds); bad {
				ps.fault(member(rp, "MaxAgeSeconds"), f)
			}
		}
		checkRequired(ps, rp, r, 0)
	}
	if len(rules) <= maxRules {
		if n := xmlSize(rules); n > maxDocBytes {
			ps.add(path, CodeMaxMessageLengthExceeded, msgTooBig, tooBigDetail(n))
		}
	}
}

func checkList(ps *problems, path string, vs []string, check valueCheck) {
	for i, v := range vs {
		// The element's path is built only for a fault: a control plane re-checks every
		// value of a 10,000-bucket configuration on each change.
		if f, bad := valueFault(v, check); bad {
			ps.fault(index(path, i), f)
		}
	}
}

// memberSet is a set of the two required rule members.
type memberSet uint8

func (s *memberSet) add(name string) {
	switch name {
	case "AllowedOrigins":
		*s |= 1
	case "AllowedMethods":
		*s |= 2
	}
}

func (s memberSet) has(name string) bool {
	switch name {
	case "AllowedOrigins":
		return s&1 != 0
	case "AllowedMethods":
		return s&2 != 0
	}
	return false
}

// checkRequired reports a rule without AllowedOrigin or AllowedMethod: S3's schema requires
// at least one of each. A member already reported (present with a wrong type, or misspelt)
// is not reported again as missing.
func checkRequired(ps *problems, rulePath string, r *Rule, reported memberSet) {
	if len(r.AllowedOrigins) == 0 && !reported.has("AllowedOrigins") {
		ps.malformed(member(rulePath, "AllowedOrigins"), "a rule needs at least one AllowedOrigin")
	}
	if len(r.AllowedMethods) == 0 && !reported.has("AllowedMethods") {
		ps.malformed(member(rulePath, "AllowedMethods"), "a rule needs at least one AllowedMethod")
	}
}

func tooBigDetail(n int) string {
	return "the bucket's CORS document is " + strconv.Itoa(n) + " bytes as XML; PutBucketCors accepts at most 65536"
}

// cfnSpellings are CloudFormation's names for the AWS members (AWS::S3::Bucket CorsRule):
// close enough to be pasted by mistake, different enough that S3's API rejects them.
var cfnSpellings = map[string]string{
	"ExposedHeaders": "ExposeHeaders",
	"MaxAge":         "MaxAgeSeconds",
	"Id":             "ID",
	"CorsRules":      "CORSRules",
}

// xmlSingulars are the XML element names whose JSON member is the plural.
var xmlSingulars = map[string]bool{
	"AllowedOrigin": true, "AllowedMethod": true, "AllowedHeader": true, "ExposeHeader": true, "CORSRule": true,
}

// suggestTarget returns the known key an unknown key most likely means, or "".
func suggestTarget(key string, known []string) string {
	if k, ok := cfnSpellings[key]; ok && slices.Contains(known, k) {
		return k
	}
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// suggest returns a hint for an unknown key, " (did you mean ...?)", or "".
func suggest(key string, known []string) string {
	k := suggestTarget(key, known)
	switch {
	case k == "":
		return ""
	case cfnSpellings[key] == k:
		return ` (did you mean "` + k + `"? "` + key + `" is the CloudFormation spelling)`
	case xmlSingulars[key] && k == key+"s":
		return ` (did you mean "` + k + `"? JSON members are plural, XML elements singular)`
	}
	return ` (did you mean "` + k + `"?)`
}

// editDistance is the Levenshtein distance, bounded to short keys so a hostile key costs little.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
