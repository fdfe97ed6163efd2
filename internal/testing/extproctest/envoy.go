// Package extproctest plays Envoy's side of ext_proc, for tests of the s3cors ext_proc server
// over a real gRPC connection or a fake stream: the ext_proc filter (one stream per HTTP
// request, request headers first, response headers only when the processing mode says so),
// sendLocalReply for an ImmediateResponse, the header-mutation rules, and the parts of the
// connection manager and HTTP/1 codec that shape what a client finally sees. Each behaviour
// names the Envoy source it follows. Requests and answers are the shared case table's
// (internal/testing/casetable).
//
// Where it sits: test support (internal/testing), imported by the tests of extproc,
// extproc/internal/wire, internal/extprocd and e2e; it uses casetable and testenv, never
// extproc itself, so it plays Envoy without sharing the server's code.
package extproctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// Stream is the client side of one ext_proc stream: a real gRPC stream, or a fake one.
type Stream interface {
	Send(*extprocv3.ProcessingRequest) error
	Recv() (*extprocv3.ProcessingResponse, error)
	CloseSend() error
}

// Envoy is an emulated Envoy ext_proc filter, configured as RATIONALE.md recommends
// (request and response headers SEND, no bodies, no trailers, failure_mode_allow false).
type Envoy struct {
	// AllowModeOverride is the filter's allow_mode_override: whether a mode_override in the
	// request-headers answer is honoured (ext_proc.cc onReceiveMessage).
	AllowModeOverride bool
}

// UpstreamHeaders are the fake store's response headers for c: 200, the body's type and
// length, then the case's own.
func UpstreamHeaders(c casetable.Case) []casetable.Header {
	hs := []casetable.Header{
		{":status", "200"},
		{"content-type", "text/plain"},
		{"content-length", strconv.Itoa(len(casetable.UpstreamBody))},
	}
	for _, h := range c.Upstream {
		hs = append(hs, casetable.Header{strings.ToLower(h[0]), h[1]})
	}
	return hs
}

// RequestHeaders is the request_headers message Envoy sends for r: pseudo-headers first, then
// the request's headers with lower-case keys, every value in raw_value (Envoy's default since
// envoy.reloadable_features.send_header_raw_value).
func RequestHeaders(r casetable.Request) *extprocv3.ProcessingRequest {
	hs := []*corev3.HeaderValue{
		{Key: ":authority", RawValue: []byte(r.Authority)},
		{Key: ":path", RawValue: []byte(r.Path)},
		{Key: ":method", RawValue: []byte(r.Method)},
		{Key: ":scheme", RawValue: []byte("http")},
	}
	for _, h := range r.Headers {
		hs = append(hs, &corev3.HeaderValue{Key: strings.ToLower(h[0]), RawValue: []byte(h[1])})
	}
	hs = append(hs,
		&corev3.HeaderValue{Key: "x-forwarded-proto", RawValue: []byte("http")},
		&corev3.HeaderValue{Key: "x-request-id", RawValue: []byte("6b1d9a2e-3c4f-4e8a-9d61-0a7b5c2f8e31")})
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true},
	}}
}

// ResponseHeaders is the response_headers message Envoy sends for the upstream's headers hs
// (":status" first), values in raw_value.
func ResponseHeaders(hs []casetable.Header) *extprocv3.ProcessingRequest {
	m := &corev3.HeaderMap{}
	for _, h := range hs {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: m, EndOfStream: false},
	}}
}

// Exchange runs c through the filter over st, a fresh stream, and returns what the client
// sees. An error means the server broke the protocol or ended the stream with an error
// (failure_mode_allow false: the client would get Envoy's status_on_error).
func (e Envoy) Exchange(st Stream, c casetable.Case) (casetable.Response, error) {
	if err := st.Send(RequestHeaders(c.Request)); err != nil {
		return casetable.Response{}, fmt.Errorf("sending request_headers: %w", err)
	}
	resp, err := st.Recv()
	if err != nil {
		// failure_mode_allow false: Envoy answers 500 itself; a test wants to know why.
		return casetable.Response{}, fmt.Errorf("awaiting the request_headers answer: %w", err)
	}
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		got, err := LocalReply(r.ImmediateResponse)
		if err != nil {
			return got, err
		}
		return got, finish(st)

	case *extprocv3.ProcessingResponse_RequestHeaders:
		if err := checkContinue(r.RequestHeaders); err != nil {
			return casetable.Response{}, fmt.Errorf("request_headers answer: %w", err)
		}
		if m := r.RequestHeaders.GetResponse().GetHeaderMutation(); m != nil {
			return casetable.Response{}, fmt.Errorf("request_headers answer mutates the request (%v); s3cors never does", m)
		}
		mode := filterv3.ProcessingMode_SEND // the filter's configured response_header_mode
		if e.AllowModeOverride && resp.GetModeOverride() != nil {
			if m := resp.GetModeOverride().GetResponseHeaderMode(); m != filterv3.ProcessingMode_DEFAULT {
				mode = m
			}
		}
		headers := UpstreamHeaders(c)
		if mode == filterv3.ProcessingMode_SEND {
			headers, err = e.responsePhase(st, headers)
			if err != nil {
				return casetable.Response{}, err
			}
		}
		if err := finish(st); err != nil {
			return casetable.Response{}, err
		}
		return clientView(headers, []byte(casetable.UpstreamBody), true, false)

	default:
		return casetable.Response{}, fmt.Errorf("spurious answer to request_headers: %T", r)
	}
}

// responsePhase sends the upstream's response headers and applies the answer. A stream the
// server has closed means "no further processing" (ext_proc.cc onGrpcClose): the headers pass
// unchanged.
func (e Envoy) responsePhase(st Stream, headers []casetable.Header) ([]casetable.Header, error) {
	if err := st.Send(ResponseHeaders(headers)); err != nil {
		if errors.Is(err, io.EOF) {
			return headers, nil
		}
		return nil, fmt.Errorf("sending response_headers: %w", err)
	}
	resp, err := st.Recv()
	if errors.Is(err, io.EOF) {
		return headers, nil
	}
	if err != nil {
		return nil, fmt.Errorf("awaiting the response_headers answer: %w", err)
	}
	r, ok := resp.GetResponse().(*extprocv3.ProcessingResponse_ResponseHeaders)
	if !ok {
		return nil, fmt.Errorf("spurious answer to response_headers: %T", resp.GetResponse())
	}
	if err := checkContinue(r.ResponseHeaders); err != nil {
		return nil, fmt.Errorf("response_headers answer: %w", err)
	}
	return ApplyMutation(headers, r.ResponseHeaders.GetResponse().GetHeaderMutation(), false)
}

func checkContinue(h *extprocv3.HeadersResponse) error {
	cr := h.GetResponse()
	if s := cr.GetStatus(); s != extprocv3.CommonResponse_CONTINUE {
		return fmt.Errorf("status %v, want CONTINUE", s)
	}
	if cr.GetBodyMutation() != nil || cr.GetTrailers() != nil || cr.GetClearRouteCache() {
		return fmt.Errorf("unexpected body, trailers or route-cache change: %v", cr)
	}
	return nil
}

// finish ends the stream as Envoy does once processing is complete: it half-closes, and the
// server must then end the stream with OK and nothing more.
func finish(st Stream) error {
	_ = st.CloseSend()
	resp, err := st.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("stream ended with %w", err)
	default:
		return fmt.Errorf("spurious message after processing completed: %v", resp)
	}
}

// LocalReply is sendLocalReply (source/common/http/utility.cc prepareLocalReply): the reply
// starts as {:status}, the ImmediateResponse's mutation runs under the permissive immediate
// checker, then a body sets content-length (and content-type text/plain unless set) while an
// empty body removes both.
func LocalReply(ir *extprocv3.ImmediateResponse) (casetable.Response, error) {
	code := int(ir.GetStatus().GetCode())
	if code < 200 { // MutationUtils::isValidHttpStatus
		code = 200
	}
	headers := []casetable.Header{{":status", strconv.Itoa(code)}}
	headers, err := ApplyMutation(headers, ir.GetHeaders(), true)
	if err != nil {
		return casetable.Response{}, fmt.Errorf("immediate response headers: %w", err)
	}
	body := ir.GetBody()
	if len(body) > 0 {
		headers = setHeader(headers, "content-length", strconv.Itoa(len(body)))
		if !hasHeaderKey(headers, "content-type") {
			headers = append(headers, casetable.Header{"content-type", "text/plain"})
		}
	} else {
		headers = removeHeader(headers, "content-length")
		headers = removeHeader(headers, "content-type")
	}
	return clientView(headers, body, false, true)
}

// clientView is what an HTTP/1.1 client receives: the connection manager drops hop-by-hop
// headers (conn_manager_utility.cc mutateResponseHeaders) and, for a 400 local reply, closes
// the connection (conn_manager_impl.cc onLocalReply sets saw_connection_close_); the HTTP/1
// codec writes "content-length: 0" for a response without body or length.
func clientView(headers []casetable.Header, body []byte, reachedUpstream, local bool) (casetable.Response, error) {
	status := 0
	var out []casetable.Header
	for _, h := range headers {
		switch h[0] {
		case ":status":
			status, _ = strconv.Atoi(h[1])
		case "connection", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection":
		default:
			out = append(out, h)
		}
	}
	if local && status == 400 {
		out = append(out, casetable.Header{"connection", "close"})
	}
	if len(body) == 0 && !hasHeaderKey(out, "content-length") && status != 204 && status != 304 {
		out = append(out, casetable.Header{"content-length", "0"})
	}
	return casetable.Response{Status: status, Headers: out, Body: body, ReachedUpstream: reachedUpstream}, nil
}

// ApplyMutation is MutationUtils::applyHeaderMutations (ext_proc/mutation_utils.cc) with
// default mutation_rules (or the permissive immediate-response checker): removals first,
// then sets by append_action; values are read from raw_value, as Envoy does with
// send_header_raw_value on, and a HeaderValue with both value and raw_value is an error.
func ApplyMutation(headers []casetable.Header, m *extprocv3.HeaderMutation, immediate bool) ([]casetable.Header, error) {
	if m == nil {
		return headers, nil
	}
	ignored := func(key string) bool {
		if immediate {
			return false
		}
		// Default HeaderMutationRules: no system (":") headers, no host, no x-envoy-*.
		return strings.HasPrefix(key, ":") || key == "host" || strings.HasPrefix(key, "x-envoy-")
	}
	for _, name := range m.GetRemoveHeaders() {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("invalid character in remove_headers %q", name)
		}
		key := strings.ToLower(name)
		if ignored(key) {
			continue
		}
		headers = removeHeader(headers, key)
	}
	for _, o := range m.GetSetHeaders() {
		h := o.GetHeader()
		if h == nil {
			continue
		}
		if h.GetValue() != "" && len(h.GetRawValue()) > 0 {
			return nil, fmt.Errorf("header %q sets both value and raw_value", h.GetKey())
		}
		key, value := strings.ToLower(h.GetKey()), string(h.GetRawValue())
		if !validHeaderName(key) || strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("invalid character in set_headers %q: %q", key, value)
		}
		if ignored(key) {
			continue
		}
		exists := hasHeaderKey(headers, key)
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			// The zero value: Envoy falls back to the deprecated append field, default false,
			// which overwrites.
			if o.GetAppend().GetValue() { //nolint:staticcheck // Envoy reads the deprecated field here, so must we
				headers = append(headers, casetable.Header{key, value})
			} else {
				headers = setHeader(headers, key, value)
			}
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				headers = append(headers, casetable.Header{key, value})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			headers = setHeader(headers, key, value)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				headers = setHeader(headers, key, value)
			}
		default:
			return nil, fmt.Errorf("invalid append_action %v for %q", o.GetAppendAction(), key)
		}
	}
	return headers, nil
}

// validHeaderName is Envoy's HeaderUtility::headerNameIsValid: an HTTP token, or a
// pseudo-header (":" then a token).
func validHeaderName(name string) bool {
	name = strings.TrimPrefix(name, ":")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		token := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !token {
			return false
		}
	}
	return true
}

func hasHeaderKey(hs []casetable.Header, key string) bool {
	for _, h := range hs {
		if strings.EqualFold(h[0], key) {
			return true
		}
	}
	return false
}

func removeHeader(hs []casetable.Header, key string) []casetable.Header {
	out := hs[:0:0]
	for _, h := range hs {
		if !strings.EqualFold(h[0], key) {
			out = append(out, h)
		}
	}
	return out
}

// setHeader is HeaderMap::setCopy: every value of key goes, one new value is appended.
func setHeader(hs []casetable.Header, key, value string) []casetable.Header {
	return append(removeHeader(hs, key), casetable.Header{key, value})
}

// Loopback serves srv over gRPC on 127.0.0.1 and returns a client, as Envoy's gRPC client
// would be connected; everything is stopped when the test ends.
func Loopback(t testing.TB, srv extprocv3.ExternalProcessorServer, opts ...grpc.ServerOption) extprocv3.ExternalProcessorClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	served := make(chan struct{})
	go func() { _ = gs.Serve(lis); close(served) }()
	t.Cleanup(func() {
		gs.GracefulStop()
		<-served
	})
	return Dial(t, lis.Addr().String())
}

// Dial returns a client of the ext_proc server at addr (host:port, plaintext HTTP/2), closed
// when the test ends.
func Dial(t testing.TB, addr string) extprocv3.ExternalProcessorClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

// Do runs c over a fresh stream of client, as Envoy does for each HTTP request.
func (e Envoy) Do(ctx context.Context, client extprocv3.ExternalProcessorClient, c casetable.Case) (casetable.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.Process(ctx)
	if err != nil {
		return casetable.Response{}, err
	}
	return e.Exchange(st, c)
}
