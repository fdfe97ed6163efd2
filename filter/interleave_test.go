package filter_test

import (
	"fmt"
	"testing"

	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
)

// TestInterleavedStreamsKeepTheirOwnHeaders: the headers a stream adds to its response are
// decided on its request and kept in the stream's own memory, because the strings the decision
// holds view the plugin's Decision scratch (the next request's Evaluate overwrites it) and the
// request's values view the arena (the next callback reuses it). Streams are interleaved the
// way a worker runs them: every request first, then the responses in reverse order.
func TestInterleavedStreamsKeepTheirOwnHeaders(t *testing.T) {
	vm, root := startVM(t, []byte(`{"buckets": {"b": [{"AllowedOrigins": ["https://*.example"], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"]}]}}`))
	const n = 4
	streams := make([]*abitest.Stream, n)
	for i := range streams {
		streams[i] = vm.NewStream(root)
		streams[i].RequestHeaders([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "s3.internal"},
			{Name: ":path", Value: fmt.Sprintf("/b/key-%d", i)}, {Name: "origin", Value: fmt.Sprintf("https://app-%d.example", i)}}, true)
	}
	for i := n - 1; i >= 0; i-- {
		s := streams[i]
		s.ResponseHeaders([]abi.Header{{Name: ":status", Value: "200"}, {Name: "etag", Value: `"x"`}}, true)
		want := fmt.Sprintf("https://app-%d.example", i)
		var got []string
		for _, h := range s.Headers() {
			if h.Name == "access-control-allow-origin" {
				got = append(got, h.Value)
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("stream %d: Access-Control-Allow-Origin %q, want [%q]; headers %v", i, got, want, s.Headers())
		}
		s.End()
	}
}
