package evaluator

import (
	"strconv"
	"strings"
)

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
