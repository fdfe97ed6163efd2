package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// newProbeGateway runs the gateway with the real host and the host's probe guest, whose
// request header x-probe: panic traps in on_request_headers (s3cors.wasm has no way to trap
// on purpose). The probe passes every other request on to the upstream.
// healthConfig is routingConfig without its bucket named healthz, so /healthz is the
// gateway's.
var healthConfig = strings.Replace(routingConfig, `"healthz": null`, `"other": null`, 1)

// probeCompilation compiles the probe guest once for every gateway of these tests.
var probeCompilation = wazero.NewCompilationCache()

func newProbeGateway(t *testing.T, policy wasmhost.FailurePolicy, workers int) (*Gateway, *testenv.SyncBuffer) {
	t.Helper()
	return newProbeGatewayTo(t, policy, workers, http.HandlerFunc(storeStub))
}

// newProbeGatewayTo is newProbeGateway in front of upstream.
func newProbeGatewayTo(t *testing.T, policy wasmhost.FailurePolicy, workers int, upstream http.Handler) (*Gateway, *testenv.SyncBuffer) {
	t.Helper()
	logs := new(testenv.SyncBuffer)
	g, err := New(context.Background(), Options{
		Config: []byte(healthConfig), Module: testenv.GuestBytes(t, "probe"), CompilationCache: probeCompilation,
		Upstream: upstream, FailurePolicy: policy, Workers: workers, ReloadBackoff: wasmhost.NoReloadBackoff,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g, logs
}

func stats(t *testing.T, g *Gateway) Stats {
	t.Helper()
	rec := get(t, g.Debug(), "GET", "127.0.0.1:8080", StatsPath)
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("stats body %q: %v", rec.Body.String(), err)
	}
	return st
}

// TestHealthzFailClosed: once the only VM has trapped, fail-closed answers every request 503;
// /healthz says so, and the stats and the log put those 503s on the failed VM, not on the
// filter's answers.
func TestHealthzFailClosed(t *testing.T) {
	g, logs := newProbeGateway(t, wasmhost.FailClosed, 1)
	if rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("healthz before the trap: %d %q, want 200 ok", rec.Code, rec.Body.String())
	}
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a", "x-probe", "panic"); rec.Code != 503 {
		t.Fatalf("the trapping request: %d, want 503", rec.Code)
	}
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/b"); rec.Code != 503 {
		t.Fatalf("the request after the trap: %d, want 503 (fail-closed)", rec.Code)
	}
	rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath)
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "unavailable: 1 of 1 wasm VMs failed; FAIL_CLOSED answers their requests 503: Function: proxy_on_request_headers failed") ||
		strings.Count(body, "\n") != 1 {
		t.Errorf("healthz after the trap: %d %q, want 503 with a one-line reason", rec.Code, body)
	}
	if h := g.Health(); h.OK || h.FailedVMs != 1 || h.VMs != 1 {
		t.Errorf("Health after the trap: %+v", h)
	}
	// HEAD, as some probes send it: the status alone tells.
	if rec := get(t, g, "HEAD", "127.0.0.1:8080", HealthPath); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("HEAD healthz after the trap: %d, want 503", rec.Code)
	}
	st := stats(t, g)
	if st.AnsweredByFailedVM != 2 || st.AnsweredAtProxy != 0 || st.ReachedUpstream != 0 || st.FailedVMs != 1 || st.WasmVMs != 1 || st.FailurePolicy != "FAIL_CLOSED" {
		t.Errorf("stats after the trap: %+v", st)
	}
	log := logs.String()
	for _, want := range []string{
		`path=/website/a origin="" status=503 answered_by=failed_vm`,
		`path=/website/b origin="" status=503 answered_by=failed_vm`,
		`path=/healthz origin="" status=503 answered_by=gateway`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "answered_by=proxy") {
		t.Errorf("a failed VM's 503 is logged as the filter's answer:\n%s", log)
	}
}

// TestHealthzFailClosedOneOfTwo: one dead VM of two fails half the requests; the gateway is
// not healthy.
func TestHealthzFailClosedOneOfTwo(t *testing.T) {
	g, _ := newProbeGateway(t, wasmhost.FailClosed, 2)
	get(t, g, "GET", "127.0.0.1:8080", "/website/a", "x-probe", "panic")
	rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath)
	if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Body.String(), "unavailable: 1 of 2 wasm VMs failed") {
		t.Errorf("healthz with one of two VMs failed: %d %q", rec.Code, rec.Body.String())
	}
}

// TestHealthzRecoveringPolicies: under reload the failed VM is replaced for the next request,
// under fail-open its requests pass unfiltered; the gateway serves in both, so /healthz stays
// 200 and names the failure until it is gone.
func TestHealthzRecoveringPolicies(t *testing.T) {
	for _, c := range []struct {
		policy     wasmhost.FailurePolicy
		failed     string // healthz between the trap and the next request
		after      int    // status of the next request
		failedNext int    // failed VMs after it
	}{
		{wasmhost.FailReload, "ok: 1 of 1 wasm VMs failed; FAIL_RELOAD replaces them on the first request after the reload backoff: Function: proxy_on_request_headers failed", 200, 0},
		{wasmhost.FailOpen, "ok: 1 of 1 wasm VMs failed; FAIL_OPEN passes their requests unfiltered: Function: proxy_on_request_headers failed", 200, 1},
	} {
		t.Run(c.policy.String(), func(t *testing.T) {
			g, logs := newProbeGateway(t, c.policy, 1)
			if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a", "x-probe", "panic"); rec.Code != 503 {
				t.Fatalf("the trapping request: %d, want 503", rec.Code)
			}
			rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath)
			if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), c.failed) {
				t.Errorf("healthz after the trap: %d %q, want 200 %q...", rec.Code, rec.Body.String(), c.failed)
			}
			if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/b"); rec.Code != c.after {
				t.Errorf("the next request: %d, want %d", rec.Code, c.after)
			}
			st := stats(t, g)
			if st.FailedVMs != c.failedNext || st.AnsweredByFailedVM != 1 || st.AnsweredAtProxy != 0 || st.ReachedUpstream != 1 {
				t.Errorf("stats: %+v", st)
			}
			if c.failedNext == 0 {
				if rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath); rec.Body.String() != "ok\n" {
					t.Errorf("healthz after the reload: %q, want ok", rec.Body.String())
				}
			}
			if want := `path=/website/a origin="" status=503 answered_by=failed_vm`; !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		})
	}
}

// TestHealthReasonIsOneShortLine: a failure message with a backtrace is cut to its first line
// and bounded.
func TestHealthReasonIsOneShortLine(t *testing.T) {
	g, fh, _ := newTestGateway(t, healthConfig, http.HandlerFunc(storeStub))
	fh.failed = []string{"", "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable" + strings.Repeat("!", 300) + "\nwasm backtrace:\n  0: 0x1234 - runtime.abort"}
	h := g.Health()
	if h.OK || h.FailedVMs != 1 || h.VMs != 2 || strings.Contains(h.Reason, "\n") || strings.Contains(h.Reason, "backtrace") || len(h.Reason) > 300 {
		t.Errorf("Health: %+v", h)
	}
	rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath)
	if body, _ := io.ReadAll(rec.Body); rec.Code != 503 || strings.Count(string(body), "\n") != 1 {
		t.Errorf("healthz: %d %q", rec.Code, body)
	}
}

// TestTrapInResponseIsTheFailedVMs: a VM that traps in on_response_headers under fail-closed
// replaces the store's 200 with the host's 503 (wasm_fail_stream). The client's answer is the
// failed VM's, not the store's, though the store did receive (and may have acted on) the
// request: the log says failed_vm with the store's own status, and the stats count it both as
// reaching the store and as answered by a failed VM.
func TestTrapInResponseIsTheFailedVMs(t *testing.T) {
	g, logs := newProbeGateway(t, wasmhost.FailClosed, 1)
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a", "x-probe", "resp-panic"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("the request trapping in on_response_headers: %d, want 503", rec.Code)
	}
	st := stats(t, g)
	if st.AnsweredByFailedVM != 1 || st.ReachedUpstream != 1 || st.UpstreamByMethod["GET"] != 1 || st.AnsweredAtProxy != 0 || st.FailedVMs != 1 {
		t.Errorf("stats after the trap in the response: %+v", st)
	}
	log := logs.String()
	if want := `path=/website/a origin="" status=503 answered_by=failed_vm store_status=200`; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if strings.Contains(log, "answered_by=upstream") {
		t.Errorf("the failed VM's 503 is logged as the store's answer:\n%s", log)
	}
}

// TestStore503IsTheStores: a 503 the store sends (S3's SlowDown) passes a healthy filter and
// is the store's answer, not a failed VM's.
func TestStore503IsTheStores(t *testing.T) {
	g, logs := newProbeGatewayTo(t, wasmhost.FailClosed, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<Error><Code>SlowDown</Code></Error>")
	}))
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("the store's 503: %d, want it passed on", rec.Code)
	}
	if st := stats(t, g); st.AnsweredByFailedVM != 0 || st.ReachedUpstream != 1 || st.FailedVMs != 0 {
		t.Errorf("stats after the store's 503: %+v", st)
	}
	if want := `path=/website/a origin="" status=503 answered_by=upstream`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}

// TestStore503ReplacedByFailedVM: a store's own 503 that a VM trapping in on_response_headers
// replaces with the host's 503 is the failed VM's answer: the host says so (wasm_fail_stream),
// where the status alone could not.
func TestStore503ReplacedByFailedVM(t *testing.T) {
	g, logs := newProbeGatewayTo(t, wasmhost.FailClosed, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a", "x-probe", "resp-panic"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if st := stats(t, g); st.AnsweredByFailedVM != 1 || st.ReachedUpstream != 1 {
		t.Errorf("stats: %+v, want one request reaching the store and answered by the failed VM", st)
	}
	if want := `status=503 answered_by=failed_vm`; !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "store_status=503") {
		t.Errorf("log lacks %q and store_status=503:\n%s", want, logs.String())
	}
}

// TestHealthzReloadThatFails: under reload a failed VM is replaced for the next request, so
// /healthz stays 200; but when the replacement fails too (wasmhost.Host.ReloadFailed), that
// worker's requests get 503 until an attempt succeeds, and /healthz says unavailable.
func TestHealthzReloadThatFails(t *testing.T) {
	g, fh, _ := newTestGateway(t, healthConfig, http.HandlerFunc(storeStub))
	g.failPolicy = wasmhost.FailReload
	fh.failed = []string{"", "Function: proxy_on_request_headers failed: unreachable"}
	if h := g.Health(); !h.OK || !strings.Contains(h.Reason, "replaces them on the first request after the reload backoff") {
		t.Errorf("a failed VM not yet replaced: %+v, want OK", h)
	}
	fh.reload = []string{"", "wasmhost: configure: Failed to configure thread-local Wasm plugin\ndetail"}
	h := g.Health()
	if h.OK || !strings.Contains(h.Reason, "could not replace them (wasmhost: configure: Failed to configure thread-local Wasm plugin)") {
		t.Errorf("a failed VM whose reload failed: %+v, want not OK with the reload's first line", h)
	}
	if rec := get(t, g, "GET", "127.0.0.1:8080", HealthPath); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("healthz with a reload failing: %d, want 503", rec.Code)
	}
	// A reload failure of a worker that is not failed (it recovered since) does not count.
	fh.failed, fh.reload = []string{"", ""}, []string{"", "old failure"}
	if h := g.Health(); !h.OK || h.FailedVMs != 0 {
		t.Errorf("no failed VM: %+v", h)
	}
}
