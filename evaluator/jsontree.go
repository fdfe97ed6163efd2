package evaluator

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonKind is the type of a JSON value, named as users know them in error messages.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
	// jsonStreamed stands in for a bucket's value that parseConfigJSON handed to its
	// onBucket while reading and did not keep.
	jsonStreamed
)

var jsonKindNames = [...]string{"null", "a boolean", "a number", "a string", "an array", "an object", "a value"}

// streamedValue is the one value every streamed bucket's member points at.
var streamedValue = jsonValue{kind: jsonStreamed}

func (k jsonKind) String() string { return jsonKindNames[k] }

// jsonValue is a parsed JSON value that keeps what encoding/json's maps lose: member order
// and duplicate keys (both reported to the user), and number literals as written.
type jsonValue struct {
	kind    jsonKind
	boolean bool
	str     string // string value, or the number literal
	// members are an object's members, or an array's elements with empty keys: one list
	// for both keeps every value of a large tree at 48 bytes.
	members []jsonMember
}

type jsonMember struct {
	key string
	val *jsonValue
}

// maxJSONDepth bounds nesting; a configuration is at most five levels deep.
const maxJSONDepth = 64

// parseJSON reads exactly one JSON value (RFC 8259) from data. It is a small recursive
// descent parser rather than encoding/json because a configuration of 100,000 buckets must
// load quickly, member order and duplicates must survive, and errors need a line and column.
// Invalid UTF-8 in strings becomes U+FFFD, as encoding/json does.
func parseJSON(data []byte) (*jsonValue, error) {
	return (&jsonParser{data: data}).document()
}

// parseConfigJSON is parseJSON for an s3cors configuration, shaped by what a configuration
// of many buckets costs. It reads the document once, with parseJSON's checks and errors, but
// hands the value of each member of the first top-level "buckets" object to onBucket as soon
// as it is read, then reuses that value's memory for the next one, so the returned tree holds
// jsonStreamed in their place. The trees of a 10,000-bucket configuration are most of what
// loading it allocates, and in the wasm filter, where the collector is held off while a
// configuration compiles, all of that would stay in the VM's linear memory for good.
// onBucket must keep nothing of the value but its strings.
func parseConfigJSON(data []byte, onBucket func(key string, v *jsonValue)) (*jsonValue, error) {
	return (&jsonParser{data: data, onBucket: onBucket}).document()
}

// document reads p.data as exactly one JSON value.
func (p *jsonParser) document() (*jsonValue, error) {
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, p.errorf(err)
	}
	p.space()
	if p.pos < len(p.data) {
		return nil, p.errorf(errors.New("unexpected data after the top-level value"))
	}
	return v, nil
}

// arenaMark is where the parser's chunks stood, for rewind.
type arenaMark struct {
	nextVals, nextMems int
	vals               []jsonValue
	mems               []jsonMember
}

func (p *jsonParser) mark() arenaMark {
	return arenaMark{p.nextVals, p.nextMems, p.vals, p.mems}
}

// rewind hands the values and lists made since m out again; none of them may be used after.
// Strings stay: they are shared, and what onBucket built keeps them.
func (p *jsonParser) rewind(m arenaMark) {
	p.nextVals, p.nextMems, p.vals, p.mems = m.nextVals, m.nextMems, m.vals, m.mems
}

type jsonParser struct {
	data []byte
	pos  int
	buf  []byte // string unescaping scratch

	// A configuration of thousands of buckets is tens of thousands of small values, most
	// of them repeats ("GET", "CORSRules", the same origins). Values and the element and
	// member lists are carved from chunks, and equal strings share one copy, so the tree
	// costs a few large allocations instead of one or more per value.
	vals    []jsonValue
	members []jsonMember // open objects' members and arrays' elements, innermost last
	mems    []jsonMember // unused part of the current chunk of finished lists
	chunk   int          // the size of the next chunk: small documents stay small
	strs    map[string]string

	// Chunks handed out so far, kept so that rewind can hand them out again:
	// valChunks[:nextVals] and memChunks[:nextMems] are in use.
	valChunks          [][]jsonValue
	memChunks          [][]jsonMember
	nextVals, nextMems int

	// onBucket, when set, receives the first top-level "buckets" object's members
	// (parseConfigJSON); inBuckets is set while that object is read.
	onBucket    func(key string, v *jsonValue)
	inBuckets   bool
	bucketsSeen bool
}

// nextChunk returns how many values or members to allocate next: 16, doubling up to 256.
func (p *jsonParser) nextChunk() int {
	p.chunk = min(max(2*p.chunk, 16), 256)
	return p.chunk
}

// newValue returns a zero value of kind k from the current chunk.
func (p *jsonParser) newValue(k jsonKind) *jsonValue {
	if len(p.vals) == 0 {
		p.vals = p.valChunk()
	}
	v := &p.vals[0]
	p.vals = p.vals[1:]
	*v = jsonValue{kind: k} // a reused chunk holds old values
	return v
}

// valChunk returns a chunk for values: a released one when there is one, else a new one.
func (p *jsonParser) valChunk() []jsonValue {
	if p.nextVals == len(p.valChunks) {
		p.valChunks = append(p.valChunks, make([]jsonValue, p.nextChunk()))
	}
	p.nextVals++
	return p.valChunks[p.nextVals-1]
}

// memChunk returns a chunk of at least n members, as valChunk does.
func (p *jsonParser) memChunk(n int) []jsonMember {
	for p.nextMems < len(p.memChunks) {
		c := p.memChunks[p.nextMems]
		p.nextMems++
		if len(c) >= n {
			return c
		}
	}
	c := make([]jsonMember, max(n, p.nextChunk()))
	p.memChunks = append(p.memChunks, c)
	p.nextMems = len(p.memChunks)
	return c
}

// text returns b as a string, the same string for equal b.
func (p *jsonParser) text(b []byte) string {
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	if p.strs == nil {
		p.strs = map[string]string{}
	}
	s := string(b)
	p.strs[s] = s
	return s
}

// finishMembers moves the members (or elements) above base off the stack into a list of
// their own.
func (p *jsonParser) finishMembers(base int) []jsonMember {
	n := len(p.members) - base
	if n > len(p.mems) {
		p.mems = p.memChunk(n)
	}
	out := p.mems[:n:n]
	p.mems = p.mems[n:]
	copy(out, p.members[base:])
	clear(p.members[base:])
	p.members = p.members[:base]
	return out
}

var errJSONEnd = errors.New("unexpected end of input")

// errorf places err at the parser's position.
func (p *jsonParser) errorf(err error) error {
	if errors.Is(err, errJSONEnd) {
		return errors.New("invalid JSON: unexpected end of input")
	}
	line, col := lineCol(p.data, p.pos)
	return errors.New("invalid JSON at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ": " + err.Error())
}

func (p *jsonParser) unexpected(what string) error {
	if p.pos >= len(p.data) {
		return errJSONEnd
	}
	return errors.New("invalid character " + strconv.QuoteRune(rune(p.data[p.pos])) + " " + what)
}

func (p *jsonParser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*jsonValue, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	if p.pos >= len(p.data) {
		return nil, errJSONEnd
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		v := p.newValue(jsonString)
		v.str = s
		return v, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true", jsonBool, true)
	case c == 'f':
		return p.literal("false", jsonBool, false)
	case c == 'n':
		return p.literal("null", jsonNull, false)
	}
	return nil, p.unexpected("looking for the beginning of a value")
}

func (p *jsonParser) literal(word string, k jsonKind, b bool) (*jsonValue, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		for i := 0; i < len(word); i++ {
			if p.pos >= len(p.data) {
				return nil, errJSONEnd
			}
			if p.data[p.pos] != word[i] {
				return nil, p.unexpected("in literal " + word)
			}
			p.pos++
		}
	}
	p.pos += len(word)
	v := p.newValue(k)
	v.boolean = b
	return v, nil
}

func (p *jsonParser) object(depth int) (*jsonValue, error) {
	p.pos++ // {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return p.newValue(jsonObject), nil
	}
	base := len(p.members)
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.unexpected("looking for the beginning of an object key string")
		}
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.unexpected("after object key")
		}
		p.pos++
		p.space()
		var e *jsonValue
		switch {
		case p.onBucket != nil && depth == 0:
			p.inBuckets = key == "buckets" && !p.bucketsSeen
			p.bucketsSeen = p.bucketsSeen || key == "buckets"
			e, err = p.value(depth + 1)
			p.inBuckets = false
		case p.inBuckets && depth == 1:
			m := p.mark()
			if e, err = p.value(depth + 1); err == nil {
				p.onBucket(key, e)
				p.rewind(m)
				e = &streamedValue
			}
		default:
			e, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, jsonMember{key, e})
		if v, err := p.listNext('}', jsonObject, base, "after object key:value pair"); v != nil || err != nil {
			return v, err
		}
	}
}

func (p *jsonParser) array(depth int) (*jsonValue, error) {
	p.pos++ // [
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return p.newValue(jsonArray), nil
	}
	base := len(p.members)
	for {
		p.space()
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, jsonMember{val: e})
		if v, err := p.listNext(']', jsonArray, base, "after array element"); v != nil || err != nil {
			return v, err
		}
	}
}

// listNext reads what follows an object's member or an array's element: a comma (nil, nil:
// another comes), or close, which ends the object or array whose members start at base.
// after names the place for the error about anything else.
func (p *jsonParser) listNext(close byte, kind jsonKind, base int, after string) (*jsonValue, error) {
	p.space()
	if p.pos >= len(p.data) {
		return nil, errJSONEnd
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return nil, nil
	case close:
		p.pos++
		v := p.newValue(kind)
		v.members = p.finishMembers(base)
		return v, nil
	}
	return nil, p.unexpected(after)
}

// number checks the RFC 8259 grammar and keeps the literal.
func (p *jsonParser) number() (*jsonValue, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos >= len(d):
		return nil, errJSONEnd
	case d[p.pos] == '0':
		p.pos++
	case d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return nil, p.unexpected("in numeric literal")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if !p.digits() {
			return nil, p.unexpected("after decimal point in numeric literal")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return nil, p.unexpected("in exponent of numeric literal")
		}
	}
	v := p.newValue(jsonNumber)
	v.str = p.text(d[start:p.pos])
	return v, nil
}

func (p *jsonParser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// string reads a quoted string at p.pos.
func (p *jsonParser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	// Fast path: no escapes, ASCII or valid UTF-8, no control characters.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := d[start:p.pos]
			p.pos++
			if utf8.Valid(s) {
				return p.text(s), nil
			}
			return p.text(toValidUTF8(s)), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	b := append(p.buf[:0], d[start:p.pos]...)
	for {
		if p.pos >= len(d) {
			return "", errJSONEnd
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.buf = b
			return p.text(toValidUTF8(b)), nil
		case c < 0x20:
			return "", p.unexpected("in string literal")
		case c != '\\':
			b = append(b, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(d) {
			return "", errJSONEnd
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.unexpected("in \\u hexadecimal character escape")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate pairs with a following \uDC00-\uDFFF; anything else
				// is U+FFFD, as in encoding/json.
				save := p.pos
				if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
				}
				p.pos = save
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			p.pos--
			return "", p.unexpected("in string escape code")
		}
	}
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		h := unhex(p.data[p.pos+i])
		if h < 0 {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	p.pos += 4
	return r, true
}

// toValidUTF8 replaces each invalid byte with U+FFFD (encoding/json's rule, which differs
// from bytes.ToValidUTF8 in replacing every byte rather than every run).
func toValidUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
