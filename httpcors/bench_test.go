package httpcors_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	chicors "github.com/go-chi/cors"
	rscors "github.com/rs/cors"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/httpcors"
	"github.com/s3cors/s3cors/internal/testing/cputime"
)

// The same single rule for every library: one origin, GET and PUT, two allowed headers,
// ETag exposed, Max-Age 3000, credentials (S3 allows them whenever it echoes the origin).
const benchOrigin = "https://app.example.com"

const benchConfig = `{"buckets": {"site": {"CORSRules": [{
  "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
  "AllowedHeaders": ["content-type", "x-amz-date"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]}}}`

// benchWriter is a ResponseWriter that costs nothing; its header map is cleared, not
// replaced, between requests so that every library starts from the same empty map.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}

func benchRequest(method, origin, acrm, acrh string) *http.Request {
	r, _ := http.NewRequest(method, "http://s3.local/site/photos/cat.jpg", nil)
	r.RequestURI = "/site/photos/cat.jpg"
	r.Header.Set("Origin", origin)
	if acrm != "" {
		r.Header.Set("Access-Control-Request-Method", acrm)
	}
	if acrh != "" {
		r.Header.Set("Access-Control-Request-Headers", acrh)
	}
	return r
}

// hostileACRH is 1 KB of separators and blanks: no header names, maximal parsing work.
var hostileACRH = strings.Repeat(" ,", 512)

var benchShapes = []struct {
	name string
	req  *http.Request
}{
	{"preflight", benchRequest("OPTIONS", benchOrigin, "PUT", "")},
	{"preflight-headers", benchRequest("OPTIONS", benchOrigin, "PUT", "content-type,x-amz-date")},
	{"actual", benchRequest("GET", benchOrigin, "", "")},
	{"denied-origin", benchRequest("OPTIONS", "https://evil.example.net", "PUT", "")},
	{"hostile-acrh", benchRequest("OPTIONS", benchOrigin, "PUT", hostileACRH)},
}

var upstreamOK = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

// benchLib is one library's handler around upstreamOK.
type benchLib struct {
	name string
	h    http.Handler
}

// rsOptions is the benchmarks' rule for rs/cors.
func rsOptions() rscors.Options {
	return rscors.Options{
		AllowedOrigins:   []string{benchOrigin},
		AllowedMethods:   []string{"GET", "PUT"},
		AllowedHeaders:   []string{"content-type", "x-amz-date"},
		ExposedHeaders:   []string{"ETag"},
		MaxAge:           3000,
		AllowCredentials: true,
	}
}

func benchLibraries(b *testing.B) []benchLib {
	m, err := httpcors.Load([]byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	chi := chicors.Handler(chicors.Options{
		AllowedOrigins:   []string{benchOrigin},
		AllowedMethods:   []string{"GET", "PUT"},
		AllowedHeaders:   []string{"content-type", "x-amz-date"},
		ExposedHeaders:   []string{"ETag"},
		MaxAge:           3000,
		AllowCredentials: true,
	})
	return []benchLib{
		{"s3cors", m.Handler(upstreamOK)},
		{"rs-cors", rscors.New(rsOptions()).Handler(upstreamOK)},
		{"go-chi-cors", chi(upstreamOK)},
	}
}

// BenchmarkMiddleware compares httpcors with rs/cors and go-chi/cors on the same rule and the
// same requests, side by side (benchstat: lib=, shape=).
func BenchmarkMiddleware(b *testing.B) {
	for _, lib := range benchLibraries(b) {
		for _, s := range benchShapes {
			b.Run("lib="+lib.name+"/shape="+s.name, func(b *testing.B) {
				w := &benchWriter{h: http.Header{}}
				b.ReportAllocs()
				start := cputime.Process()
				for b.Loop() {
					clear(w.h)
					lib.h.ServeHTTP(w, s.req)
				}
				cputime.Report(b, start)
			})
		}
	}
}

// BenchmarkMiddlewareFloor is a lower bound, not a middleware: on the shapes of
// BenchmarkMiddleware it reads the request as httpcors does, takes the evaluator's decision
// and sets the decision's headers (but Content-Length, which httpcors leaves to the server)
// by direct assignment with one shared value, then writes the status and body. It copies
// no id, chooses no value and wraps no writer, so its output is wrong; what it costs, any
// net/http adapter that sends S3's headers from this evaluator costs at least. httpcors
// minus this is the middleware's own overhead.
func BenchmarkMiddlewareFloor(b *testing.B) {
	pol, err := evaluator.Load([]byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	shared := []string{"x"}
	first := func(vs []string) (string, bool) {
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	for _, s := range benchShapes {
		b.Run("shape="+s.name, func(b *testing.B) {
			r := s.req
			w := &benchWriter{h: http.Header{}}
			var d evaluator.Decision
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				clear(w.h)
				q := evaluator.Request{Method: r.Method, Authority: r.Host, Path: r.RequestURI}
				q.Origin, q.HasOrigin = first(r.Header["Origin"])
				q.RequestMethod, q.HasRequestMethod = first(r.Header["Access-Control-Request-Method"])
				q.RequestHeaders, q.HasRequestHeaders = first(r.Header["Access-Control-Request-Headers"])
				pol.Evaluate(&q, &d)
				h := w.Header()
				for i := range d.Headers {
					if d.Headers[i].Name != evaluator.HeaderContentLength { // the server's, as in httpcors
						h[d.Headers[i].Name] = shared
					}
				}
				if d.Outcome == evaluator.Reply {
					w.WriteHeader(d.Status)
					_, _ = w.Write(d.Body)
				}
			}
			cputime.Report(b, start)
		})
	}
}

// BenchmarkHeaderWrites is the price of the header map itself: clearing it and setting n of
// S3's preflight headers by direct assignment, one shared value. rs/cors sets 5 on a
// preflight, S3 9 or 10; past 8 entries a Go map leaves its single-group form.
func BenchmarkHeaderWrites(b *testing.B) {
	names := []string{"Vary", "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Credentials", "Access-Control-Max-Age", "Access-Control-Expose-Headers",
		"X-Amz-Request-Id", "X-Amz-Id-2", "Content-Length", "Access-Control-Allow-Headers"}
	shared := []string{"x"}
	for _, n := range []int{4, 5, 6, 8, 9, 10} {
		b.Run("headers="+strconv.Itoa(n), func(b *testing.B) {
			h := http.Header{}
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				clear(h)
				for _, k := range names[:n] {
					h[k] = shared
				}
			}
			cputime.Report(b, start)
		})
	}
}

// BenchmarkVersusRSCors runs httpcors and rs/cors on each shape in alternating blocks of
// 65,536 requests, measuring each block's process CPU time, so that both see the same state
// of a shared machine. Each block starts after a full collection (not timed) and is long
// enough for the collections its own allocation causes to fall inside it, so each library
// pays for its own garbage. Reported per shape: the median CPU ns per request of each
// library over all blocks and the median of the per-pair ratios ("ratio", httpcors ÷
// rs/cors; below 1 is faster). One b.N iteration is one pair of blocks: run with
// -benchtime 20x.
func BenchmarkVersusRSCors(b *testing.B) {
	libs := benchLibraries(b)
	ours, theirs := libs[0], libs[1]
	if ours.name != "s3cors" || theirs.name != "rs-cors" {
		b.Fatalf("libraries %q, %q", ours.name, theirs.name)
	}
	const block = 1 << 16
	for _, s := range benchShapes {
		b.Run("shape="+s.name, func(b *testing.B) {
			// Each library has a header map of its own, as in BenchmarkMiddleware: a map
			// keeps the size it grew to, and S3's nine or ten headers would otherwise make
			// rs/cors pay for a larger map than its own five.
			wo, wt := &benchWriter{h: http.Header{}}, &benchWriter{h: http.Header{}}
			run := func(h http.Handler, w *benchWriter) float64 {
				runtime.GC()
				start := cputime.Process()
				for range block {
					clear(w.h)
					h.ServeHTTP(w, s.req)
				}
				return float64(cputime.Process()-start) / block
			}
			ro, rt := func() float64 { return run(ours.h, wo) }, func() float64 { return run(theirs.h, wt) }
			ro() // warm both before the first measured pair
			rt()
			var a, r, ratio []float64
			for i := 0; b.Loop(); i++ {
				var x, y float64
				if i%2 == 0 { // each library goes first in every other pair
					x, y = ro(), rt()
				} else {
					y, x = rt(), ro()
				}
				a, r = append(a, x), append(r, y)
				if y > 0 {
					ratio = append(ratio, x/y)
				}
			}
			b.ReportMetric(median(a), "s3cors-cpu-ns/req")
			b.ReportMetric(median(r), "rs-cors-cpu-ns/req")
			b.ReportMetric(median(ratio), "ratio")
		})
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkServer puts net/http itself around the comparison: each library serves the shapes
// from a real http.Server on loopback and one keep-alive HTTP/1.1 connection of http.Client
// sends them, so a request costs what it costs a Go S3 server end to end (client and server
// share the process, as they share the box). S3's answer is bigger than rs/cors's (more
// header lines, a 200 with Content-Length instead of a 204, an XML body when denied), so
// three more servers frame the libraries: "none", the upstream alone; "replay", which sends
// httpcors's own answer for the shape (status, headers, body; recorded once, ids included)
// from a prepared list without deciding anything; and "rs-cors-same", rs/cors deciding as
// usual with its answer then completed into httpcors's, byte for byte but the date (see
// benchServers). The servers run in rotating blocks of 1,000 requests, as in
// BenchmarkVersusRSCors; reported per shape: the median CPU ns per request of each, the
// median per-round ratios of httpcors to rs/cors ("ratio"), to rs/cors sending S3's answer
// ("ratio-same") and to replay ("ratio-replay"), and the heap allocations per request (client
// included) of httpcors's server beyond each of the three. One b.N iteration is one round:
// run with -benchtime 20x.
func BenchmarkServer(b *testing.B) {
	servers, prepare := benchServers(b)
	ours, rs, same, replay := 0, 1, 2, 4
	if servers[ours].name != "s3cors" || servers[rs].name != "rs-cors" ||
		servers[same].name != "rs-cors-same" || servers[replay].name != "replay" {
		b.Fatal("servers out of order")
	}
	const block = 1000
	for _, s := range benchShapes {
		b.Run("shape="+s.name, func(b *testing.B) {
			sends := prepare(b, s.req)
			allocs := make([]uint64, len(servers)) // heap allocations of each server's blocks, client included
			run := func(i int) float64 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				m0 := ms.Mallocs
				start := cputime.Process()
				for range block {
					sends[i]()
				}
				cpu := float64(cputime.Process()-start) / block
				runtime.ReadMemStats(&ms)
				allocs[i] += ms.Mallocs - m0
				return cpu
			}
			for i := range servers { // warm every connection
				run(i)
			}
			clear(allocs)
			per := make([][]float64, len(servers))
			var ratio, ratioSame, ratioReplay []float64
			t := make([]float64, len(servers))
			for round := 0; b.Loop(); round++ {
				for k := range servers { // each server leads in turn
					i := (round + k) % len(servers)
					t[i] = run(i)
					per[i] = append(per[i], t[i])
				}
				if t[rs] > 0 && t[same] > 0 && t[replay] > 0 {
					ratio = append(ratio, t[ours]/t[rs])
					ratioSame = append(ratioSame, t[ours]/t[same])
					ratioReplay = append(ratioReplay, t[ours]/t[replay])
				}
			}
			for i, sv := range servers {
				b.ReportMetric(median(per[i]), sv.name+"-cpu-ns/req")
			}
			// What httpcors allocates end to end beyond the others (TestRequestsAllocateAtMostThree
			// holds the middleware alone to three).
			if n := len(per[ours]); n > 0 {
				for _, i := range []int{rs, same, replay} {
					b.ReportMetric((float64(allocs[ours])-float64(allocs[i]))/float64(n*block),
						"s3cors-over-"+servers[i].name+"-allocs/req")
				}
			}
			b.ReportMetric(median(ratio), "ratio")
			b.ReportMetric(median(ratioSame), "ratio-same")
			b.ReportMetric(median(ratioReplay), "ratio-replay")
		})
	}
}

// BenchmarkServerAlone runs BenchmarkServer's servers one at a time, for profiles of one of
// them (-bench 'ServerAlone/server=s3cors' -cpuprofile, -memprofile -memprofilerate 1); its
// timings are not comparisons, BenchmarkServer's are.
func BenchmarkServerAlone(b *testing.B) {
	servers, prepare := benchServers(b)
	for i, sv := range servers {
		for _, s := range benchShapes {
			b.Run("server="+sv.name+"/shape="+s.name, func(b *testing.B) {
				sends := prepare(b, s.req)
				b.ReportAllocs()
				for b.Loop() {
					sends[i]()
				}
			})
		}
	}
}

// benchServer is one handler on a loopback http.Server, with its client.
type benchServer struct {
	name   string
	url    string
	client *http.Client
}

// benchServers starts BenchmarkServer's servers: s3cors, rs-cors, rs-cors-same, none, replay.
// prepare records httpcors's answer to a shape for replay and rs-cors-same, and returns one
// function per server that sends the shape's request and reads the whole answer. It fails
// unless httpcors, replay and rs-cors-same answer alike (status, header lines, body).
//
// rs-cors-same is rs/cors with OptionsPassthrough (so that its preflights reach a handler
// too) around a handler that drops the header lines httpcors's answer lacks and sets all of
// httpcors's, by direct assignment of the recorded values (nothing allocated for them),
// then writes its status and body: rs/cors does all its usual work, and the answer on the
// wire is S3's.
func benchServers(b *testing.B) ([]benchServer, func(*testing.B, *http.Request) []func()) {
	libs := benchLibraries(b)[:2] // s3cors, rs-cors
	var answer, completion atomic.Pointer[recorded]
	rsOpts := rsOptions()
	rsOpts.OptionsPassthrough = true
	passthrough := rscors.New(rsOpts)
	handlers := append(libs,
		benchLib{"rs-cors-same", passthrough.Handler(replayHandler(&completion))},
		benchLib{"none", upstreamOK},
		benchLib{"replay", replayHandler(&answer)})
	var servers []benchServer
	for _, lib := range handlers {
		srv := httptest.NewServer(lib.h)
		b.Cleanup(srv.Close)
		servers = append(servers, benchServer{lib.name, srv.URL, srv.Client()})
	}
	prepare := func(b *testing.B, req *http.Request) []func() {
		s3 := record(libs[0].h, req)
		answer.Store(s3)
		// What rs/cors alone sets, with a completion that adds nothing.
		completion.Store(&recorded{status: http.StatusOK})
		rsOnly := record(passthrough.Handler(replayHandler(&completion)), req)
		c := *s3
		for _, kv := range rsOnly.headers {
			if !slices.ContainsFunc(s3.headers, func(x recordedHeader) bool { return x.key == kv.key }) {
				c.drop = append(c.drop, kv.key)
			}
		}
		completion.Store(&c)
		sends := make([]func(), len(servers))
		answers := make([]*http.Response, len(servers))
		for i, sv := range servers {
			r, err := http.NewRequest(req.Method, sv.url+req.RequestURI, nil)
			if err != nil {
				b.Fatal(err)
			}
			r.Header = req.Header.Clone()
			sends[i] = func() {
				resp, err := sv.client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				answers[i] = resp
			}
			sends[i]()
		}
		// The comparison means nothing unless these three send the same answer.
		for _, i := range []int{2, 4} { // rs-cors-same, replay
			x, y := answers[0], answers[i]
			if x.StatusCode != y.StatusCode || x.ContentLength != y.ContentLength || !alike(x.Header, y.Header) {
				b.Fatalf("httpcors %d %v, %s %d %v", x.StatusCode, x.Header, servers[i].name, y.StatusCode, y.Header)
			}
		}
		return sends
	}
	return servers, prepare
}

// alike reports whether two answers' headers are the same lines, byte for byte but the
// date and S3's ids (new for every request), which need only be as long.
func alike(x, y http.Header) bool {
	if len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv := y[k]
		if len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if xv[i] != yv[i] && (k != "Date" && k != "X-Amz-Request-Id" && k != "X-Amz-Id-2" || len(xv[i]) != len(yv[i])) {
				return false
			}
		}
	}
	return true
}

// replayHandler sends the answer a holds: drops its drop list, sets its headers (the
// recorded slices themselves, which nobody mutates), writes its status and body.
func replayHandler(a *atomic.Pointer[recorded]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := a.Load()
		h := w.Header()
		for _, k := range a.drop {
			delete(h, k)
		}
		for _, kv := range a.headers {
			h[kv.key] = kv.value
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	})
}

// recorded is one answer of a handler, ready to be sent again.
type recorded struct {
	status  int
	headers []recordedHeader
	body    []byte
	drop    []string // header names to remove before setting headers
}

type recordedHeader struct {
	key   string
	value []string
}

func record(h http.Handler, r *http.Request) *recorded {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	a := &recorded{status: rec.Code, body: rec.Body.Bytes()}
	for k, v := range rec.Header() {
		a.headers = append(a.headers, recordedHeader{k, v})
	}
	return a
}
