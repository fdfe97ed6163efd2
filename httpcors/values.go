package httpcors

import (
	"strings"
	"unsafe"
)

// valueMemory hands out header values for replies that cannot come from a constant: the ids
// and the Allow-Headers echo, which live in the Decision's reusable buffers. net/http keeps
// the header map, and serialises it, after the handler returns, when the pooled Decision may
// already serve another request; so these values need memory of their own that nobody
// rewrites. Rather than one allocation per reply, each exchange carves values out of a chunk
// that it only ever appends to, and starts a new chunk when the current one is full; the
// garbage collector frees a chunk once no header map refers into it. A value retained
// beyond its response keeps its whole chunk (4 KB) alive.
//
// A chunk holds no pointer the garbage collector needs to see, so it is allocated as plain
// words (noscan): never scanned, and written without write barriers. Each value is a string
// header (pointer, length) followed by its bytes, and the header points at those bytes in
// the same chunk. The []string handed out points at the header, so whoever holds it keeps
// the chunk, and with it the bytes, alive; that is all the collector must know, and it
// learns it from the []string, which lives in ordinary (scanned) memory. Go's collector does
// not move objects, so the address stored in the chunk stays right.
type valueMemory struct {
	c *valueChunk
	n int // words of c in use
}

// valueChunk is the 4096-byte size class exactly: about 32 preflight replies (a two-word
// header for each value, then its bytes rounded up to a word). Words are uintptr, so that a
// header has a string's layout on every architecture.
type valueChunk [4096 / wordSize]uintptr

const wordSize = int(unsafe.Sizeof(uintptr(0)))

// maxChunkValue is the longest value copied into a chunk; longer ones (a hostile
// Access-Control-Request-Headers echoed back) get memory of their own.
const maxChunkValue = 256

var valEmpty = []string{""}

// value returns a []string (len == cap) holding a copy of v that stays valid and unchanged
// for as long as anyone refers to it.
func (m *valueMemory) value(v string) []string {
	switch {
	case v == "":
		return valEmpty
	case len(v) > maxChunkValue:
		return []string{strings.Clone(v)}
	}
	words := 2 + (len(v)+wordSize-1)/wordSize
	if m.c == nil || len(m.c)-m.n < words {
		m.c, m.n = new(valueChunk), 0
	}
	w := m.c[m.n : m.n+words : m.n+words]
	m.n += words
	data := unsafe.Pointer(&w[2])
	copy(unsafe.Slice((*byte)(data), len(v)), v)
	// The header is written as two plain words: the chunk is noscan, and the pointer it
	// holds points into the chunk itself.
	w[0], w[1] = uintptr(data), uintptr(len(v))
	return unsafe.Slice((*string)(unsafe.Pointer(&w[0])), 1)
}

// ids returns two values (a reply's ids) carved together: one bounds check, one header
// pair. Either empty, or both too long for a chunk, takes the general path.
func (m *valueMemory) ids(a, b string) ([]string, []string) {
	if a == "" || b == "" || len(a)+len(b) > maxChunkValue {
		return m.value(a), m.value(b)
	}
	words := 4 + (len(a)+len(b)+wordSize-1)/wordSize
	if m.c == nil || len(m.c)-m.n < words {
		m.c, m.n = new(valueChunk), 0
	}
	w := m.c[m.n : m.n+words : m.n+words]
	m.n += words
	data := unsafe.Pointer(&w[4])
	buf := unsafe.Slice((*byte)(data), len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	w[0], w[1] = uintptr(data), uintptr(len(a))
	w[2], w[3] = uintptr(unsafe.Pointer(&buf[len(a)])), uintptr(len(b))
	return unsafe.Slice((*string)(unsafe.Pointer(&w[0])), 1), unsafe.Slice((*string)(unsafe.Pointer(&w[2])), 1)
}
