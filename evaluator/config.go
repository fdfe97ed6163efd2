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
