package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// realEnvoyPolicies are the failure policies of the wasm filter, as TestFaultWasmTrapPolicies
// holds wasmhost to them: what the request that traps gets, and what the requests after it
// get on the same worker. FAIL_RELOAD's next requests are not listed: they depend on the
// reload backoff (see TestRealEnvoyFailurePolicies).
var realEnvoyPolicies = []struct {
	name     string
	edit     func(*wasmv3.PluginConfig)
	trapping string
	next     string
}{
	// No policy at all: Envoy's default fails closed, for good.
	{"unspecified", func(c *wasmv3.PluginConfig) {}, "503 wasm_fail_stream", "503 wasm_fail_stream"},
	{"FAIL_CLOSED", func(c *wasmv3.PluginConfig) { c.FailurePolicy = wasmv3.FailurePolicy_FAIL_CLOSED }, "503 wasm_fail_stream", "503 wasm_fail_stream"},
	// The trapping request still fails closed; the ones after it skip the filter.
	{"FAIL_OPEN", func(c *wasmv3.PluginConfig) { c.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN }, "503 wasm_fail_stream", "unfiltered"},
	// The deprecated field: the trapping request goes on unfiltered too.
	{"fail_open", func(c *wasmv3.PluginConfig) { c.FailOpen = true }, "unfiltered", "unfiltered"}, //nolint:staticcheck // SA1019: what Envoy still does with the deprecated field, which users have

	{"FAIL_RELOAD", func(c *wasmv3.PluginConfig) { c.FailurePolicy = wasmv3.FailurePolicy_FAIL_RELOAD }, "503 wasm_fail_stream", ""},
}

// TestRealEnvoyFailurePolicies: a VM that traps (the host's probe guest panics in
// on_request_headers on "x-probe: panic") under each failure policy, in real Envoy, one
// listener (and VM) per policy and one worker, so that every request lands on the VM that
// trapped. The outcomes are TestFaultWasmTrapPolicies's for wasmhost; FAIL_RELOAD also shows
// Envoy's reload backoff, counted from the worker VM's last load.
func TestRealEnvoyFailurePolicies(t *testing.T) {
	probe := testenv.Guest(t, "probe")
	store := startRealEnvoyStore(t, nil)
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			b := wasmBootstrap(t, []byte("probe"), probe, store.addr)
			tmpl := b.StaticResources.Listeners[0]
			b.StaticResources.Listeners = nil
			for i, pol := range realEnvoyPolicies {
				l := withWasm(t, tmpl, func(w *httpwasmv3.Wasm) {
					w.Config.Name = "probe_" + pol.name
					w.Config.RootId = ""
					w.Config.FailurePolicy = wasmv3.FailurePolicy_UNSPECIFIED
					w.Config.GetVmConfig().VmId = fmt.Sprintf("probe-%d", i)
					pol.edit(w.Config)
				})
				l.Name = pol.name
				b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
			}
			p := launchEnvoy(t, e.Path, marshalBootstrap(t, b), 1)
			p.waitLive(t)
			addrs := p.listeners(t)
			for _, pol := range realEnvoyPolicies {
				t.Run(pol.name, func(t *testing.T) {
					addr := addrs[pol.name]
					if got := probeOutcome(t, p, addr, ""); got != "filtered" {
						t.Fatalf("before the trap: %s, want filtered", got)
					}
					if got := probeOutcome(t, p, addr, "panic"); got != pol.trapping {
						t.Errorf("the trapping request: %s, want %s", got, pol.trapping)
					}
					if pol.next != "" {
						for i := range 3 {
							if got := probeOutcome(t, p, addr, ""); got != pol.next {
								t.Errorf("request %d after the trap: %s, want %s", i+1, got, pol.next)
							}
						}
						return
					}
					// FAIL_RELOAD: requests fail closed until the backoff (1 s base, jittered up to
					// 2 s, from the VM's last load) has passed; then one gets a new VM.
					reloaded := time.Now()
					for {
						got := probeOutcome(t, p, addr, "")
						if got == "filtered" {
							break
						}
						if got != "503 wasm_fail_stream" || time.Since(reloaded) > 30*time.Second {
							t.Fatalf("after the trap: %s (%v), want 503s, then a reloaded VM", got, time.Since(reloaded))
						}
						time.Sleep(200 * time.Millisecond)
					}
					st := p.stats(t)
					if st["wasm.probe_FAIL_RELOAD.vm_reload_success"] != 1 || st["wasm.probe_FAIL_RELOAD.vm_reload_failure"] != 0 {
						t.Errorf("vm_reload_success %d, vm_reload_failure %d; want 1 and 0",
							st["wasm.probe_FAIL_RELOAD.vm_reload_success"], st["wasm.probe_FAIL_RELOAD.vm_reload_failure"])
					}
					// A second trap right after the reload: its last load is now, so the next
					// request is within the backoff, fails closed, and is counted.
					loaded := time.Now()
					if got := probeOutcome(t, p, addr, "panic"); got != "503 wasm_fail_stream" {
						t.Errorf("the second trapping request: %s", got)
					}
					got := probeOutcome(t, p, addr, "")
					if elapsed := time.Since(loaded); elapsed < 900*time.Millisecond {
						t.Logf("a request %v after the reload: %s", elapsed.Round(time.Millisecond), got)
						backoff := p.stats(t)["wasm.probe_FAIL_RELOAD.vm_reload_backoff"] - st["wasm.probe_FAIL_RELOAD.vm_reload_backoff"]
						if got != "503 wasm_fail_stream" || backoff != 1 {
							t.Errorf("request within the backoff: %s, vm_reload_backoff +%d; want 503 wasm_fail_stream, +1", got, backoff)
						}
					}
				})
			}
			// Envoy counts no VM failure anywhere but in the reload counters and its log.
			for name, v := range p.stats(t) {
				if strings.HasPrefix(name, "wasm.") && strings.Contains(name, "fail") && !strings.HasSuffix(name, "vm_reload_failure") && v != 0 {
					t.Logf("%s: %d", name, v)
				}
			}
			if !strings.Contains(p.log(), "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable") {
				t.Errorf("no trap in Envoy's log")
			}
		})
	}
}

// probeOutcome sends a request to the probe guest's listener (scenario "" sends x-probe: seen,
// which the guest echoes in x-probe-seen) and says what the client got: "filtered" (200 and
// the guest's mark), "unfiltered" (200 without it) or "<status> <response code details>" for
// anything else, the details read from Envoy's access log.
func probeOutcome(t *testing.T, p *envoyProc, addr, scenario string) string {
	t.Helper()
	if scenario == "" {
		scenario = "seen"
	}
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-probe", scenario)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 200 && string(body) == casetable.UpstreamBody && resp.Header.Get("x-probe-seen") == scenario:
		return "filtered"
	case resp.StatusCode == 200 && string(body) == casetable.UpstreamBody && len(resp.Header.Values("x-probe-seen")) == 0:
		return "unfiltered"
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, p.accessLogDetails(t, "/"+id))
}
