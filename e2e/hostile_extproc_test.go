package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/extprocd"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/wasmhost"
)

// extprocServer is an ext_proc server on a loopback port and a client connected to it.
type extprocServer struct {
	addr    string
	server  *extproc.Server
	metrics *extprocd.Metrics
	holder  *extproc.PolicyHolder
	grpc    *grpc.Server
	conn    *grpc.ClientConn
	client  extprocv3.ExternalProcessorClient
}

// startExtproc serves cfg over real gRPC on 127.0.0.1 until the test ends.
func startExtproc(t testing.TB, cfg []byte) *extprocServer {
	t.Helper()
	s := listenExtproc(t, cfg)
	s.dial(t)
	t.Cleanup(func() {
		_ = s.conn.Close()
		s.grpc.Stop()
	})
	return s
}

// listenExtproc serves cfg over gRPC on a loopback port, without a client.
func listenExtproc(t testing.TB, cfg []byte) *extprocServer {
	t.Helper()
	lp, err := extproc.LoadConfig("config.json", cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &extprocServer{addr: lis.Addr().String(), holder: extproc.NewPolicyHolder(lp)}
	s.serve(t, lis)
	return s
}

func (s *extprocServer) serve(t testing.TB, lis net.Listener) {
	s.metrics = extprocd.NewMetrics()
	s.server = extproc.NewServer(s.holder, extproc.ServerOptions{Logger: slog.New(slog.DiscardHandler), Observer: s.metrics})
	s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), extproc.ServerCodecOption())
	extprocv3.RegisterExternalProcessorServer(s.grpc, s.server)
	go func() { _ = s.grpc.Serve(lis) }()
}

func (s *extprocServer) dial(t testing.TB) {
	t.Helper()
	conn, err := grpc.NewClient(s.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	s.conn, s.client = conn, extprocv3.NewExternalProcessorClient(conn)
}

// envoyRequestHeaders is the request_headers message Envoy sends for r: pseudo-headers, then
// the headers in order with lower-case keys (Envoy's header map: a repeated O(1) header folded
// into one entry, other repeats as separate entries), every value in raw_value, so any byte
// reaches the server.
func envoyRequestHeaders(r hostileRequest) *extprocv3.ProcessingRequest {
	hs := []*corev3.HeaderValue{
		{Key: ":authority", RawValue: []byte(r.authority)},
		{Key: ":path", RawValue: []byte(r.path)},
		{Key: ":method", RawValue: []byte(r.method)},
		{Key: ":scheme", RawValue: []byte("http")},
	}
	for _, h := range r.headerMap() {
		hs = append(hs, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true},
	}}
}

// envoyResponseHeaders is the response_headers message Envoy sends for a store's 200 with hs,
// a repeated O(1) header (Access-Control-*, Vary, ...) folded into one entry as in Envoy's map.
func envoyResponseHeaders(hs []casetable.Header) *extprocv3.ProcessingRequest {
	in := wasmhost.Headers{{":status", "200"}}
	for _, h := range hs {
		in = append(in, [2]string(h))
	}
	m := &corev3.HeaderMap{}
	for _, h := range wasmhost.ResponseHeaderMap(in) {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: m},
	}}
}

// extprocExchange plays Envoy's ext_proc filter (allow_mode_override: true, response headers
// SEND, no bodies) for one request, with the fake upstream answering upstream, and returns what
// the client would see.
func extprocExchange(ctx context.Context, client extprocv3.ExternalProcessorClient, r hostileRequest, upstream []casetable.Header) (casetable.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.Process(ctx)
	if err != nil {
		return casetable.Response{}, fmt.Errorf("opening the stream: %w", err)
	}
	if err := st.Send(envoyRequestHeaders(r)); err != nil {
		return casetable.Response{}, fmt.Errorf("sending request_headers: %w", streamError(st, err))
	}
	resp, err := st.Recv()
	if err != nil {
		return casetable.Response{}, fmt.Errorf("awaiting the request_headers answer: %w", err)
	}
	switch m := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		ir := m.ImmediateResponse
		got := casetable.Response{Status: int(ir.GetStatus().GetCode()), Body: ir.GetBody()}
		for _, h := range ir.GetHeaders().GetSetHeaders() {
			got.Headers = append(got.Headers, casetable.Header{h.GetHeader().GetKey(), headerValueOf(h.GetHeader())})
		}
		return got, drainStream(st)
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if mut := m.RequestHeaders.GetResponse().GetHeaderMutation(); mut != nil {
			return casetable.Response{}, fmt.Errorf("the request was mutated: %v", mut)
		}
	default:
		return casetable.Response{}, fmt.Errorf("unexpected answer to request_headers: %T", m)
	}
	headers := append([]casetable.Header(nil), upstream...)
	if resp.GetModeOverride().GetResponseHeaderMode() != filterv3.ProcessingMode_SKIP {
		if err := st.Send(envoyResponseHeaders(upstream)); err != nil && !errors.Is(err, io.EOF) {
			return casetable.Response{}, fmt.Errorf("sending response_headers: %w", streamError(st, err))
		}
		resp, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF):
			// The server closed the stream: no further processing, headers unchanged.
		case err != nil:
			return casetable.Response{}, fmt.Errorf("awaiting the response_headers answer: %w", err)
		default:
			rh, ok := resp.GetResponse().(*extprocv3.ProcessingResponse_ResponseHeaders)
			if !ok {
				return casetable.Response{}, fmt.Errorf("unexpected answer to response_headers: %T", resp.GetResponse())
			}
			headers = applyMutation(headers, rh.ResponseHeaders.GetResponse().GetHeaderMutation())
		}
	}
	if err := drainStream(st); err != nil {
		return casetable.Response{}, err
	}
	return casetable.Response{Status: 200, Headers: headers, Body: []byte(casetable.UpstreamBody), ReachedUpstream: true}, nil
}

func headerValueOf(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return h.GetValue()
}

// applyMutation applies a header mutation as Envoy's ext_proc mutation utils do: removals
// first, then each set with its append action.
func applyMutation(hs []casetable.Header, m *extprocv3.HeaderMutation) []casetable.Header {
	for _, name := range m.GetRemoveHeaders() {
		out := hs[:0]
		for _, h := range hs {
			if !strings.EqualFold(h[0], name) {
				out = append(out, h)
			}
		}
		hs = out
	}
	for _, o := range m.GetSetHeaders() {
		key, value := strings.ToLower(o.GetHeader().GetKey()), headerValueOf(o.GetHeader())
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			out := hs[:0]
			for _, h := range hs {
				if !strings.EqualFold(h[0], key) {
					out = append(out, h)
				}
			}
			hs = append(out, casetable.Header{key, value})
		default:
			hs = append(hs, casetable.Header{key, value})
		}
	}
	return hs
}

// streamError is the status behind a failed Send: grpc-go answers io.EOF there and leaves the
// stream's status to Recv.
func streamError(st extprocv3.ExternalProcessor_ProcessClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := st.Recv(); rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return err
			}
			return rerr
		}
	}
}

// drainStream half-closes the stream and waits for the server to end it.
func drainStream(st extprocv3.ExternalProcessor_ProcessClient) error {
	if err := st.CloseSend(); err != nil {
		return fmt.Errorf("closing the stream: %w", err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("ending the stream: %w", err)
		}
	}
}

// TestHostileExtproc sends the corpus to the ext_proc server over loopback gRPC: every answer
// keeps the invariants and equals the evaluator's.
func TestHostileExtproc(t *testing.T) {
	cfg, pol := hostilePolicy(t)
	s := startExtproc(t, cfg)
	var d evaluator.Decision
	for _, c := range hostileCases() {
		got, err := extprocExchange(t.Context(), s.client, c.req, hostileUpstream)
		checkHostileAnswer(t, "ext_proc", pol, &d, c, got, err)
	}
	if n := s.server.ActiveStreams(); n != 0 {
		t.Errorf("%d streams still open after every exchange ended", n)
	}
}

// allocatedPerCall is the mean number of heap bytes the whole process allocates per call of
// f, after one warm-up call.
func allocatedPerCall(t testing.TB, runs int, f func()) uint64 {
	t.Helper()
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestHostileExtprocUpstreamHeaders: a store answering thousands of Access-Control-* headers of
// its own gets every one removed, and S3's set once.
func TestHostileExtprocUpstreamHeaders(t *testing.T) {
	s := startExtproc(t, hostileConfig(t))
	upstream := append([]casetable.Header(nil), hostileUpstream...)
	for i := range 2000 {
		upstream = append(upstream, casetable.Header{fmt.Sprintf("access-control-x-%05d", i), "v"}, casetable.Header{"access-control-allow-origin", evilOrigin})
	}
	got, err := extprocExchange(t.Context(), s.client, actualRequest("GET", "/site/k", "origin", appOrigin), upstream)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range got.Headers {
		if strings.HasPrefix(h[0], "access-control-x-") || h[1] == evilOrigin || h[1] == "https://upstream.invalid" {
			t.Fatalf("upstream header %s: %s was not removed", h[0], h[1])
		}
	}
	if v := got.Values("access-control-allow-origin"); len(v) != 1 || v[0] != appOrigin {
		t.Fatalf("Access-Control-Allow-Origin %q, want %q once", v, appOrigin)
	}
}
