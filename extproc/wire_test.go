package extproc

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc/internal/wire"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// The typed answers below are the reference the hand encoding (extproc/internal/wire) must equal: the
// messages the server built, and proto.Marshal encoded, before it wrote wire bytes itself.

// typedImmediateResponse is S3's reply for a preflight as messages.
func typedImmediateResponse(d *evaluator.Decision) *extprocv3.ProcessingResponse {
	ir := &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
		Details: d.Reason.ReplyDetails(),
	}
	if len(d.Body) > 0 {
		ir.Body = bytes.Clone(d.Body)
	}
	var set []*corev3.HeaderValueOption
	for _, h := range d.Headers {
		if key, ok := wireKey(h.Name); ok {
			set = append(set, typedOption(key, h.Value))
		}
	}
	if len(set) > 0 {
		ir.Headers = &extprocv3.HeaderMutation{SetHeaders: set}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}}
}

func typedOption(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func headerValue(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return h.GetValue()
}

// typedResponseHeaders is the answer to the upstream's response headers h as messages: the
// Decision's response plan, applied with typed messages.
func typedResponseHeaders(d *evaluator.Decision, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	pl := d.Response()
	var remove, vary []string
	for _, u := range h.GetHeaders().GetHeaders() {
		key := u.GetKey()
		if hasUpper(key) {
			key = strings.ToLower(key)
		}
		switch pl.Edit(key) {
		case evaluator.RemoveHeader:
			if !contains(remove, key) {
				remove = append(remove, key)
			}
		case evaluator.MergeHeader:
			vary = append(vary, headerValue(u))
		}
	}
	var set []*corev3.HeaderValueOption
	for _, dh := range pl.Set {
		if key, ok := wireKey(dh.Name); ok {
			set = append(set, typedOption(key, dh.Value))
		}
	}
	if pl.Vary {
		set = append(set, typedOption("vary", evaluator.MergeVary(vary)))
		if len(vary) > 0 {
			remove = append(remove, "vary")
		}
	}
	common := &extprocv3.CommonResponse{}
	if len(remove) > 0 || len(set) > 0 {
		common.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
		ResponseHeaders: &extprocv3.HeadersResponse{Response: common},
	}}
}

var (
	typedContinue = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{},
	}}
)

// sentBytes is what goes on the wire for m, a message the server handed to SendMsg: what
// ServerCodecOption's codec makes of it. For a *wire.Response it also checks that gRPC's own
// proto codec (a grpc.Server without the option) makes the same bytes.
func sentBytes(m any) ([]byte, error) {
	data, err := testCodec.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := data.Materialize()
	data.Free()
	if w, ok := m.(*wire.Response); ok {
		if !bytes.Equal(b, w.Bytes()) {
			return nil, fmt.Errorf("codec sent %x for a wire response of %x", b, w.Bytes())
		}
		data, err := encoding.GetCodecV2(grpcproto.Name).Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("proto codec: %w", err)
		}
		if pb := data.Materialize(); !bytes.Equal(pb, b) {
			return nil, fmt.Errorf("proto codec sent %x, the wire codec %x", pb, b)
		}
		data.Free()
	}
	return b, nil
}

var testCodec = wire.Codec()

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
func wireIncoming(t testing.TB, m *extprocv3.ProcessingRequest) *wire.Incoming {
	t.Helper()
	var w wire.Request
	if err := feedRequest(m, &w); err != nil {
		t.Fatal(err)
	}
	return w.Received()
}

// decodeSent is the message a client receives for m: the bytes of sentBytes, unmarshalled.
func decodeSent(m any) (*extprocv3.ProcessingResponse, error) {
	b, err := sentBytes(m)
	if err != nil {
		return nil, err
	}
	resp := new(extprocv3.ProcessingResponse)
	if err := proto.Unmarshal(b, resp); err != nil {
		return nil, fmt.Errorf("unmarshalling the answer %x: %w", b, err)
	}
	return resp, nil
}

// sameAsTyped checks that the hand-encoded answer m equals the typed one: it unmarshals to an
// equal message, and its bytes are those of proto.Marshal (deterministic).
func sameAsTyped(m any, want *extprocv3.ProcessingResponse) error {
	got, err := decodeSent(m)
	if err != nil {
		return err
	}
	if !proto.Equal(got, want) {
		return fmt.Errorf("hand-encoded answer decodes to\n%v\nwant\n%v", got, want)
	}
	b, _ := sentBytes(m)
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, wantBytes) {
		return fmt.Errorf("hand-encoded answer is\n%x\nproto.Marshal gives\n%x", b, wantBytes)
	}
	return nil
}

// checkWire encodes d's answers by hand in a fresh stream and compares each with the typed
// answer: the reply for a Reply, and, whatever the outcome (the encoding does not depend on
// it), the response-headers mutation for upstream.
func checkWire(d *evaluator.Decision, upstream *extprocv3.HttpHeaders) error {
	var req wire.Request
	if err := feedRequest(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: upstream}}, &req); err != nil {
		return err
	}
	in := req.Received()
	st := new(stream)
	st.dec = *d
	if d.Outcome == evaluator.Reply {
		st.immediateResponse()
		if err := sameAsTyped(&st.out, typedImmediateResponse(d)); err != nil {
			return fmt.Errorf("immediate response: %w", err)
		}
	}
	st.responseHeaders(in.Headers)
	if err := sameAsTyped(&st.out, typedResponseHeaders(d, upstream)); err != nil {
		return fmt.Errorf("response headers: %w", err)
	}
	// Again in the same stream, as a pooled stream is reused: nothing may leak through.
	st.reset()
	st.dec = *d
	if d.Outcome == evaluator.Reply {
		st.immediateResponse()
		if err := sameAsTyped(&st.out, typedImmediateResponse(d)); err != nil {
			return fmt.Errorf("immediate response, reused stream: %w", err)
		}
	}
	return nil
}

// TestWireMatchesTyped: for every case of the shared table, the hand-encoded answers equal the
// typed messages, byte for byte.
func TestWireMatchesTyped(t *testing.T) {
	n := 0
	for _, tb := range tables(t) {
		lp := tablePolicy(t, tb)
		for _, c := range tb.Cases {
			st := new(stream)
			msg := extproctest.RequestHeaders(c.Request)
			if err := readRequest(wireIncoming(t, msg).Headers, &st.req, &st.scratch); err != nil {
				continue // a case of missing pseudo-headers: no answer to encode
			}
			lp.Policy.Evaluate(&st.req, &st.dec)
			upstream := extproctest.ResponseHeaders(extproctest.UpstreamHeaders(c)).GetResponseHeaders()
			if err := checkWire(&st.dec, upstream); err != nil {
				t.Errorf("%s/%s: %v", tb.File, c.Name, err)
			}
			n++
		}
	}
	if n < 50 {
		t.Fatalf("only %d cases checked", n)
	}
}

// FuzzWireEncoding: for arbitrary decisions (status, reason, headers, body, strip) and
// upstream headers, the hand-encoded answers equal the typed messages byte for byte.
// Header names are valid UTF-8, as proto3 strings must be (proto.Marshal refuses others): the
// evaluator's are S3's ASCII names, and upstream names come from messages gRPC has already
// validated.
func FuzzWireEncoding(f *testing.F) {
	for _, tb := range tablesForFuzz(f) {
		pol, err := evaluator.Load(tb.Config)
		if err != nil {
			continue
		}
		for _, c := range tb.Cases {
			var d evaluator.Decision
			req := evaluator.Request{Method: c.Request.Method, Authority: c.Request.Authority, Path: c.Request.Path}
			req.Origin, req.HasOrigin = c.Request.Get("Origin")
			req.RequestMethod, req.HasRequestMethod = c.Request.Get("Access-Control-Request-Method")
			req.RequestHeaders, req.HasRequestHeaders = c.Request.Get("Access-Control-Request-Headers")
			req.ForwardedHost, req.HasForwardedHost = c.Request.Joined("X-Forwarded-Host")
			req.Forwarded, req.HasForwarded = c.Request.Joined("Forwarded")
			pol.Evaluate(&req, &d)
			var hs, up []string
			for _, h := range d.Headers {
				hs = append(hs, h.Name+"\n"+h.Value)
			}
			for _, h := range extproctest.UpstreamHeaders(c) {
				up = append(up, h[0]+"\n"+h[1])
			}
			f.Add(uint8(d.Outcome), uint8(d.Reason), d.Status, strings.Join(hs, "\n"), d.Body, d.StripUpstream, strings.Join(up, "\n"))
		}
	}
	f.Add(uint8(evaluator.Reply), uint8(200), -1, "", []byte(nil), false, "")
	f.Add(uint8(evaluator.Decorate), uint8(2), 1<<40, "Vary\n\nX\n"+strings.Repeat("v", 300), []byte{}, true, "vary\na\nVary\nb\nAccess-Control-Allow-Origin\n*")
	f.Fuzz(func(t *testing.T, outcome, reason uint8, status int, headers string, body []byte, strip bool, upstream string) {
		d := &evaluator.Decision{
			Outcome: evaluator.Outcome(outcome % 4), Reason: evaluator.Reason(reason), Status: status,
			Body: body, StripUpstream: strip,
		}
		for kv := range pairs(headers) {
			if !utf8.ValidString(kv[0]) {
				return
			}
			d.Headers = append(d.Headers, evaluator.Header{Name: kv[0], Value: kv[1]})
		}
		up := new(extprocv3.HttpHeaders)
		up.Headers = new(corev3.HeaderMap)
		for kv := range pairs(upstream) {
			if !utf8.ValidString(kv[0]) {
				return
			}
			up.Headers.Headers = append(up.Headers.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
		if err := checkWire(d, up); err != nil {
			t.Fatal(err)
		}
	})
}

// pairs yields the (name, value) pairs of s, lines alternating name and value.
func pairs(s string) func(func([2]string) bool) {
	return func(yield func([2]string) bool) {
		if s == "" {
			return
		}
		lines := strings.Split(s, "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			if !yield([2]string{lines[i], lines[i+1]}) {
				return
			}
		}
	}
}

// TestWireRequestPooledHeaders: a request with a great many headers (gRPC lets through 4 MiB,
// some 700 000 minimal headers) must not leave its header list, 48 bytes a header, held by the
// pooled stream for the next request; nor may an upstream answer with as many Vary lines and
// Access-Control-* headers.
func TestWireRequestPooledHeaders(t *testing.T) {
	var hs, up []string
	for i := range 20_000 {
		hs = append(hs, "x-h", "v")
		up = append(up, fmt.Sprintf("access-control-x-%d", i), "v", "vary", "v")
	}
	st := new(stream)
	if err := feedRequest(headers(hs...), &st.in); err != nil {
		t.Fatal(err)
	}
	if n := len(st.in.Received().Headers); n != 20_000 {
		t.Fatalf("read %d headers, want 20000", n)
	}
	if err := feedRequest(respHeaders(up...), &st.in); err != nil {
		t.Fatal(err)
	}
	st.dec = evaluator.Decision{Outcome: evaluator.Decorate, StripUpstream: true,
		Headers: []evaluator.Header{{Name: "Access-Control-Allow-Origin", Value: "*"}, {Name: "Vary", Value: "Origin"}}}
	st.responseHeaders(st.in.Received().Headers)
	if len(st.remove) < 20_000 || len(st.vary) != 20_000 {
		t.Fatalf("the answer removes %d headers and merges %d Vary lines, want 20001 and 20000", len(st.remove), len(st.vary))
	}
	st.reset()
	for name, c := range map[string]int{
		"request headers": cap(st.in.Received().Headers), "headers set": cap(st.set),
		"headers removed": cap(st.remove), "Vary lines": cap(st.vary),
	} {
		if c > maxPooledHeaders {
			t.Errorf("the pooled stream keeps room for %d %s, want at most %d", c, name, maxPooledHeaders)
		}
	}
}

// readRequest reports what else may name the bucket: a host header beside :authority, a
// repeated :authority or host, and every X-Forwarded-Host and Forwarded value joined by ",",
// wherever the repeats stand among the other headers.
func TestReadRequestReportsHosts(t *testing.T) {
	hs := func(kv ...string) []wire.Header {
		var out []wire.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, wire.Header{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	var r evaluator.Request
	var scratch []byte
	for _, c := range []struct {
		name            string
		in              []wire.Header
		host            string
		hasHost, repeat bool
		forwarded       string
	}{
		{"plain", hs(":method", "GET", ":authority", "a.s3.local", ":path", "/k"), "", false, false, ""},
		{"host only stands in for :authority", hs(":method", "GET", "host", "a.s3.local", ":path", "/k"), "a.s3.local", false, false, ""},
		{"host beside :authority", hs(":method", "GET", ":authority", "a.s3.local", "host", "b.s3.local", ":path", "/k"), "b.s3.local", true, false, ""},
		{"repeated :authority", hs(":method", "GET", ":authority", "a.s3.local", ":path", "/k", ":authority", "b.s3.local"), "", false, true, ""},
		{"repeated host", hs(":method", "GET", ":authority", "a", "host", "a", "Host", "b", ":path", "/k"), "a", true, true, ""},
		{"X-Forwarded-Host values joined", hs(":method", "GET", ":authority", "a", "x-forwarded-host", "b", "origin", "o", ":path", "/k", "X-Forwarded-Host", "c"), "", false, false, "b,c"},
		{"Forwarded values joined", hs(":method", "GET", "forwarded", "for=x", ":authority", "a", "x-forwarded-host", "b", "Forwarded", "host=y",
			"origin", "o", "X-Forwarded-Host", "c", ":path", "/k", "forwarded", "host=z"), "", false, false, "b,c"},
	} {
		if err := readRequest(c.in, &r, &scratch); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.name == "host only stands in for :authority" && r.Authority != c.host || c.name != "host only stands in for :authority" && r.Host != c.host ||
			r.HasHost != c.hasHost || r.RepeatedHost != c.repeat || r.ForwardedHost != c.forwarded || r.HasForwardedHost != (c.forwarded != "") {
			t.Errorf("%s: authority %q host %q (%v) repeated %v forwarded %q (%v)", c.name, r.Authority, r.Host, r.HasHost, r.RepeatedHost, r.ForwardedHost, r.HasForwardedHost)
		}
		if c.name == "Forwarded values joined" && (r.Forwarded != "for=x,host=y,host=z" || !r.HasForwarded) {
			t.Errorf("%s: Forwarded %q (%v), want every line joined", c.name, r.Forwarded, r.HasForwarded)
		}
		if strings.HasSuffix(c.name, "values joined") && (r.Origin != "o" || r.Path != "/k") {
			t.Errorf("%s: origin %q path %q: joining moved another value", c.name, r.Origin, r.Path)
		}
	}
}
