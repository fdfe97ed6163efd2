package e2e_test

// The cost of s3cors in real Envoy, measured from outside the process: `make bench-envoy`
// (BenchmarkRealEnvoyCORS, BenchmarkRealEnvoyStart; numbers in BENCHMARKS.md). One Envoy at
// --concurrency 1 carries one listener per configuration, so blocks of requests to each
// alternate within one process; the load generator is this test process, the upstream and the
// do-nothing ext_proc server are internal/benchpeer, s3cors's ext_proc server is the CLI, each
// its own process. TestRealEnvoyBenchHarness runs the same harness for a few requests per block
// in every `go test ./e2e/`, every answer checked, so that it cannot rot.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// benchOrigin is the origin the one rule allows; benchConfigJSON is that rule for s3cors and
// benchNativePolicy the same for Envoy's CORS filter (origin, methods, headers, exposed
// headers, max age, credentials as S3 sends them).
const (
	benchOrigin     = "https://app.example"
	benchConfigJSON = `{"buckets": {"photos": {"CORSRules": [{"ID": "app", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-type", "x-amz-date"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]}}}`
)

func benchNativePolicy() *corsv3.CorsPolicy {
	return &corsv3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: benchOrigin}}},
		AllowMethods:           "GET, PUT",
		AllowHeaders:           "content-type, x-amz-date",
		ExposeHeaders:          "ETag",
		MaxAge:                 "3000",
		AllowCredentials:       wrapperspb.Bool(true),
		// A preflight from another origin is answered (200, no CORS headers), not forwarded:
		// s3cors answers it too (403), so neither reaches the store.
		ForwardNotMatchingPreflights: wrapperspb.Bool(false),
	}
}

// benchShape is one kind of request; its index is the column in every table.
type benchShape struct {
	name    string
	request []byte // the whole HTTP/1.1 request
}

const (
	shapePreflightAllowed = iota
	shapePreflightDenied
	shapeGetDecorated
	shapeGetNoOrigin
)

var benchShapes = []benchShape{
	shapePreflightAllowed: {"preflight-allowed", benchRequest("OPTIONS", "/photos/cat.jpg", "Origin", benchOrigin, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type,x-amz-date")},
	shapePreflightDenied:  {"preflight-denied", benchRequest("OPTIONS", "/photos/cat.jpg", "Origin", "https://evil.example", "Access-Control-Request-Method", "PUT")},
	shapeGetDecorated:     {"get-decorated", benchRequest("GET", "/photos/cat.jpg", "Origin", benchOrigin)},
	shapeGetNoOrigin:      {"get-no-origin", benchRequest("GET", "/photos/cat.jpg")},
}

func benchRequest(method, path string, kv ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: s3.internal\r\nUser-Agent: s3cors-envoybench\r\nAccept: */*\r\n", method, path)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[i], kv[i+1])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// benchAnswers is who answers CORS behind a listener, which decides what each shape must get.
type benchAnswers int

const (
	answersNone      benchAnswers = iota // nobody: preflights get the route's direct 200, GETs the upstream's
	answersEnvoyCORS                     // Envoy's CORS filter
	answersS3CORS                        // s3cors, as S3 does
)

// check says what is wrong with r as an answer to shape, or nil.
func (a benchAnswers) check(shape int, r *benchResponse) error {
	status, acao, mark, body := 200, "", "", ""
	switch shape {
	case shapePreflightAllowed:
		if a != answersNone {
			acao = benchOrigin
		}
		mark = map[benchAnswers]string{answersEnvoyCORS: "access-control-allow-methods", answersS3CORS: "x-amz-request-id"}[a]
	case shapePreflightDenied:
		if a == answersS3CORS {
			status, mark, body = 403, "x-amz-request-id", "<Code>AccessForbidden</Code>"
		}
	case shapeGetDecorated:
		if a != answersNone {
			acao, mark = benchOrigin, "access-control-expose-headers"
		}
		body = benchUpstreamBody
	case shapeGetNoOrigin:
		body = benchUpstreamBody
	}
	var err error
	switch {
	case r.status != status:
		err = fmt.Errorf("status %d, want %d", r.status, status)
	case r.header["access-control-allow-origin"] != acao:
		err = fmt.Errorf("access-control-allow-origin %q, want %q", r.header["access-control-allow-origin"], acao)
	case mark != "" && r.header[mark] == "":
		err = fmt.Errorf("no %s header", mark)
	case body == "" && len(r.body) != 0, !bytes.Contains(r.body, []byte(body)):
		err = fmt.Errorf("body %q, want %q", r.body, body)
	default:
		return nil
	}
	return fmt.Errorf("%w (headers %q)", err, r.header)
}

// benchUpstreamBody begins every answer of benchpeer's upstream.
const benchUpstreamBody = "benchpeer upstream:"

// benchConfig is one configuration under test: a listener of the benchmark's Envoy.
type benchConfig struct {
	name    string // listener name
	title   string // row label
	answers benchAnswers
	server  int // process id of the ext_proc server behind it, 0 when none
}

var benchConfigs = []benchConfig{
	{name: "floor", title: "(a) no CORS (floor)", answers: answersNone},
	{name: "native", title: "(b) Envoy CORS filter", answers: answersEnvoyCORS},
	{name: "wasm", title: "(c) s3cors wasm", answers: answersS3CORS},
	{name: "wasm-noop", title: "(c0) do-nothing wasm", answers: answersNone},
	{name: "extproc", title: "(d) s3cors ext_proc", answers: answersS3CORS},
	{name: "extproc-nop", title: "(d0) do-nothing ext_proc", answers: answersNone},
}

const benchNative = 1 // index of (b) in benchConfigs, the anchor of every ratio

// benchBootstrap is the benchmark's Envoy: one listener per benchConfigs entry, all derived
// from envoy/wasm.yaml and envoy/extproc.yaml as TestRealEnvoy derives them, without the
// access log (the same in every configuration, it would only dilute the differences), with a
// route that answers OPTIONS with a direct 200 before the route to the upstream, so that (a)
// answers preflights locally as the CORS filters do. (c0) runs module noop in place of s3cors.
func benchBootstrap(t testing.TB, module, noop, upstream, extprocAddr, nopAddr string) []byte {
	t.Helper()
	one := []casetable.Table{{Config: json.RawMessage(benchConfigJSON)}}
	wasm := benchUnmarshal(t, realEnvoyBootstrap(t, "wasm.yaml", one, upstream, module, nil))
	ext := benchUnmarshal(t, realEnvoyBootstrap(t, "extproc.yaml", append(one, one...), upstream, "", []string{extprocAddr, nopAddr}))
	for _, l := range ext.GetStaticResources().GetListeners() {
		// A server process starved for 200 ms (the deployment's message_timeout) on a shared
		// machine fails the request with 504; the timeout changes no CPU figure.
		h := realEnvoyHCM(t, l)
		var ep extprocfilterv3.ExternalProcessor
		if err := h.HttpFilters[0].GetTypedConfig().UnmarshalTo(&ep); err != nil {
			t.Fatal(err)
		}
		ep.MessageTimeout = durationpb.New(10 * time.Second)
		h.HttpFilters[0].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, &ep)}
		l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, h)}
	}
	wl, el := wasm.GetStaticResources().GetListeners()[0], ext.GetStaticResources().GetListeners()
	cors := &hcmv3.HttpFilter{Name: "envoy.filters.http.cors", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, &corsv3.Cors{})}}
	listeners := []*listenerv3.Listener{
		benchListener(t, wl, "floor", func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = h.HttpFilters[1:] }),
		benchListener(t, wl, "native", func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters[0] = cors
			routes := h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
			// The CORS filter ignores requests whose route is a direct response: the
			// OPTIONS route stays, so that every listener matches the same routes, but
			// matches nothing.
			routes[0].GetMatch().GetHeaders()[0].GetStringMatch().MatchPattern = &matcherv3.StringMatcher_Exact{Exact: "NONE"}
			routes[1].TypedPerFilterConfig = map[string]*anypb.Any{cors.Name: realEnvoyAny(t, benchNativePolicy())}
		}),
		benchListener(t, wl, "wasm", nil),
		benchListener(t, wl, "wasm-noop", func(h *hcmv3.HttpConnectionManager) {
			var w httpwasmv3.Wasm
			if err := h.HttpFilters[0].GetTypedConfig().UnmarshalTo(&w); err != nil {
				t.Fatal(err)
			}
			vm := w.GetConfig().GetVmConfig()
			vm.VmId = "noop"
			vm.GetCode().GetLocal().Specifier = &corev3.DataSource_Filename{Filename: noop}
			h.HttpFilters[0].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, &w)}
		}),
		benchListener(t, el[0], "extproc", nil),
		benchListener(t, el[1], "extproc-nop", nil),
	}
	sr := wasm.GetStaticResources()
	sr.Listeners = listeners
	for _, c := range ext.GetStaticResources().GetClusters() {
		if c.GetName() != "s3" {
			sr.Clusters = append(sr.Clusters, c)
		}
	}
	return benchMarshal(t, wasm)
}

// benchListener is a copy of tmpl named name, with the OPTIONS route and no access log, then
// edited.
func benchListener(t testing.TB, tmpl *listenerv3.Listener, name string, edit func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	t.Helper()
	l := proto.Clone(tmpl).(*listenerv3.Listener)
	l.Name = name
	h := realEnvoyHCM(t, l)
	h.StatPrefix = strings.ReplaceAll(name, "-", "_")
	h.AccessLog = nil
	vh := h.GetRouteConfig().GetVirtualHosts()[0]
	options := &routev3.Route{
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "OPTIONS"}}}}},
		},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}},
	}
	vh.Routes = append([]*routev3.Route{options}, vh.Routes...)
	if edit != nil {
		edit(h)
	}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, h)}
	return l
}

func benchUnmarshal(t testing.TB, js []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func benchMarshal(t testing.TB, b *bootstrapv3.Bootstrap) []byte {
	t.Helper()
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// benchPeer is a running internal/benchpeer process.
type benchPeer struct {
	addr string
	pid  int
}

// startBenchPeer runs `benchpeer mode` and waits for its address; the test's cleanup stops it.
func startBenchPeer(t testing.TB, bin, mode string) benchPeer {
	t.Helper()
	cmd := exec.Command(bin, mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("benchpeer %s: %v\n%s", mode, err, stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("benchpeer %s: %q, %v\n%s", mode, line, err, stderr.String())
	}
	return benchPeer{addr: addr, pid: cmd.Process.Pid}
}

// benchConn is a keep-alive HTTP/1.1 client connection that sends prepared requests and reads
// answers with Content-Length or chunked bodies; it reconnects after "Connection: close".
type benchConn struct {
	addr       string
	c          net.Conn
	r          *bufio.Reader
	reconnects int
}

// benchResponse is an answer: status, headers by lower-case name (repeats joined with ", ")
// and body.
type benchResponse struct {
	status int
	header map[string]string
	body   []byte
}

func (bc *benchConn) roundTrip(req []byte, resp *benchResponse) error {
	if bc.c == nil {
		c, err := net.Dial("tcp", bc.addr)
		if err != nil {
			return err
		}
		bc.c, bc.r = c, bufio.NewReaderSize(c, 16<<10)
	}
	if _, err := bc.c.Write(req); err != nil {
		bc.close()
		return err
	}
	err := bc.read(resp)
	if err != nil || strings.EqualFold(resp.header["connection"], "close") {
		bc.close()
		bc.reconnects++
	}
	return err
}

func (bc *benchConn) read(resp *benchResponse) error {
	line, err := bc.r.ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return fmt.Errorf("status line %q", line)
	}
	if resp.status, err = strconv.Atoi(f[1]); err != nil {
		return fmt.Errorf("status line %q", line)
	}
	if resp.header == nil {
		resp.header = map[string]string{}
	}
	clear(resp.header)
	for {
		line, err := bc.r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("header line %q", line)
		}
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		if old, ok := resp.header[k]; ok {
			v = old + ", " + v
		}
		resp.header[k] = v
	}
	resp.body = resp.body[:0]
	if strings.EqualFold(resp.header["transfer-encoding"], "chunked") {
		for {
			line, err := bc.r.ReadString('\n')
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 32)
			if err != nil {
				return fmt.Errorf("chunk size %q", line)
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(bc.r, chunk); err != nil {
				return err
			}
			resp.body = append(resp.body, chunk[:n]...)
			if n == 0 {
				return nil // no trailers are sent here
			}
		}
	}
	n, err := strconv.Atoi(resp.header["content-length"])
	if err != nil {
		return fmt.Errorf("status %d without a length: %q", resp.status, resp.header)
	}
	resp.body = slices.Grow(resp.body, n)[:n]
	_, err = io.ReadFull(bc.r, resp.body)
	return err
}

func (bc *benchConn) close() {
	if bc.c != nil {
		_ = bc.c.Close()
		bc.c = nil
	}
}

// procCPU is the CPU time all threads of process pid have run, from each thread's
// /proc/<pid>/task/<tid>/schedstat: nanoseconds, where /proc/<pid>/stat counts clock ticks
// (10 ms), too coarse for blocks of a fraction of a second.
func procCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
		if err != nil {
			continue // the thread has exited since
		}
		f := bytes.Fields(b)
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: %q", dir, task.Name(), b)
		}
		ns, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, task.Name(), err)
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

// benchSample is one block: CPU per request of Envoy and of the ext_proc server, client
// latency percentiles.
type benchSample struct {
	envoy, server time.Duration
	p50, p99      time.Duration
}

// benchHarness is the running benchmark: Envoy, its peers, a set of connections per
// configuration, and the samples so far ([config][shape][round]).
type benchHarness struct {
	envoy   *realEnvoy
	configs []benchConfig
	conns   [][]*benchConn
	samples [][][]benchSample
}

// startBenchHarness starts the peers and Envoy e at --concurrency 1 with conns connections per
// configuration.
func startBenchHarness(t testing.TB, e testenv.Envoy, conns int) *benchHarness {
	t.Helper()
	peer := goBinary(t, "./internal/benchpeer")
	upstream := startBenchPeer(t, peer, "upstream")
	nop := startBenchPeer(t, peer, "nopextproc")
	config := filepath.Join(t.TempDir(), "cors.json")
	if err := os.WriteFile(config, []byte(benchConfigJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	ep := startExtprocCLILevel(t, extprocCLIBinary(t), config, "info")
	boot := benchBootstrap(t, testenv.Module(t), testenv.Guest(t, "noop"), upstream.addr, ep.grpcAddr, nop.addr)
	h := &benchHarness{envoy: launchRealEnvoy(t, e.Path, boot, 1).awaitLive(t)}
	for _, c := range benchConfigs {
		switch c.name {
		case "extproc":
			c.server = ep.cmd.Process.Pid
		case "extproc-nop":
			c.server = nop.pid
		}
		addr, ok := h.envoy.listeners[c.name]
		if !ok {
			t.Fatalf("envoy has no listener %q: %v", c.name, h.envoy.listeners)
		}
		var cs []*benchConn
		for range conns {
			cs = append(cs, &benchConn{addr: addr})
		}
		h.configs, h.conns = append(h.configs, c), append(h.conns, cs)
		h.samples = append(h.samples, make([][]benchSample, len(benchShapes)))
	}
	t.Cleanup(func() {
		for _, cs := range h.conns {
			for _, c := range cs {
				c.close()
			}
		}
	})
	return h
}

// block sends n requests of shape si to configuration ci, spread over its connections, each
// answer checked, and measures.
func (h *benchHarness) block(ci, si, n int) (benchSample, error) {
	c, shape, conns := h.configs[ci], benchShapes[si], h.conns[ci]
	per := max(n/len(conns), 1)
	lats := make([][]time.Duration, len(conns))
	errs := make([]error, len(conns))
	cpu := func() (envoy, server time.Duration, err error) {
		if envoy, err = procCPU(h.envoy.pid); err == nil && c.server != 0 {
			server, err = procCPU(c.server)
		}
		return envoy, server, err
	}
	e0, s0, err := cpu()
	if err != nil {
		return benchSample{}, err
	}
	var wg sync.WaitGroup
	for k, bc := range conns {
		wg.Go(func() {
			var resp benchResponse
			l := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				if err := bc.roundTrip(shape.request, &resp); err != nil {
					errs[k] = fmt.Errorf("%s %s: %w", c.name, shape.name, err)
					return
				}
				l = append(l, time.Since(t0))
				if err := c.answers.check(si, &resp); err != nil {
					errs[k] = fmt.Errorf("%s %s: %w", c.name, shape.name, err)
					return
				}
			}
			lats[k] = l
		})
	}
	wg.Wait()
	e1, s1, err := cpu()
	if err != nil {
		return benchSample{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return benchSample{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	total := time.Duration(len(all))
	return benchSample{envoy: (e1 - e0) / total, server: (s1 - s0) / total,
		p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

// round runs one block of n requests per shape and configuration: for each shape the
// configurations in turn (A B C D ...), starting one further along each round so that no
// configuration always follows the same one.
func (h *benchHarness) round(r, n int) error {
	for si := range benchShapes {
		for k := range h.configs {
			ci := (k + r) % len(h.configs)
			s, err := h.block(ci, si, n)
			if err != nil {
				return err
			}
			h.samples[ci][si] = append(h.samples[ci][si], s)
		}
	}
	return nil
}

// warmUp sends every configuration every shape a few times, unmeasured.
func (h *benchHarness) warmUp() error {
	for ci := range h.configs {
		for si := range benchShapes {
			if _, err := h.block(ci, si, 50*len(h.conns[ci])); err != nil {
				return err
			}
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stat is the median over rounds of f(sample of ci, sample of (b)) for shape si.
func (h *benchHarness) stat(ci, si int, f func(s, native benchSample) float64) float64 {
	var v []float64
	for r, s := range h.samples[ci][si] {
		v = append(v, f(s, h.samples[benchNative][si][r]))
	}
	return median(v)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// benchTableHead writes a markdown table's head: title, then a column per shape.
func benchTableHead(b *strings.Builder, title string) {
	b.WriteString("| " + title + " |")
	for _, s := range benchShapes {
		b.WriteString(" " + s.name + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(benchShapes)) + "\n")
}

// cpuTable is the markdown table of CPU per request: medians over rounds, each with the median
// of the per-round ratios to (b) on the same shape.
func (h *benchHarness) cpuTable() string {
	var b strings.Builder
	benchTableHead(&b, "CPU µs/request (× (b))")
	row := func(title string, ci int, cpu func(benchSample) time.Duration, ratio bool) {
		b.WriteString("| " + title + " |")
		for si := range benchShapes {
			fmt.Fprintf(&b, " %.1f", h.stat(ci, si, func(s, _ benchSample) float64 { return us(cpu(s)) }))
			if ratio && ci != benchNative {
				fmt.Fprintf(&b, " ×%.2f", h.stat(ci, si, func(s, n benchSample) float64 { return float64(cpu(s)) / float64(n.envoy) }))
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	envoy := func(s benchSample) time.Duration { return s.envoy }
	for ci, c := range h.configs {
		if c.server == 0 {
			row(c.title, ci, envoy, true)
			continue
		}
		row(c.title+": Envoy", ci, envoy, true)
		row(c.title+": server", ci, func(s benchSample) time.Duration { return s.server }, false)
		row(c.title+": Envoy + server", ci, func(s benchSample) time.Duration { return s.envoy + s.server }, true)
	}
	return b.String()
}

// latencyTable is the markdown table of client latency, p50 / p99, medians over rounds.
func (h *benchHarness) latencyTable() string {
	var b strings.Builder
	benchTableHead(&b, "latency µs, p50 / p99")
	for ci, c := range h.configs {
		b.WriteString("| " + c.title + " |")
		for si := range benchShapes {
			fmt.Fprintf(&b, " %.0f / %.0f |", h.stat(ci, si, func(s, _ benchSample) float64 { return us(s.p50) }),
				h.stat(ci, si, func(s, _ benchSample) float64 { return us(s.p99) }))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// extprocStats is Envoy's ext_proc counters, for a failure's message.
func (h *benchHarness) extprocStats(t testing.TB) string {
	_, body := httpGet(t, "http://"+h.envoy.admin+"/stats?filter=ext_proc")
	return "\n" + string(body)
}

// reconnects is how many times a connection was reopened after the server closed it.
func (h *benchHarness) reconnects() int {
	n := 0
	for _, cs := range h.conns {
		for _, c := range cs {
			n += c.reconnects
		}
	}
	return n
}

// index is the position of configuration name.
func (h *benchHarness) index(name string) int {
	return slices.IndexFunc(h.configs, func(c benchConfig) bool { return c.name == name })
}

// targets reports, per shape, the numbers the targets are stated in: wasm's CPU ÷ (b)'s and
// minus (b)'s, the s3cors ext_proc server's CPU ÷ the do-nothing server's, and ext_proc's
// whole (Envoy + server) ÷ (b).
func (h *benchHarness) targets(b *testing.B) {
	wasm, ext, nop := h.index("wasm"), h.index("extproc"), h.index("extproc-nop")
	for si, s := range benchShapes {
		b.ReportMetric(h.stat(wasm, si, func(s, n benchSample) float64 { return float64(s.envoy) / float64(n.envoy) }), "x-wasm/native-"+s.name)
		b.ReportMetric(h.stat(wasm, si, func(s, n benchSample) float64 { return us(s.envoy - n.envoy) }), "us-wasm-native-"+s.name)
		b.ReportMetric(h.stat(ext, si, func(s, n benchSample) float64 { return float64(s.envoy+s.server) / float64(n.envoy) }), "x-extproc/native-"+s.name)
		var v []float64
		for r := range h.samples[ext][si] {
			v = append(v, float64(h.samples[ext][si][r].server)/float64(h.samples[nop][si][r].server))
		}
		b.ReportMetric(median(v), "x-server/nop-"+s.name)
	}
}

// benchEnvInt is the integer in environment variable name, or def.
func benchEnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkRealEnvoyCORS measures CPU per request of Envoy (and of the ext_proc server behind
// it) for each configuration and shape, and client latency: one round per iteration (-benchtime
// 11x is 11 rounds), S3CORS_BENCH_BLOCK requests per block (default 4,000) over
// S3CORS_BENCH_CONNS keep-alive connections (default 4). The full tables are logged and
// written to build/bench-envoy-<version>.md; the figures the targets are stated in are reported
// as metrics.
func BenchmarkRealEnvoyCORS(b *testing.B) {
	for _, e := range testenv.Envoys(b) {
		b.Run("envoy="+e.Version, func(b *testing.B) {
			h := startBenchHarness(b, e, benchEnvInt(b, "S3CORS_BENCH_CONNS", 4))
			n := benchEnvInt(b, "S3CORS_BENCH_BLOCK", 4000)
			if err := h.warmUp(); err != nil {
				b.Fatal(err)
			}
			load0 := benchLoadAvg()
			rounds := 0
			for b.Loop() {
				if err := h.round(rounds, n); err != nil {
					b.Fatal(err, h.extprocStats(b))
				}
				rounds++
			}
			h.targets(b)
			report := fmt.Sprintf("Envoy %s, --concurrency 1; %d rounds of %d requests per block over %d connections (%d reconnections after Connection: close); load average %s to %s\n\n%s\n%s",
				e.Version, rounds, n, len(h.conns[0]), h.reconnects(), load0, benchLoadAvg(), h.cpuTable(), h.latencyTable())
			out := filepath.Join(testenv.RepoRoot(b), "build", "bench-envoy-"+e.Version+".md")
			if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
				b.Fatal(err)
			}
			if names := os.Getenv("S3CORS_BENCH_PERF"); names != "" {
				report += "\n" + h.perfProfile(b, strings.Split(names, ","), n)
				if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.Log("\n" + report)
		})
	}
}

func benchLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// TestRealEnvoyBenchHarness runs BenchmarkRealEnvoyCORS's harness on every pinned Envoy for a
// few requests per block, so that a change that breaks a configuration (a wrong answer, which
// every block checks) or the measuring itself fails here and not in a benchmark run.
func TestRealEnvoyBenchHarness(t *testing.T) {
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			h := startBenchHarness(t, e, 2)
			if err := h.warmUp(); err != nil {
				t.Fatal(err)
			}
			if err := h.round(0, 20); err != nil {
				t.Fatal(err)
			}
			for ci, c := range h.configs {
				for si, s := range benchShapes {
					got := h.samples[ci][si]
					if len(got) != 1 || got[0].envoy <= 0 || (c.server != 0) != (got[0].server > 0) {
						t.Errorf("%s %s: samples %+v: want one, with Envoy CPU and server CPU (only) behind ext_proc", c.name, s.name, got)
					}
				}
			}
			if table := h.cpuTable(); strings.Count(table, "\n") != 2+len(h.configs)+4 {
				t.Errorf("CPU table:\n%s", table)
			}
			boot, addr := benchStartBootstrap(t, testenv.Module(t), h.envoy.listeners["floor"], 1)
			if s := envoyFirstPreflight(t, e.Path, boot, addr); s.wall <= 0 || s.cpu <= 0 || s.rssKiB <= 0 {
				t.Errorf("start: %+v", s)
			}
		})
	}
}
