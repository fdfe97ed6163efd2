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
)

var jsonKindNames = [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}

func (k jsonKind) String() string { return jsonKindNames[k] }

// jsonValue is a parsed JSON value that keeps what encoding/json's maps lose: member order
// and duplicate keys (both reported to the user), and number literals as written.
type jsonValue struct {
	kind    jsonKind
	str     string // string value, or the number literal
	boolean bool
	elems   []*jsonValue
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
	p := &jsonParser{data: data}
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

type jsonParser struct {
	data []byte
	pos  int
	buf  []byte // string unescaping scratch
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
		return &jsonValue{kind: jsonString, str: s}, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true", &jsonValue{kind: jsonBool, boolean: true})
	case c == 'f':
		return p.literal("false", &jsonValue{kind: jsonBool})
	case c == 'n':
		return p.literal("null", &jsonValue{kind: jsonNull})
	}
	return nil, p.unexpected("looking for the beginning of a value")
}

func (p *jsonParser) literal(word string, v *jsonValue) (*jsonValue, error) {
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
	return v, nil
}

func (p *jsonParser) object(depth int) (*jsonValue, error) {
	v := &jsonValue{kind: jsonObject}
	p.pos++ // {
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
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
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.members = append(v.members, jsonMember{key, e})
		p.space()
		if p.pos >= len(p.data) {
			return nil, errJSONEnd
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return nil, p.unexpected("after object key:value pair")
		}
	}
}

func (p *jsonParser) array(depth int) (*jsonValue, error) {
	v := &jsonValue{kind: jsonArray}
	p.pos++ // [
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.elems = append(v.elems, e)
		p.space()
		if p.pos >= len(p.data) {
			return nil, errJSONEnd
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return nil, p.unexpected("after array element")
		}
	}
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
	return &jsonValue{kind: jsonNumber, str: string(d[start:p.pos])}, nil
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
				return string(s), nil
			}
			return string(toValidUTF8(s)), nil
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
			return string(toValidUTF8(b)), nil
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
