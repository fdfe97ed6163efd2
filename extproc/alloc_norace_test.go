//go:build !race

// Allocation counts do not hold under the race detector, which allocates for itself: these
// tests are built only without it (make test runs them; its -race runs leave them out).

package extproc

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// TestWireAnswerAllocations: once a pooled stream has served one request, encoding a
// preflight's answer allocates nothing, and handing it to the codec allocates only the
// one-element buffer slice gRPC holds until the bytes are written.
func TestWireAnswerAllocations(t *testing.T) {
	lp, err := LoadConfig("bench.json", []byte(benchConfig))
	if err != nil {
		t.Fatal(err)
	}
	st := new(stream)
	msg := extproctest.RequestHeaders(benchPreflight)
	if err := readRequest(wireIncoming(t, msg).Headers, &st.req, &st.scratch); err != nil {
		t.Fatal(err)
	}
	lp.Policy.Evaluate(&st.req, &st.dec)
	if st.dec.Outcome != evaluator.Reply || len(st.dec.Headers) < 5 {
		t.Fatalf("benchmark preflight decided %v with %d headers, want a reply with S3's headers", st.dec.Outcome, len(st.dec.Headers))
	}
	st.immediateResponse()
	if a := testing.AllocsPerRun(100, st.immediateResponse); a != 0 {
		t.Errorf("encoding a preflight's answer: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		data, err := testCodec.Marshal(&st.out)
		if err != nil {
			t.Fatal(err)
		}
		data.Free()
	}); a > 1 {
		t.Errorf("the codec: %v allocations, want at most 1 (the buffer slice)", a)
	}
}

// TestRequestHeadersAllocations: deciding a request once its pooled stream has served one
// allocates only readRequest's string of the request's values, with the logger at info (the
// level the server runs at): the decision counter is pre-created, and the debug decision line
// is neither built nor written. slog drops a disabled record without allocating, so it is the
// long preflight that catches an unguarded logDecision: cutting its value allocates.
func TestRequestHeadersAllocations(t *testing.T) {
	lp, err := LoadConfig("bench.json", []byte(benchConfig))
	if err != nil {
		t.Fatal(err)
	}
	infoLog, _ := bufferLogger(slog.LevelInfo)
	srv := NewServer(NewPolicyHolder(lp), ServerOptions{Logger: infoLog})
	denied := benchPreflight
	denied.Headers = slices.Clone(benchPreflight.Headers)
	denied.Headers[0] = casetable.Header{"Origin", "https://evil.example.net"}
	// A preflight asking for more header names than a decision line keeps (logcut.Max):
	// were the line built at info, cutting the value would allocate.
	long := benchPreflight
	long.Headers = slices.Clone(benchPreflight.Headers)
	long.Headers[2] = casetable.Header{"Access-Control-Request-Headers", strings.Repeat("x-amz-meta-field,", 20) + "content-type"}
	actual := casetable.Request{Method: "GET", Authority: "store.local", Path: "/site/photos/cat.jpg", Headers: []casetable.Header{
		{"Origin", "https://app.example.com"}, {"Accept", "*/*"},
	}}
	for _, c := range []struct {
		name    string
		req     casetable.Request
		outcome evaluator.Outcome
		reason  evaluator.Reason
	}{
		{"allowed preflight", benchPreflight, evaluator.Reply, evaluator.ReasonAllowed},
		{"denied preflight", denied, evaluator.Reply, evaluator.ReasonNotAllowed},
		{"long preflight", long, evaluator.Reply, evaluator.ReasonAllowed},
		{"actual request", actual, evaluator.Decorate, evaluator.ReasonAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			hs := wireIncoming(t, extproctest.RequestHeaders(c.req)).Headers
			st := new(stream)
			handle := func() {
				if _, err := srv.requestHeaders(t.Context(), st, hs); err != nil {
					t.Fatal(err)
				}
			}
			handle()
			if st.dec.Outcome != c.outcome || st.dec.Reason != c.reason {
				t.Fatalf("decided %v/%v, want %v/%v", st.dec.Outcome, st.dec.Reason, c.outcome, c.reason)
			}
			if a := testing.AllocsPerRun(100, handle); a > 1 {
				t.Errorf("request headers: %v allocations, want at most 1 (readRequest's string)", a)
			}
		})
	}
}
