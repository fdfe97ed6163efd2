package extproc

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/logcut"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(benchChildEnv); role != "" {
		os.Exit(serveBenchChild(role)) // a server of BenchmarkPreflightSplit's
	}
	goleak.VerifyTestMain(m)
}

// noLeaks fails t if goroutines started during the test outlive it (after its cleanups).
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

const testConfig = `{
  "buckets": {
    "site": {"CORSRules": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"]}]},
    "private": null
  }
}`

func testServer(t testing.TB) (*Server, *testenv.SyncBuffer) {
	t.Helper()
	lp, err := LoadConfig("test.json", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	log, buf := bufferLogger(slog.LevelDebug)
	return NewServer(NewPolicyHolder(lp), ServerOptions{Logger: log, Observer: &countingObserver{}}), buf
}

// headers builds a request_headers message from key/value pairs, values in raw_value.
func headers(kv ...string) *extprocv3.ProcessingRequest {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: m, EndOfStream: true},
	}}
}

func respHeaders(kv ...string) *extprocv3.ProcessingRequest {
	var hs []casetable.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, casetable.Header{kv[i], kv[i+1]})
	}
	return extproctest.ResponseHeaders(hs)
}

// A matched actual request: the stream stays open for the response headers.
var decorateRequest = []string{":method", "GET", ":authority", "store.local", ":path", "/site/a", "origin", "https://app.example.com"}

func mustSend(t *testing.T, c *fakeClient, m *extprocv3.ProcessingRequest) {
	t.Helper()
	if err := c.Send(m); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func mustRecv(t *testing.T, c *fakeClient) *extprocv3.ProcessingResponse {
	t.Helper()
	r, err := c.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return r
}

func TestProtocolErrors(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name string
		msgs []*extprocv3.ProcessingRequest // the last one is the offence
		code codes.Code
		kind ErrorKind
		log  string
	}{
		{"request headers twice", []*extprocv3.ProcessingRequest{headers(decorateRequest...), headers(decorateRequest...)},
			codes.FailedPrecondition, ErrorOutOfOrder, "request_headers received twice"},
		{"no :authority", []*extprocv3.ProcessingRequest{headers(":method", "GET", ":path", "/site/a")},
			codes.InvalidArgument, ErrorMissingHeader, "lack :authority"},
		{"no :path", []*extprocv3.ProcessingRequest{headers(":method", "GET", ":authority", "store.local")},
			codes.InvalidArgument, ErrorMissingHeader, "lack :path"},
		{"no :method", []*extprocv3.ProcessingRequest{headers(":authority", "store.local", ":path", "/site/a")},
			codes.InvalidArgument, ErrorMissingHeader, "lack :method"},
		{"body before request headers", []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{}}}},
			codes.FailedPrecondition, ErrorOutOfOrder, "request_body received before request_headers"},
		{"empty message", []*extprocv3.ProcessingRequest{{}},
			codes.InvalidArgument, ErrorUnknownMessage, "carries no request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, logs := testServer(t)
			// A healthy stream, open across the failing one, must not notice it.
			healthy := startFake(t, srv)
			mustSend(t, healthy, headers(decorateRequest...))
			mustRecv(t, healthy)

			c := startFake(t, srv)
			for i, m := range tt.msgs {
				mustSend(t, c, m)
				if i < len(tt.msgs)-1 {
					mustRecv(t, c)
				}
			}
			wantCode(t, c.wait(), tt.code)
			if got := observed(srv).failures(tt.kind); got != 1 {
				t.Errorf("%s errors counted: %v, want 1", tt.kind, got)
			}
			if l := logs.String(); !strings.Contains(l, "ext_proc protocol error") || !strings.Contains(l, tt.log) {
				t.Errorf("log lacks the protocol error %q:\n%s", tt.log, l)
			}

			mustSend(t, healthy, respHeaders(":status", "200"))
			r := mustRecv(t, healthy)
			if m := r.GetResponseHeaders().GetResponse().GetHeaderMutation(); m == nil || len(m.GetSetHeaders()) == 0 {
				t.Errorf("healthy stream got no decoration after the other stream failed: %v", r)
			}
			if err := healthy.wait(); err != nil {
				t.Errorf("healthy stream ended with %v", err)
			}
		})
	}
}

func TestRequestHeadersValueOrRawValue(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)
	preflight := func(build func(k, v string) *corev3.HeaderValue) *extprocv3.ProcessingResponse {
		t.Helper()
		kv := []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a",
			"origin", "https://app.example.com", "access-control-request-method", "PUT"}
		m := &corev3.HeaderMap{}
		for i := 0; i < len(kv); i += 2 {
			m.Headers = append(m.Headers, build(kv[i], kv[i+1]))
		}
		c := startFake(t, srv)
		mustSend(t, c, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: m}}})
		r := mustRecv(t, c)
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, build := range map[string]func(k, v string) *corev3.HeaderValue{
		"raw_value":       func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} },
		"value":           func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, Value: v} },
		"upper-case keys": func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: strings.ToUpper(k), Value: v} },
	} {
		r := preflight(build)
		ir := r.GetImmediateResponse()
		if ir.GetStatus().GetCode() != 200 {
			t.Errorf("%s: status %v, want 200 (%v)", name, ir.GetStatus().GetCode(), r)
			continue
		}
		got := map[string]string{}
		for _, o := range ir.GetHeaders().GetSetHeaders() {
			got[o.GetHeader().GetKey()] = string(o.GetHeader().GetRawValue())
		}
		if got["access-control-allow-origin"] != "https://app.example.com" {
			t.Errorf("%s: access-control-allow-origin = %q", name, got["access-control-allow-origin"])
		}
	}
}

// TestImmediateResponseShape pins what Envoy depends on: every value in raw_value only (Envoy
// rejects a HeaderValue with both), lower-case keys, OVERWRITE_IF_EXISTS_OR_ADD, no
// content-length or connection (Envoy owns them), the details naming the reason.
func TestImmediateResponseShape(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)
	for _, tc := range []struct {
		name    string
		kv      []string
		status  int
		details string
		body    bool
	}{
		{"allowed", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a", "origin", "https://app.example.com", "access-control-request-method", "GET"}, 200, "s3cors_preflight_allowed", false},
		{"no origin", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a", "access-control-request-method", "GET"}, 400, "s3cors_preflight_denied_no_origin", true},
		{"not enabled", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/private/a", "origin", "https://app.example.com", "access-control-request-method", "GET"}, 403, "s3cors_preflight_denied_not_enabled", true},
	} {
		c := startFake(t, srv)
		mustSend(t, c, headers(tc.kv...))
		r := mustRecv(t, c)
		if err := c.wait(); err != nil {
			t.Fatalf("%s: stream ended with %v, want OK right after the reply", tc.name, err)
		}
		ir := r.GetImmediateResponse()
		if ir == nil {
			t.Fatalf("%s: got %v, want an immediate response", tc.name, r)
		}
		if int(ir.GetStatus().GetCode()) != tc.status || ir.GetDetails() != tc.details || (len(ir.GetBody()) > 0) != tc.body {
			t.Errorf("%s: status %v details %q body %d bytes", tc.name, ir.GetStatus().GetCode(), ir.GetDetails(), len(ir.GetBody()))
		}
		if r.GetModeOverride() != nil {
			t.Errorf("%s: immediate response carries a mode_override", tc.name)
		}
		for _, o := range ir.GetHeaders().GetSetHeaders() {
			h := o.GetHeader()
			if h.GetValue() != "" || h.GetKey() != strings.ToLower(h.GetKey()) || o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("%s: header option %v: want a lower-case key, raw_value only, OVERWRITE_IF_EXISTS_OR_ADD", tc.name, o)
			}
			switch h.GetKey() {
			case "content-length", "connection":
				t.Errorf("%s: sends %s, which Envoy owns", tc.name, h.GetKey())
			}
		}
	}
}

// TestModeOverride: streams that need nothing more tell Envoy to skip the response headers
// with an override equal to `{response_header_mode: SKIP}` (so it matches an
// allowed_override_modes entry) and end; matched requests keep the configured mode.
func TestModeOverride(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)
	want := &filterv3.ProcessingMode{ResponseHeaderMode: filterv3.ProcessingMode_SKIP}

	pass := startFake(t, srv) // no bucket
	mustSend(t, pass, headers(":method", "GET", ":authority", "store.local", ":path", "/", "origin", "https://app.example.com"))
	r := mustRecv(t, pass)
	if !proto.Equal(r.GetModeOverride(), want) || r.GetRequestHeaders() == nil {
		t.Errorf("pass-through: got %v, want request_headers CONTINUE with mode_override %v", r, want)
	}
	if err := pass.wait(); err != nil {
		t.Errorf("pass-through stream ended with %v", err)
	}

	deco := startFake(t, srv)
	mustSend(t, deco, headers(decorateRequest...))
	r = mustRecv(t, deco)
	if r.GetModeOverride() != nil || r.GetRequestHeaders() == nil {
		t.Errorf("decorate: got %v, want request_headers CONTINUE without mode_override", r)
	}
	mustSend(t, deco, respHeaders(":status", "200"))
	mustRecv(t, deco)
	if err := deco.wait(); err != nil {
		t.Errorf("decorate stream ended with %v", err)
	}
}

// TestBodyAndTrailersAnsweredContinue: an Envoy whose processing_mode sends bodies or
// trailers keeps working (each is answered CONTINUE), counted and warned about once.
func TestBodyAndTrailersAnsweredContinue(t *testing.T) {
	noLeaks(t)
	srv, logs := testServer(t)
	c := startFake(t, srv)
	mustSend(t, c, headers(decorateRequest...))
	mustRecv(t, c)
	mustSend(t, c, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStream: true}}})
	if r := mustRecv(t, c); r.GetRequestBody() == nil || r.GetRequestBody().GetResponse().GetStatus() != extprocv3.CommonResponse_CONTINUE {
		t.Errorf("request_body answered %v, want request_body CONTINUE", r)
	}
	mustSend(t, c, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}})
	if r := mustRecv(t, c); r.GetRequestTrailers() == nil {
		t.Errorf("request_trailers answered %v, want request_trailers", r)
	}
	mustSend(t, c, respHeaders(":status", "200", "vary", "Accept-Encoding"))
	r := mustRecv(t, c)
	if r.GetResponseHeaders().GetResponse().GetHeaderMutation() == nil {
		t.Errorf("response_headers answered %v, want a mutation", r)
	}
	if err := c.wait(); err != nil {
		t.Errorf("stream ended with %v", err)
	}
	if got := observed(srv).failures(ErrorUnexpectedPhase); got != 2 {
		t.Errorf("unexpected_phase errors = %v, want 2", got)
	}
	if n := strings.Count(logs.String(), "phase s3cors does not use"); n != 1 {
		t.Errorf("misconfiguration warned %d times, want once:\n%s", n, logs)
	}
}

func TestObservabilityModeEndsStream(t *testing.T) {
	noLeaks(t)
	srv, logs := testServer(t)
	c := startFake(t, srv)
	m := headers(decorateRequest...)
	m.ObservabilityMode = true
	mustSend(t, c, m)
	if r, err := c.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, %v; want the stream closed without an answer", r, err)
	}
	if !strings.Contains(logs.String(), "observability_mode") {
		t.Errorf("no warning about observability_mode:\n%s", logs)
	}
}

func TestConnectPassesThrough(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)
	c := startFake(t, srv)
	mustSend(t, c, headers(":method", "CONNECT", ":authority", "site.example:443"))
	r := mustRecv(t, c)
	if r.GetRequestHeaders() == nil || r.GetModeOverride() == nil {
		t.Errorf("CONNECT answered %v, want CONTINUE with mode_override", r)
	}
	if err := c.wait(); err != nil {
		t.Errorf("stream ended with %v", err)
	}
}

// TestConnectDecisionIsItsOwn: a CONNECT on a pooled stream that last decided a matched
// request keeps nothing of that decision; its debug line says no rule, not the previous one.
func TestConnectDecisionIsItsOwn(t *testing.T) {
	srv, logs := testServer(t)
	st := new(stream)
	if _, err := srv.requestHeaders(t.Context(), st, wireIncoming(t, headers(decorateRequest...)).Headers); err != nil {
		t.Fatal(err)
	}
	if st.dec.Outcome != evaluator.Decorate || st.dec.Rule != 0 {
		t.Fatalf("matched request decided %v with rule %d, want decorate with rule 0", st.dec.Outcome, st.dec.Rule)
	}
	st.reset() // as endStream does before the stream goes back to the pool
	before := len(logs.String())
	if _, err := srv.requestHeaders(t.Context(), st, wireIncoming(t, headers(":method", "CONNECT", ":authority", "site.example:443")).Headers); err != nil {
		t.Fatal(err)
	}
	d := &st.dec
	if d.Outcome != evaluator.PassThrough || d.Reason != evaluator.ReasonNotBucket || d.Bucket != "" || d.Key != "" ||
		d.Rule != -1 || d.HeaderSet != -1 || d.Status != 0 || d.Headers != nil || d.Body != nil || d.StripUpstream {
		t.Errorf("CONNECT decision %v/%v bucket %q key %q rule %d header set %d status %d, %d headers, %d body bytes, strip %v: want pass_through/not_bucket and nothing of the previous request's",
			d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule, d.HeaderSet, d.Status, len(d.Headers), len(d.Body), d.StripUpstream)
	}
	line := logs.String()[before:]
	if !strings.Contains(line, "outcome=pass_through") || !strings.Contains(line, "rule=-1") {
		t.Errorf("CONNECT decision line %q, want outcome=pass_through and rule=-1", line)
	}
}

func TestNoPolicyIsUnavailable(t *testing.T) {
	noLeaks(t)
	srv := NewServer(&PolicyHolder{}, ServerOptions{Logger: discardLogger()})
	c := startFake(t, srv)
	mustSend(t, c, headers(decorateRequest...))
	wantCode(t, c.wait(), codes.Unavailable)
}

// TestStreamEnds covers Envoy ending a stream early: half-close before the response (the
// request was reset downstream), and cancellation. Neither is an error of ours.
func TestStreamEnds(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)

	c := startFake(t, srv)
	mustSend(t, c, headers(decorateRequest...))
	mustRecv(t, c)
	_ = c.CloseSend()
	if err := c.wait(); err != nil {
		t.Errorf("half-closed stream: Process returned %v, want nil", err)
	}

	c = startFake(t, srv)
	mustSend(t, c, headers(decorateRequest...))
	mustRecv(t, c)
	c.cancel()
	wantCode(t, c.wait(), codes.Canceled)
	if got := observed(srv).failures(ErrorRecv); got != 0 {
		t.Errorf("a cancelled stream counted as a receive error")
	}
	if n := srv.ActiveStreams(); n != 0 {
		t.Errorf("%d streams still active", n)
	}
}

func TestDecisionsLoggedAndCounted(t *testing.T) {
	noLeaks(t)
	srv, logs := testServer(t)
	c := startFake(t, srv)
	mustSend(t, c, headers(":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a?X-Amz-Signature=0123abcd",
		"origin", "https://evil.example", "access-control-request-method", "GET"))
	mustRecv(t, c)
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	line := logs.String()
	for _, want := range []string{"msg=decision", "bucket=site", "origin=https://evil.example", "method=OPTIONS", "path=/site/a ", "reason=not_allowed", "outcome=reply"} {
		if !strings.Contains(line, want) {
			t.Errorf("decision log lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "X-Amz-Signature") {
		t.Errorf("decision log holds a presigned URL's signature:\n%s", line)
	}
	if got := observed(srv).decisions(evaluator.Reply, evaluator.ReasonNotAllowed); got != 1 {
		t.Errorf("s3cors_decisions_total{outcome=reply,reason=not_allowed} = %v, want 1", got)
	}
}

// TestDecisionLogTracesReplies: a denied preflight's debug line carries what an operator
// needs to find it and see why: the x-amz-request-id the client got, the status, and the
// Access-Control-Request-Method and -Headers the rules were matched against; a hostile value
// is cut and says so; an absent header is left out rather than logged as empty.
func TestDecisionLogTracesReplies(t *testing.T) {
	noLeaks(t)
	lp, err := LoadConfig("test.json", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(testenv.SyncBuffer)
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(NewPolicyHolder(lp), ServerOptions{Logger: log})

	long := strings.Repeat("x-amz-meta-a,", 100) // 1300 bytes
	for _, tc := range []struct {
		name   string
		kv     []string
		status int
		want   map[string]any // attributes expected; nil value: must be absent
	}{
		{"denied", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a",
			"origin", "https://app.example.com", "access-control-request-method", "DELETE", "access-control-request-headers", "x-amz-meta-a"}, 403,
			map[string]any{"outcome": "reply", "reason": "not_allowed", "status": float64(403),
				"access_control_request_method": "DELETE", "access_control_request_headers": "x-amz-meta-a"}},
		{"no request method", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a",
			"origin", "https://app.example.com"}, 400,
			map[string]any{"reason": "missing_request_method", "status": float64(400),
				"access_control_request_method": nil, "access_control_request_headers": nil}},
		{"hostile headers", []string{":method", "OPTIONS", ":authority", "store.local", ":path", "/site/a",
			"origin", "https://app.example.com", "access-control-request-method", "GET", "access-control-request-headers", long}, 200,
			map[string]any{"reason": "allowed", "status": float64(200),
				"access_control_request_headers": long[:logcut.Max] + "... (cut, 1300 bytes)"}},
	} {
		before := len(logs.String())
		c := startFake(t, srv)
		mustSend(t, c, headers(tc.kv...))
		r := mustRecv(t, c)
		if err := c.wait(); err != nil {
			t.Fatal(err)
		}
		var requestID string
		for _, o := range r.GetImmediateResponse().GetHeaders().GetSetHeaders() {
			if o.GetHeader().GetKey() == "x-amz-request-id" {
				requestID = string(o.GetHeader().GetRawValue())
			}
		}
		if requestID == "" || int(r.GetImmediateResponse().GetStatus().GetCode()) != tc.status {
			t.Fatalf("%s: reply %v: want status %d with an x-amz-request-id", tc.name, r, tc.status)
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String()[before:])), &line); err != nil {
			t.Fatalf("%s: want one JSON decision line: %v\n%s", tc.name, err, logs.String()[before:])
		}
		tc.want["request_id"] = requestID
		for k, w := range tc.want {
			got, ok := line[k]
			switch {
			case w == nil && ok:
				t.Errorf("%s: %s = %v, want it absent", tc.name, k, got)
			case w != nil && got != w:
				t.Errorf("%s: %s = %v, want %v", tc.name, k, got, w)
			}
		}
	}
}

func TestBounded(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{strings.Repeat("a", logcut.Max), strings.Repeat("a", logcut.Max)},
		{strings.Repeat("a", logcut.Max+1), strings.Repeat("a", logcut.Max) + "... (cut, 257 bytes)"},
		// A two-byte character straddling the limit is dropped whole, not split.
		{strings.Repeat("a", logcut.Max-1) + "é", strings.Repeat("a", logcut.Max-1) + "... (cut, 257 bytes)"},
	} {
		if got := bounded(tc.in); got != tc.want {
			t.Errorf("bounded(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

// TestResponseHeadersAlone: Envoy sends only the response headers when it answered the request
// itself before the filter chain ran (a codec error); the server lets that reply through
// without granting anything, instead of failing the stream (which Envoy turns into a 500).
func TestResponseHeadersAlone(t *testing.T) {
	noLeaks(t)
	srv, _ := testServer(t)
	c := startFake(t, srv)
	mustSend(t, c, respHeaders(":status", "400", "content-type", "text/plain", "access-control-allow-origin", "*"))
	r := mustRecv(t, c)
	mut := r.GetResponseHeaders().GetResponse().GetHeaderMutation()
	if r.GetResponseHeaders() == nil || len(mut.GetSetHeaders()) != 0 ||
		len(mut.GetRemoveHeaders()) != 1 || mut.GetRemoveHeaders()[0] != "access-control-allow-origin" {
		t.Fatalf("answer %v, want response headers removing access-control-allow-origin and setting nothing", r)
	}
	wantCode(t, c.wait(), codes.OK)
	if got := observed(srv).failures(ErrorOutOfOrder); got != 0 {
		t.Errorf("counted %v out-of-order errors, want 0", got)
	}
}

// TestRequestFieldNames holds requestField's byte switch to the evaluator's header names.
func TestRequestFieldNames(t *testing.T) {
	for f := range evaluator.RequestFields {
		if got := requestField([]byte(f.Name())); got != f {
			t.Errorf("requestField(%q) = %d, want %d", f.Name(), got, f)
		}
	}
	if got := requestField([]byte("x-other")); got != evaluator.RequestFields {
		t.Errorf("requestField(%q) = %d, want none", "x-other", got)
	}
}
