package e2e_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// stressKind is one kind of request of the stress mix.
type stressKind int

const (
	stressAllowed   stressKind = iota // preflight a rule allows, many requested headers
	stressDenied                      // preflight from an origin no rule allows
	stressDecorated                   // GET from an allowed origin; upstream sends Vary and, often, huge headers
	stressNoOrigin                    // GET without Origin, huge request headers; upstream CORS stripped
	stressPass                        // not a bucket request
	stressKinds
)

// stressMetric is the counter each kind moves.
var stressMetric = [stressKinds]string{
	stressAllowed:   "wasmcustom.s3cors.preflight.allowed",
	stressDenied:    "wasmcustom.s3cors.preflight.denied.not_allowed",
	stressDecorated: "wasmcustom.s3cors.actual.decorated",
	stressNoOrigin:  "wasmcustom.s3cors.actual.undecorated.no_origin",
	stressPass:      "wasmcustom.s3cors.passthrough.not_bucket",
}

// filterStressStreams is the stress test's length: the full 200,000 streams unless -short;
// S3CORS_STRESS_STREAMS overrides it (for experiments: a longer soak, a quick run).
func filterStressStreams(t *testing.T) int {
	if v := os.Getenv("S3CORS_STRESS_STREAMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			t.Fatalf("S3CORS_STRESS_STREAMS=%q: want a number of streams, at least 1000", v)
		}
		return n
	}
	if testing.Short() {
		return 20_000
	}
	return 200_000
}

// TestWasmFilterStress runs 200,000 streams (20,000 with -short) through the module in the
// Envoy 1.33 profile, where an armed Go timer, a restricted call during GC or a collection
// cycle that never ends would kill the VM or grow it without bound, and a tenth of that in the
// 1.39 profile, where the module lets the runtime's goroutines run (filter/abi/gc.go). The
// mix: a 1,000-bucket configuration, allowed and denied preflights and actual requests,
// streams interleaved four at a time, large inputs (96 KB of response headers, 16 KiB
// Access-Control-Request-Headers, 8 KiB cookies) and real garbage (every decorated response
// merges an upstream Vary, a quarter of them one of 120 names), so that the Go GC runs many
// times. It asserts every answer, no trap, the counters, collection cycles that complete, and
// guest memory flat after warm-up.
func TestWasmFilterStress(t *testing.T) {
	for _, profile := range filterProfiles {
		t.Run(string(profile), func(t *testing.T) {
			total := filterStressStreams(t)
			if profile != wasmhost.Envoy133 {
				total /= 10
			}
			filterStress(t, profile, total)
		})
	}
}

func filterStress(t *testing.T, profile wasmhost.Profile, total int) {
	// gctrace makes the Go runtime print a line per collection (to stderr, which Envoy logs),
	// so the test can count the cycles that completed.
	h := newFilterHost(t, profile, testenv.StressConfig(1000), func(o *wasmhost.Options) {
		o.Env = map[string]string{"GODEBUG": "gctrace=1"}
		o.LogCapacity = 1 << 16
	})

	in := newStressInputs(800) // ~96 KB of headers: over Envoy's default 60 KiB, configurable

	type inflight struct {
		s    *wasmhost.Stream
		kind stressKind
		i    int
	}
	var (
		counts  [stressKinds]int64
		samples []uint64
		warm    = total / 5
		every   = total / 20
		batch   [4]inflight
		errs    int
	)
	fail := func(format string, args ...any) {
		if errs++; errs <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i := 0; i < total; i += len(batch) {
		// Request side for four streams, then their responses in reverse order, so that stream
		// records of one VM are live at the same time and are released out of order.
		for j := range batch {
			kind := stressKind((i + j) % int(stressKinds))
			s := h.NewStream()
			r := s.RequestHeaders(in.request(kind, i+j), true)
			batch[j] = inflight{s, kind, i + j}
			counts[kind]++
			switch kind {
			case stressAllowed:
				if r.Action != wasmhost.Replied || r.Reply.Status != 200 || len(r.Reply.Headers.Values("access-control-allow-origin")) != 1 {
					fail("stream %d (allowed preflight): %s %+v", i+j, r.Action, r.Reply)
				}
			case stressDenied:
				if r.Action != wasmhost.Replied || r.Reply.Status != 403 {
					fail("stream %d (denied preflight): %s %+v", i+j, r.Action, r.Reply)
				}
			default:
				if r.Action != wasmhost.Continue {
					fail("stream %d (kind %d): request %s, want continue", i+j, kind, r.Action)
				}
			}
		}
		for j := len(batch) - 1; j >= 0; j-- {
			b := batch[j]
			switch b.kind {
			case stressDecorated, stressNoOrigin, stressPass:
				up := in.upstream(b.kind, b.i)
				r := b.s.ResponseHeaders(up, true)
				if r.Action != wasmhost.Continue {
					fail("stream %d (kind %d): response %s, want continue", b.i, b.kind, r.Action)
				} else if err := stressCheckResponse(b.kind, b.i, r.Headers, up, true); err != "" {
					fail("stream %d: %s", b.i, err)
				}
			}
			b.s.Done()
		}
		if i >= warm && (i-warm)%every < len(batch) {
			samples = append(samples, h.MemoryBytes()[0])
		}
	}

	for _, f := range h.Failed() {
		if f != "" {
			t.Fatalf("the VM failed: %s", f)
		}
	}
	var trace []string // the worker's gctrace lines, reassembled
	for _, e := range h.Logs() {
		m := e.Message
		// The runtime writes a trace line in pieces, one fd_write (one Envoy log line) each;
		// every collection's starts with "gc ".
		if e.Source == wasmhost.SourceStderr && strings.HasPrefix(e.VM, "worker") {
			if m == "gc " || len(trace) == 0 {
				trace = append(trace, "")
			}
			trace[len(trace)-1] += m
			continue
		}
		if strings.Contains(m, "poll_oneoff") || strings.Contains(m, "panic") || strings.Contains(m, "fatal") {
			t.Errorf("log: %s", e)
		}
	}
	gcs := len(trace)
	// About one cycle per 6,000 streams of this mix; half that is the floor.
	if want := max(1, total/12_000); gcs < want {
		t.Errorf("%d GC cycles completed in the worker VM, want at least %d", gcs, want)
	}
	metrics := h.Metrics()
	for kind, name := range stressMetric {
		if metrics[name] != counts[kind] {
			t.Errorf("%s = %d, want %d", name, metrics[name], counts[kind])
		}
	}
	// Linear memory only grows. After warm-up it must stay where it is: a leak of 25 bytes per
	// stream would add 4 MiB over the run.
	lo, hi := samples[0], samples[0]
	for _, s := range samples {
		lo, hi = min(lo, s), max(hi, s)
	}
	t.Logf("%d streams, %d GC cycles; guest memory after warm-up (every %d streams): %v", total, gcs, every, mib(samples))
	if hi-lo > 4<<20 {
		t.Errorf("guest memory grew by %.1f MiB after warm-up: %v", float64(hi-lo)/(1<<20), mib(samples))
	}
	if t.Failed() {
		t.Logf("the worker's last GC traces:\n%s", strings.Join(trace[max(0, len(trace)-12):], "\n"))
	}
}

// stressInputs are the stress mix's requests and upstream answers, built once.
type stressInputs struct {
	bigACRH     string // a 16 KiB Access-Control-Request-Headers
	cookie      string // 8 KiB
	huge, small wasmhost.Headers
}

// newStressInputs builds the inputs; the huge upstream answer has hugeHeaders x-amz-meta-*
// headers of 100 bytes besides a Vary of 120 names.
func newStressInputs(hugeHeaders int) *stressInputs {
	in := &stressInputs{bigACRH: strings.TrimSuffix(strings.Repeat("x-amz-meta-field-with-a-long-name, ", 450), ", ")}
	var cookie strings.Builder
	for cookie.Len() < 8<<10 {
		fmt.Fprintf(&cookie, "c%d=%s; ", cookie.Len(), strings.Repeat("v", 40))
	}
	in.cookie = cookie.String()
	var longVary strings.Builder
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&longVary, "X-Vary-Field-%d, ", i)
	}
	in.huge = wasmhost.Headers{{":status", "200"}, {"content-type", "application/octet-stream"},
		{"access-control-allow-origin", "*"}, {"access-control-expose-headers", "x-minio-thing"},
		{"vary", longVary.String() + "Accept-Encoding"}, {"vary", "Origin"}}
	for i := 0; i < hugeHeaders; i++ {
		in.huge = append(in.huge, [2]string{"x-amz-meta-" + strconv.Itoa(i), strings.Repeat("m", 100)})
	}
	in.small = wasmhost.Headers{{":status", "200"}, {"content-type", "text/plain"},
		{"access-control-allow-origin", "*"}, {"vary", "Accept-Encoding"}, {"etag", `"e"`}}
	return in
}

// request is stream i's request of the given kind.
func (in *stressInputs) request(kind stressKind, i int) wasmhost.Headers {
	bucket := "b" + strconv.Itoa(i%1000)
	path := "/" + bucket + "/objects/" + strconv.Itoa(i) + ".bin"
	switch kind {
	case stressAllowed:
		acrh := "content-type, x-amz-meta-owner"
		if i%10 == 0 {
			acrh = in.bigACRH
		}
		return wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"}, {":path", path},
			{"origin", "https://a" + strconv.Itoa(i%1000) + ".example"},
			{"access-control-request-method", "PUT"}, {"access-control-request-headers", acrh}}
	case stressDenied:
		return wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"}, {":path", path},
			{"origin", "https://evil.example"}, {"access-control-request-method", "DELETE"}}
	case stressDecorated:
		return wasmhost.Headers{{":method", "GET"}, {":authority", bucket + ".s3.internal"}, {":path", path},
			{"origin", "https://x" + strconv.Itoa(i) + ".app.example"}, {"accept", "*/*"}}
	case stressNoOrigin:
		hs := wasmhost.Headers{{":method", "GET"}, {":authority", "s3.internal"}, {":path", path}, {"cookie", in.cookie}}
		for j := 0; j < 40; j++ {
			hs = append(hs, [2]string{"x-request-header-" + strconv.Itoa(j), strings.Repeat("r", 60)})
		}
		return hs
	default:
		return wasmhost.Headers{{":method", "GET"}, {":authority", "s3.internal"}, {":path", "/"}, {"origin", "https://a1.example"}}
	}
}

// upstream is the store's answer to stream i (a kind that reaches the store): the huge one
// for every fourth decorated stream.
func (in *stressInputs) upstream(kind stressKind, i int) wasmhost.Headers {
	if kind == stressDecorated && i%4 == 0 {
		return in.huge
	}
	return in.small
}

// stressCheckResponse checks the response headers hs of stream i of a kind that reached the
// store, which answered up; it returns what is wrong, or "". exact: a pass-through response
// must equal up (the host adds nothing); otherwise up's headers must all be in hs (a proxy adds
// its own).
func stressCheckResponse(kind stressKind, i int, hs, up wasmhost.Headers, exact bool) string {
	acao := hs.Values("access-control-allow-origin")
	switch {
	case kind == stressDecorated && (len(acao) != 1 || acao[0] != "https://x"+strconv.Itoa(i)+".app.example" ||
		len(hs.Values("vary")) != 1 || len(hs.Values("access-control-expose-headers")) != 0):
		return fmt.Sprintf("decorated: headers %q", filterCORSOnly(hs))
	case kind == stressNoOrigin && len(acao) != 0:
		return fmt.Sprintf("no Origin: upstream CORS not stripped: %q", acao)
	case kind == stressPass && exact && !sameHeaders(hs, up):
		return "pass-through: response changed"
	case kind == stressPass && !exact:
		for _, h := range up[1:] {
			if !slices.Contains(hs.Values(h[0]), h[1]) {
				return fmt.Sprintf("pass-through: %s: %q lost (%q)", h[0], h[1], hs.Values(h[0]))
			}
		}
	}
	return ""
}

func mib(bs []uint64) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64)
	}
	return "[" + strings.Join(parts, " ") + "] MiB"
}

func filterCORSOnly(hs wasmhost.Headers) wasmhost.Headers {
	var out wasmhost.Headers
	for _, h := range hs {
		if strings.HasPrefix(h[0], "access-control-") || h[0] == "vary" {
			out = append(out, h)
		}
	}
	return out
}
