package e2e_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/cputime"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// BenchmarkWasmFilterStart is what Envoy does when the plugin configuration arrives, through
// wasmhost in the envoy-1.33 profile with the compiled module cached: a base VM (_initialize),
// a canary VM (_initialize, on_vm_start, on_configure) and one worker VM (the same), so three
// instantiations and two configurations of a config with the given number of buckets. It
// reports the worker's linear memory after configure. (Compiling the module, once per process
// here and once per module load in Envoy, is not included.)
func BenchmarkWasmFilterStart(b *testing.B) {
	module := testenv.ModuleBytes(b)
	for _, buckets := range []int{1, 1000, 10000} {
		config := testenv.StressConfig(buckets)
		start := func(b *testing.B) uint64 { return startFilter(b, module, config) }
		b.Run("buckets="+strconv.Itoa(buckets), func(b *testing.B) {
			start(b) // compiles the module into the shared cache: not part of the measure
			var mem uint64
			cpu := cputime.Process()
			for b.Loop() {
				mem = start(b)
			}
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(mem)/(1<<20), "guest-MiB")
			b.ReportMetric(float64(len(config))/(1<<10), "config-KiB")
		})
	}
}

// startFilter starts the module in wasmhost (envoy-1.33, one worker) with config, the
// compiled module cached, and returns the worker's linear memory after configure.
func startFilter(b *testing.B, module, config []byte) uint64 {
	h, err := wasmhost.New(context.Background(), wasmhost.Options{
		Module: module, Profile: wasmhost.Envoy133, PluginConfig: config,
		CompilationCache: filterCompilation(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	return h.MemoryBytes()[0]
}

// BenchmarkWasmFilter is the cost of one stream through the module in wasmhost (all its
// callbacks: request headers, a local reply or the upstream's response headers, done and
// delete), next to the native evaluator deciding the same request (via=evaluator). Besides
// wall time it reports the process's CPU time per operation (cpu-ns/op), which stays honest on
// a loaded machine.
func BenchmarkWasmFilter(b *testing.B) {
	upstream := wasmhost.Headers{{":status", "200"}, {"content-type", "image/jpeg"},
		{"content-length", "1234"}, {"etag", `"abc"`}, {"access-control-allow-origin", "*"}}
	requests := []struct {
		name    string
		headers wasmhost.Headers
		reply   int
	}{
		{"allowed-preflight", wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"},
			{":path", "/b0/photos/cat.jpg"}, {"origin", "https://a0.example"},
			{"access-control-request-method", "PUT"}, {"access-control-request-headers", "content-type, x-amz-meta-owner"}}, 200},
		{"denied-preflight", wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"},
			{":path", "/b0/photos/cat.jpg"}, {"origin", "https://evil.example"},
			{"access-control-request-method", "DELETE"}}, 403},
		{"decorated-actual", wasmhost.Headers{{":method", "GET"}, {":authority", "s3.internal"},
			{":path", "/b0/photos/cat.jpg"}, {"origin", "https://x.app.example"},
			{"user-agent", "Mozilla/5.0"}, {"accept", "image/*"}}, 0},
	}
	for _, buckets := range []int{1, 1000} {
		config := testenv.StressConfig(buckets)
		h := newFilterHost(b, wasmhost.Envoy133, config)
		pol, err := evaluator.Load(config)
		if err != nil {
			b.Fatal(err)
		}
		for _, rq := range requests {
			prefix := "buckets=" + strconv.Itoa(buckets) + "/req=" + rq.name
			b.Run(prefix+"/via=wasm", func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Process()
				for b.Loop() {
					s := h.NewStream()
					r := s.RequestHeaders(rq.headers, true)
					if rq.reply != 0 {
						if r.Action != wasmhost.Replied || r.Reply.Status != rq.reply {
							b.Fatalf("%s: %s, want a %d reply", rq.name, r.Action, rq.reply)
						}
					} else if rr := s.ResponseHeaders(upstream, true); len(rr.Headers.Values("vary")) != 1 {
						b.Fatalf("%s: response not decorated: %q", rq.name, rr.Headers)
					}
					s.Done()
				}
				b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
			})
			req := evaluatorRequest(rq.headers)
			var d evaluator.Decision
			b.Run(prefix+"/via=evaluator", func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Process()
				for b.Loop() {
					pol.Evaluate(&req, &d)
				}
				b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func evaluatorRequest(hs wasmhost.Headers) evaluator.Request {
	var r evaluator.Request
	r.Method, _ = hs.Get(":method")
	r.Authority, _ = hs.Get(":authority")
	r.Path, _ = hs.Get(":path")
	r.Origin, r.HasOrigin = hs.Get("origin")
	r.RequestMethod, r.HasRequestMethod = hs.Get("access-control-request-method")
	r.RequestHeaders, r.HasRequestHeaders = hs.Get("access-control-request-headers")
	return r
}
