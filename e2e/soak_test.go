package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/gateway"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// The soak: a steady mix of allowed and denied preflights and decorated and undecorated GETs
// and PUTs, through `s3cors serve`'s gateway (the built filter in wasmhost, two worker VMs,
// over loopback HTTP) under each Envoy profile, and through the ext_proc server over loopback
// gRPC. Every answer is checked. Once a second a sample goes to a CSV (series, seconds,
// requests, live Go heap, RSS, largest guest linear memory, p50 and p99 latency of that second)
// that `make plot` draws into docs/soak.png.
//
// `make test` runs a short soak (20,000 requests, no pacing); `make soak` sets S3CORS_SOAK=long:
// 500,000 requests per gateway profile and 1,000,000 through ext_proc, paced at
// S3CORS_SOAK_RATE requests per second (default 1,000, a moderate load for two shared cores),
// with samples in build/soak.csv. Neither asserts anything about time: only correctness, no
// trap, and memory flat after warm-up within generous bounds.

// soakPlan is how much load each series gets.
type soakPlan struct {
	gatewayRequests int // per profile
	extprocRequests int
	rate            int // requests per second per series; 0 is as fast as the workers go
	workers         int
	csv             string
}

func soakPlanFor(t *testing.T) soakPlan {
	if os.Getenv("S3CORS_SOAK") != "long" {
		return soakPlan{gatewayRequests: 7000, extprocRequests: 6000, workers: 4, csv: filepath.Join(t.TempDir(), "soak.csv")}
	}
	p := soakPlan{gatewayRequests: 500_000, extprocRequests: 1_000_000, rate: 1000, workers: 8,
		csv: filepath.Join(testenv.RepoRoot(t), "build", "soak.csv")}
	if v := os.Getenv("S3CORS_SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("S3CORS_SOAK_RATE=%q: want a number of requests per second (0: unpaced)", v)
		}
		p.rate = n
	}
	return p
}

// soakRequest is one request of the mix and the answer it must get.
type soakRequest struct {
	name       string
	method     string
	path       string
	headers    []string
	body       []byte
	wantStatus int
	wantACAO   string
}

// hostile is the request as an ext_proc stream carries it (the fake upstream of the hostile
// tests answers it).
func (r soakRequest) hostile() hostileRequest { return actualRequest(r.method, r.path, r.headers...) }

// soakMix is the load, in order; workers walk it round-robin.
func soakMix() []soakRequest {
	put := bytes.Repeat([]byte("s3cors-soak "), 100)
	return []soakRequest{
		{"preflight allowed", "OPTIONS", "/site/obj", []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "x-amz-date, content-type"}, nil, 200, appOrigin},
		{"GET decorated", "GET", "/site/obj", []string{"Origin", appOrigin}, nil, 200, appOrigin},
		{"preflight denied", "OPTIONS", "/site/obj", []string{"Origin", evilOrigin, "Access-Control-Request-Method", "PUT"}, nil, 403, ""},
		{"PUT decorated", "PUT", "/site/put", []string{"Origin", appOrigin, "Content-Type", "text/plain"}, put, 200, appOrigin},
		{"GET denied origin", "GET", "/site/obj", []string{"Origin", evilOrigin}, nil, 200, ""},
		{"preflight any origin", "OPTIONS", "/open/obj", []string{"Origin", evilOrigin, "Access-Control-Request-Method", "DELETE"}, nil, 200, "*"},
		{"GET without Origin", "GET", "/open/obj", nil, nil, 200, ""},
		{"preflight CORS not enabled", "OPTIONS", "/private/obj", []string{"Origin", appOrigin, "Access-Control-Request-Method", "GET"}, nil, 403, ""},
		{"GET missing key, decorated 404", "GET", "/site/missing", []string{"Origin", appOrigin}, nil, 404, appOrigin},
	}
}

// latencies is a log-bucketed histogram of durations (5% wide buckets from 1µs), safe for
// concurrent use and free of allocations, so that recording a million requests does not show
// in the heap being measured.
type latencies struct {
	buckets [512]atomic.Int64
}

const latencyBase = 1.05

func (l *latencies) record(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(int(math.Log(us)/math.Log(latencyBase))+1, len(l.buckets)-1)
	}
	l.buckets[i].Add(1)
}

// quantile is the upper bound, in µs, of the bucket holding the q-th quantile; 0 when empty.
func (l *latencies) quantile(q float64) float64 {
	var total int64
	for i := range l.buckets {
		total += l.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range l.buckets {
		if seen += l.buckets[i].Load(); seen >= rank {
			return math.Round(math.Pow(latencyBase, float64(i)))
		}
	}
	return math.Pow(latencyBase, float64(len(l.buckets)-1))
}

func (l *latencies) reset() {
	for i := range l.buckets {
		l.buckets[i].Store(0)
	}
}

// soakSample is one row of the CSV.
type soakSample struct {
	seconds  float64
	requests int64
	heapLive uint64
	rss      uint64
	guest    uint64
	p50, p99 float64
}

// processMemory reads the live Go heap (as of the last collection, so that garbage not yet
// collected does not count) and the resident set size.
func processMemory() (heapLive, rss uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		heapLive = s[0].Value.Uint64()
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return heapLive, rss
}

// soakRun drives n requests of one series with the plan's workers and pacing; send sends the
// i-th request and returns an error for a wrong or failed answer. guest reports the largest
// guest linear memory (0 for none). It samples once a second and returns the samples.
func soakRun(t *testing.T, p soakPlan, n int, send func(i int) error, guest func() uint64) (samples []soakSample, errs []string, overall *latencies) {
	t.Helper()
	var (
		next     atomic.Int64
		done     atomic.Int64
		perSec   latencies
		all      latencies
		mu       sync.Mutex
		wg       sync.WaitGroup
		start    = time.Now()
		interval time.Duration
	)
	if p.rate > 0 {
		interval = time.Second / time.Duration(p.rate)
	}
	for range p.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if interval > 0 {
					if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
						time.Sleep(wait)
					}
				}
				t0 := time.Now()
				err := send(i)
				d := time.Since(t0)
				perSec.record(d)
				all.record(d)
				done.Add(1)
				if err != nil {
					mu.Lock()
					if len(errs) < 20 {
						errs = append(errs, fmt.Sprintf("request %d: %v", i, err))
					} else if len(errs) == 20 {
						errs = append(errs, "…")
					}
					mu.Unlock()
				}
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	take := func() {
		heap, rss := processMemory()
		samples = append(samples, soakSample{
			seconds: math.Round(time.Since(start).Seconds()*10) / 10, requests: done.Load(),
			heapLive: heap, rss: rss, guest: guest(), p50: perSec.quantile(0.5), p99: perSec.quantile(0.99),
		})
		perSec.reset()
	}
	for {
		select {
		case <-tick.C:
			take()
		case <-finished:
			take()
			return samples, errs, &all
		}
	}
}

// checkFlat asserts memory flat after warm-up, within generous bounds: after the first third
// of the requests, neither the live heap nor the guest memory may grow by half again (plus a
// floor for small values). A leak of even a few bytes per request grows without bound over a
// long soak; GC timing and high-water marks do not.
func checkFlat(t *testing.T, series string, samples []soakSample, total int) {
	t.Helper()
	var warm *soakSample
	for i := range samples {
		if samples[i].requests >= int64(total/3) {
			warm = &samples[i]
			break
		}
	}
	if warm == nil {
		t.Errorf("%s: no sample after warm-up", series)
		return
	}
	var maxHeap, maxGuest uint64
	for _, s := range samples {
		if s.requests >= warm.requests {
			maxHeap, maxGuest = max(maxHeap, s.heapLive), max(maxGuest, s.guest)
		}
	}
	if limit := warm.heapLive + warm.heapLive/2 + 16<<20; maxHeap > limit {
		t.Errorf("%s: live heap grew from %d after warm-up to %d (limit %d)", series, warm.heapLive, maxHeap, limit)
	}
	if limit := warm.guest + warm.guest/2 + 2<<20; maxGuest > limit {
		t.Errorf("%s: guest memory grew from %d after warm-up to %d (limit %d)", series, warm.guest, maxGuest, limit)
	}
}

// soakSummary is one line of the test log for BENCHMARKS.md.
func soakSummary(series string, n int, samples []soakSample, all *latencies) string {
	first, last := samples[0], samples[len(samples)-1]
	return fmt.Sprintf("%s: %d requests in %.0f s (%.0f/s); p50 %.0f µs, p99 %.0f µs; live heap %.1f → %.1f MiB; RSS %.1f → %.1f MiB; guest memory %.1f → %.1f MiB",
		series, n, last.seconds, float64(n)/max(last.seconds, 0.1), all.quantile(0.5), all.quantile(0.99),
		soakMiB(first.heapLive), soakMiB(last.heapLive), soakMiB(first.rss), soakMiB(last.rss), soakMiB(first.guest), soakMiB(last.guest))
}

func soakMiB(b uint64) float64 { return float64(b) / (1 << 20) }

// TestSoak runs the soak (see the top of this file).
func TestSoak(t *testing.T) {
	p := soakPlanFor(t)
	cfg := hostileConfig(t)
	if err := os.MkdirAll(filepath.Dir(p.csv), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p.csv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"series", "seconds", "requests", "heap_live_bytes", "rss_bytes", "guest_memory_bytes", "p50_us", "p99_us"})
	write := func(series string, samples []soakSample) {
		for _, s := range samples {
			_ = w.Write([]string{series, strconv.FormatFloat(s.seconds, 'f', 1, 64), strconv.FormatInt(s.requests, 10),
				strconv.FormatUint(s.heapLive, 10), strconv.FormatUint(s.rss, 10), strconv.FormatUint(s.guest, 10),
				strconv.FormatFloat(s.p50, 'f', 0, 64), strconv.FormatFloat(s.p99, 'f', 0, 64)})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			t.Fatal(err)
		}
	}

	for _, profile := range []wasmhost.Profile{wasmhost.Envoy133, wasmhost.Envoy139} {
		series := "serve/" + string(profile)
		t.Run(series, func(t *testing.T) {
			samples, errs, all := soakGateway(t, p, cfg, profile)
			write(series, samples)
			t.Log(soakSummary(series, p.gatewayRequests, samples, all))
			for _, e := range errs {
				t.Error(e)
			}
			checkFlat(t, series, samples, p.gatewayRequests)
		})
	}
	t.Run("extproc", func(t *testing.T) {
		samples, errs, all := soakExtproc(t, p, cfg)
		write("extproc", samples)
		t.Log(soakSummary("extproc", p.extprocRequests, samples, all))
		for _, e := range errs {
			t.Error(e)
		}
		checkFlat(t, "extproc", samples, p.extprocRequests)
	})
	t.Logf("samples in %s", p.csv)
}

func soakGateway(t *testing.T, p soakPlan, cfg []byte, profile wasmhost.Profile) ([]soakSample, []string, *latencies) {
	pol, err := evaluator.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := s3mem.New(s3mem.Options{Buckets: pol.Config().BucketOrder, VirtualHostSuffixes: pol.Config().Addressing.VirtualHostSuffixes, PathStyle: true})
	for _, b := range []string{"site", "open"} {
		if err := store.Put(b, "obj", []byte("soak object"), "text/plain", nil); err != nil {
			t.Fatal(err)
		}
	}
	addr, g := gwStart(t, cfg, store, func(o *gateway.Options) { o.Profile, o.Workers = profile, 2 })
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: p.workers, DisableCompression: true}}
	defer client.CloseIdleConnections()

	mix := soakMix()
	do := func(i int) error {
		r := mix[i%len(mix)]
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		req, err := http.NewRequest(r.method, base+r.path, body)
		if err != nil {
			return err
		}
		req.Host = "s3.example.test"
		for j := 0; j+1 < len(r.headers); j += 2 {
			req.Header.Set(r.headers[j], r.headers[j+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: reading the body: %w", r.name, err)
		}
		if acao := resp.Header.Values("Access-Control-Allow-Origin"); resp.StatusCode != r.wantStatus || len(acao) > 1 || strings.Join(acao, "") != r.wantACAO {
			return fmt.Errorf("%s: %d, Access-Control-Allow-Origin %q; want %d, %q", r.name, resp.StatusCode, acao, r.wantStatus, r.wantACAO)
		}
		return nil
	}
	guest := func() uint64 {
		var m uint64
		for _, b := range g.Stats().WasmMemoryBytes {
			m = max(m, b)
		}
		return m
	}
	samples, errs, all := soakRun(t, p, p.gatewayRequests, do, guest)

	st := g.Stats()
	t.Logf("gateway: %d requests, %d answered at the proxy, %d reached the store; wasm memory per VM %v", st.Requests, st.AnsweredAtProxy, st.ReachedUpstream, st.WasmMemoryBytes)
	if st.Requests != int64(p.gatewayRequests) {
		t.Errorf("the gateway counted %d requests, %d were sent", st.Requests, p.gatewayRequests)
	}
	if n := st.Wasm["wasmcustom.s3cors.internal_errors"]; n != 0 {
		t.Errorf("the filter counted %d internal errors", n)
	}
	return samples, errs, all
}

func soakExtproc(t *testing.T, p soakPlan, cfg []byte) ([]soakSample, []string, *latencies) {
	pol, err := evaluator.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := startExtproc(t, cfg)
	mix := soakMix()
	want := make([]string, len(mix))
	var d evaluator.Decision
	for i, r := range mix {
		want[i] = answerKey(evaluatorView(pol, r.hostile(), &d))
	}
	do := func(i int) error {
		r := mix[i%len(mix)]
		got, err := extprocExchange(context.Background(), s.client, r.hostile(), hostileUpstream)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		if c := answerKey(got); c != want[i%len(mix)] {
			return fmt.Errorf("%s:\n%s\nwant\n%s", r.name, c, want[i%len(mix)])
		}
		return nil
	}
	samples, errs, all := soakRun(t, p, p.extprocRequests, do, func() uint64 { return 0 })
	testenv.Eventually(t, "every stream closed", func() bool { return s.server.ActiveStreams() == 0 })
	for _, kind := range []string{"recv", "send", "out_of_order", "missing_header", "unknown_message", "no_policy"} {
		if n := counterValue(t, s.metrics, `s3cors_extproc_errors_total{kind="`+kind+`"}`); n != 0 {
			t.Errorf("the server counted %v %s errors", n, kind)
		}
	}
	return samples, errs, all
}
