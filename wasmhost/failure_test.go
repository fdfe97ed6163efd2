package wasmhost

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var failStreamReply = &Reply{Status: 503, Headers: Headers{{":status", "503"}}, Details: "wasm_fail_stream", GRPCStatus: 14, ViaFilterChain: true}

// TestTrapFailClosed: a panic in on_request_headers traps; the VM is failed and never called
// again; this and every later stream get a 503 "wasm_fail_stream" local reply with no
// response callbacks.
func TestTrapFailClosed(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "probe", Options{Profile: p})
			s := h.NewStream()
			r := s.RequestHeaders(req("panic"), true)
			if r.Action != Replied || !reflect.DeepEqual(r.Reply, failStreamReply) {
				t.Fatalf("trapping stream: %+v, want %+v", r.Reply, failStreamReply)
			}
			if !hasLine(h, "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable") {
				t.Errorf("no trap message in logs:\n%s", strings.Join(messages(h, ""), "\n"))
			}
			if f := h.Failed(); f[0] == "" {
				t.Error("Failed() does not report the failed VM")
			}
			before := len(messages(h, "worker 0"))
			for i := 0; i < 3; i++ {
				s := h.NewStream()
				r := s.RequestHeaders(req(""), true)
				if r.Action != Replied || !reflect.DeepEqual(r.Reply, failStreamReply) {
					t.Errorf("stream after the failure: %+v", r)
				}
				s.Done()
			}
			if after := len(messages(h, "worker 0")); after != before {
				t.Errorf("the failed VM was called again: %v", messages(h, "worker 0")[before:])
			}
		})
	}
}

// TestTrapFailOpen: with failure_policy FAIL_OPEN the stream that trapped still gets the 503
// (PluginBase::fail_open_ mirrors only the legacy field); streams created later skip the
// filter altogether. With the legacy fail_open: true the trapping stream continues untouched.
func TestTrapFailOpen(t *testing.T) {
	for _, tt := range []struct {
		policy  FailurePolicy
		trapped Action
	}{{FailOpen, Replied}, {FailOpenLegacy, Continue}} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			h := newHost(t, "probe", Options{FailurePolicy: tt.policy})
			in := req("panic")
			r := h.NewStream().RequestHeaders(in, true)
			if r.Action != tt.trapped {
				t.Fatalf("trapping stream: %+v, want %s", r, tt.trapped)
			}
			if tt.trapped == Continue && !equalHeaders(r.Headers, in) {
				t.Errorf("trapping stream headers %v, want them untouched", r.Headers)
			}
			if tt.trapped == Replied && !reflect.DeepEqual(r.Reply, failStreamReply) {
				t.Errorf("trapping stream reply %+v", r.Reply)
			}
			before := len(messages(h, "worker 0"))
			s := h.NewStream()
			if r := s.RequestHeaders(req("headers"), true); r.Action != Continue || r.Status != "" {
				t.Errorf("later stream: %+v, want Continue without the plugin", r)
			}
			if r := s.ResponseHeaders(Headers{{":status", "200"}}, true); r.Action != Continue {
				t.Errorf("later stream response: %+v", r)
			}
			if after := len(messages(h, "worker 0")); after != before {
				t.Errorf("the failed VM was called again: %v", messages(h, "worker 0")[before:])
			}
		})
	}
}

// TestTrapFailReload: the trapping stream fails closed; without a backoff the next stream
// gets a new VM with a fresh _initialize and root sequence.
func TestTrapFailReload(t *testing.T) {
	h := newHost(t, "probe", Options{FailurePolicy: FailReload, ReloadBackoff: NoReloadBackoff})
	if r := h.NewStream().RequestHeaders(req("panic"), true); !reflect.DeepEqual(r.Reply, failStreamReply) {
		t.Fatalf("trapping stream: %+v", r)
	}
	s := h.NewStream()
	if r := s.RequestHeaders(req(""), true); r.Action != Continue {
		t.Fatalf("stream after reload: %+v", r)
	}
	got := messages(h, "worker 0 (reload 1)")
	want := []string{"probe init", "probe root_create: id=1"}
	if len(got) < 3 || got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[len(got)-1], "probe request_headers: id=2") {
		t.Errorf("reloaded VM logs: %v", got)
	}
	if f := h.Failed(); f[0] != "" {
		t.Errorf("worker still failed after reload: %q", f[0])
	}
}

// TestReloadBackoff: Envoy's default (e2e's TestRealEnvoyFailurePolicies shows it in 1.36.2
// and 1.40.0): a VM that traps within a second of its load stays failed, and its streams fail
// closed, until the backoff has passed since that load; the next stream then gets a new VM,
// and the backoff counts again from that reload.
func TestReloadBackoff(t *testing.T) {
	h := newHost(t, "probe", Options{FailurePolicy: FailReload})
	if h.opts.ReloadBackoff != DefaultReloadBackoff {
		t.Fatalf("default ReloadBackoff %v, want Envoy's %v", h.opts.ReloadBackoff, DefaultReloadBackoff)
	}
	h.NewStream().RequestHeaders(req("panic"), true)
	if r := h.NewStream().RequestHeaders(req(""), true); !reflect.DeepEqual(r.Reply, failStreamReply) {
		t.Fatalf("a stream within the backoff: %+v, want the failed VM's 503", r)
	}
	// The load 1.5 s ago: past any draw from [1 s, 1.5 s).
	h.workers[0].mu.Lock()
	h.workers[0].lastLoad = time.Now().Add(-3 * DefaultReloadBackoff / 2)
	h.workers[0].mu.Unlock()
	if r := h.NewStream().RequestHeaders(req(""), true); r.Action != Continue {
		t.Fatalf("a stream after the backoff: %+v, want a reloaded VM", r)
	}
	h.NewStream().RequestHeaders(req("panic"), true)
	if r := h.NewStream().RequestHeaders(req(""), true); !reflect.DeepEqual(r.Reply, failStreamReply) {
		t.Fatalf("a stream right after the reloaded VM trapped: %+v, want the 503 (backoff from the reload)", r)
	}
	for range 1000 {
		if w := reloadWait(DefaultReloadBackoff); w < DefaultReloadBackoff || w >= 3*DefaultReloadBackoff/2 {
			t.Fatalf("reloadWait(1s) = %v, want [1s, 1.5s)", w)
		}
	}
	if w := reloadWait(NoReloadBackoff); w != 0 {
		t.Errorf("reloadWait(NoReloadBackoff) = %v", w)
	}
	if _, err := tryHost(t, "probe", Options{ReloadBackoff: -time.Second}); err == nil || !strings.Contains(err.Error(), "Options.ReloadBackoff -1s") {
		t.Errorf("ReloadBackoff -1s: %v, want an error naming it", err)
	}
}

// TestReloadFailureReported: under FailReload, a failed VM whose replacement cannot be made
// (here: the plugin now rejects its configuration) is reported by ReloadFailed until an
// attempt succeeds, and its requests fail meanwhile.
func TestReloadFailureReported(t *testing.T) {
	h := newHost(t, "probe", Options{FailurePolicy: FailReload, ReloadBackoff: NoReloadBackoff})
	if f := h.ReloadFailed(); len(f) != 1 || f[0] != "" {
		t.Fatalf("ReloadFailed before any failure: %q", f)
	}
	h.NewStream().RequestHeaders(req("panic"), true)
	h.opts.PluginConfig = []byte("reject")
	if r := h.NewStream().RequestHeaders(req(""), true); r.Action == Continue {
		t.Fatalf("a stream on a worker whose reload failed continued: %+v", r)
	}
	if f := h.ReloadFailed(); f[0] == "" || !strings.Contains(f[0], "configure") {
		t.Errorf("ReloadFailed after a refused reload: %q, want the configure failure", f[0])
	}
	h.opts.PluginConfig = nil
	if r := h.NewStream().RequestHeaders(req(""), true); r.Action != Continue {
		t.Fatalf("stream after a successful reload: %+v", r)
	}
	if f := h.ReloadFailed(); f[0] != "" {
		t.Errorf("ReloadFailed after a successful reload: %q", f[0])
	}
}

// TestTrapInResponse: a trap in on_response_headers fails closed with a 503 sent straight to
// the client, replacing the upstream response.
func TestTrapInResponse(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.RequestHeaders(req("resp-panic"), true)
	r := s.ResponseHeaders(Headers{{":status", "200"}}, true)
	want := &Reply{Status: 503, Headers: Headers{{":status", "503"}}, Details: "wasm_fail_stream", GRPCStatus: 14}
	if r.Action != Replied || !reflect.DeepEqual(r.Reply, want) {
		t.Errorf("reply %+v, want %+v", r.Reply, want)
	}
}

// streamUntilDeath runs up to n streams through the timer guest and returns the index of the
// first one the VM failed on, or -1.
func streamUntilDeath(t *testing.T, h *Host, n int, extra func(i int) [][2]string) int {
	t.Helper()
	for i := 0; i < n; i++ {
		s := h.NewStream()
		r := s.RequestHeaders(req("", extra(i)...), true)
		s.Done()
		if r.Action != Continue {
			return i
		}
	}
	return -1
}

// TestGoTimerOnEnvoy133: once a Go timer has been armed the netpoller is initialised and every
// later GC calls poll_oneoff; Envoy 1.33-1.38 answers ENOSYS and the Go runtime dies ("fatal
// error: poll_oneoff failed") at the next GC; Envoy 1.39 answers success and the module lives
// on. The GCs here come from allocation alone.
func TestGoTimerOnEnvoy133(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "timer", Options{Profile: p})
			died := streamUntilDeath(t, h, 200, func(i int) [][2]string {
				if i == 0 {
					return [][2]string{{"x-arm", "1"}, {"x-alloc", "1024"}}
				}
				return [][2]string{{"x-alloc", strconv.Itoa(1 << 20)}}
			})
			if p == Envoy133 {
				if died < 1 || !hasLine(h, "poll_oneoff failed") || h.Failed()[0] == "" {
					t.Fatalf("Envoy 1.33: died at stream %d; want the VM dead with \"poll_oneoff failed\" after the timer; logs:\n%s",
						died, strings.Join(messages(h, ""), "\n"))
				}
				return
			}
			if died >= 0 {
				t.Fatalf("Envoy 1.39: the VM died at stream %d: %s", died, h.Failed()[0])
			}
		})
	}
}

// TestForcedGCOnEnvoy133: runtime.GC() wakes the runtime's background scavenger, which sleeps
// on a runtime timer, which initialises the netpoller: so even a module that never arms a
// timer itself dies on Envoy 1.33-1.38 after a few forced GCs (the advice to call runtime.GC
// in on_done is fatal there). Envoy 1.39 is fine.
func TestForcedGCOnEnvoy133(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "timer", Options{Profile: p})
			died := streamUntilDeath(t, h, 50, func(int) [][2]string {
				return [][2]string{{"x-gc", "1"}, {"x-alloc", "1024"}}
			})
			if p == Envoy133 && (died < 0 || !hasLine(h, "poll_oneoff failed")) {
				t.Fatalf("Envoy 1.33: died at %d; want the VM dead with \"poll_oneoff failed\"", died)
			}
			if p == Envoy139 && died >= 0 {
				t.Fatalf("Envoy 1.39: the VM died at stream %d: %s", died, h.Failed()[0])
			}
		})
	}
}

// TestGCPressureWithoutTimers: a module that arms no timer and never forces a GC survives many
// streams of large allocations on Envoy 1.33 (GC never reaches poll_oneoff while the netpoller
// is uninitialised). Set S3CORS_SOAK=long for 100,000 streams.
func TestGCPressureWithoutTimers(t *testing.T) {
	n := 300
	if os.Getenv("S3CORS_SOAK") == "long" {
		n = 100_000
	}
	h := newHost(t, "timer", Options{Profile: Envoy133})
	if died := streamUntilDeath(t, h, n, func(int) [][2]string {
		return [][2]string{{"x-alloc", strconv.Itoa(1 << 20)}}
	}); died >= 0 {
		t.Fatalf("the VM died at stream %d: %s", died, h.Failed()[0])
	}
	if mem := h.MemoryBytes()[0]; mem > 256<<20 {
		t.Errorf("linear memory grew to %d MiB", mem>>20)
	}
}

// TestAllocatorWindow: inside the allocator only proxy_log, fd_write, clock_time_get (and from
// Envoy 1.39 poll_oneoff) are allowed. A forbidden call traps the allocator; the hostcall that
// needed memory answers InvalidMemoryAccess (6), the guest runs on to the end of its callback,
// and the stream fails closed.
func TestAllocatorWindow(t *testing.T) {
	for _, p := range profilesUnderTest {
		for _, mode := range []string{"loglevel", "poll"} {
			t.Run(string(p)+"/"+mode, func(t *testing.T) {
				h := newHost(t, "badmalloc", Options{Profile: p})
				r := h.NewStream().RequestHeaders(req("", [2]string{"x-mode", mode}), true)
				allowed := mode == "poll" && p == Envoy139
				if allowed {
					if r.Action != Continue || lastLine(t, h, "badmalloc get_status=") != "badmalloc get_status=0" {
						t.Fatalf("result %+v, logs %v", r, messages(h, ""))
					}
					return
				}
				if r.Action != Replied || !reflect.DeepEqual(r.Reply, failStreamReply) {
					t.Fatalf("result %+v, want the 503 of a failed VM", r)
				}
				if !hasLine(h, "Function: proxy_on_memory_allocate failed: Uncaught Error: restricted_callback") {
					t.Errorf("logs lack the allocator trap: %v", messages(h, ""))
				}
				if got := lastLine(t, h, "badmalloc get_status="); got != "badmalloc get_status=6" {
					t.Errorf("got %s, want InvalidMemoryAccess", got)
				}
			})
		}
	}
}
