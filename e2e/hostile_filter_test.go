package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// hostileFilterHost runs the built s3cors.wasm with plugin configuration cfg until the test ends.
func hostileFilterHost(t testing.TB, cfg []byte, opts wasmhost.Options) *wasmhost.Host {
	t.Helper()
	opts.Module = testenv.ModuleBytes(t)
	opts.PluginConfig = cfg
	if opts.CompilationCache == nil {
		opts.CompilationCache = filterCompilation()
	}
	h, err := wasmhost.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("wasmhost.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// requestHeaderMap is r as Envoy's codec hands it to the filter chain.
func requestHeaderMap(r hostileRequest) wasmhost.Headers {
	hs := wasmhost.Headers{
		{":method", r.method}, {":scheme", "http"}, {":authority", r.authority}, {":path", r.path},
	}
	for _, h := range r.headers {
		hs = append(hs, [2]string{h[0], h[1]})
	}
	return hs
}

// wasmExchange drives one request through the filter, callback by callback, with the fake
// upstream answering upstream, and returns what the client sees. A request that reaches the
// upstream must reach it unchanged, and the upstream's body must reach the client unchanged.
func wasmExchange(h *wasmhost.Host, r hostileRequest, upstream []casetable.Header) (casetable.Response, error) {
	s := h.NewStream()
	defer s.Done()
	in := requestHeaderMap(r)
	res := s.RequestHeaders(in, true)
	switch res.Action {
	case wasmhost.Replied:
		return replyView(res.Reply), nil
	case wasmhost.Continue:
	default:
		return casetable.Response{}, fmt.Errorf("request headers: action %v (status %q), want continue or a reply", res.Action, res.Status)
	}
	// Unchanged: as Envoy's codec built it, a repeated Origin folded into one line.
	if want := wasmhost.RequestHeaderMap(in); !sameHeaderMap(res.Headers, want) {
		return casetable.Response{}, fmt.Errorf("the request reached the upstream changed:\n got %q\nwant %q", res.Headers, want)
	}
	resp := wasmhost.Headers{{":status", "200"}}
	for _, u := range upstream {
		resp = append(resp, [2]string{u[0], u[1]})
	}
	res = s.ResponseHeaders(resp, false)
	if res.Action != wasmhost.Continue {
		return casetable.Response{}, fmt.Errorf("response headers: action %v (status %q), want continue", res.Action, res.Status)
	}
	got := casetable.Response{ReachedUpstream: true}
	for _, kv := range res.Headers {
		if kv[0] == ":status" {
			fmt.Sscan(kv[1], &got.Status)
			continue
		}
		got.Headers = append(got.Headers, casetable.Header{kv[0], kv[1]})
	}
	body := s.ResponseBody([]byte(casetable.UpstreamBody), true)
	if body.Action != wasmhost.Continue {
		return casetable.Response{}, fmt.Errorf("response body: action %v, want continue", body.Action)
	}
	got.Body = body.Body
	return got, nil
}

func replyView(rep *wasmhost.Reply) casetable.Response {
	got := casetable.Response{Status: rep.Status, Body: rep.Body}
	for _, kv := range rep.Headers {
		if !strings.HasPrefix(kv[0], ":") {
			got.Headers = append(got.Headers, casetable.Header{kv[0], kv[1]})
		}
	}
	return got
}

// sameHeaderMap compares header maps as Envoy holds them: keys case-insensitively, values
// byte for byte, order and repeats kept (pseudo-headers first).
func sameHeaderMap(got, in wasmhost.Headers) bool {
	var want wasmhost.Headers
	for _, kv := range in {
		if strings.HasPrefix(kv[0], ":") {
			want = append(want, kv)
		}
	}
	for _, kv := range in {
		if !strings.HasPrefix(kv[0], ":") {
			want = append(want, kv)
		}
	}
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.EqualFold(got[i][0], want[i][0]) || got[i][1] != want[i][1] {
			return false
		}
	}
	return true
}

// TestHostileWasm runs the corpus through the built module in wasmhost, under both Envoy
// profiles: every answer keeps the invariants and equals the evaluator's; the VM never traps.
func TestHostileWasm(t *testing.T) {
	cfg, pol := hostilePolicy(t)
	for _, profile := range []wasmhost.Profile{wasmhost.Envoy133, wasmhost.Envoy139} {
		t.Run(string(profile), func(t *testing.T) {
			h := hostileFilterHost(t, cfg, wasmhost.Options{Profile: profile})
			var d evaluator.Decision
			for _, c := range hostileCases() {
				got, err := wasmExchange(h, c.req, hostileUpstream)
				checkHostileAnswer(t, "the wasm filter", pol, &d, c, got, err)
			}
			checkNoTrap(t, h)
			if n := h.Metrics()["wasmcustom.s3cors.internal_errors"]; n != 0 {
				t.Errorf("the filter counted %d internal errors", n)
			}
		})
	}
}

// checkNoTrap fails the test if any worker VM has failed.
func checkNoTrap(t testing.TB, h *wasmhost.Host) {
	t.Helper()
	for i, msg := range h.Failed() {
		if msg != "" {
			t.Errorf("worker %d failed: %s", i, msg)
		}
	}
	for _, e := range h.Logs() {
		if e.Level >= wasmhost.LevelCritical || strings.Contains(e.Message, "panic") {
			t.Errorf("log: %s", e)
		}
	}
}

// TestHostileConfigsWasm: the filter, as Envoy loads it, accepts every configuration of
// testdata/hostile at a limit (and answers with it) and refuses every other one at
// on_configure, logging each problem the evaluator finds.
func TestHostileConfigsWasm(t *testing.T) {
	for _, f := range hostileConfigFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			if f.golden != "" {
				checkRefusedAtStart(t, f.data)
				return
			}
			h := hostileFilterHost(t, f.data, wasmhost.Options{})
			got, err := wasmExchange(h, preflightTo("s3.local", "/limits/k", "origin", "https://r000.example.com", "access-control-request-method", "GET"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(f.name, "at-limit-") && (got.Status != 200 || got.Values("access-control-allow-origin")[0] != "https://r000.example.com") {
				t.Fatalf("preflight allowed by rule 0: %d %q", got.Status, got.Headers)
			}
			checkNoTrap(t, h)
		})
	}
}

// BenchmarkHostileConfigSize measures what a large configuration costs the filter: the time
// to bring the plugin up (checks, base VM, canary and one worker, each compiling the
// configuration) and each worker VM's linear memory afterwards, reported as guest-bytes.
func BenchmarkHostileConfigSize(b *testing.B) {
	// Compile the module once, outside the measurements.
	_ = hostileFilterHost(b, bucketsConfig(b, 1), wasmhost.Options{})
	for _, n := range []int{1, 1000, 4000, 10000} {
		cfg := bucketsConfig(b, n)
		b.Run(fmt.Sprintf("buckets=%d", n), func(b *testing.B) {
			var mem uint64
			for b.Loop() {
				h, err := wasmhost.New(context.Background(), wasmhost.Options{
					Module: testenv.ModuleBytes(b), PluginConfig: cfg, CompilationCache: filterCompilation(),
				})
				if err != nil {
					b.Fatal(err)
				}
				mem = h.MemoryBytes()[0]
				_ = h.Close(context.Background())
			}
			b.ReportMetric(float64(mem), "guest-bytes")
			b.ReportMetric(float64(len(cfg)), "config-bytes")
		})
	}
}
