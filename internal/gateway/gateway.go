// Package gateway is the local S3 CORS gateway behind `s3cors serve`: the real s3cors.wasm
// module, run by wasmhost exactly as Envoy would run it, in front of an upstream object store
// (the embedded s3mem store or any S3-compatible endpoint).
//
// Besides the filtered traffic, the gateway answers one endpoint of its own on the S3
// listener, never passed to the filter or the store:
//
//	GET /healthz                 200 "ok" while the filter can serve, 503 when a failed VM
//	                             fails its requests closed (see Gateway.Health)
//
// A bucket name cannot be told apart from it in path-style requests, so the gateway answers it
// only when it cannot be a bucket request: the Host is not a virtual-hosted bucket host, and
// the first path segment ("healthz") is not a bucket named in the configuration. A store
// bucket called healthz is reached by listing it in the configuration ("healthz": null).
//
// The debug endpoints are served by Gateway.Debug, on a listener of their own (serve's
// --debug-listen, loopback by default), never on the S3 listener, where they are paths like
// any other: the explain endpoint shows any bucket's rules, which S3 gives only to an
// authorised GetBucketCors.
//
//	GET /healthz                 as above
//	GET /debug/s3cors/stats      request counters and the filter's metrics, JSON
//	GET /debug/s3cors/explain    why a request is allowed or denied, JSON (see package explain)
//
// Where it sits: a process package under internal/, the one that may import wasmhost
// (depguard in .golangci.yml). It runs the built module, never the filter package; cmd/s3cors
// wires its listeners and signals.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/wasmhost"
)

// Paths of the gateway's own endpoints.
const (
	HealthPath  = "/healthz"
	StatsPath   = "/debug/s3cors/stats"
	ExplainPath = "/debug/s3cors/explain"
)

// Options configure a Gateway.
type Options struct {
	// Config is the s3cors configuration (JSON). It is the wasm plugin's configuration and
	// what the explain endpoint evaluates. Required.
	Config []byte
	// Module is the s3cors.wasm binary. Required.
	Module []byte
	// Profile is the Envoy release line wasmhost reproduces. Default wasmhost.Envoy133.
	Profile wasmhost.Profile
	// Workers is the number of wasm VMs, as Envoy's --concurrency. Default 1.
	Workers int
	// FailurePolicy applies once a VM has failed. Default wasmhost.FailClosed.
	FailurePolicy wasmhost.FailurePolicy
	// ReloadBackoff is wasmhost.Options.ReloadBackoff: under FAIL_RELOAD, how long after a
	// VM's load a failed VM waits for its replacement. Default Envoy's 1 s.
	ReloadBackoff time.Duration
	// Upstream receives every request the filter does not answer. Required.
	Upstream http.Handler
	// UpstreamStats, when set, adds the store's own counters to the stats endpoint.
	UpstreamStats func() any
	// DemoOrigin, when set (e.g. "http://127.0.0.1:8081"), may read the debug endpoints
	// cross-origin: the demo page asks the explain endpoint why a request failed.
	DemoOrigin string
	// Logger receives one line per request and the filter's own log lines. Nil discards them.
	Logger *slog.Logger
	// FilterLogLevel is Envoy's wasm log level: what the filter's proxy_get_log_level sees
	// and the least level of its lines that are kept. Default info, as Envoy's.
	FilterLogLevel wasmhost.LogLevel
	// CompilationCache, when set, is shared with other gateways of the process, so the module
	// is compiled once (tests start many gateways). Default: private to the gateway.
	CompilationCache wazero.CompilationCache
}

// Gateway is an http.Handler: the wasm filter in front of the upstream, plus /healthz; Debug
// is the handler of the debug endpoints. Safe for concurrent use.
type Gateway struct {
	policy     *evaluator.Policy
	host       filterHost
	filtered   http.Handler
	logger     *slog.Logger
	demoOrigin string
	storeStats func() any
	started    time.Time
	failPolicy wasmhost.FailurePolicy

	requests atomic.Int64
	answered atomic.Int64 // by the filter, without reaching the upstream
	failedVM atomic.Int64 // 503s of a failed VM (wasm_fail_stream), the store's answer replaced if it had one
	upstream atomic.Int64
	own      atomic.Int64 // the gateway's own endpoints
	byMethod sync.Map     // method -> *atomic.Int64, requests that reached the upstream
}

// filterHost is what the gateway needs of wasmhost.Host; tests of the routing use a fake.
type filterHost interface {
	Handler(upstream http.Handler) http.Handler
	Metrics() map[string]int64
	MemoryBytes() []uint64
	Failed() []string
	ReloadFailed() []string
	Close(ctx context.Context) error
}

// newHost starts the wasm filter; a variable so that tests can run the gateway without it.
var newHost = func(ctx context.Context, o Options, logger *slog.Logger) (filterHost, error) {
	return wasmhost.New(ctx, wasmhost.Options{
		Module:           o.Module,
		Profile:          o.Profile,
		PluginConfig:     o.Config,
		Workers:          o.Workers,
		FailurePolicy:    o.FailurePolicy,
		ReloadBackoff:    o.ReloadBackoff,
		Logger:           logger.With("component", "wasm"),
		LogLevel:         o.FilterLogLevel,
		CompilationCache: o.CompilationCache,
	})
}

// New validates the configuration, starts the wasm filter and returns the gateway. Close
// releases the filter.
func New(ctx context.Context, o Options) (*Gateway, error) {
	if o.Upstream == nil {
		return nil, errors.New("gateway: Options.Upstream is nil")
	}
	if len(o.Module) == 0 {
		return nil, errors.New("gateway: Options.Module is empty")
	}
	pol, err := evaluator.Load(o.Config)
	if err != nil {
		return nil, fmt.Errorf("gateway: configuration: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, err := newHost(ctx, o, logger)
	if err != nil {
		return nil, fmt.Errorf("gateway: starting the wasm filter: %w", err)
	}
	g := &Gateway{
		policy: pol, host: host, logger: logger, demoOrigin: o.DemoOrigin,
		storeStats: o.UpstreamStats, started: time.Now(), failPolicy: o.FailurePolicy,
	}
	g.filtered = host.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.upstream.Add(1)
		g.methodCounter(r.Method).Add(1)
		m, ok := r.Context().Value(markKey{}).(*requestMark)
		if !ok {
			o.Upstream.ServeHTTP(w, r)
			return
		}
		m.upstream.Store(true)
		// The store's own status, before the filter's response callbacks: they may still
		// replace it (a trap there is answered 503 by the host).
		o.Upstream.ServeHTTP(&storeWriter{ResponseWriter: w, mark: m}, r)
		m.storeStatus.CompareAndSwap(0, http.StatusOK) // returned without writing: an empty 200
	}))
	return g, nil
}

// Policy returns the compiled configuration the gateway serves.
func (g *Gateway) Policy() *evaluator.Policy { return g.policy }

// Close releases the wasm filter. Call it after the HTTP server has shut down.
func (g *Gateway) Close(ctx context.Context) error {
	if err := g.host.Close(ctx); err != nil {
		return fmt.Errorf("gateway: closing the wasm filter: %w", err)
	}
	return nil
}

func (g *Gateway) methodCounter(method string) *atomic.Int64 {
	if c, ok := g.byMethod.Load(method); ok {
		return c.(*atomic.Int64)
	}
	c, _ := g.byMethod.LoadOrStore(method, new(atomic.Int64))
	return c.(*atomic.Int64)
}

type markKey struct{}

// requestMark records, for the request log, whether a request reached the upstream handler,
// whether that handler answered for the store (unreachable: ProxyTo's own 502), and the
// status the store answered before the filter saw it.
type requestMark struct {
	upstream, unreachable atomic.Bool
	storeStatus           atomic.Int32 // 0 until the upstream handler sends its final status
}

// storeWriter records the upstream handler's final status in its requestMark.
type storeWriter struct {
	http.ResponseWriter
	mark *requestMark
}

func (s *storeWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx are interim: the final status follows
		s.mark.storeStatus.CompareAndSwap(0, int32(code))
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *storeWriter) Write(b []byte) (int, error) {
	s.mark.storeStatus.CompareAndSwap(0, http.StatusOK)
	return s.ResponseWriter.Write(b)
}

// Flush keeps the upstream's streaming (ReverseProxy flushes through ResponseController,
// which also finds it through Unwrap; a handler asserting http.Flusher needs the method).
func (s *storeWriter) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *storeWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// markUnreachable records that the gateway, not the store, answered r: the store could not
// be reached.
func markUnreachable(r *http.Request) {
	if m, ok := r.Context().Value(markKey{}).(*requestMark); ok {
		m.unreachable.Store(true)
	}
}

// ServeHTTP answers /healthz and sends everything else through the filter.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, g.ownEndpoint(r))
}

// Debug returns the handler of the debug listener: /healthz, the stats and the explain
// endpoint for GET and HEAD, 404 for anything else. Nothing it receives reaches the filter
// or the store.
func (g *Gateway) Debug() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := g.debugEndpoint(r)
		if h == nil {
			h = func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "gateway: the debug listener serves "+HealthPath+", "+StatsPath+" and "+ExplainPath+" (GET)", http.StatusNotFound)
			}
		}
		g.serve(w, r, h)
	})
}

// serve answers r with own, the gateway's endpoint, or through the filter when own is nil,
// counts it and logs it.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, own http.HandlerFunc) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	g.requests.Add(1)
	answeredBy := "gateway"
	storeStatus := 0 // the store's answer, when it was reached
	if own != nil {
		g.own.Add(1)
		own(sw, r)
	} else {
		mark := &requestMark{}
		sw.mark = mark
		var details wasmhost.Details // who answered, as Envoy's %RESPONSE_CODE_DETAILS% says
		ctx := wasmhost.WithDetails(context.WithValue(r.Context(), markKey{}, mark), &details)
		g.filtered.ServeHTTP(sw, r.WithContext(ctx))
		storeStatus = int(mark.storeStatus.Load())
		switch {
		case mark.unreachable.Load():
			// ProxyTo's 502: the store never saw the request.
		case details.String() == "wasm_fail_stream":
			// The host's reply for a failed VM, whether it failed before the store was asked
			// or while handling its answer (a trap in on_response_headers replaces the
			// store's response).
			answeredBy = "failed_vm"
			g.failedVM.Add(1)
		case mark.upstream.Load():
			answeredBy = "upstream"
		default:
			answeredBy = "proxy"
			g.answered.Add(1)
		}
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		// The path without the query: a presigned URL's query carries X-Amz-Credential,
		// X-Amz-Signature and X-Amz-Security-Token, which must not reach the log.
		slog.String("path", r.URL.EscapedPath()),
	)
	if r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String("query_keys", queryKeys(r.URL.RawQuery)))
	}
	attrs = append(attrs,
		slog.String("origin", r.Header.Get("Origin")),
		slog.Int("status", sw.code()),
		slog.String("answered_by", answeredBy),
	)
	if answeredBy == "failed_vm" && storeStatus != 0 {
		// The store received the request and answered it (a PUT may have been stored)
		// before the failed VM replaced its answer.
		attrs = append(attrs, slog.Int("store_status", storeStatus))
	}
	attrs = append(attrs,
		slog.Int64("bytes", sw.bytes),
		slog.Duration("duration", time.Since(start)),
	)
	g.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// maxQueryKeys bounds the parameter names queryKeys reports: a client chooses how many it
// sends, and an S3 request has fewer than ten.
const maxQueryKeys = 16

// maxQueryKeyLen bounds each name queryKeys reports, in bytes before escaping: S3's longest
// (response-content-disposition) has 28.
const maxQueryKeyLen = 64

// queryKeys returns the names of a raw query's parameters, comma-separated in the order
// sent, each once, without their values: enough to tell a presigned request
// (X-Amz-Signature) or a subresource (uploads, x-id) in the log, never its credentials.
//
// Each name is decoded, then shown query-escaped with '.' escaped too, so a name cannot hold
// the list's ',' or the "..." marks: "a%2Cb" is one name holding a comma. A name longer than
// maxQueryKeyLen bytes is cut and ends with "..."; past maxQueryKeys names the list ends
// with ",...".
func queryKeys(raw string) string {
	// Names are compared by a scan: at most maxQueryKeys of them, and no map per request.
	var seen [maxQueryKeys]string
	n := 0
	var b strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if name == "" {
			continue
		}
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		} // else the name is shown as sent, its '%' escaped
		cut := len(name) > maxQueryKeyLen
		if cut {
			name = name[:maxQueryKeyLen]
		}
		name = url.QueryEscape(name)
		if strings.IndexByte(name, '.') >= 0 {
			name = strings.ReplaceAll(name, ".", "%2E")
		}
		if cut {
			name += "..."
		}
		if slices.Contains(seen[:n], name) {
			continue
		}
		if n == maxQueryKeys {
			b.WriteString(",...")
			break
		}
		seen[n] = name
		n++
		if b.Len() == 0 {
			// The names of a typical query fit, so there is no second allocation; a long
			// query (values are most of it) is not reserved for whole.
			b.Grow(min(len(raw), 256))
		} else {
			b.WriteByte(',')
		}
		b.WriteString(name)
	}
	return b.String()
}

// ownEndpoint returns the handler of /healthz when r names it on the S3 listener, or nil when
// r is for the filter: see the package documentation for why a bucket always wins.
func (g *Gateway) ownEndpoint(r *http.Request) http.HandlerFunc {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.Path != HealthPath || g.isBucketRequest(r) {
		return nil
	}
	return g.serveHealth
}

// isBucketRequest reports whether r could address a bucket named in the configuration.
func (g *Gateway) isBucketRequest(r *http.Request) bool {
	cfg := g.policy.Config()
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, suf := range cfg.Addressing.VirtualHostSuffixes {
		suf = strings.TrimSuffix(strings.ToLower(suf), ".")
		if b, ok := strings.CutSuffix(host, "."+suf); ok && b != "" {
			return true
		}
	}
	if !cfg.Addressing.PathStyle {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	_, listed := cfg.Buckets[first]
	return listed
}

// statusWriter records the status and size of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	mark   *requestMark // nil for the gateway's own endpoints
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines of the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
