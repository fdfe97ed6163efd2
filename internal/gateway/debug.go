package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/s3cors/s3cors/internal/explain"
	"github.com/s3cors/s3cors/wasmhost"
)

// debugEndpoint returns the handler of the debug endpoint r names, or nil.
func (g *Gateway) debugEndpoint(r *http.Request) http.HandlerFunc {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil
	}
	switch r.URL.Path {
	case HealthPath:
		return g.serveHealth
	case StatsPath:
		return g.serveStats
	case ExplainPath:
		return g.serveExplain
	}
	return nil
}

// Health is what the health endpoint reports: whether the filter can serve requests now.
type Health struct {
	// OK is false when a worker VM has failed and the failure policy fails its requests
	// closed (FAIL_CLOSED: every request it is given gets a 503 until the process restarts),
	// or when under FAIL_RELOAD the last attempt to replace a failed VM failed too (the
	// module could not be instantiated, or its on_vm_start or on_configure refused): its
	// requests get 503 until an attempt succeeds. Otherwise a failed VM is replaced for the
	// next request (FAIL_RELOAD) or its requests pass unfiltered (FAIL_OPEN), so the gateway
	// stays OK, with the failure in Reason.
	OK bool
	// FailedVMs is how many worker VMs, of VMs, are failed right now.
	FailedVMs, VMs int
	// Reason is one line: "ok" when no VM has failed, otherwise how many failed, what the
	// policy does about it and the first failure's message.
	Reason string
}

// maxHealthReason bounds the failure message in Health.Reason: its first line names the
// callback and the trap, the backtrace after it is in the log.
const maxHealthReason = 200

// Health reports whether the filter can serve requests now.
func (g *Gateway) Health() Health {
	failed := g.host.Failed()
	reloadFailed := g.host.ReloadFailed()
	h := Health{OK: true, VMs: len(failed), Reason: "ok"}
	stuck := "" // a failed VM whose replacement failed too (FAIL_RELOAD)
	first := ""
	for i, msg := range failed {
		if msg == "" {
			continue
		}
		if h.FailedVMs == 0 {
			first, _, _ = strings.Cut(msg, "\n")
			if len(first) > maxHealthReason {
				first = first[:maxHealthReason] + "..."
			}
		}
		h.FailedVMs++
		if stuck == "" && i < len(reloadFailed) && reloadFailed[i] != "" {
			stuck, _, _ = strings.Cut(reloadFailed[i], "\n")
		}
	}
	if h.FailedVMs == 0 {
		return h
	}
	var does string
	switch {
	case g.failPolicy == wasmhost.FailReload && stuck != "":
		h.OK = false
		if len(stuck) > maxHealthReason {
			stuck = stuck[:maxHealthReason] + "..."
		}
		does = "could not replace them (" + stuck + "), so their requests get 503 until a reload succeeds"
	case g.failPolicy == wasmhost.FailReload:
		does = "replaces them on the first request after the reload backoff"
	case g.failPolicy == wasmhost.FailOpen, g.failPolicy == wasmhost.FailOpenLegacy:
		does = "passes their requests unfiltered"
	default:
		h.OK = false
		does = "answers their requests 503"
	}
	h.Reason = fmt.Sprintf("%d of %d wasm VMs failed; %s %s: %s", h.FailedVMs, h.VMs, g.failPolicy, does, first)
	return h
}

// serveHealth answers 200 "ok" while the filter can serve and 503 with the reason when it
// cannot, so that a readiness probe or load balancer takes a gateway whose VMs fail closed
// out of service. A failure the policy recovers from or bypasses is shown after "ok: ".
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := g.Health()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case !h.OK:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "unavailable: "+h.Reason+"\n")
	case h.FailedVMs > 0:
		_, _ = io.WriteString(w, "ok: "+h.Reason+"\n")
	default:
		_, _ = io.WriteString(w, "ok\n")
	}
}

// Stats is what the stats endpoint reports.
type Stats struct {
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Requests counts every request the gateway received, its own endpoints included.
	Requests int64 `json:"requests"`
	// AnsweredAtProxy counts filtered requests the filter answered without reaching the
	// upstream (preflights above all).
	AnsweredAtProxy int64 `json:"answered_at_proxy"`
	// AnsweredByFailedVM counts requests answered 503 because the VM serving them had failed
	// (Envoy's wasm_fail_stream): not the filter's answers, and not in AnsweredAtProxy. A VM
	// that fails while handling the store's response replaces the store's answer: that
	// request is counted here and in ReachedUpstream (the store did receive it).
	AnsweredByFailedVM int64 `json:"answered_by_failed_vm"`
	// ReachedUpstream counts requests the upstream received; UpstreamByMethod splits them.
	ReachedUpstream  int64            `json:"reached_upstream"`
	UpstreamByMethod map[string]int64 `json:"upstream_by_method"`
	// Gateway counts requests to the gateway's own endpoints (/healthz on the S3 listener
	// and everything the debug listener receives).
	Gateway int64 `json:"gateway_endpoints"`
	// Wasm are the filter's metrics (proxy_define_metric), by name.
	Wasm map[string]int64 `json:"wasm_metrics"`
	// WasmMemoryBytes is each worker VM's linear memory, in bytes: what the filter costs per
	// Envoy worker thread.
	WasmMemoryBytes []uint64 `json:"wasm_memory_bytes"`
	// FailedVMs is how many worker VMs are failed right now, of WasmVMs; FailurePolicy
	// ("FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD") says what their requests get.
	FailedVMs     int    `json:"failed_vms"`
	WasmVMs       int    `json:"wasm_vms"`
	FailurePolicy string `json:"failure_policy"`
	// Store are the embedded store's counters, when it is the upstream.
	Store any `json:"store,omitempty"`
}

// Stats returns the gateway's counters and the filter's metrics.
func (g *Gateway) Stats() Stats {
	st := Stats{
		UptimeSeconds:    time.Since(g.started).Seconds(),
		Requests:         g.requests.Load(),
		AnsweredAtProxy:  g.answered.Load(),
		ReachedUpstream:  g.upstream.Load(),
		UpstreamByMethod: map[string]int64{},
		Gateway:          g.own.Load(),
		Wasm:             g.host.Metrics(),
		WasmMemoryBytes:  g.host.MemoryBytes(),
		FailurePolicy:    g.failPolicy.String(),
	}
	st.AnsweredByFailedVM = g.failedVM.Load()
	h := g.Health()
	st.FailedVMs, st.WasmVMs = h.FailedVMs, h.VMs
	g.byMethod.Range(func(k, v any) bool {
		st.UpstreamByMethod[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	if st.Wasm == nil {
		st.Wasm = map[string]int64{}
	}
	if g.storeStats != nil {
		st.Store = g.storeStats()
	}
	return st
}

func (g *Gateway) serveStats(w http.ResponseWriter, r *http.Request) {
	g.allowDemo(w, r)
	writeJSON(w, http.StatusOK, g.Stats())
}

// serveExplain answers GET /debug/s3cors/explain?method=PUT&url=...&origin=...
// [&request-method=...][&request-headers=...], or bucket=...&key=... instead of url. A
// parameter that is absent means the header is absent.
func (g *Gateway) serveExplain(w http.ResponseWriter, r *http.Request) {
	g.allowDemo(w, r)
	q := r.URL.Query()
	opt := func(name string) *string {
		if !q.Has(name) {
			return nil
		}
		v := q.Get(name)
		return &v
	}
	query := explain.Query{
		Method: q.Get("method"), URL: q.Get("url"), Bucket: q.Get("bucket"), Key: q.Get("key"),
		Origin: opt("origin"), RequestMethod: opt("request-method"), RequestHeaders: opt("request-headers"),
	}
	req, err := explain.Request(g.policy.Config(), query)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, explain.Run(g.policy, req))
}

// allowDemo lets the demo page read the debug endpoints. The endpoints are read-only and
// carry no credentials, so only the demo origin is echoed.
func (g *Gateway) allowDemo(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	if g.demoOrigin != "" && r.Header.Get("Origin") == g.demoOrigin {
		w.Header().Set("Access-Control-Allow-Origin", g.demoOrigin)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "gateway: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
