//go:build !race

// Allocation counts do not hold under the race detector, which allocates for itself and makes
// sync.Pool drop a quarter of what it is given: these tests are built only without it
// (make test runs them; its -race runs leave them out).

package httpcors_test

import (
	"net/http"
	"testing"
)

// maxAllocsPerRequest bounds what the middleware allocates per request: only what net/http
// keeps after the handler returns, a reply's ids and Allow-Headers echo (from chunks, well
// below one on average) or a merged Vary (two).
const maxAllocsPerRequest = 3

var acceptEncoding = []string{"Accept-Encoding"}

func TestRequestsAllocateAtMostThree(t *testing.T) {
	m := mustLoad(t, echoConfig)
	plain := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	varied := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Vary"] = acceptEncoding // the upstream's own, not the middleware's, allocation
		w.WriteHeader(200)
	}))
	put := func() *http.Request {
		r, _ := http.NewRequest("PUT", "http://s3.local/site/k", nil)
		r.RequestURI = "/site/k"
		r.Header.Set("Origin", "https://app.example")
		return r
	}
	for _, c := range []struct {
		name string
		h    http.Handler
		r    *http.Request
	}{
		{"allowed", plain, preflightRequest("https://app.example", "")},
		{"allowed-echo", plain, preflightRequest("https://app.example", "content-type,x-amz-date")},
		{"denied", plain, preflightRequest("https://evil.example", "")},
		{"decorated", plain, put()},
		{"decorated-vary", varied, put()},
	} {
		w := &discard{h: http.Header{}}
		c.h.ServeHTTP(w, c.r)
		n := testing.AllocsPerRun(200, func() { clear(w.h); c.h.ServeHTTP(w, c.r) })
		if n > maxAllocsPerRequest {
			t.Errorf("%s: %v allocations per request, want at most %d", c.name, n, maxAllocsPerRequest)
		}
		t.Logf("%s: %v allocations per request", c.name, n)
	}
}
