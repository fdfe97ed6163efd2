package httpcors

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestReplyMemoryIsWriteOnce hands out values across many chunks, long ones among them, and
// checks every one afterwards, after a collection too: none is rewritten or freed while held.
func TestReplyMemoryIsWriteOnce(t *testing.T) {
	var m replyMemory
	type given struct {
		vs   [3][]string
		want [3]string
	}
	var out []given
	for i := range 500 {
		rid := strings.Repeat(strconv.Itoa(i%10), 16)
		hid := strings.Repeat("h"+strconv.Itoa(i%7), 38)
		ah := strings.Repeat("x", i%97) // 0 to 96 bytes
		if i%50 == 0 {
			ah = strings.Repeat("x-long, ", 40) // longer than a chunk takes
		}
		a, b, c := m.values(rid, hid, ah)
		if ah == "" {
			if c != nil {
				t.Fatalf("value %d: empty Allow-Headers got %q", i, c)
			}
			c = []string{""} // checked below like the others
		}
		for _, vs := range [][]string{a, b, c} {
			if len(vs) != 1 || cap(vs) != 1 {
				t.Fatalf("value %d: len %d cap %d", i, len(vs), cap(vs))
			}
		}
		out = append(out, given{[3][]string{a, b, c}, [3]string{rid, hid, ah}})
	}
	runtime.GC()
	for i, g := range out {
		for k := range g.vs {
			if g.vs[k][0] != g.want[k] {
				t.Fatalf("value %d.%d became %q, was %q", i, k, g.vs[k][0], g.want[k])
			}
		}
	}
}
