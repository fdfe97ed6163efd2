// Package logcut bounds a value a client chooses (a header, a path) before it goes into a log
// line: a request may carry 60 KiB in one header, and anyone can send one before
// authentication. The wasm filter and the ext_proc server cut the same way and mark a cut
// value the same way, so that one search finds cut values whichever way s3cors is delivered.
//
// Where it sits: standard library only, shared by the filter and extproc (adapters may import
// internal/ helpers; internal/ never imports an adapter).
package logcut

import (
	"strconv"
	"unicode/utf8"
)

// Max is the most bytes of one value a log line keeps.
const Max = 256

// Cut returns v when it is at most Max bytes long; otherwise its first Max bytes, fewer when
// that would split a UTF-8 character, and true.
func Cut(v string) (string, bool) {
	if len(v) <= Max {
		return v, false
	}
	n := Max
	for n > Max-utf8.UTFMax && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n], true
}

// AppendMark appends what follows a cut value, "... (cut, N bytes)", N being the whole
// value's length, so that a reader never takes the cut value for the whole one.
func AppendMark(b []byte, n int) []byte {
	b = append(b, "... (cut, "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, " bytes)"...)
}
