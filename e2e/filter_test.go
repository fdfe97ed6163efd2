package e2e_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// filterProfiles are the Envoy lines the module must work on: 1.33–1.38 (18 WASI functions,
// poll_oneoff ENOSYS) and 1.39+.
var filterProfiles = []wasmhost.Profile{wasmhost.Envoy133, wasmhost.Envoy139}

// filterCompilation is shared by every host of the package's filter tests: compiling the
// module once is most of a host's start-up.
var filterCompilation = sync.OnceValue(wazero.NewCompilationCache)

// newFilterHost starts build/s3cors.wasm in wasmhost with config as its plugin configuration.
func newFilterHost(tb testing.TB, profile wasmhost.Profile, config []byte, edit ...func(*wasmhost.Options)) *wasmhost.Host {
	tb.Helper()
	opts := wasmhost.Options{
		Module:           testenv.ModuleBytes(tb),
		Profile:          profile,
		PluginConfig:     config,
		CompilationCache: filterCompilation(),
	}
	for _, e := range edit {
		e(&opts)
	}
	h, err := wasmhost.New(context.Background(), opts)
	if err != nil {
		tb.Fatalf("wasmhost.New(%s): %v", profile, err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// filterRequest is what Envoy hands the filter for a case's request.
func filterRequest(r casetable.Request) wasmhost.Headers {
	hs := wasmhost.Headers{{":method", r.Method}, {":authority", r.Authority}, {":path", r.Path}, {":scheme", "https"}}
	for _, h := range r.Headers {
		hs = append(hs, [2]string{h[0], h[1]})
	}
	return hs
}

// filterUpstream is the fake store's answer to a forwarded case: 200, text/plain, the case's
// headers, then UpstreamBody.
func filterUpstream(c casetable.Case) wasmhost.Headers {
	hs := wasmhost.Headers{{":status", "200"}, {"content-type", "text/plain"},
		{"content-length", strconv.Itoa(len(casetable.UpstreamBody))}}
	for _, h := range c.Upstream {
		hs = append(hs, [2]string{h[0], h[1]})
	}
	return hs
}

// runFilterCase drives one case through the module as Envoy's filter chain would and returns
// what the client gets. It also fails t on what only a filter can get wrong: a changed request,
// a changed pass-through response, a stream left stopped.
func runFilterCase(t *testing.T, h *wasmhost.Host, c casetable.Case) casetable.Response {
	t.Helper()
	s := h.NewStream()
	defer s.Done()
	req := filterRequest(c.Request)
	r := s.RequestHeaders(req, true)
	var resp casetable.Response
	switch r.Action {
	case wasmhost.Replied:
		resp.Status, resp.Body = r.Reply.Status, r.Reply.Body
		resp.Headers = caseHeaders(r.Reply.Headers)
		// Stream shows the filter chain's view; Envoy's HTTP/1.1 codec then frames a
		// headers-only reply with Content-Length: 0 (sendLocalReply removed Content-Length).
		if len(resp.Body) == 0 && resp.Values("content-length") == nil {
			resp.Headers = append(resp.Headers, casetable.Header{"content-length", "0"})
		}
		if !r.Reply.ViaFilterChain {
			t.Errorf("%s: the local reply did not traverse the filter chain", c.Name)
		}
		return resp
	case wasmhost.Continue:
	default:
		t.Errorf("%s: request headers: %s (%s), want continue or replied", c.Name, r.Action, r.Status)
		return resp
	}
	if !sameHeaders(r.Headers, req) {
		t.Errorf("%s: request changed on its way upstream:\n got %q\nwant %q", c.Name, r.Headers, req)
	}
	up := filterUpstream(c)
	rh := s.ResponseHeaders(up, false)
	if rh.Action != wasmhost.Continue {
		t.Errorf("%s: response headers: %s (%s), want continue", c.Name, rh.Action, rh.Status)
		return resp
	}
	rb := s.ResponseBody([]byte(casetable.UpstreamBody), true)
	if rb.Action != wasmhost.Continue {
		t.Errorf("%s: response body: %s (%s), want continue", c.Name, rb.Action, rb.Status)
	}
	resp.ReachedUpstream = true
	resp.Headers = caseHeaders(rh.Headers)
	resp.Body = rb.Body
	if st, ok := rh.Headers.Get(":status"); ok {
		resp.Status, _ = strconv.Atoi(st)
	}
	if c.Want.Outcome == casetable.OutcomePass && !sameHeaders(rh.Headers, up) {
		t.Errorf("%s: pass-through response changed:\n got %q\nwant %q", c.Name, rh.Headers, up)
	}
	return resp
}

func caseHeaders(hs wasmhost.Headers) []casetable.Header {
	var out []casetable.Header
	for _, h := range hs {
		if !strings.HasPrefix(h[0], ":") {
			out = append(out, casetable.Header{h[0], h[1]})
		}
	}
	return out
}

// sameHeaders compares header lists as Envoy's codecs present them: names lower-cased,
// pseudo-headers first, order otherwise kept.
func sameHeaders(a, b wasmhost.Headers) bool {
	return slices.Equal(canonical(a), canonical(b))
}

func canonical(hs wasmhost.Headers) []string {
	var pseudo, rest []string
	for _, h := range hs {
		line := strings.ToLower(h[0]) + ": " + h[1]
		if strings.HasPrefix(h[0], ":") {
			pseudo = append(pseudo, line)
		} else {
			rest = append(rest, line)
		}
	}
	return append(pseudo, rest...)
}

func filterTables(t *testing.T) []casetable.Table {
	t.Helper()
	root := testenv.RepoRoot(t)
	var all []casetable.Table
	for _, dir := range []string{filepath.Join(root, "testdata", "cases"), filepath.Join(root, "filter", "testdata", "cases")} {
		tables, err := casetable.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tables...)
	}
	return all
}

// TestWasmFilterCaseTable runs the shared case table, and the filter's own, through the built
// module in both Envoy profiles, and checks that each request moved exactly one counter.
func TestWasmFilterCaseTable(t *testing.T) {
	tables := filterTables(t)
	for _, profile := range filterProfiles {
		t.Run(string(profile), func(t *testing.T) {
			for _, tbl := range tables {
				t.Run(filepath.Base(tbl.File), func(t *testing.T) {
					h := newFilterHost(t, profile, tbl.Config)
					for _, c := range tbl.Cases {
						before := h.Metrics()
						if err := c.Check(runFilterCase(t, h, c)); err != nil {
							t.Error(err)
						}
						checkFilterMetric(t, c, before, h.Metrics())
					}
					if failed := slices.DeleteFunc(h.Failed(), func(s string) bool { return s == "" }); len(failed) > 0 {
						t.Errorf("VM failed: %q", failed)
					}
				})
			}
		})
	}
}

func checkFilterMetric(t *testing.T, c casetable.Case, before, after map[string]int64) {
	t.Helper()
	var moved []string
	for name, v := range after {
		if d := v - before[name]; d != 0 {
			moved = append(moved, name+"+"+strconv.FormatInt(d, 10))
		}
	}
	family := map[string]string{
		casetable.OutcomeReply:   "wasmcustom.s3cors.preflight.",
		casetable.OutcomeForward: "wasmcustom.s3cors.actual.",
		casetable.OutcomePass:    "wasmcustom.s3cors.passthrough.",
	}[c.Want.Outcome]
	if len(moved) != 1 || !strings.HasPrefix(moved[0], family) || !strings.HasSuffix(moved[0], "+1") {
		t.Errorf("%s: metrics moved %q, want one %s* counter by 1", c.Name, moved, family)
	}
}

// lineRecorder is a slog.Handler keeping every message, for hosts that fail in New (and so
// leave no Host to ask for its Logs).
type lineRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *lineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *lineRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *lineRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *lineRecorder) WithGroup(string) slog.Handler      { return r }

func (r *lineRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// TestWasmFilterRefusesInvalidConfigurations: each kind of bad plugin configuration makes the
// module refuse to start (Envoy NACKs it), with every problem and its path in the log.
func TestWasmFilterRefusesInvalidConfigurations(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "filter", "testdata", "invalid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configurations in filter/testdata/invalid (%v)", err)
	}
	for _, profile := range filterProfiles {
		for _, f := range files {
			t.Run(string(profile)+"/"+filepath.Base(f), func(t *testing.T) {
				config, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				rec := &lineRecorder{}
				h, err := wasmhost.New(context.Background(), wasmhost.Options{
					Module:           testenv.ModuleBytes(t),
					Profile:          profile,
					PluginConfig:     config,
					CompilationCache: filterCompilation(),
					Logger:           slog.New(rec),
				})
				if err == nil {
					_ = h.Close(context.Background())
					t.Fatal("the module started with an invalid configuration")
				}
				var le *wasmhost.LoadError
				if !errors.As(err, &le) || le.Stage != "configure" {
					t.Errorf("error %v, want a *wasmhost.LoadError at stage configure", err)
				}
				logs := rec.text()
				for _, want := range filterWantedProblems(t, config) {
					if !strings.Contains(logs, want) {
						t.Errorf("log lacks %q:\n%s", want, logs)
					}
				}
				if !strings.Contains(logs, "s3cors: plugin configuration rejected; the filter refuses to start") {
					t.Errorf("log lacks the rejection summary:\n%s", logs)
				}
				if strings.Contains(logs, "panic") {
					t.Errorf("log shows a panic:\n%s", logs)
				}
			})
		}
	}
}

// filterWantedProblems: each of the evaluator's problems for config, as the filter logs them,
// or the filter's own message for an empty configuration.
func filterWantedProblems(t *testing.T, config []byte) []string {
	t.Helper()
	if strings.TrimSpace(string(config)) == "" {
		return []string{"the plugin configuration is empty"}
	}
	_, err := evaluator.Load(config)
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("evaluator.Load accepted the configuration or failed without problems: %v", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, "s3cors: invalid configuration: "+p.String())
	}
	return out
}

// TestWasmFilterMetricsAreDefined: every documented metric exists once the module is
// configured (Envoy shows a defined counter at 0), under Envoy's wasmcustom prefix.
func TestWasmFilterMetricsAreDefined(t *testing.T) {
	h := newFilterHost(t, wasmhost.Envoy133, []byte(`{"buckets": {}}`), func(o *wasmhost.Options) { o.Workers = 2 })
	m := h.Metrics()
	for _, name := range filter.MetricNames {
		if _, ok := m["wasmcustom."+name]; !ok {
			t.Errorf("metric wasmcustom.%s not defined; have %v", name, m)
		}
	}
	// The canary VM and each worker VM configure once: 3 acceptances.
	if got := m["wasmcustom.s3cors.config.accepted"]; got != 3 {
		t.Errorf("wasmcustom.s3cors.config.accepted = %d, want 3 (canary + 2 workers)", got)
	}
}

// TestWasmFilterLogsDeniedPreflightAtDebug: with Envoy's wasm logger at debug, a denied
// preflight says why; at info it says nothing.
func TestWasmFilterLogsDeniedPreflightAtDebug(t *testing.T) {
	config := []byte(`{"buckets": {"site": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET"]}]}}`)
	denied := wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"}, {":path", "/site/k"},
		{"origin", "https://evil.example"}, {"access-control-request-method", "GET"}}
	for _, level := range []wasmhost.LogLevel{wasmhost.LevelDebug, wasmhost.LevelInfo} {
		h := newFilterHost(t, wasmhost.Envoy133, config, func(o *wasmhost.Options) { o.LogLevel = level })
		s := h.NewStream()
		if r := s.RequestHeaders(denied, true); r.Action != wasmhost.Replied || r.Reply.Status != 403 {
			t.Fatalf("denied preflight: %s, want a 403 reply", r.Action)
		}
		s.Done()
		var found bool
		for _, e := range h.Logs() {
			if strings.Contains(e.Message, `s3cors: preflight denied: 403 not_allowed: bucket "site", key "k", origin "https://evil.example", method "GET"`) {
				found = true
			}
		}
		if found != (level == wasmhost.LevelDebug) {
			t.Errorf("log level %s: denied-preflight line logged = %v", level, found)
		}
	}
}

// TestWasmFilterGCMode: the module tells Envoy 1.33–1.38 (poll_oneoff fails, so it must never
// yield to the Go runtime) from 1.39 and later (it may), by probing poll_oneoff in on_vm_start.
func TestWasmFilterGCMode(t *testing.T) {
	want := map[wasmhost.Profile]string{
		wasmhost.Envoy133: "abi: the host's poll_oneoff fails (Envoy 1.33-1.38): the module never yields to the Go runtime",
		wasmhost.Envoy139: "abi: the host's poll_oneoff works: the Go runtime may run at quiet points",
	}
	for _, profile := range filterProfiles {
		h := newFilterHost(t, profile, []byte(`{"buckets": {}}`), func(o *wasmhost.Options) { o.LogLevel = wasmhost.LevelDebug })
		found := false
		for _, e := range h.Logs() {
			if e.VM == "worker 0" && e.Message == want[profile] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: the worker did not log %q", profile, want[profile])
		}
	}
}
