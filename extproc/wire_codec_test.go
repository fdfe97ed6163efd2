package extproc

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc/internal/wire"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// TestCodecSharedServer: with ServerCodecOption installed, every service of the grpc.Server
// works: gRPC health (unary Check and the server-streaming Watch) beside ext_proc streams, run
// concurrently, with and without gzip, answers small (pooled buffer, or a constant shared by
// every stream) and large (past the pooled buffers' size), each decoded by a client using
// gRPC's generic proto codec. Under -race it also shows that the constant answers' shared
// buffers and the pooled ones are never written while gRPC holds them.
func TestCodecSharedServer(t *testing.T) {
	noLeaks(t)
	lp, err := LoadConfig("bench.json", []byte(benchConfig))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(ServerCodecOption())
	extprocv3.RegisterExternalProcessorServer(gs, NewServer(NewPolicyHolder(lp), ServerOptions{Logger: discardLogger()}))
	hs := health.NewServer()
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	served := make(chan struct{})
	go func() { _ = gs.Serve(lis); close(served) }()
	defer func() {
		hs.Shutdown() // ends the Watch stream
		gs.GracefulStop()
		<-served
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx := t.Context()

	hc := healthpb.NewHealthClient(conn)
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: extprocv3.ExternalProcessor_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Watch: %v, %v; want SERVING", r, err)
	}

	// A preflight asking for a long header list: S3 echoes it, so the answer outgrows the
	// pooled 4 KiB buffers.
	longHeaders := strings.TrimSuffix(strings.Repeat("x-amz-meta-field,", 600), ",")
	cases := []struct {
		name string
		c    casetable.Case
		want func(casetable.Response) bool
	}{
		{"preflight", casetable.Case{Request: benchPreflight}, func(r casetable.Response) bool {
			return r.Status == 200 && len(r.Values("access-control-allow-origin")) == 1
		}},
		{"long preflight", casetable.Case{Request: casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/k",
			Headers: []casetable.Header{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "PUT"},
				{"Access-Control-Request-Headers", longHeaders}}}}, func(r casetable.Response) bool {
			ah := r.Values("access-control-allow-headers")
			return r.Status == 200 && len(ah) == 1 && len(ah[0]) > wire.AnswerBufferSize && strings.Count(ah[0], "x-amz-meta-field") == 600
		}},
		{"decorated", casetable.Case{Request: casetable.Request{Method: "GET", Authority: "store.local", Path: "/site/k",
			Headers: []casetable.Header{{"Origin", "https://app.example.com"}}}}, func(r casetable.Response) bool {
			return r.ReachedUpstream && len(r.Values("access-control-allow-origin")) == 1
		}},
		{"pass-through", casetable.Case{Request: casetable.Request{Method: "GET", Authority: "store.local", Path: "/"}}, func(r casetable.Response) bool {
			return r.ReachedUpstream && len(r.Values("access-control-allow-origin")) == 0
		}},
	}

	var wg sync.WaitGroup
	errs := make(chan string, 256)
	for w := range 6 {
		wg.Go(func() {
			var opts []grpc.CallOption
			if w%2 == 1 {
				opts = append(opts, grpc.UseCompressor(gzip.Name))
			}
			client := extprocv3.NewExternalProcessorClient(conn)
			for i := range 20 {
				if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, opts...); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					errs <- fmt.Sprintf("health Check: %v, %v; want SERVING", r, err)
				}
				c := cases[(w+i)%len(cases)]
				st, err := client.Process(ctx, opts...)
				if err != nil {
					errs <- c.name + ": " + err.Error()
					continue
				}
				got, err := extproctest.Envoy{AllowModeOverride: true}.Exchange(st, c.c)
				if err != nil {
					errs <- c.name + ": " + err.Error()
					continue
				}
				if !c.want(got) {
					errs <- fmt.Sprintf("%s: unexpected answer %d with %d headers", c.name, got.Status, len(got.Headers))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestCodecPooledBufferHeld: a buffer the codec hands gRPC is not handed out again, and so not
// overwritten, until gRPC frees it, however many answers are encoded meanwhile; once freed it
// is reused.
func TestCodecPooledBufferHeld(t *testing.T) {
	st := new(stream)
	st.dec = evaluator.Decision{Outcome: evaluator.Reply, Status: 200, Reason: evaluator.ReasonAllowed,
		Headers: []evaluator.Header{{Name: "Access-Control-Allow-Origin", Value: "https://first.example"}}}
	st.immediateResponse()
	held, err := testCodec.Marshal(&st.out)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(st.buf)
	for i := range 100 {
		st.dec.Headers[0].Value = strings.Repeat("o", i)
		st.immediateResponse()
		data, err := testCodec.Marshal(&st.out)
		if err != nil {
			t.Fatal(err)
		}
		if got := held.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("a held answer changed after %d more answers:\n%x\nwant\n%x", i+1, got, want)
		}
		data.Free()
	}
	held.Free()
}

// TestWireLargeAnswers: answers around every size boundary of the encoding (one- to three-byte
// lengths, the pooled buffers' capacity) equal the typed messages and cross the codec intact.
func TestWireLargeAnswers(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70_000} {
		for _, body := range []int{0, n} {
			d := &evaluator.Decision{Outcome: evaluator.Reply, Status: 403, Reason: evaluator.ReasonNotAllowed,
				Headers: []evaluator.Header{
					{Name: "Access-Control-Allow-Headers", Value: strings.Repeat("h", n)},
					{Name: "Vary", Value: "Origin"},
				},
				Body: bytes.Repeat([]byte{'b'}, body)}
			if err := checkWire(d, extproctest.ResponseHeaders([]casetable.Header{{"vary", strings.Repeat("v", n)}}).GetResponseHeaders()); err != nil {
				t.Errorf("header of %d bytes, body of %d: %v", n, body, err)
			}
		}
	}
	// Every answer length from well below to well above the pooled buffers' capacity.
	st := new(stream)
	st.dec = evaluator.Decision{Outcome: evaluator.Reply, Status: 200, Reason: evaluator.ReasonAllowed,
		Headers: []evaluator.Header{{Name: "Access-Control-Allow-Origin", Value: "*"}}}
	seen := map[bool]bool{}
	for n := wire.AnswerBufferSize - 80; n < wire.AnswerBufferSize+20; n++ {
		st.dec.Body = bytes.Repeat([]byte{'x'}, n)
		st.immediateResponse()
		seen[len(st.buf) == wire.AnswerBufferSize] = true
		got, err := decodeSent(&st.out)
		if err != nil {
			t.Fatalf("body of %d bytes (answer %d): %v", n, len(st.buf), err)
		}
		if !proto.Equal(got, typedImmediateResponse(&st.dec)) {
			t.Fatalf("body of %d bytes (answer %d): decoded to a different message", n, len(st.buf))
		}
	}
	if !seen[true] {
		t.Error("no answer of exactly wire.AnswerBufferSize bytes was tried")
	}
}

// TestStreamDropsLargeAnswer: a pooled stream keeps no oversized answer (maxPooledBuffer),
// neither in its buffer nor in its response, even after a codec other than
// ServerCodecOption's has made the answer its message's unknown fields (which
// wire.TestWireResponseReleasesAnswer covers from the other side).
func TestStreamDropsLargeAnswer(t *testing.T) {
	st := new(stream)
	st.dec = evaluator.Decision{Outcome: evaluator.Reply, Status: 200, Reason: evaluator.ReasonAllowed,
		Headers: []evaluator.Header{{Name: "Access-Control-Allow-Headers", Value: strings.Repeat("h", 2*maxPooledBuffer)}}}
	st.immediateResponse()
	data, err := encoding.GetCodecV2(grpcproto.Name).Marshal(&st.out)
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Materialize(); !bytes.Equal(got, st.buf) {
		t.Fatalf("the proto codec sent %d bytes, want the %d of the answer", len(got), len(st.buf))
	}
	data.Free()
	st.reset()
	if st.buf != nil {
		t.Fatalf("reset kept a %d-byte buffer", cap(st.buf))
	}
	if n := len(st.out.Bytes()); n > 0 {
		t.Errorf("the pooled stream keeps a %d-byte answer in its response", n)
	}
}
