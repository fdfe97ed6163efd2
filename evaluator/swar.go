package evaluator

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Word-at-a-time byte tests ("SWAR"): eight bytes loaded into one uint64 (encoding/binary's
// LittleEndian compiles to a single load), tested with a few arithmetic operations instead of
// eight compares and branches. Byte k of a word is the byte at offset k, so the lowest marked
// byte is the first in the string.

const (
	lsb  = 0x0101010101010101 // 0x01 in every byte
	msb  = 0x8080808080808080 // 0x80 in every byte
	low7 = 0x7f7f7f7f7f7f7f7f // the low seven bits of every byte
)

// zeroBytes marks (0x80) each byte of x that is zero. It is exact for every byte: no carry
// crosses from one byte into the next, unlike the shorter (x-lsb)&^x&msb, which can mark a
// 0x01 byte above a zero one.
func zeroBytes(x uint64) uint64 { return ^(x&low7 + low7 | x) & msb }

// firstByte is the offset of the lowest marked byte of a non-zero mask.
func firstByte(mask uint64) int { return bits.TrailingZeros64(mask) >> 3 }

// below is the mask of the bytes before offset k (0 to 8).
func below(k int) uint64 { return uint64(1)<<(8*uint(k)) - 1 }

// lowerWord lower-cases the ASCII letters A-Z among the eight bytes of x, leaving every other
// byte (UTF-8 included) as it is.
func lowerWord(x uint64) uint64 {
	h := x & low7
	upper := (h + (0x80-'A')*lsb) &^ (h + (0x80-'Z'-1)*lsb) &^ x & msb
	return x | upper>>2
}

// The tests below mark bytes equal to one of a few ASCII characters. Each works on the low
// seven bits h of every byte: h^c is zero only where the byte was c, and adding 0x7f to it
// sets the high bit everywhere else without carrying into the next byte. ANDing those for
// several characters, then ORing in x itself (bytes of 0x80 and above equal none of them),
// leaves the high bit clear exactly where a byte was one of the characters.

// nonSeparators marks each byte that is not ',', ' ' or '\t': the bytes that start a name in
// Access-Control-Request-Headers.
func nonSeparators(x uint64) uint64 {
	h := x & low7
	return ((h^' '*lsb+low7)&(h^','*lsb+low7)&(h^'\t'*lsb+low7) | x) & msb
}

// unsafeBytes marks each CR, LF or NUL byte: the bytes that would split or truncate a header
// if echoed.
func unsafeBytes(x uint64) uint64 {
	h := x & low7
	return ^((h^'\r'*lsb+low7)&(h^'\n'*lsb+low7)&(h+low7) | x) & msb
}

// controlBytes marks each byte below 0x20: a superset of unsafeBytes, in three operations.
func controlBytes(x uint64) uint64 { return ^(x&low7 + (0x80-0x20)*lsb | x) & msb }

func load64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// bytesOf views a string's bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// wordAt returns b[i:i+8] as a word and how many of its bytes are b's (8, or fewer at the
// end, where the word is zero-padded). Near the end of a slice of at least 8 bytes it loads
// the last 8 and shifts, so only slices shorter than a word take the byte loop.
func wordAt(b []byte, i int) (uint64, int) {
	n := len(b)
	if i+8 <= n {
		return load64(b[i : i+8]), 8
	}
	if n >= 8 {
		return load64(b[n-8:]) >> (8 * uint(i+8-n)), n - i
	}
	var pad [8]byte
	copy(pad[:], b[i:])
	return load64(pad[:]), n - i
}

// hasUnsafeByte reports whether s holds CR, LF or NUL.
func hasUnsafeByte(s string) bool {
	b := bytesOf(s)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if unsafeBytes(load64(b[i:i+8])) != 0 {
			return true
		}
	}
	if i == len(b) {
		return false
	}
	w, t := wordAt(b, i)
	return unsafeBytes(w)&below(t) != 0
}
