//go:build !race

// Allocation counts do not hold under the race detector, which allocates for itself: these
// tests are built only without it (make test runs them; its -race runs leave them out).

package extproc

import (
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc/extproctest"
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
	if err := readRequest(wireIncoming(t, msg).headers, &st.req, &st.scratch); err != nil {
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
