package evaluator

import (
	"fmt"
	"strconv"
)

// stringClass is what loading an image learns of one of its strings, once however many
// rules list it: its size as XML text and the members whose checks it passes.
type stringClass struct {
	size  uint32
	kinds uint8
}

// The members a string may be, as stringClass.kinds bits.
const (
	kindID = 1 << iota
	kindOrigin
	kindMethod
	kindHeader
	kindExpose
)

// memberChecks are PutBucketCors's value checks by kind, in kinds' bit order.
var memberChecks = [...]valueCheck{idFault, originFault, methodFault, allowedHeaderFault, exposeHeaderFault}

func classify(v string) stringClass {
	// Most values are printable ASCII with no "*", blank or character XML escapes: such a
	// value is its own size as XML and passes every check but the method's, in one pass.
	plain := len(v) <= maxIDLen
	for i := 0; i < len(v) && plain; i++ {
		c := v[i]
		plain = c > ' ' && c < 0x7f && c != '*' && c != '&' && c != '<' && c != '>'
	}
	if plain {
		c := stringClass{size: uint32(len(v)), kinds: kindID | kindOrigin | kindHeader | kindExpose}
		if methodBit(v) != 0 {
			c.kinds |= kindMethod
		}
		return c
	}
	return classifyByChecks(v)
}

// classifyByChecks is classify the long way: every check, as checkRules runs them.
func classifyByChecks(v string) stringClass {
	c := stringClass{size: uint32(min(xmlTextSize(v), maxDocBytes+1))}
	if _, bad := xmlTextFault(v); bad {
		return c
	}
	for k, check := range memberChecks {
		if _, bad := check(v); !bad {
			c.kinds |= 1 << k
		}
	}
	return c
}

// str returns string i of the image; loadImage has checked the table and every reference.
func (ix *imageIndex) str(i uint32) string { return ix.blob(ix.stringsOff, i) }

// compileSet compiles rule set i; loadImage has checked that it decodes and is valid.
func (ix *imageIndex) compileSet(i uint32, source string) *compiledCORS {
	d := setDecoder{ix: ix, s: ix.blob(ix.setsOff, i)}
	rules, fixed := d.rules()
	c := compileBucket(&BucketCORS{Form: FormAWSJSON, Rules: rules}, source, interner{})
	for j := range c.rules {
		c.rules[j].fixed = int(fixed[j])
		c.rules[j].tmpl = newHeaderTemplate(&c.rules[j])
	}
	return c
}

// checkSets checks every rule set: that it decodes, that its references are in range, and
// that its rules pass PutBucketCors's checks, from its strings' classes (one pass over each
// distinct string, none over a set's). A set that fails is decoded and given to checkRules,
// for the problems with their paths.
func (ix *imageIndex) checkSets(ps *problems) error {
	classes := make([]stringClass, ix.nStrings)
	for i := range classes {
		classes[i] = classify(ix.str(uint32(i)))
	}
	d := setDecoder{ix: ix}
	for i := uint32(0); i < ix.nSets; i++ {
		d.s, d.at, d.err = ix.blob(ix.setsOff, i), 0, ""
		valid := d.check(classes)
		if d.err != "" {
			return imageError("rule set %d: %s", i, d.err)
		}
		if !valid {
			d.at = 0
			rules, _ := d.rules()
			checkRules(ps, "ruleSets["+strconv.FormatUint(uint64(i), 10)+"]", FormAWSJSON, rules)
			return nil // the problems say enough; the caller reports them
		}
	}
	return nil
}

// checkFixed decodes every fixed header set and checks that no name or value holds a
// control character (they are sent as they are).
func (ix *imageIndex) checkFixed() error {
	for i := uint32(0); i < ix.nFixed; i++ {
		d := setDecoder{ix: ix, s: ix.blob(ix.fixedOff, i)}
		for _, h := range d.headers() {
			if hasCTL(h.Name) || hasCTL(h.Value) || h.Name == "" {
				return imageError("fixed header set %d: header %q: %q cannot be sent", i, h.Name, h.Value)
			}
		}
		if d.err != "" {
			return imageError("fixed header set %d: %s", i, d.err)
		}
	}
	return nil
}

// fixedHeaders decodes fixed header set n.
func (ix *imageIndex) fixedHeaders(n int) []Header {
	d := setDecoder{ix: ix, s: ix.blob(ix.fixedOff, uint32(n))}
	return d.headers()
}

// setDecoder reads a rule set or a fixed header set. A problem stops it and is kept in err;
// it never reads outside s, nor refers to a string the image does not have.
type setDecoder struct {
	ix  *imageIndex
	s   string
	at  int
	err string
	// Where the rules' ID and MaxAgeSeconds point.
	ids  []string
	ages []int64
}

func (d *setDecoder) uvarint(what string) uint64 {
	if d.at < len(d.s) && d.s[d.at] < 0x80 && d.err == "" {
		d.at++
		return uint64(d.s[d.at-1])
	}
	if d.err != "" {
		return 0
	}
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if d.at >= len(d.s) {
			d.err = what + " runs past the end of its " + strconv.Itoa(len(d.s)) + " bytes"
			return 0
		}
		c := d.s[d.at]
		d.at++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.err = what + " is not a valid varint"
	return 0
}

// count reads a count of things at least least bytes long each, refusing one the rest of
// the blob cannot hold (so that nothing is allocated for a count a hostile image inflates).
func (d *setDecoder) count(what string, least int) int {
	n := d.uvarint(what)
	if d.err == "" && n > uint64(len(d.s)-d.at)/uint64(least) {
		d.err = fmt.Sprintf("%s count %d is more than its remaining %d bytes can hold", what, n, len(d.s)-d.at)
		return 0
	}
	return int(n)
}

// ref reads a string's number, which must be one of the image's; ok is false when not.
func (d *setDecoder) ref(what string, plusOne bool) (i uint32, ok bool) {
	v := d.uvarint(what)
	if plusOne {
		if v == 0 {
			return 0, false
		}
		v--
	}
	if d.err == "" && v >= uint64(d.ix.nStrings) {
		d.err = fmt.Sprintf("%s names string %d of %d", what, v, d.ix.nStrings)
	}
	return uint32(v), d.err == ""
}

// bytes reads n bytes.
func (d *setDecoder) bytes(what string, n uint64) string {
	if d.err != "" {
		return ""
	}
	if n > uint64(len(d.s)-d.at) {
		d.err = fmt.Sprintf("%s of %d bytes runs past the end of its %d bytes", what, n, len(d.s))
		return ""
	}
	v := d.s[d.at : d.at+int(n)]
	d.at += int(n)
	return v
}

// list reads a list of strings.
func (d *setDecoder) list(what string) []string {
	n := d.count(what, 1)
	if n == 0 {
		return nil
	}
	vs := make([]string, 0, n)
	for i := 0; i < n && d.err == ""; i++ {
		if j, ok := d.ref(what, false); ok {
			vs = append(vs, d.ix.str(j))
		}
	}
	return vs
}

// rules decodes a rule set, with its rules' fixed header sets.
func (d *setDecoder) rules() (rules []Rule, fixed []uint32) {
	n := d.count("rule", 7)
	rules = make([]Rule, n)
	d.ids, d.ages = make([]string, n), make([]int64, n)
	for j := range rules {
		r := &rules[j]
		fixed = append(fixed, uint32(min(d.uvarint("fixed header set"), imageNoSet)))
		if i, ok := d.ref("ID", true); ok {
			d.ids[j] = d.ix.str(i)
			r.ID = &d.ids[j]
		}
		r.AllowedOrigins = d.list("AllowedOrigin")
		r.AllowedMethods = d.list("AllowedMethod")
		r.AllowedHeaders = d.list("AllowedHeader")
		r.ExposeHeaders = d.list("ExposeHeader")
		if v := d.uvarint("MaxAgeSeconds"); v > 0 {
			d.ages[j] = int64(min(v-1, 1<<62))
			r.MaxAgeSeconds = &d.ages[j]
		}
		if d.err != "" {
			return rules[:j], fixed
		}
	}
	return rules, fixed
}

// The XML of a bucket's rules (xmlSize) by its parts.
var (
	xmlDocSize  = xmlSize(nil)
	xmlRuleSize = len("<CORSRule></CORSRule>")
)

func xmlElemSize(name string) int { return 2*len(name) + 5 }

// imageLists are the list members in a rule set's order, with their kinds and whether a
// rule needs at least one.
var imageLists = [...]struct {
	name     string
	kind     uint8
	required bool
}{
	{"AllowedOrigin", kindOrigin, true},
	{"AllowedMethod", kindMethod, true},
	{"AllowedHeader", kindHeader, false},
	{"ExposeHeader", kindExpose, false},
}

// check reads a rule set without building it. It reports whether checkRules would find
// nothing wrong with its rules, from classes; a malformed set leaves err set.
func (d *setDecoder) check(classes []stringClass) bool {
	n := d.count("rule", 7)
	valid := n > 0 && n <= maxRules
	size := xmlDocSize
	for j := 0; j < n && d.err == ""; j++ {
		if f := d.uvarint("fixed header set"); d.err == "" && f >= uint64(d.ix.nFixed) {
			d.err = fmt.Sprintf("rule %d: fixed header set %d is not one of %d", j, f, d.ix.nFixed)
		}
		size += xmlRuleSize
		if i, ok := d.ref("ID", true); ok {
			valid = valid && classes[i].kinds&kindID != 0
			size += xmlElemSize("ID") + int(classes[i].size)
		}
		for _, l := range imageLists {
			m := d.count(l.name, 1)
			valid = valid && (m > 0 || !l.required)
			for k := 0; k < m && d.err == ""; k++ {
				if i, ok := d.ref(l.name, false); ok {
					valid = valid && classes[i].kinds&l.kind != 0
					size += xmlElemSize(l.name) + int(classes[i].size)
				}
			}
		}
		if v := d.uvarint("MaxAgeSeconds"); v > 0 {
			valid = valid && v-1 <= maxMaxAge
			size += xmlElemSize("MaxAgeSeconds") + decimalDigits(v-1)
		}
	}
	if d.err == "" && d.at != len(d.s) {
		d.err = strconv.Itoa(len(d.s)-d.at) + " bytes left over after the rules"
	}
	return valid && size <= maxDocBytes
}

// headers decodes a fixed header set.
func (d *setDecoder) headers() []Header {
	n := d.count("header", 2)
	hs := make([]Header, 0, n)
	for i := 0; i < n && d.err == ""; i++ {
		name := d.bytes("header name", d.uvarint("header name"))
		value := d.bytes("header value", d.uvarint("header value"))
		hs = append(hs, Header{Name: name, Value: value})
	}
	if d.err == "" && d.at != len(d.s) {
		d.err = strconv.Itoa(len(d.s)-d.at) + " bytes left over after the headers"
	}
	return hs
}

// decimalDigits is len(strconv.FormatUint(v, 10)), without the string.
func decimalDigits(v uint64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}
