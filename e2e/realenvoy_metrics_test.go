package e2e_test

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// deployDocMetrics reads the metric names docs/deploy.md documents: the wasm filter's
// counters (the table of its "Metrics" section) and the ext_proc filter's Envoy counters (the
// names listed after "under `http.<stat_prefix>.ext_proc.`").
func deployDocMetrics(t *testing.T) (wasm, extproc []string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(s3cors\\.[a-z_.]+)` \\|")
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			wasm = append(wasm, m[1])
		}
	}
	_, rest, ok := bytes.Cut(doc, []byte("under `http.<stat_prefix>.ext_proc.`"))
	para, _, _ := bytes.Cut(rest, []byte("\n\n"))
	para, _, _ = bytes.Cut(para, []byte(". The server"))
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllSubmatch(para, -1) {
		extproc = append(extproc, string(m[1]))
	}
	if len(wasm) < 10 || !ok || len(extproc) < 5 {
		t.Fatalf("docs/deploy.md: found %d wasm filter metrics %q and ext_proc counters %q; the parser no longer matches the document", len(wasm), wasm, extproc)
	}
	return wasm, extproc
}

// TestRealEnvoyDocumentedMetrics reads every metric name docs/deploy.md documents back from a
// real Envoy's /stats and /stats/prometheus after traffic: the wasm filter's counters as
// wasmcustom.<name> and, in Prometheus, <name> with '.' as '_' and no envoy_ prefix; the
// ext_proc filter's as http.<stat_prefix>.ext_proc.<name> and envoy_http_ext_proc_<name>.
func TestRealEnvoyDocumentedMetrics(t *testing.T) {
	wasmNames, extprocNames := deployDocMetrics(t)
	module := testenv.Module(t)
	tables := []casetable.Table{{Name: "metrics", Config: lifecycleConfig("https://app.example")}}
	store := startRealEnvoyStore(t, tables)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			t.Run("wasm", func(t *testing.T) {
				p := launchEnvoy(t, e.Path, realEnvoyBootstrap(t, "wasm.yaml", tables, store.addr, module, nil), 2)
				p.waitLive(t)
				addr := p.listeners(t)["s3-0"]
				for origin, want := range map[string]int{"https://app.example": 200, "https://evil.example": 403} {
					if st, err := preflight(client, addr, origin); err != nil || st != want {
						t.Fatalf("preflight from %s: %d %v, want %d", origin, st, err, want)
					}
				}
				stats := p.stats(t)
				prom := string(p.adminGet(t, "/stats/prometheus"))
				for _, name := range wasmNames {
					if _, ok := stats["wasmcustom."+name]; !ok {
						t.Errorf("/stats has no wasmcustom.%s", name)
					}
					if !promHas(prom, strings.ReplaceAll(name, ".", "_")) {
						t.Errorf("/stats/prometheus has no %s", strings.ReplaceAll(name, ".", "_"))
					}
				}
				// One configuration, counted per VM that took it: the canary, the main thread's
				// and each of the two workers'.
				if got := stats["wasmcustom.s3cors.config.accepted"]; got != 4 {
					t.Errorf("config.accepted = %d with two workers, want 4", got)
				}
				if stats["wasmcustom.s3cors.preflight.allowed"] != 1 || stats["wasmcustom.s3cors.preflight.denied.not_allowed"] != 1 {
					t.Errorf("preflight.allowed %d, denied.not_allowed %d after one each",
						stats["wasmcustom.s3cors.preflight.allowed"], stats["wasmcustom.s3cors.preflight.denied.not_allowed"])
				}
			})
			t.Run("extproc", func(t *testing.T) {
				server := startRealEnvoyExtProc(t, 0, tables[0])
				p := launchEnvoy(t, e.Path, realEnvoyBootstrap(t, "extproc.yaml", tables, store.addr, "", []string{server}), 2)
				p.waitLive(t)
				if st, err := preflight(client, p.listeners(t)["s3-0"], "https://app.example"); err != nil || st != 200 {
					t.Fatalf("preflight: %d %v, want 200", st, err)
				}
				stats := p.stats(t)
				prom := string(p.adminGet(t, "/stats/prometheus"))
				for _, name := range extprocNames {
					if _, ok := stats["http.s3_0.ext_proc."+name]; !ok {
						t.Errorf("/stats has no http.s3_0.ext_proc.%s", name)
					}
					if !promHas(prom, "envoy_http_ext_proc_"+name) {
						t.Errorf("/stats/prometheus has no envoy_http_ext_proc_%s", name)
					}
				}
				if stats["http.s3_0.ext_proc.streams_started"] < 1 {
					t.Errorf("http.s3_0.ext_proc.streams_started = %d after a request", stats["http.s3_0.ext_proc.streams_started"])
				}
			})
		})
	}
}

// promHas reports whether the Prometheus text exposition has a sample of metric name.
func promHas(prom, name string) bool {
	for _, line := range strings.Split(prom, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			return true
		}
	}
	return false
}
