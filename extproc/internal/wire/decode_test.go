package wire

import (
	"bytes"
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

var testCodec = Codec()

// tables returns the case tables (extproctest.Tables).
func tables(t testing.TB) []casetable.Table { return extproctest.Tables(t) }

// sameIncoming says how got differs from want, "" when it does not.
func sameIncoming(got, want *Incoming) string {
	if got.Kind != want.Kind || got.Observability != want.Observability || len(got.Headers) != len(want.Headers) {
		return fmt.Sprintf("read %s (observability %v, %d headers), want %s (%v, %d)",
			kindNames[got.Kind], got.Observability, len(got.Headers), kindNames[want.Kind], want.Observability, len(want.Headers))
	}
	for i, h := range got.Headers {
		if w := want.Headers[i]; !bytes.Equal(h.Key, w.Key) || !bytes.Equal(h.Value, w.Value) {
			return fmt.Sprintf("header %d is %q: %q, want %q: %q", i, h.Key, h.Value, w.Key, w.Value)
		}
	}
	return ""
}

// checkParse parses raw both ways: with proto.Unmarshal into the generated message, and from
// the wire. Wherever proto.Unmarshal accepts raw, the wire parse must accept it and read the
// same; the wire parse may accept what proto.Unmarshal refuses only inside fields it does not
// read (see Incoming.parse). The wire parse runs first, on every input, so that hostile bytes
// proto.Unmarshal refuses still reach it (a panic there fails the fuzz target).
func checkParse(raw []byte) error {
	var got Incoming
	werr := got.parse(raw)
	var typed extprocv3.ProcessingRequest
	if !protoAccepts(raw, &typed) {
		return nil // the wire parse may accept it or not
	}
	if werr != nil {
		return fmt.Errorf("proto.Unmarshal accepts %x, the wire parse says %w", raw, werr)
	}
	var want Incoming
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
		var in Incoming
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

// Helpers that spell wire bytes by hand, for shapes proto.Marshal never writes.
func wBytes(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func wVarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func wCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// wHeader is a HeaderValue{key, raw_value} and wHeaders an HttpHeaders holding them.
func wHeader(key, raw string) []byte {
	return wCat(wBytes(numHeaderKey, []byte(key)), wBytes(numHeaderRawValue, []byte(raw)))
}

func wHeaders(hvs ...[]byte) []byte {
	var m []byte
	for _, hv := range hvs {
		m = append(m, wBytes(numHeaderMapHeaders, hv)...)
	}
	return wBytes(numHTTPHeadersHeaders, m)
}

// TestWireRequestShapes: wire shapes a protobuf encoder other than Envoy's (or a future Envoy)
// may send, each read as proto.Unmarshal reads it: merges of a message split over several
// occurrences, fields out of order and repeated, unknown fields of every wire type, known field
// numbers with another wire type, non-minimal varints, groups, zero-length values, value vs
// raw_value, and what must be refused.
func TestWireRequestShapes(t *testing.T) {
	method, authority, path := wHeader(":method", "GET"), wHeader(":authority", "a"), wHeader(":path", "/")
	groupOf := func(num protowire.Number, content []byte) []byte {
		return protowire.AppendTag(append(protowire.AppendTag(nil, num, protowire.StartGroupType), content...), num, protowire.EndGroupType)
	}
	unknowns := wCat(
		wVarint(1, 7), // field 1 is reserved in ProcessingRequest
		protowire.AppendFixed32(protowire.AppendTag(nil, 14, protowire.Fixed32Type), 1),
		protowire.AppendFixed64(protowire.AppendTag(nil, 15, protowire.Fixed64Type), 1),
		wBytes(protowire.MaxValidNumber, []byte("x")),
		groupOf(20, wCat(wVarint(1, 0), groupOf(2, wBytes(3, nil)))),
	)
	for _, c := range []struct {
		name    string
		raw     []byte
		kind    Kind
		headers int  // headers read; -1 when proto.Unmarshal refuses the bytes
		obs     bool // observability_mode
	}{
		{"plain", wBytes(2, wHeaders(method, authority, path)), KindRequestHeaders, 3, false},
		{"request_headers split in two occurrences merges",
			wCat(wBytes(2, wHeaders(method)), wBytes(2, wHeaders(authority, path))), KindRequestHeaders, 3, false},
		{"HeaderMap split in two occurrences merges",
			wBytes(2, wCat(wHeaders(method, authority), wHeaders(path))), KindRequestHeaders, 3, false},
		{"oneof changes field and back: the last wins, unmerged",
			wCat(wBytes(2, wHeaders(method)), wBytes(5, nil), wBytes(2, wHeaders(authority, path))), KindRequestHeaders, 2, false},
		{"response_headers after request_headers replaces them",
			wCat(wBytes(2, wHeaders(method, authority)), wBytes(3, wHeaders(path))), KindResponseHeaders, 1, false},
		{"observability_mode before the oneof, fields out of order",
			wCat(wVarint(10, 1), wBytes(3, wHeaders(path))), KindResponseHeaders, 1, true},
		{"observability_mode as a non-minimal varint", wCat(wBytes(2, nil), []byte{10 << 3, 0x81, 0x80, 0x00}), KindRequestHeaders, 0, true},
		{"observability_mode repeated: the last wins", wCat(wVarint(10, 1), wBytes(2, nil), wVarint(10, 0)), KindRequestHeaders, 0, false},
		{"observability_mode as bytes (packed) is unknown", wCat(wBytes(10, []byte{1}), wBytes(2, nil)), KindRequestHeaders, 0, false},
		{"request_headers as a varint is unknown", wCat(wBytes(3, wHeaders(path)), wVarint(2, 1)), KindResponseHeaders, 1, false},
		{"request_headers as a group is unknown", wCat(wBytes(3, nil), groupOf(2, wVarint(1, 1))), KindResponseHeaders, 0, false},
		{"unknown fields of every wire type at every level",
			wCat(unknowns, wBytes(2, wCat(unknowns, wBytes(numHTTPHeadersHeaders, wCat(unknowns,
				wBytes(numHeaderMapHeaders, wCat(unknowns, method, unknowns)))))), unknowns), KindRequestHeaders, 1, false},
		{"HeaderValue fields out of order, repeated: the last wins",
			wBytes(2, wHeaders(wCat(wBytes(numHeaderRawValue, []byte("v1")), wBytes(numHeaderKey, []byte("k1")),
				wBytes(numHeaderKey, []byte("origin")), wBytes(numHeaderRawValue, []byte("v2"))))), KindRequestHeaders, 1, false},
		{"value and raw_value: raw_value wins",
			wBytes(2, wHeaders(wCat(wBytes(numHeaderKey, []byte("k")), wBytes(numHeaderValue, []byte("v")), wBytes(numHeaderRawValue, []byte("r"))))), KindRequestHeaders, 1, false},
		{"value only (an Envoy without send_header_raw_value)",
			wBytes(2, wHeaders(wCat(wBytes(numHeaderKey, []byte("k")), wBytes(numHeaderValue, []byte("v"))))), KindRequestHeaders, 1, false},
		{"zero-length raw_value after a Value: the value stands",
			wBytes(2, wHeaders(wCat(wBytes(numHeaderValue, []byte("v")), wBytes(numHeaderRawValue, nil), wBytes(numHeaderKey, []byte("k"))))), KindRequestHeaders, 1, false},
		{"key as a varint is unknown", wBytes(2, wHeaders(wCat(wVarint(numHeaderKey, 5), wBytes(numHeaderRawValue, []byte("r"))))), KindRequestHeaders, 1, false},
		{"empty HeaderValue", wBytes(2, wHeaders(nil, nil)), KindRequestHeaders, 2, false},
		{"duplicate keys are kept in order", wBytes(2, wHeaders(wHeader("origin", "a"), wHeader("origin", "b"))), KindRequestHeaders, 2, false},
		{"body and trailers are read as their kind only",
			wCat(wBytes(4, wCat(wBytes(1, []byte{0xff}), wVarint(2, 1))), wBytes(7, wHeaders(method))), KindResponseTrailers, 0, false},
		{"nothing", nil, KindNone, 0, false},
		{"unknown fields only", unknowns, KindNone, 0, false},

		{"length past the end", []byte{2<<3 | 2, 5, 0}, KindNone, -1, false},
		{"varint of 11 bytes", append([]byte{10 << 3}, bytes.Repeat([]byte{0xff}, 10)...), KindNone, -1, false},
		{"varint overflowing 64 bits", append(append([]byte{10 << 3}, bytes.Repeat([]byte{0xff}, 9)...), 0x02), KindNone, -1, false},
		{"length of 2^63", append([]byte{2<<3 | 2}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), KindNone, -1, false},
		{"field number 0", []byte{0x02, 0x00}, KindNone, -1, false},
		{"field number above 2^29-1", wCat(wBytes(2, wHeaders(method)), wVarint(protowire.MaxValidNumber+1, 1)), KindNone, -1, false},
		{"field number above 2^29-1 in a header", wBytes(2, wHeaders(wCat(method, wVarint(protowire.MaxValidNumber+1, 1)))), KindNone, -1, false},
		{"stray end group", protowire.AppendTag(nil, 3, protowire.EndGroupType), KindNone, -1, false},
		{"unterminated group", protowire.AppendTag(nil, 3, protowire.StartGroupType), KindNone, -1, false},
		{"end group of another field", protowire.AppendTag(protowire.AppendTag(nil, 3, protowire.StartGroupType), 4, protowire.EndGroupType), KindNone, -1, false},
		{"wire type 6", []byte{2<<3 | 6}, KindNone, -1, false},
		{"truncated inside a header", wBytes(2, wBytes(numHTTPHeadersHeaders, wBytes(numHeaderMapHeaders, []byte{byte(numHeaderKey)<<3 | 2, 9, 'k'}))), KindNone, -1, false},
		{"invalid UTF-8 in a key", wBytes(2, wHeaders(wCat(wBytes(numHeaderKey, []byte{0xc3}), wBytes(numHeaderRawValue, []byte("r"))))), KindNone, -1, false},
		{"invalid UTF-8 in an overwritten value", wBytes(2, wHeaders(wCat(wBytes(numHeaderValue, []byte{0xff}), wBytes(numHeaderValue, []byte("v"))))), KindNone, -1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var typed extprocv3.ProcessingRequest
			perr := proto.Unmarshal(c.raw, &typed)
			var in Incoming
			werr := in.parse(c.raw)
			if c.headers < 0 {
				if perr == nil || werr == nil {
					t.Fatalf("proto.Unmarshal says %v, the wire parse %v; want both to refuse %x", perr, werr, c.raw)
				}
				return
			}
			if perr != nil {
				t.Fatalf("proto.Unmarshal refuses %x: %v", c.raw, perr)
			}
			if err := checkParse(c.raw); err != nil {
				t.Fatal(err)
			}
			if in.Kind != c.kind || len(in.Headers) != c.headers || in.Observability != c.obs {
				t.Fatalf("read %s with %d headers, observability %v; want %s, %d, %v",
					kindNames[in.Kind], len(in.Headers), in.Observability, kindNames[c.kind], c.headers, c.obs)
			}
		})
	}
}

// TestWireRequestDeepGroups: unknown groups nested far beyond protobuf's recursion limit are
// refused, without exhausting the stack, as proto.Unmarshal refuses them.
func TestWireRequestDeepGroups(t *testing.T) {
	const depth = 100_000
	var raw []byte
	for range depth {
		raw = protowire.AppendTag(raw, 20, protowire.StartGroupType)
	}
	for range depth {
		raw = protowire.AppendTag(raw, 20, protowire.EndGroupType)
	}
	var in Incoming
	werr := in.parse(raw)
	perr := proto.Unmarshal(raw, new(extprocv3.ProcessingRequest))
	if werr == nil || perr == nil {
		t.Fatalf("groups nested %d deep: wire parse %v, proto.Unmarshal %v; want both to refuse", depth, werr, perr)
	}
}
