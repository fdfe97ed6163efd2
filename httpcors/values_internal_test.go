package httpcors

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/s3cors/s3cors/evaluator"
)

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
	// A chunk one byte too large would take the next size class, 4864 bytes. TotalAlloc
	// counts the whole process, so allocate many and allow for a little noise.
	if size := unsafe.Sizeof(valueChunk{}); size != 4096 {
		t.Errorf("a chunk is %d bytes, want 4096", size)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 1000
	for range n {
		sinkChunk = new(valueChunk)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= 4096+256 {
		t.Errorf("a chunk takes %d bytes, want 4096", per)
	}
}

// TestValueMemorySurvivesCollection holds on to values and nothing else (no chunk pointer)
// through collections while the heap is churned with other memory: a chunk freed while a
// []string still pointed into it would be reused and the value would change.
func TestValueMemorySurvivesCollection(t *testing.T) {
	var kept [][]string
	var want []string
	m := &valueMemory{}
	for i := range 3000 {
		v := strings.Repeat(strconv.Itoa(i%10), 1+i%61)
		kept = append(kept, m.value(v))
		want = append(want, v)
	}
	m = nil
	for range 4 {
		runtime.GC()
		for range 2000 {
			c := new(valueChunk)
			for k := range c {
				c[k] = ^uintptr(0)
			}
			sinkChunk = c
		}
	}
	for i, vs := range kept {
		if vs[0] != want[i] {
			t.Fatalf("value %d became %q, was %q", i, vs[0], want[i])
		}
	}
	runtime.KeepAlive(m)
}

var sinkChunk *valueChunk

// TestConstantsAreFoundByMemory pins what replies rely on to copy only the ids and the
// Allow-Headers echo: a matched rule's headers are all in its fixed set (prepared slices,
// plus the request's Origin), and every other value an error reply holds (Content-Type,
// Connection) is one of the constants. A miss would still answer correctly, by copying.
func TestConstantsAreFoundByMemory(t *testing.T) {
	m, err := Load([]byte(`{"buckets": {"site": {"CORSRules": [
	  {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60},
	  {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	st := m.state.Load()
	const app = "https://app.example.com"
	requests := []evaluator.Request{
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true},
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true,
			RequestHeaders: "x-a", HasRequestHeaders: true},
		{Method: "GET", Path: "/site/k", Origin: app, HasOrigin: true},
		{Method: "PUT", Path: "/site/k", Origin: app, HasOrigin: true},
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "POST", HasRequestMethod: true},
		{Method: "OPTIONS", Path: "/site/k", HasOrigin: false},
	}
	dynamic := map[string]bool{evaluator.HeaderRequestID: true, evaluator.HeaderID2: true,
		evaluator.HeaderContentLength: true, evaluator.HeaderAllowHeaders: true}
	var d evaluator.Decision
	for i := range requests {
		r := &requests[i]
		st.policy.Evaluate(r, &d)
		if len(d.Headers) == 0 {
			t.Fatalf("request %d: no headers (%v)", i, d.Reason)
		}
		for _, hd := range d.Headers {
			if dynamic[hd.Name] || hd.Name == evaluator.HeaderAllowOrigin && hd.Value == app {
				continue
			}
			found := false
			if d.HeaderSet >= 0 {
				for _, f := range st.fixed[d.HeaderSet].headers {
					found = found || f.key == hd.Name && f.value[0] == hd.Value
				}
			} else {
				v := constant(hd.Value)
				found = v != nil && v[0] == hd.Value
			}
			if !found {
				t.Errorf("request %d (%v): %s: %q is neither in the rule's fixed set nor a constant", i, d.Reason, hd.Name, hd.Value)
			}
		}
	}
}
