//go:build !race

// Allocation counts do not hold under the race detector, which allocates for itself and makes
// sync.Pool drop a quarter of what it is given: these tests are built only without it
// (make test runs them; its -race runs leave them out).

package httpcors_test

import (
	"net/http"
	"testing"
)

func TestPreflightRepliesDoNotAllocatePerRequest(t *testing.T) {
	// The ids and the Allow-Headers echo need memory that outlives the request; it comes in
	// chunks of about twenty replies, so the average is below one allocation.
	m := mustLoad(t, echoConfig)
	h := m.Handler(http.NotFoundHandler())
	for name, r := range map[string]*http.Request{
		"allowed":      preflightRequest("https://app.example", ""),
		"allowed-echo": preflightRequest("https://app.example", "content-type,x-amz-date"),
		"denied":       preflightRequest("https://evil.example", ""),
	} {
		w := &discard{h: http.Header{}}
		h.ServeHTTP(w, r)
		if n := testing.AllocsPerRun(200, func() { clear(w.h); h.ServeHTTP(w, r) }); n != 0 {
			t.Errorf("%s: %v allocations per reply, want 0 (amortised)", name, n)
		}
	}
}
