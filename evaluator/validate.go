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

// The value checks below are PutBucketCors's (s3-cors-semantics.md §1.3); both parsers and
// Compile (for a Config built in code) run them on every value, in document order.

func checkID(ps *problems, path, id string) {
	if n := utf8.RuneCountInString(id); n > maxIDLen {
		ps.malformed(path, "ID is "+strconv.Itoa(n)+" characters long; S3 allows at most 255")
	}
}

func checkOrigin(ps *problems, path, v string) {
	if strings.Count(v, "*") > 1 {
		ps.add(path, CodeInvalidRequest, `AllowedOrigin "`+v+`" can not have more than one wildcard.`, "")
	}
}

func checkMethod(ps *problems, path, v string) {
	if methodBit(v) == 0 {
		ps.add(path, CodeInvalidRequest, msgBadMethodPrefix+v, "")
	}
}

func checkAllowedHeader(ps *problems, path, v string) {
	if strings.Count(v, "*") > 1 {
		ps.add(path, CodeInvalidRequest, `AllowedHeader "`+v+`" can not have more than one wildcard.`, "")
	}
}

func checkExposeHeader(ps *problems, path, v string) {
	if strings.Contains(v, "*") {
		ps.add(path, CodeInvalidRequest, `ExposeHeader "`+v+`" contains wildcard. We currently do not support wildcard for ExposeHeader.`, "")
		return
	}
	// S3 refuses a space (s3-cors-semantics.md §1.3); any whitespace or control byte would
	// also break the Access-Control-Expose-Headers line it is sent in.
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			ps.add(path, CodeInvalidRequest, `ExposeHeader "`+v+`" contains an invalid character.`, "whitespace and control characters cannot appear in a header name")
			return
		}
	}
}

func checkMaxAge(ps *problems, path string, v int64) {
	if v < 0 || v > maxMaxAge {
		ps.malformed(path, "MaxAgeSeconds must be an integer from 0 to 2147483647, not "+strconv.FormatInt(v, 10))
	}
}

// checkXMLText reports a string that an XML document cannot carry: S3 receives every
// configuration as XML, so such a value could never reach it (and could not round-trip).
func checkXMLText(ps *problems, path, v string) bool {
	for i, r := range v {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size == 1 {
				ps.malformed(path, "value is not valid UTF-8")
				return false
			}
		}
		if !isXMLChar(r) {
			ps.malformed(path, "value contains the character "+strconv.QuoteRune(r)+", which XML cannot carry")
			return false
		}
	}
	return true
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
		ps.malformed(rulesPath, "a CORS configuration needs 1 to 100 rules; use null for a bucket without CORS")
		return
	}
	for i := range rules {
		r := &rules[i]
		rp := index(rulesPath, i)
		if i == maxRules {
			ps.malformed(rp, "S3 allows at most 100 CORS rules; this bucket has "+strconv.Itoa(len(rules)))
		}
		if r.ID != nil {
			if checkXMLText(ps, member(rp, "ID"), *r.ID) {
				checkID(ps, member(rp, "ID"), *r.ID)
			}
		}
		checkList(ps, member(rp, "AllowedOrigins"), r.AllowedOrigins, checkOrigin)
		checkList(ps, member(rp, "AllowedMethods"), r.AllowedMethods, checkMethod)
		checkList(ps, member(rp, "AllowedHeaders"), r.AllowedHeaders, checkAllowedHeader)
		checkList(ps, member(rp, "ExposeHeaders"), r.ExposeHeaders, checkExposeHeader)
		if r.MaxAgeSeconds != nil {
			checkMaxAge(ps, member(rp, "MaxAgeSeconds"), *r.MaxAgeSeconds)
		}
		checkRequired(ps, rp, r, nil)
	}
	if len(rules) <= maxRules {
		if n := len(renderXML(rules)); n > maxDocBytes {
			ps.add(path, CodeMaxMessageLengthExceeded, msgTooBig, tooBigDetail(n))
		}
	}
}

func checkList(ps *problems, path string, vs []string, check func(*problems, string, string)) {
	for i, v := range vs {
		p := index(path, i)
		if checkXMLText(ps, p, v) {
			check(ps, p, v)
		}
	}
}

// checkRequired reports a rule without AllowedOrigin or AllowedMethod: S3's schema requires
// at least one of each. A member already reported (present with a wrong type, or misspelt)
// is not reported again as missing.
func checkRequired(ps *problems, rulePath string, r *Rule, reported map[string]bool) {
	if len(r.AllowedOrigins) == 0 && !reported["AllowedOrigins"] {
		ps.malformed(member(rulePath, "AllowedOrigins"), "a rule needs at least one AllowedOrigin")
	}
	if len(r.AllowedMethods) == 0 && !reported["AllowedMethods"] {
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
