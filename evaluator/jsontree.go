package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

// parseJSON reads exactly one JSON value from data.
func parseJSON(data []byte) (*jsonValue, error) {
	if err := checkEncoding(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, jsonError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
		return nil, jsonError(data, dec, err)
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (*jsonValue, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &jsonValue{kind: jsonNull}, nil
	case bool:
		return &jsonValue{kind: jsonBool, boolean: t}, nil
	case json.Number:
		return &jsonValue{kind: jsonNumber, str: string(t)}, nil
	case string:
		return &jsonValue{kind: jsonString, str: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &jsonValue{kind: jsonArray}
			for dec.More() {
				e, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.elems = append(v.elems, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return v, nil
		case '{':
			v := &jsonValue{kind: jsonObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				e, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.members = append(v.members, jsonMember{key, e})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return v, nil
		}
	}
	return nil, errors.New("unexpected token")
}

// jsonError turns a decoder error into a message with a line and column.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return errors.New("invalid JSON: unexpected end of input")
	}
	line, col := lineCol(data, off)
	return errors.New("invalid JSON at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ": " + err.Error())
}

func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
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

// checkEncoding refuses what encoding/json would silently replace with U+FFFD: bytes that are
// not UTF-8, and \u escapes of unpaired surrogates. Either would change a value from what the
// user wrote (an origin that then never matches), so the document is refused instead, with the
// place of the first such byte.
func checkEncoding(data []byte) error {
	for off := 0; off < len(data); {
		c := data[off]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size == 1 {
				return encodingError(data, off, "byte 0x"+strconv.FormatUint(uint64(c), 16)+" is not UTF-8")
			}
			off += size
			continue
		}
		if c != '\\' || off+1 >= len(data) {
			off++
			continue
		}
		// Backslashes occur only inside strings in a well-formed document; anything else is
		// the decoder's to report.
		if data[off+1] != 'u' {
			off += 2
			continue
		}
		r, ok := hex4(data, off+2)
		if !ok || !utf16.IsSurrogate(r) {
			off += 2
			continue
		}
		if r < 0xDC00 && off+11 < len(data) && data[off+6] == '\\' && data[off+7] == 'u' {
			if lo, ok := hex4(data, off+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				off += 12
				continue
			}
		}
		return encodingError(data, off, string(data[off:off+6])+" is an unpaired surrogate, which is no character")
	}
	return nil
}

func hex4(data []byte, off int) (rune, bool) {
	if off+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[off : off+4] {
		d := unhex(c)
		if d < 0 {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func encodingError(data []byte, off int, msg string) error {
	line, col := lineCol(data, int64(off))
	return errors.New("invalid JSON at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ": " + msg)
}
