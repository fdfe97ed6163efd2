package httpcors

import (
	"math/bits"
	"strings"
	"unsafe"
)

// valueTable maps the policy's header values (Policy.HeaderValues: every Allow-Methods,
// Expose-Headers and Max-Age value a Decision can hold) to []string ready for a net/http
// header map. The evaluator hands out the very same strings on every Decision, so the table
// is keyed by a value's memory: a lookup is one multiplication and a comparison, with no
// hashing of the text. Open addressing, linear probing, at most half full; read-only once
// built, so safe for concurrent use.
type valueTable struct {
	slots []valueSlot
	shift uint8 // 64 - log2(len(slots))
}

type valueSlot struct {
	p *byte // nil: empty slot
	n int
	v []string
}

// newValueTable indexes the policy's values, each as a one-element []string.
func newValueTable(values []string) valueTable {
	size := 8
	for size < 2*len(values) {
		size *= 2
	}
	t := valueTable{slots: make([]valueSlot, size), shift: uint8(64 - bits.TrailingZeros(uint(size)))}
	for _, v := range values {
		// len == cap, so that an append by anyone copies instead of writing into it.
		t.add([]string{v})
	}
	return t
}

func (t *valueTable) add(vs []string) {
	p := unsafe.StringData(vs[0])
	if p == nil {
		return
	}
	i := t.index(p)
	for ; t.slots[i].p != nil; i = (i + 1) & (len(t.slots) - 1) {
		if t.slots[i].p == p && t.slots[i].n == len(vs[0]) {
			return // the same memory twice
		}
	}
	t.slots[i] = valueSlot{p: p, n: len(vs[0]), v: vs}
}

// index is the home slot of a value's memory: Fibonacci hashing of the address.
func (t *valueTable) index(p *byte) int {
	return int(uint64(uintptr(unsafe.Pointer(p))) * 0x9e3779b97f4a7c15 >> t.shift)
}

// find returns the []string holding exactly the string s (same memory, same length), or
// nil. The table always has an empty slot, so a miss ends there.
func (t *valueTable) find(s string) []string {
	p := unsafe.StringData(s)
	for i := t.index(p); ; i = (i + 1) & (len(t.slots) - 1) {
		sl := &t.slots[i]
		if sl.p == nil {
			return nil
		}
		if sl.p == p && sl.n == len(s) {
			return sl.v
		}
	}
}

// valueMemory hands out header values for replies that cannot come from a constant: the ids
// and the Allow-Headers echo, which live in the Decision's reusable buffers. net/http keeps
// the header map, and serialises it, after the handler returns, when the pooled Decision may
// already serve another request; so these values need memory of their own that nobody
// rewrites. Rather than one allocation per reply, each exchange carves values out of a chunk
// that it only ever appends to, and starts a new chunk when the current one is full; the
// garbage collector frees a chunk once no header map refers into it. A value retained
// beyond its response keeps its whole chunk (3 KB) alive.
type valueMemory struct {
	c          *valueChunk
	nstr, nbuf int // used part of c
}

// valueChunk holds the values of about twenty preflight replies (two or three each, of
// 16-130 bytes) and, with the 8-byte type header Go puts in front of objects this large that
// hold pointers, fills a 3072-byte size class exactly. The strings come first, so the
// garbage collector scans only them.
type valueChunk struct {
	strs [48]string
	buf  [3072 - 8 - 48*16]byte
}

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
	if m.c == nil || m.nstr == len(m.c.strs) || len(m.c.buf)-m.nbuf < len(v) {
		m.c, m.nstr, m.nbuf = new(valueChunk), 0, 0
	}
	c := m.c
	n := copy(c.buf[m.nbuf:], v)
	c.strs[m.nstr] = unsafe.String(&c.buf[m.nbuf], n)
	vs := c.strs[m.nstr : m.nstr+1 : m.nstr+1]
	m.nstr++
	m.nbuf += n
	return vs
}
