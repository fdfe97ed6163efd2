package evaluator

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	topKeys        = []string{"buckets", "default", "unlistedBuckets", "addressing", "upstreamCORSHeaders", "vary"}
	addressingKeys = []string{"virtualHostSuffixes", "pathStyle"}
	bucketKeys     = []string{"CORSRules"}
	ruleKeys       = []string{"ID", "AllowedOrigins", "AllowedMethods", "AllowedHeaders", "ExposeHeaders", "MaxAgeSeconds"}
)

// ParseConfig parses and validates an s3cors configuration document (JSON, see the shared
// configuration contract). Every problem is reported at once as a *ValidationError, each with
// the path of the offending field, in document order. Unknown keys, wrong types and duplicate
// keys are errors; each bucket's rules are validated as PutBucketCors would validate them.
//
// Defaults: unlistedBuckets "not-enabled", addressing.pathStyle true, upstreamCORSHeaders
// "strip", vary "s3".
func ParseConfig(data []byte) (*Config, error) {
	return parseConfig(data, true)
}

// parseConfig is ParseConfig, reading buckets as the document is read (parseConfigJSON) when
// stream is set, from the whole tree (parseJSON) when not: tests hold the one to the other.
func parseConfig(data []byte, stream bool) (*Config, error) {
	if IsImage(data) {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: msgIsImage}}}
	}
	if err := checkEncoding(data); err != nil {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: err.Error()}}}
	}
	trimmed := bytes.TrimLeft(data, blanks)
	if len(trimmed) == 0 {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: msgEmpty}}}
	}
	if trimmed[0] == '<' {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: bareDocument(FormXML)}}}
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(byteOrderMark)) {
		// File loaders drop it (configfile.JSON); here it is in a configuration handed over
		// as written, and a JSON reader would only say "invalid character 'ï'".
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: msgByteOrderMark}}}
	}
	cfg := &Config{
		Buckets:             map[string]*BucketCORS{},
		UnlistedBuckets:     UnlistedNotEnabled,
		Addressing:          Addressing{PathStyle: true},
		UpstreamCORSHeaders: UpstreamStrip,
		Vary:                VaryS3,
	}
	// The buckets' problems, kept apart while the document is read and put in their place,
	// document order, when the loop below comes to "buckets".
	var streamed problems
	var root *jsonValue
	var err error
	if stream {
		root, err = parseConfigJSON(data, func(key string, v *jsonValue) { addBucket(&streamed, cfg, key, v) })
	} else {
		root, err = parseJSON(data)
	}
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: err.Error()}}}
	}
	if form, ok := bareForm(root); ok {
		return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: bareDocument(form)}}}
	}
	var ps problems
	if root.kind != jsonObject {
		ps.config("", "the configuration must be a JSON object, not "+describe(root))
		return nil, ps.err()
	}
	seen := map[string]bool{}
	for _, m := range root.members {
		path := keyPath("", m.key)
		if seen[m.key] {
			ps.config(path, "duplicate key "+strconv.Quote(m.key))
			continue
		}
		seen[m.key] = true
		switch m.key {
		case "buckets":
			if stream && m.val.kind == jsonObject { // read as the document was
				ps.list = append(ps.list, streamed.list...)
				if cfg.BucketOrder == nil {
					cfg.BucketOrder = []string{}
				}
				continue
			}
			parseBuckets(&ps, cfg, m.val)
		case "default":
			if m.val.kind == jsonNull {
				continue // "default": null is the same as no default
			}
			cfg.Default = parseBucketValue(&ps, fieldPath{base: "default", rule: -1}, m.val)
		case "unlistedBuckets":
			if s, ok := jsonEnum(&ps, path, m.val, string(UnlistedNotEnabled), string(UnlistedNotFound), string(UnlistedForward)); ok {
				cfg.UnlistedBuckets = Unlisted(s)
			}
		case "addressing":
			parseAddressing(&ps, &cfg.Addressing, m.val)
		case "upstreamCORSHeaders":
			if s, ok := jsonEnum(&ps, path, m.val, string(UpstreamStrip), string(UpstreamKeep)); ok {
				cfg.UpstreamCORSHeaders = UpstreamCORS(s)
			}
		case "vary":
			if s, ok := jsonEnum(&ps, path, m.val, string(VaryS3), string(VaryAlways)); ok {
				cfg.Vary = VaryMode(s)
			}
		default:
			ps.config(path, "unknown key "+strconv.Quote(m.key)+suggest(m.key, topKeys))
		}
	}
	if !seen["buckets"] {
		ps.config("buckets", `missing required key "buckets" (use {} when every bucket is served by "default" or "unlistedBuckets")`)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// blanks are what may stand before a document, or make it all: JSON's white space and the
// UTF-8 byte-order mark some editors write (file loaders drop it; the evaluator sees it when
// Envoy hands over a configuration as written).
const blanks = " \t\r\n" + byteOrderMark

const byteOrderMark = "\ufeff"

// msgByteOrderMark is the problem reported for a configuration that starts with a byte-order
// mark (RFC 8259 forbids adding one; ParseConfig does not guess what follows it).
const msgIsImage = "this is a compiled policy image, not a configuration document: load it with LoadImage (the filter and s3cors accept either)"

const msgByteOrderMark = "the configuration starts with a UTF-8 byte-order mark (bytes EF BB BF), which JSON does not allow: remove it"

// msgEmpty is the problem reported for a configuration that is empty, only blanks or only a
// byte-order mark, which a JSON reader calls "unexpected end of input" and YAML null: neither
// says what is wrong or what to write.
const msgEmpty = `the configuration is empty: an s3cors configuration is an object with at least "buckets", e.g. {"buckets": {}}`

// BareDocument reports whether doc, given where an s3cors configuration belongs, is instead
// one bucket's CORS document, the mistake a user pasting what S3 or the AWS CLI gave them is
// most likely to make. It returns the document's form and the problem ParseConfig reports for
// it, which names the form and says how to wrap the document under a bucket name; callers
// that know the file add its name and nothing else, so that every surface says the same.
//
// doc is read after leading blanks and a byte-order mark, as a file loader reads it
// (ParseConfig names a mark before JSON as the problem, but reads XML after one as this
// does). XML is a bucket document by its first byte; JSON is one when it is an array of rules
// (empty, or objects with a rule member such as AllowedOrigins), an object with "CORSRules"
// and no "buckets", or a string holding XML (what a YAML reader makes of an XML file).
// Anything else, including JSON that does not parse, yields ok false and an empty message.
func BareDocument(doc []byte) (form Form, message string, ok bool) {
	trimmed := bytes.TrimLeft(doc, blanks)
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return FormXML, bareDocument(FormXML), true
	}
	if len(trimmed) == 0 || checkEncoding(trimmed) != nil {
		return 0, "", false
	}
	// Buckets are not needed to tell; streamed, they cost no tree.
	root, err := parseConfigJSON(trimmed, func(string, *jsonValue) {})
	if err != nil {
		return 0, "", false
	}
	if form, ok = bareForm(root); !ok {
		return 0, "", false
	}
	return form, bareDocument(form), true
}

// bareForm reports a parsed document that is one bucket's CORS rather than an s3cors
// configuration (see BareDocument).
func bareForm(root *jsonValue) (Form, bool) {
	switch root.kind {
	case jsonArray:
		if rulesArray(root) {
			return FormConsoleJSON, true
		}
	case jsonString:
		if strings.HasPrefix(strings.TrimLeft(root.str, " \t\r\n"), "<") {
			return FormXML, true
		}
	case jsonObject:
		rules, buckets := false, false
		for _, m := range root.members {
			rules = rules || m.key == "CORSRules"
			buckets = buckets || m.key == "buckets"
		}
		if rules && !buckets {
			return FormAWSJSON, true
		}
	}
	return 0, false
}

// rulesArray reports an array that reads as the console's form: empty, or every element an
// object that is empty or has a member named (or misspelt, or XML-singular) as a rule member.
// Any other array, [{"buckets": {}}] say, is a configuration in the wrong brackets, better
// told that it must be an object.
func rulesArray(v *jsonValue) bool {
	for _, e := range v.members {
		if e.val.kind != jsonObject {
			return false
		}
		if len(e.val.members) == 0 {
			continue
		}
		rule := false
		for _, m := range e.val.members {
			if suggestTarget(m.key, ruleKeys) != "" {
				rule = true
				break
			}
		}
		if !rule {
			return false
		}
	}
	return true
}

// bareDocument is the problem reported for a bare bucket CORS document given where an s3cors
// configuration belongs; it says how to wrap it, in the document's own form. The form is
// named without a syntax ("AWS form", not "AWS JSON"): the document may have been YAML.
func bareDocument(f Form) string {
	var name, doc string
	switch f {
	case FormXML:
		name, doc = "S3 XML", `"<CORSConfiguration>...</CORSConfiguration>"`
	case FormConsoleJSON:
		name, doc = "S3 console form", "[...]"
	default:
		name, doc = "AWS form", `{"CORSRules": [...]}`
	}
	return "this is a bucket CORS document (" + name + "), not an s3cors configuration: put it under a bucket name, " +
		`{"buckets": {"NAME": ` + doc + "}}"
}

// ParseBucketCORS parses and validates a bare bucket CORS document: S3 XML (with or without
// the S3 namespace), AWS JSON ({"CORSRules": [...]}) or console JSON ([...]). The form is
// told by the first non-blank byte. Problem paths are relative, e.g.
// CORSRules[1].AllowedMethods[0] (console JSON: [1].AllowedMethods[0]).
func ParseBucketCORS(data []byte) (*BucketCORS, error) {
	var ps problems
	var b *BucketCORS
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '<' {
		b = parseXMLBucket(&ps, "", string(data))
	} else {
		if err := checkEncoding(data); err != nil {
			return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: err.Error()}}}
		}
		root, err := parseJSON(data)
		if err != nil {
			return nil, &ValidationError{Problems: []Problem{{Code: CodeInvalidConfiguration, Message: err.Error()}}}
		}
		if root.kind == jsonNull || root.kind == jsonString {
			ps.config("", `a bucket CORS document is {"CORSRules": [...]}, [...] or <CORSConfiguration> XML, not `+describe(root))
		} else {
			b = parseBucketValue(&ps, fieldPath{rule: -1}, root)
		}
	}
	for i := range ps.list {
		// Inside a configuration a bucket without CORS is written null; a bare document
		// has no such choice (S3's answer is DeleteBucketCors).
		if ps.list[i].Detail == detailNoRules {
			ps.list[i].Detail = detailNoRulesBare
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return b, nil
}

const (
	detailNoRules     = "a CORS configuration needs 1 to 100 rules; use null for a bucket without CORS"
	detailNoRulesBare = "a CORS configuration needs 1 to 100 rules; to remove a bucket's CORS, S3 has DeleteBucketCors"
)

// keyPath names an object member: identifier-like keys as .key, others as ["key"].
func keyPath(parent, key string) string {
	if isIdent(key) {
		return member(parent, key)
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// parseBuckets reads the "buckets" object from a whole tree.
func parseBuckets(ps *problems, cfg *Config, v *jsonValue) {
	if v.kind != jsonObject {
		ps.config("buckets", "must be an object keyed by bucket name, not "+describe(v))
		return
	}
	if cfg.BucketOrder == nil {
		cfg.BucketOrder = make([]string, 0, len(v.members))
	}
	for _, m := range v.members {
		addBucket(ps, cfg, m.key, m.val)
	}
}

// addBucket reads one member of the "buckets" object into cfg. It keeps nothing of v but its
// strings (parseConfigJSON reuses v's memory).
func addBucket(ps *problems, cfg *Config, name string, v *jsonValue) {
	path := fieldPath{base: name, bucket: true, rule: -1}
	if _, dup := cfg.Buckets[name]; dup {
		ps.config(path.String(), "duplicate bucket "+strconv.Quote(name))
		return
	}
	if name == "" {
		ps.config(path.String(), "a bucket name cannot be empty")
		return
	}
	if strings.ContainsAny(name, "/?#") || hasCTL(name) {
		ps.config(path.String(), "bucket name "+strconv.Quote(name)+` cannot contain "/", "?", "#" or control characters`)
		return
	}
	b := parseBucketValue(ps, path, v)
	if b == nil {
		b = &BucketCORS{} // keep the name taken so a duplicate is still reported
	}
	cfg.Buckets[name] = b
	cfg.BucketOrder = append(cfg.BucketOrder, name)
}

// fieldPath is where a value sits in the document, spelt out (String) only when a problem
// is reported there, so that a valid configuration of thousands of buckets builds no path
// strings. It reads base (or buckets["base"]), then .CORSRules, [rule] and .key when set.
type fieldPath struct {
	base   string // a path as written ("default", ""), or the bucket name when bucket is set
	bucket bool
	cors   bool   // the rules sit under .CORSRules (the AWS form)
	rule   int    // the rule's index, -1 for the bucket itself
	key    string // a rule's member, when inRule is set
	inRule bool
}

func (f fieldPath) String() string {
	s := f.base
	if f.bucket {
		s = bucketPath(s)
	}
	if f.cors {
		s = member(s, "CORSRules")
	}
	if f.rule >= 0 {
		s = index(s, f.rule)
	}
	if f.inRule {
		s = keyPath(s, f.key)
	}
	return s
}

// parseBucketValue reads one bucket's CORS in any of its forms: null, {"CORSRules": [...]},
// [...] or an XML string.
func parseBucketValue(ps *problems, path fieldPath, v *jsonValue) *BucketCORS {
	switch v.kind {
	case jsonNull:
		return &BucketCORS{Form: FormNone}
	case jsonString:
		return parseXMLBucket(ps, path.String(), v.str)
	case jsonArray:
		start := len(ps.list)
		b := &BucketCORS{Form: FormConsoleJSON, Rules: parseRules(ps, path, v)}
		checkSize(ps, path, start, b)
		return b
	case jsonObject:
		start := len(ps.list)
		b := &BucketCORS{Form: FormAWSJSON}
		seen, misspelt := false, false
		for _, m := range v.members {
			if m.key != "CORSRules" {
				ps.config(keyPath(path.String(), m.key), "unknown key "+strconv.Quote(m.key)+suggest(m.key, bucketKeys))
				misspelt = misspelt || suggestTarget(m.key, bucketKeys) != ""
				continue
			}
			if seen {
				ps.config(keyPath(path.String(), m.key), `duplicate key "CORSRules"`)
				continue
			}
			seen = true
			if m.val.kind != jsonArray {
				ps.config(keyPath(path.String(), m.key), "must be an array of rule objects, not "+describe(m.val))
				continue
			}
			mp := path
			mp.cors = true
			b.Rules = parseRules(ps, mp, m.val)
		}
		if !seen && !misspelt {
			ps.malformed(member(path.String(), "CORSRules"), `missing: the AWS form is {"CORSRules": [...]}`)
		}
		checkSize(ps, path, start, b)
		return b
	}
	ps.config(path.String(), `must be {"CORSRules": [...]}, an array of rules, an XML string or null, not `+describe(v))
	return nil
}

// checkSize reports a JSON-form bucket whose XML (what the AWS CLI would send) is over
// PutBucketCors's 64 KB, ahead of the bucket's other problems.
func checkSize(ps *problems, path fieldPath, start int, b *BucketCORS) {
	if len(b.Rules) == 0 || len(b.Rules) > maxRules {
		return
	}
	if n := xmlSize(b.Rules); n > maxDocBytes {
		p := Problem{Path: path.String(), Code: CodeMaxMessageLengthExceeded, Message: msgTooBig, Detail: tooBigDetail(n)}
		ps.list = append(ps.list, Problem{})
		copy(ps.list[start+1:], ps.list[start:])
		ps.list[start] = p
	}
}

func parseRules(ps *problems, path fieldPath, v *jsonValue) []Rule {
	if len(v.members) == 0 {
		ps.malformed(path.String(), detailNoRules)
		return nil
	}
	rules := make([]Rule, 0, len(v.members))
	for i, m := range v.members {
		e := m.val
		rp := path
		rp.rule = i
		if i == maxRules {
			ps.malformed(rp.String(), "S3 allows at most 100 CORS rules; this bucket has "+strconv.Itoa(len(v.members)))
		}
		if e.kind != jsonObject {
			ps.config(rp.String(), "a rule must be an object, not "+describe(e))
			continue
		}
		rules = append(rules, parseRule(ps, rp, e))
	}
	return rules
}

func parseRule(ps *problems, path fieldPath, v *jsonValue) Rule {
	var r Rule
	var reported memberSet // members with a problem of their own
	dup := duplicates(v.members)
	for i, m := range v.members {
		if dup[i] {
			ps.config(keyPath(path.String(), m.key), "duplicate key "+strconv.Quote(m.key))
			continue
		}
		mp := path
		mp.key, mp.inRule = m.key, true
		before := len(ps.list)
		switch m.key {
		case "ID":
			if m.val.kind != jsonString {
				ps.config(mp.String(), "must be a string, not "+describe(m.val))
				continue
			}
			id := m.val.str
			r.ID = &id
			if f, bad := xmlTextFault(id); bad {
				ps.fault(mp.String(), f)
			} else if f, bad := idFault(id); bad {
				ps.fault(mp.String(), f)
			}
		case "AllowedOrigins":
			r.AllowedOrigins = parseStrings(ps, mp, m.val, originFault)
		case "AllowedMethods":
			r.AllowedMethods = parseStrings(ps, mp, m.val, methodFault)
		case "AllowedHeaders":
			r.AllowedHeaders = parseStrings(ps, mp, m.val, allowedHeaderFault)
		case "ExposeHeaders":
			r.ExposeHeaders = parseStrings(ps, mp, m.val, exposeHeaderFault)
		case "MaxAgeSeconds":
			if m.val.kind != jsonNumber {
				ps.config(mp.String(), "must be an integer, not "+describe(m.val))
				continue
			}
			n, err := strconv.ParseInt(m.val.str, 10, 64)
			if err != nil {
				if isIntegerLiteral(m.val.str) { // out of int64 range
					ps.malformed(mp.String(), "MaxAgeSeconds must be an integer from 0 to 2147483647, not "+shownNumber(m.val.str))
				} else {
					ps.config(mp.String(), "must be an integer, not "+shownNumber(m.val.str))
				}
				continue
			}
			r.MaxAgeSeconds = &n
			if f, bad := maxAgeFault(n); bad {
				ps.fault(mp.String(), f)
			}
		default:
			ps.config(mp.String(), "unknown key "+strconv.Quote(m.key)+suggest(m.key, ruleKeys))
			reported.add(suggestTarget(m.key, ruleKeys))
		}
		if len(ps.list) > before {
			reported.add(m.key)
		}
	}
	if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
		checkRequired(ps, path.String(), &r, reported)
	}
	return r
}

// duplicates marks each member whose key appeared earlier in the object. Objects in a
// configuration are small, so a scan beats a map; large ones get a map.
func duplicates(members []jsonMember) []bool {
	dup := make([]bool, len(members))
	if len(members) <= 32 {
		for i := range members {
			for j := 0; j < i; j++ {
				if members[j].key == members[i].key {
					dup[i] = true
					break
				}
			}
		}
		return dup
	}
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		dup[i] = seen[m.key]
		seen[m.key] = true
	}
	return dup
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseStrings reads an array of strings, checking each value. An empty array is stored as
// nil: S3 keeps no empty lists, so GetBucketCors would not show one.
func parseStrings(ps *problems, path fieldPath, v *jsonValue, check valueCheck) []string {
	if v.kind == jsonString {
		ps.config(path.String(), "must be an array of strings, not a string (write ["+strconv.Quote(v.str)+"])")
		return nil
	}
	if v.kind != jsonArray {
		ps.config(path.String(), "must be an array of strings, not "+describe(v))
		return nil
	}
	if len(v.members) == 0 {
		return nil
	}
	out := make([]string, 0, len(v.members))
	for i, m := range v.members {
		e := m.val
		if e.kind != jsonString {
			ps.config(index(path.String(), i), "must be a string, not "+describe(e))
			continue
		}
		out = append(out, e.str)
		if f, bad := xmlTextFault(e.str); bad {
			ps.fault(index(path.String(), i), f)
		} else if f, bad := check(e.str); bad {
			ps.fault(index(path.String(), i), f)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func jsonEnum(ps *problems, path string, v *jsonValue, allowed ...string) (string, bool) {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	list := strings.Join(quoted, ", ")
	if v.kind != jsonString {
		ps.config(path, "must be one of "+list+", not "+describe(v))
		return "", false
	}
	for _, a := range allowed {
		if v.str == a {
			return a, true
		}
	}
	ps.config(path, strconv.Quote(v.str)+" is not one of "+list)
	return "", false
}

func parseAddressing(ps *problems, a *Addressing, v *jsonValue) {
	const path = "addressing"
	if v.kind != jsonObject {
		ps.config(path, "must be an object, not "+describe(v))
		return
	}
	seen := map[string]bool{}
	for _, m := range v.members {
		mp := keyPath(path, m.key)
		if seen[m.key] {
			ps.config(mp, "duplicate key "+strconv.Quote(m.key))
			continue
		}
		seen[m.key] = true
		switch m.key {
		case "virtualHostSuffixes":
			if m.val.kind != jsonArray {
				ps.config(mp, "must be an array of host name suffixes, not "+describe(m.val))
				continue
			}
			for i, em := range m.val.members {
				e := em.val
				ep := index(mp, i)
				if e.kind != jsonString {
					ps.config(ep, "must be a string, not "+describe(e))
					continue
				}
				if msg := checkSuffix(e.str); msg != "" {
					ps.config(ep, msg)
					continue
				}
				a.VirtualHostSuffixes = append(a.VirtualHostSuffixes, e.str)
			}
		case "pathStyle":
			if m.val.kind != jsonBool {
				ps.config(mp, "must be true or false, not "+describe(m.val))
				continue
			}
			a.PathStyle = m.val.boolean
		default:
			ps.config(mp, "unknown key "+strconv.Quote(m.key)+suggest(m.key, addressingKeys))
		}
	}
	if !a.PathStyle && len(a.VirtualHostSuffixes) == 0 && !hasProblemUnder(ps, path) {
		ps.config(path, "pathStyle is false and virtualHostSuffixes is empty, so no request could name a bucket")
	}
}

func hasProblemUnder(ps *problems, path string) bool {
	for _, p := range ps.list {
		if strings.HasPrefix(p.Path, path) {
			return true
		}
	}
	return false
}

// checkSuffix returns what is wrong with a virtual-host suffix, or "".
func checkSuffix(s string) string {
	switch {
	case s == "":
		return "a virtual-host suffix cannot be empty"
	case strings.HasPrefix(s, "."):
		return "virtual-host suffix " + strconv.Quote(s) + " must not start with a dot (write " + strconv.Quote(strings.TrimLeft(s, ".")) + ")"
	case strings.Contains(s, "://"):
		return "virtual-host suffix " + strconv.Quote(s) + " must be a host name, without a scheme"
	case strings.ContainsAny(s, ":/[]?#@ ") || hasCTL(s):
		return "virtual-host suffix " + strconv.Quote(s) + " must be a host name, without port, path or spaces"
	case strings.HasSuffix(s, "."):
		return "virtual-host suffix " + strconv.Quote(s) + " must not end with a dot (a trailing dot in Host is ignored anyway)"
	case strings.Contains(s, "*"):
		// A wildcard would validate and then never match, so every request would pass
		// through untouched: the suffix is compared as text, never as a pattern.
		hint := "list each suffix in full"
		if t, ok := strings.CutPrefix(s, "*."); ok && !strings.Contains(t, "*") {
			hint = "write " + strconv.Quote(t)
		}
		return "virtual-host suffix " + strconv.Quote(s) + ` cannot contain "*": a suffix is matched as "<bucket>.<suffix>", so it already covers every bucket (` + hint + ")"
	case strings.Contains(s, ".."):
		return "virtual-host suffix " + strconv.Quote(s) + " has an empty label (\"..\"), so no host name could end with it"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			return "virtual-host suffix " + strconv.Quote(s) + " must be written in ASCII: browsers send an internationalised host name in its xn-- (punycode) form"
		} else if !isHostByte(c) {
			return "virtual-host suffix " + strconv.Quote(s) + " cannot contain " + strconv.Quote(string(c)) + ": a host name has only letters, digits, \"-\", \"_\" and dots"
		}
	}
	return ""
}

// isHostByte reports a byte that may appear in a host name as proxies see it: letters,
// digits, '-', '.' and '_' (not allowed by RFC 1123, but used in practice and harmless to
// match).
func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// hasCTL reports whether s holds a byte that may not appear in an HTTP header value.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// maxShown bounds how much of a wrong-typed string a problem quotes: enough to recognise it,
// not a pasted document.
const maxShown = 48

// describe names a value of the wrong type for a problem message: its kind, and for a scalar
// its value too, so that "MaxAgeSeconds": "600" reads `not the string "600"`, not just
// `not a string`.
func describe(v *jsonValue) string {
	switch v.kind {
	case jsonString:
		s, cut := shorten(v.str)
		return "the string " + strconv.Quote(s) + cut
	case jsonNumber:
		return "the number " + shownNumber(v.str)
	case jsonBool:
		return "the boolean " + strconv.FormatBool(v.boolean)
	}
	return v.kind.String()
}

// shorten returns s cut to at most maxShown bytes, on a rune boundary, and "..." when it was
// cut ("" otherwise).
func shorten(s string) (string, string) {
	if len(s) <= maxShown {
		return s, ""
	}
	n := maxShown
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], "..."
}

// shownNumber is a number literal as a problem shows it: as written, a long one cut as a
// string is (a literal is ASCII, so any cut is on a rune boundary).
func shownNumber(lit string) string {
	s, cut := shorten(lit)
	return s + cut
}
