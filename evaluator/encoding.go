package evaluator

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// checkEncoding refuses a configuration document holding what a JSON decoder silently turns
// into U+FFFD: bytes that are not UTF-8, and \u escapes of unpaired surrogates. Either would
// change a value from what the user wrote (an AllowedOrigin that then never matches), and the
// contract is a clear error, never a silent fix. The JSON parser itself keeps encoding/json's
// rule (its differential fuzz test depends on it); configurations are checked here first.
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
		// the parser's to report.
		if data[off+1] != 'u' {
			off += 2
			continue
		}
		r, ok := escapedRune(data, off+2)
		if !ok || !utf16.IsSurrogate(r) {
			off += 2
			continue
		}
		if r < 0xDC00 && off+11 < len(data) && data[off+6] == '\\' && data[off+7] == 'u' {
			if lo, ok := escapedRune(data, off+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				off += 12
				continue
			}
		}
		return encodingError(data, off, string(data[off:off+6])+" is an unpaired surrogate, which is no character")
	}
	return nil
}

// escapedRune reads the four hexadecimal digits of a \u escape at data[off:].
func escapedRune(data []byte, off int) (rune, bool) {
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
	line, col := lineCol(data, off)
	return errors.New("invalid JSON at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + ": " + msg)
}
