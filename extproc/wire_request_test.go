package extproc

import (
	"bytes"
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/s3cors/s3cors/extproc/extproctest"
	"github.com/s3cors/s3cors/internal/casetable"
)

// feedRequest puts m into v, a RecvMsg target, as gRPC does with ServerCodecOption's codec:
// marshalled, then handed to the codec's Unmarshal.
func feedRequest(m *extprocv3.ProcessingRequest, v any) error {
	raw, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return testCodec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, v)
}

// wireIncoming is what the server reads of m from its wire bytes.
func wireIncoming(t testing.TB, m *extprocv3.ProcessingRequest) *incoming {
	t.Helper()
	var w wireRequest
	if err := feedRequest(m, &w); err != nil {
		t.Fatal(err)
	}
	return w.received()
}

// sameIncoming says how got differs from want, "" when it does not.
func sameIncoming(got, want *incoming) string {
	if got.kind != want.kind || got.observability != want.observability || len(got.headers) != len(want.headers) {
		return fmt.Sprintf("read %s (observability %v, %d headers), want %s (%v, %d)",
			kindNames[got.kind], got.observability, len(got.headers), kindNames[want.kind], want.observability, len(want.headers))
	}
	for i, h := range got.headers {
		if w := want.headers[i]; !bytes.Equal(h.key, w.key) || !bytes.Equal(h.value, w.value) {
			return fmt.Sprintf("header %d is %q: %q, want %q: %q", i, h.key, h.value, w.key, w.value)
		}
	}
	return ""
}

// checkParse parses raw both ways: with proto.Unmarshal into the generated message, and from
// the wire. Wherever proto.Unmarshal accepts raw, the wire parse must accept it and read the
// same; the wire parse may accept what proto.Unmarshal refuses only inside fields it does not
// read (see incoming.parse). The wire parse runs first, on every input, so that hostile bytes
// proto.Unmarshal refuses still reach it (a panic there fails the fuzz target).
func checkParse(raw []byte) error {
	var got incoming
	werr := got.parse(raw)
	var typed extprocv3.ProcessingRequest
	if !protoAccepts(raw, &typed) {
		return nil // the wire parse may accept it or not
	}
	if werr != nil {
		return fmt.Errorf("proto.Unmarshal accepts %x, the wire parse says %w", raw, werr)
	}
	var want incoming
	want.fromMessage(&typed)
	if diff := sameIncoming(&got, &want); diff != "" {
		return fmt.Errorf("%x: %s", raw, diff)
	}
	return nil
}

// protoAccepts says whether proto.Unmarshal decodes raw into m.
func protoAccepts(raw []byte, m *extprocv3.ProcessingRequest) bool {
	return proto.Unmarshal(raw, m) == nil
}

// requestSeeds are messages of every kind and shape Envoy sends, and some it does not: the
// case table's request and response headers, values in value rather than raw_value, bodies,
// trailers, observability mode, attributes and metadata to step over, and pairs of messages
// concatenated (the wire form of a merge, or of a oneof changing its field).
func requestSeeds(t testing.TB) [][]byte {
	var msgs []*extprocv3.ProcessingRequest
	for _, tb := range tables(t) {
		for _, c := range tb.Cases {
			msgs = append(msgs, extproctest.RequestHeaders(c.Request), extproctest.ResponseHeaders(extproctest.UpstreamHeaders(c)))
		}
	}
	attrs, err := structpb.NewStruct(map[string]any{"request.path": "/site/a"})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs,
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":method", Value: "OPTIONS"}, {Key: ":authority", Value: "store.local"}, {Key: ":path", Value: "/site/a"},
				{Key: "Origin", Value: "https://app.example.com", RawValue: []byte("https://raw.example.com")},
				{Key: "ACCESS-CONTROL-REQUEST-METHOD", RawValue: []byte("PUT")},
			}},
			// Attributes is deprecated but Envoys still send it: a map field to step over.
			Attributes:  map[string]*structpb.Struct{"envoy.filters.http.ext_proc": attrs}, //nolint:staticcheck // see above
			EndOfStream: true,
		}}, ObservabilityMode: true, MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"a": attrs}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStream: true}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{
			Trailers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "grpc-status", RawValue: []byte("0")}}}}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}},
		&extprocv3.ProcessingRequest{},
	)
	var seeds [][]byte
	for _, m := range msgs {
		raw, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, raw)
	}
	n := len(seeds)
	for i := 0; i+1 < n; i += 7 {
		seeds = append(seeds, append(append([]byte(nil), seeds[i]...), seeds[i+1]...), append(append([]byte(nil), seeds[i]...), seeds[n-1-i%5]...))
	}
	return seeds
}

// TestWireRequestMatchesTyped: for every message the case table sends and the other seeds,
// the server reads from the wire exactly what the generated code decodes.
func TestWireRequestMatchesTyped(t *testing.T) {
	seeds := requestSeeds(t)
	if len(seeds) < 100 {
		t.Fatalf("only %d messages", len(seeds))
	}
	for _, raw := range seeds {
		if err := proto.Unmarshal(raw, new(extprocv3.ProcessingRequest)); err != nil {
			t.Fatalf("seed %x: %v", raw, err)
		}
		if err := checkParse(raw); err != nil {
			t.Error(err)
		}
	}
}

// TestWireRequestRefusesWhatProtoRefuses: broken framing and invalid UTF-8 in a header's key
// or value fail the wire parse as they fail proto.Unmarshal; invalid UTF-8 in raw_value (bytes)
// does not.
func TestWireRequestRefusesWhatProtoRefuses(t *testing.T) {
	valid, err := proto.Marshal(extproctest.RequestHeaders(casetable.Request{Method: "GET", Authority: "a", Path: "/"}))
	if err != nil {
		t.Fatal(err)
	}
	headerMsg := func(hv *corev3.HeaderValue) []byte {
		b, err := proto.Marshal(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{hv}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rawBad := headerMsg(&corev3.HeaderValue{Key: "k", RawValue: []byte{0xff}})
	keyBad := bytes.Replace(headerMsg(&corev3.HeaderValue{Key: "kk", RawValue: []byte("v")}), []byte("kk"), []byte{'k', 0xff}, 1)
	valueBad := bytes.Replace(headerMsg(&corev3.HeaderValue{Key: "k", Value: "vv"}), []byte("vv"), []byte{'v', 0xff}, 1)
	for _, c := range []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"valid", valid, true},
		{"truncated", valid[:len(valid)-1], false},
		{"length past the end", append([]byte{0x12, 0x7f}, valid...), false},
		{"field number 0", []byte{0x02, 0x00}, false},
		{"invalid raw_value bytes", rawBad, true},
		{"invalid key", keyBad, false},
		{"invalid value", valueBad, false},
	} {
		perr := proto.Unmarshal(c.raw, new(extprocv3.ProcessingRequest))
		var in incoming
		werr := in.parse(c.raw)
		if (perr == nil) != c.ok || (werr == nil) != c.ok {
			t.Errorf("%s: proto.Unmarshal says %v, the wire parse %v; want ok %v", c.name, perr, werr, c.ok)
		}
	}
}

// FuzzWireRequest: for arbitrary bytes, wherever proto.Unmarshal accepts them the wire parse
// reads exactly what the generated code decodes.
func FuzzWireRequest(f *testing.F) {
	for _, raw := range requestSeeds(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := checkParse(raw); err != nil {
			t.Fatal(err)
		}
	})
}
