package httpcors

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestValueTableFindsByMemory(t *testing.T) {
	base := strings.Repeat("GET, PUT, POST", 2)
	values := []string{base, base[:8], "3000", "ETag"}
	for i := range 40 {
		values = append(values, strconv.Itoa(1000+i))
	}
	tb := newValueTable(values)
	for _, v := range values {
		got := tb.find(v)
		if len(got) != 1 || cap(got) != 1 || got[0] != v {
			t.Fatalf("find(%q) = %q", v, got)
		}
	}
	// Equal text in other memory is not the policy's value; a prefix sharing the memory is
	// another value.
	for _, v := range []string{strings.Clone(base), strings.Clone("3000"), base[:9], "", "missing"} {
		if got := tb.find(v); got != nil {
			t.Errorf("find(%q) found %q", v, got)
		}
	}
	if got := tb.find(base[:8]); got[0] != "GET, PUT" {
		t.Errorf("prefix value %q", got)
	}
	if empty := newValueTable(nil); empty.find("x") != nil {
		t.Error("an empty table found a value")
	}
}

func TestValueMemoryIsWriteOnce(t *testing.T) {
	var m valueMemory
	type given struct {
		vs   []string
		want string
	}
	var out []given
	for i := range 500 {
		v := strings.Repeat(strconv.Itoa(i%10), 1+i%97) // 1 to 97 bytes
		if i%50 == 0 {
			v = strings.Repeat("x-long, ", 40) // longer than a chunk takes
		}
		vs := m.value(v)
		if len(vs) != 1 || cap(vs) != 1 {
			t.Fatalf("value %d: len %d cap %d", i, len(vs), cap(vs))
		}
		out = append(out, given{vs, v})
	}
	for i, g := range out {
		if g.vs[0] != g.want {
			t.Fatalf("value %d became %q, was %q", i, g.vs[0], g.want)
		}
	}
	if vs := m.value(""); len(vs) != 1 || vs[0] != "" {
		t.Errorf("empty value %q", vs)
	}
}

func TestValueChunkFillsItsSizeClass(t *testing.T) {
	// A chunk one byte too large would take the next size class, 3200 bytes. TotalAlloc
	// counts the whole process, so allocate many and allow for a little noise.
	if size := unsafe.Sizeof(valueChunk{}); size+8 != 3072 {
		t.Errorf("a chunk is %d bytes plus an 8-byte header, want 3072", size)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 1000
	for range n {
		sinkChunk = new(valueChunk)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= 3136 {
		t.Errorf("a chunk takes %d bytes, want 3072", per)
	}
}

var sinkChunk *valueChunk
