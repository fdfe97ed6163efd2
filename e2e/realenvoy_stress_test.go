package e2e_test

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// realEnvoyStressStreams is the length of TestRealEnvoyStress per Envoy release: 20,000
// streams in every `go test ./e2e/`, 200,000 under `make soak` (S3CORS_SOAK=long).
func realEnvoyStressStreams() int {
	if os.Getenv("S3CORS_SOAK") == "long" {
		return 200_000
	}
	return 20_000
}

// realEnvoyStressRSSGrowth is how much Envoy's RSS may grow after warm-up: the largest sample
// of the last quarter of the run against the largest of the first quarter after warm-up.
// Generous: V8 and Envoy's allocators keep what they take, and a worker VM's linear memory
// grows in 64 KiB pages; a leak of 200 bytes per stream over 200,000 streams would exceed it.
const realEnvoyStressRSSGrowth = 32 << 10 // KiB

// TestRealEnvoyStress runs TestWasmFilterStress's mix through each real Envoy release with
// envoy/wasm.yaml's filter and s3cors.wasm: a 1,000-bucket configuration, allowed and denied
// preflights, decorated GETs whose store answer merges a Vary (every fourth one of 120 names,
// with 400 more headers of 100 bytes), GETs with 8 KiB cookies and 40 more headers, requests
// for no bucket; four clients at once, two worker VMs, GODEBUG=gctrace=1 in the VMs so that
// completed collection cycles can be counted. On 1.36.2 (no working poll_oneoff, no file
// stat) the module never yields to the Go scheduler, on 1.40.0 it does (filter/abi/gc.go).
// It asserts every answer, no VM failure (no trap in the log, no FAIL_RELOAD reload or
// backoff), the s3cors counters, completed GC cycles, and Envoy's RSS flat after warm-up.
func TestRealEnvoyStress(t *testing.T) {
	module := testenv.Module(t)
	total := realEnvoyStressStreams()
	in := newStressInputs(400) // ~50 KB: under Envoy's default 60 KiB for response headers
	store := startStressStore(t, in)
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			b := wasmBootstrap(t, testenv.StressConfig(1000), module, store)
			b.StaticResources.Listeners[0] = withWasm(t, b.StaticResources.Listeners[0], func(w *httpwasmv3.Wasm) {
				w.Config.GetVmConfig().EnvironmentVariables = &wasmv3.EnvironmentVariables{KeyValues: map[string]string{"GODEBUG": "gctrace=1"}}
			})
			// The huge store answer has over 400 headers; Envoy's default limit is 100.
			for _, c := range b.StaticResources.Clusters {
				if c.GetName() == "s3" {
					c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
						"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": realEnvoyAny(t, &upstreamhttpv3.HttpProtocolOptions{
							CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(1000)},
							UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
								ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}}},
						}),
					}
				}
			}
			p := launchEnvoy(t, e.Path, marshalBootstrap(t, b), 2)
			p.waitLive(t)
			realEnvoyStress(t, p, in, total)
		})
	}
}

func realEnvoyStress(t *testing.T, p *envoyProc, in *stressInputs, total int) {
	addr := p.listeners(t)["s3-0"]
	var (
		next    atomic.Int64
		counts  [stressKinds]atomic.Int64
		mu      sync.Mutex
		errs    []string
		failed  int
		samples = map[int]int64{} // stream index: Envoy's RSS in KiB when it completed
		warm    = total / 5
		every   = total / 20
		wg      sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if failed++; len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	rss0, err := p.rssKiB()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
			defer client.CloseIdleConnections()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				kind := stressKind(i % int(stressKinds))
				counts[kind].Add(1)
				if err := stressOverHTTP(client, addr, in, kind, i); err != "" {
					fail("stream %d (kind %d): %s", i, kind, err)
				}
				if i >= warm && (i-warm)%every == 0 {
					rss, err := p.rssKiB()
					if err != nil {
						fail("RSS: %v", err)
						continue
					}
					mu.Lock()
					samples[i] = rss
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed > 0 {
		t.Errorf("%d of %d streams failed; the first: %s", failed, total, strings.Join(errs, "\n"))
	}

	// No VM failure: Envoy counts none as such; with FAIL_RELOAD a failed VM shows as a reload
	// (or a reload put off) on the next request, and the trap is in the log.
	st := p.stats(t)
	for _, name := range []string{"wasm.s3cors.vm_reload_success", "wasm.s3cors.vm_reload_failure", "wasm.s3cors.vm_reload_backoff"} {
		if st[name] != 0 {
			t.Errorf("%s = %d, want 0: a worker VM failed", name, st[name])
		}
	}
	log := p.log()
	for _, bad := range []string{"Uncaught", "fatal error", "poll_oneoff", "panic", "Failed to reload"} {
		if strings.Contains(log, bad) {
			t.Errorf("envoy log has %q", bad)
		}
	}
	for kind, name := range stressMetric {
		if st[name] != counts[kind].Load() {
			t.Errorf("%s = %d, want %d", name, st[name], counts[kind].Load())
		}
	}
	// The runtime writes each trace line in pieces, one Envoy log line each; a collection's
	// starts with "gc ".
	gcs := len(gcTraceRe.FindAllStringIndex(log, -1))
	if want := max(1, total/12_000); gcs < want {
		t.Errorf("%d GC cycles completed in the worker VMs, want at least %d", gcs, want)
	}

	keys := slices.Sorted(maps.Keys(samples))
	rss := make([]uint64, len(keys))
	for i, k := range keys {
		rss[i] = uint64(samples[k]) << 10
	}
	if len(rss) < 8 {
		t.Fatalf("%d RSS samples", len(rss))
	}
	q := len(rss) / 4
	first, last := slices.Max(rss[:q]), slices.Max(rss[len(rss)-q:])
	t.Logf("%d streams in %v, %d GC cycles; RSS %d MiB before, after warm-up (every %d streams): %s; last quarter max - first quarter max: %+.1f MiB",
		total, elapsed.Round(time.Second), gcs, rss0>>10, every, mib(rss), (float64(last)-float64(first))/(1<<20))
	if last > first+realEnvoyStressRSSGrowth<<10 {
		t.Errorf("Envoy's RSS grew by %.1f MiB after warm-up (bound %d MiB): %s",
			float64(last-first)/(1<<20), realEnvoyStressRSSGrowth>>10, mib(rss))
	}
}

// gcTraceRe matches the first piece of a gctrace line in Envoy's log: "wasm log s3cors
// s3cors-0: gc " (1.36 also names the root id).
var gcTraceRe = regexp.MustCompile(`(?m)wasm log s3cors( s3cors)? s3cors-[0-9]+: gc $`)

// stressOverHTTP sends stream i's request through Envoy and checks the answer as
// TestWasmFilterStress does; it returns what is wrong, or "".
func stressOverHTTP(client *http.Client, addr string, in *stressInputs, kind stressKind, i int) string {
	hs := in.request(kind, i)
	method, _ := hs.Get(":method")
	path, _ := hs.Get(":path")
	authority, _ := hs.Get(":authority")
	req := &http.Request{Method: method, URL: &url.URL{Scheme: "http", Host: addr, Opaque: path},
		Host: authority, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	for _, h := range hs {
		if !strings.HasPrefix(h[0], ":") {
			req.Header.Add(h[0], h[1])
		}
	}
	req.Header.Set(stressStreamHeader, strconv.Itoa(int(kind))+"/"+strconv.Itoa(i))
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err.Error()
	}
	var got wasmhost.Headers
	for k, vs := range resp.Header {
		for _, v := range vs {
			got = append(got, [2]string{strings.ToLower(k), v})
		}
	}
	switch kind {
	case stressAllowed:
		if resp.StatusCode != 200 || len(got.Values("access-control-allow-origin")) != 1 {
			return fmt.Sprintf("allowed preflight: %d %q", resp.StatusCode, filterCORSOnly(got))
		}
	case stressDenied:
		if resp.StatusCode != 403 {
			return fmt.Sprintf("denied preflight: %d", resp.StatusCode)
		}
	default:
		if resp.StatusCode != 200 || string(body) != casetable.UpstreamBody {
			return fmt.Sprintf("%d %q", resp.StatusCode, body)
		}
		return stressCheckResponse(kind, i, got, in.upstream(kind, i), false)
	}
	return ""
}

// stressStreamHeader tells the stress store which stream a request is ("<kind>/<i>").
const stressStreamHeader = "x-s3cors-stress-stream"

// startStressStore answers each stream the stress mix sends to the store with
// stressInputs.upstream and casetable.UpstreamBody; it returns its address.
func startStressStore(t *testing.T, in *stressInputs) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var kind, i int
		if _, err := fmt.Sscanf(r.Header.Get(stressStreamHeader), "%d/%d", &kind, &i); err != nil {
			http.Error(w, "no stream", http.StatusBadRequest)
			return
		}
		for _, h := range in.upstream(stressKind(kind), i)[1:] {
			w.Header().Add(h[0], h[1])
		}
		_, _ = io.WriteString(w, casetable.UpstreamBody)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}
