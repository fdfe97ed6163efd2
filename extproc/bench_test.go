package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/s3cors/s3cors/extproc/extproctest"
	"github.com/s3cors/s3cors/internal/casetable"
)

// floorServer is the do-nothing ext_proc server the benchmarks measure s3cors against: it
// answers request headers with CONTINUE and ends the stream, the least any processor can do
// for a request. Its cost is the gRPC round trip itself.
type floorServer struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (floorServer) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		msg, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if msg.GetRequestHeaders() != nil {
			return srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
				RequestHeaders: &extprocv3.HeadersResponse{},
			}})
		}
	}
}

const benchConfig = `{
  "buckets": {
    "site": {"CORSRules": [
      {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT", "POST"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 3000},
      {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["GET"]}
    ]}
  }
}`

func benchServer(b *testing.B) *Server {
	b.Helper()
	lp, err := LoadConfig("bench.json", []byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	return NewServer(NewPolicyHolder(lp), ServerOptions{Logger: discardLogger()})
}

var benchPreflight = casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/photos/cat.jpg", Headers: []casetable.Header{
	{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "PUT"},
	{"Access-Control-Request-Headers", "content-type,x-amz-meta-owner"},
	{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"}, {"Accept", "*/*"},
}}

// BenchmarkPreflight is a browser preflight through ext_proc over loopback gRPC, one stream
// per request as Envoy opens them: request headers out, the answer back, stream closed. It
// runs s3cors (the answer is S3's full ImmediateResponse) and the do-nothing floor in the
// same run, sequentially (clients=1: latency) and with concurrent streams (clients=8:
// throughput). Reported: req/s, p50 and p99 latency per preflight in µs.
//
// server=paired alternates s3cors and floor streams in one loop, so that both see the same
// machine load (the build machines are shared): its pct-of-floor is s3cors's throughput as a
// percentage of the floor's, the number the 90% target is about.
func BenchmarkPreflight(b *testing.B) {
	msg := extproctest.RequestHeaders(benchPreflight)
	for _, clients := range []int{1, 8} {
		for _, server := range []string{"s3cors", "floor"} {
			b.Run(fmt.Sprintf("server=%s/clients=%d", server, clients), func(b *testing.B) {
				var srv extprocv3.ExternalProcessorServer = floorServer{}
				if server == "s3cors" {
					srv = benchServer(b)
				}
				client := extproctest.Loopback(b, srv)
				lat, inFlight := benchStreams(b, clients, func(int) extprocv3.ExternalProcessorClient { return client }, msg)
				reportLatency(b, append(lat[0], lat[1]...), "", inFlight)
			})
		}
		b.Run(fmt.Sprintf("server=paired/clients=%d", clients), func(b *testing.B) {
			pair := []extprocv3.ExternalProcessorClient{extproctest.Loopback(b, benchServer(b)), extproctest.Loopback(b, floorServer{})}
			lat, inFlight := benchStreams(b, clients, func(i int) extprocv3.ExternalProcessorClient { return pair[i%2] }, msg)
			s3cors, floor := reportLatency(b, lat[0], "s3cors-", inFlight), reportLatency(b, lat[1], "floor-", inFlight)
			if floor > 0 {
				b.ReportMetric(100*s3cors/floor, "pct-of-floor")
			}
		})
	}
}

// oneStream is one HTTP request's ext_proc exchange as Envoy makes it.
func oneStream(ctx context.Context, client extprocv3.ExternalProcessorClient, msg *extprocv3.ProcessingRequest) error {
	st, err := client.Process(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(msg); err != nil {
		return err
	}
	if _, err := st.Recv(); err != nil {
		return err
	}
	_ = st.CloseSend()
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream end: %w", err)
	}
	return nil
}

// benchStreams runs b.N streams, the i-th (per client goroutine) on pick(i), and returns the
// latencies of even and odd picks apart, and how many streams were in flight at once.
func benchStreams(b *testing.B, clients int, pick func(int) extprocv3.ExternalProcessorClient, msg *extprocv3.ProcessingRequest) ([2][]time.Duration, int) {
	ctx := context.Background()
	// Warm the connections so that their set-up is not measured.
	for i := range 2 {
		if err := oneStream(ctx, pick(i), msg); err != nil {
			b.Fatal(err)
		}
	}
	var mu sync.Mutex
	var all [2][]time.Duration
	b.ReportAllocs()
	if clients == 1 {
		i := 0
		for b.Loop() {
			t0 := time.Now()
			if err := oneStream(ctx, pick(i), msg); err != nil {
				b.Fatal(err)
			}
			all[i%2] = append(all[i%2], time.Since(t0))
			i++
		}
		return all, 1
	}
	// RunParallel starts GOMAXPROCS×parallelism goroutines.
	parallelism := max(1, clients/runtime.GOMAXPROCS(0))
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		var lat [2][]time.Duration
		for i := 0; pb.Next(); i++ {
			t0 := time.Now()
			if err := oneStream(ctx, pick(i), msg); err != nil {
				b.Error(err)
				return
			}
			lat[i%2] = append(lat[i%2], time.Since(t0))
		}
		mu.Lock()
		all[0] = append(all[0], lat[0]...)
		all[1] = append(all[1], lat[1]...)
		mu.Unlock()
	})
	return all, parallelism * runtime.GOMAXPROCS(0)
}

// reportLatency reports p50 and p99 of lat in µs and the throughput they imply by Little's
// law: streams in flight (the client goroutines) over the mean stream time. It returns that
// throughput.
func reportLatency(b *testing.B, lat []time.Duration, prefix string, inFlight int) float64 {
	if len(lat) == 0 {
		return 0
	}
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	slices.Sort(lat)
	rate := float64(inFlight) * float64(len(lat)) / total.Seconds()
	b.ReportMetric(rate, prefix+"req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, prefix+"p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, prefix+"p99-µs")
	return rate
}

// scriptStream replays fixed messages to Process and discards its answers: the server's own
// cost per stream, with no transport and no goroutine.
type scriptStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*extprocv3.ProcessingRequest
	next int
}

func (s *scriptStream) Context() context.Context { return s.ctx }
func (s *scriptStream) Send(*extprocv3.ProcessingResponse) error {
	return nil
}
func (s *scriptStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if s.next == len(s.msgs) {
		return nil, io.EOF
	}
	s.next++
	return s.msgs[s.next-1], nil
}

// BenchmarkProcess is one stream through Process with no network: allocations and time per
// stream of the server alone, for each kind of request, including a hostile 1 KB
// Access-Control-Request-Headers.
func BenchmarkProcess(b *testing.B) {
	hugeACRH := strings.TrimSuffix(strings.Repeat("x-amz-meta-field,", 60), ",")
	actual := casetable.Request{Method: "GET", Authority: "store.local", Path: "/site/photos/cat.jpg", Headers: []casetable.Header{{"Origin", "https://app.example.com"}}}
	upstream := respHeaders(":status", "200", "content-type", "image/jpeg", "content-length", "48213", "etag", `"9b2cf535f27731c974343645a3985328"`,
		"vary", "Accept-Encoding", "access-control-allow-origin", "*", "server", "MinIO")
	cases := []struct {
		name string
		msgs []*extprocv3.ProcessingRequest
	}{
		{"preflight-allowed", []*extprocv3.ProcessingRequest{extproctest.RequestHeaders(benchPreflight)}},
		{"preflight-denied", []*extprocv3.ProcessingRequest{extproctest.RequestHeaders(casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/a",
			Headers: []casetable.Header{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}}})}},
		{"preflight-huge-acrh", []*extprocv3.ProcessingRequest{extproctest.RequestHeaders(casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/a",
			Headers: []casetable.Header{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "PUT"}, {"Access-Control-Request-Headers", hugeACRH}}})}},
		{"actual-decorated", []*extprocv3.ProcessingRequest{extproctest.RequestHeaders(actual), upstream}},
		{"pass-through", []*extprocv3.ProcessingRequest{extproctest.RequestHeaders(casetable.Request{Method: "GET", Authority: "store.local", Path: "/"})}},
	}
	srv := benchServer(b)
	ctx := context.Background()
	for _, c := range cases {
		b.Run("case="+c.name, func(b *testing.B) {
			st := &scriptStream{ctx: ctx, msgs: c.msgs}
			b.ReportAllocs()
			for b.Loop() {
				st.next = 0
				if err := srv.Process(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
