package filter_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
)

const siteConfig = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"]}]}}}`

func preflight(path, origin, method string) []abi.Header {
	return []abi.Header{{Name: ":method", Value: "OPTIONS"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: path}, {Name: "origin", Value: origin},
		{Name: "access-control-request-method", Value: method}}
}

func statusOf(t *testing.T, vm *abitest.VM, root uint32, hs []abi.Header) uint32 {
	t.Helper()
	s := vm.NewStream(root)
	defer s.End()
	s.RequestHeaders(hs, true)
	if r := s.Reply(); r != nil {
		return r.Status
	}
	return 0
}

// TestInvalidConfigurationsAreRefused: every invalid plugin configuration makes the plugin
// refuse to start, with every problem (path, code, message) logged at critical level, and the
// rejection counted.
func TestInvalidConfigurationsAreRefused(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configurations in testdata/invalid (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			config, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h := abitest.NewHost()
			vm := abitest.NewVM(h, filter.New(h))
			if _, err := vm.StartPlugin(config); err == nil {
				t.Fatal("the plugin started with an invalid configuration")
			}
			logs := logText(h.Logs())
			for _, want := range wantedProblems(t, config) {
				if !strings.Contains(logs, "critical: s3cors: ") || !strings.Contains(logs, want) {
					t.Errorf("logs lack %q at critical level:\n%s", want, logs)
				}
			}
			if want := "s3cors: plugin configuration rejected; the filter refuses to start: "; !strings.Contains(logs, want) ||
				!strings.Contains(logs, "(hash: "+sha256Hex(config)+")") {
				t.Errorf("logs lack the rejection naming the configuration's hash %s:\n%s", sha256Hex(config), logs)
			}
			if got := h.Metrics()["s3cors.config.rejected"]; got != 1 {
				t.Errorf("s3cors.config.rejected = %d, want 1", got)
			}
		})
	}
}

// wantedProblems is what the log must carry for config: each of the evaluator's problems, or
// the filter's own message for an empty configuration.
func wantedProblems(t *testing.T, config []byte) []string {
	t.Helper()
	if strings.TrimSpace(string(config)) == "" {
		return []string{"the plugin configuration is empty"}
	}
	_, err := evaluator.Load(config)
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("evaluator.Load accepted or failed without problems: %v", err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, "s3cors: invalid configuration: "+p.String())
	}
	return out
}

// Envoy may configure a root context again (an xDS update): a good configuration replaces the
// policy, a bad one is refused and the last good one keeps serving.
func TestReconfigureKeepsTheLastGoodPolicy(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	if got := statusOf(t, vm, root, preflight("/site/a", "https://app.example", "PUT")); got != 200 {
		t.Fatalf("first configuration: status %d, want 200", got)
	}
	if vm.Configure(root, []byte(`{"buckets": {"site": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}}`)) {
		t.Fatal("a bad reconfiguration was accepted")
	}
	if got := statusOf(t, vm, root, preflight("/site/a", "https://app.example", "PUT")); got != 200 {
		t.Fatalf("after a refused reconfiguration: status %d, want 200 from the last good policy", got)
	}
	if !vm.Configure(root, []byte(`{"buckets": {"site": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}`)) {
		t.Fatal("a good reconfiguration was refused")
	}
	if got := statusOf(t, vm, root, preflight("/site/a", "https://app.example", "PUT")); got != 403 {
		t.Fatalf("after a good reconfiguration: status %d, want 403 (PUT no longer allowed)", got)
	}
	m := vm.Host().Metrics()
	if m["s3cors.config.accepted"] != 2 || m["s3cors.config.rejected"] != 1 {
		t.Errorf("config metrics accepted=%d rejected=%d, want 2 and 1", m["s3cors.config.accepted"], m["s3cors.config.rejected"])
	}
}

// Several plugins may share one VM (same vm_id): each root context has its own policy.
func TestRootContextsAreIndependent(t *testing.T) {
	h := abitest.NewHost()
	vm := abitest.NewVM(h, filter.New(h))
	rootA, err := vm.StartPlugin([]byte(siteConfig))
	if err != nil {
		t.Fatal(err)
	}
	rootB, err := vm.StartPlugin([]byte(`{"buckets": {}, "unlistedBuckets": "forward"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(t, vm, rootA, preflight("/site/a", "https://app.example", "GET")); got != 200 {
		t.Errorf("root A: status %d, want 200", got)
	}
	if got := statusOf(t, vm, rootB, preflight("/site/a", "https://app.example", "GET")); got != 0 {
		t.Errorf("root B: status %d, want no reply (unlisted bucket forwarded)", got)
	}
}

// Metrics are defined once per root context, in on_configure, however often it is configured.
func TestMetricsDefinedOncePerRoot(t *testing.T) {
	h := &countingHost{Host: abitest.NewHost()}
	vm := abitest.NewVM(h.Host, filter.New(h))
	root, err := vm.StartPlugin([]byte(siteConfig))
	if err != nil {
		t.Fatal(err)
	}
	vm.Configure(root, []byte(siteConfig))
	if h.defined != len(filter.MetricNames) {
		t.Errorf("%d metric definitions after two configurations, want %d", h.defined, len(filter.MetricNames))
	}
	for _, name := range filter.MetricNames {
		if _, ok := h.Metrics()[name]; !ok {
			t.Errorf("metric %q not defined", name)
		}
	}
}

type countingHost struct {
	*abitest.Host
	defined int
}

func (h *countingHost) DefineMetric(t abi.MetricType, name string) (uint32, error) {
	h.defined++
	return h.Host.DefineMetric(t, name)
}

// A denied preflight says why at debug level, with the reply's x-amz-request-id (the id a
// user reports finds the line), and nothing is logged when debug is off.
func TestDeniedPreflightIsLoggedAtDebug(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	h := vm.Host()
	h.Level = abi.LogDebug
	s := vm.NewStream(root)
	s.RequestHeaders(preflight("/site/some/key", "https://evil.example", "DELETE"), true)
	s.End()
	r := s.Reply()
	if r == nil || r.Status != 403 {
		t.Fatalf("reply %+v, want a 403", r)
	}
	id := replyHeader(r.Headers, "x-amz-request-id")
	if id == "" || !strings.Contains(string(r.Body), "<RequestId>"+id+"</RequestId>") {
		t.Fatalf("reply has x-amz-request-id %q and body %s: want the same id in both", id, r.Body)
	}
	logs := logText(h.Logs())
	want := `debug: s3cors: preflight denied: 403 not_allowed: bucket "site", key "some/key", origin "https://evil.example", method "DELETE", headers (none), x-amz-request-id "` + id + `"`
	if !strings.Contains(logs, want) {
		t.Errorf("logs lack %q:\n%s", want, logs)
	}
	h.Level = abi.LogInfo
	n := len(h.Logs())
	statusOf(t, vm, root, preflight("/site/a", "https://evil.example", "DELETE"))
	if got := h.Logs(); len(got) != n {
		t.Errorf("logged %q with debug off", got[n:])
	}
}

// Values the client chose are cut in the denial line, and the cut is marked with the full
// length, so that a request with huge headers does not make a huge log line.
func TestDeniedPreflightLogBoundsValues(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	h := vm.Host()
	h.Level = abi.LogDebug
	long := strings.Repeat("x-amz-meta-a,", 100) // 1,300 bytes
	key := strings.Repeat("k", 1000)
	hs := append(preflight("/site/"+key, "https://evil.example/"+strings.Repeat("o", 500), "PUT"),
		abi.Header{Name: "access-control-request-headers", Value: long})
	if got := statusOf(t, vm, root, hs); got != 403 {
		t.Fatalf("status %d, want 403", got)
	}
	var line string
	for _, l := range h.Logs() {
		if strings.HasPrefix(l.Message, "s3cors: preflight denied: ") {
			line = l.Message
		}
	}
	for _, want := range []string{
		`key "` + key[:256] + `"... (cut, 1000 bytes)`,
		`origin "` + ("https://evil.example/" + strings.Repeat("o", 500))[:256] + `"... (cut, 521 bytes)`,
		`headers "` + long[:256] + `"... (cut, 1300 bytes)`,
		`method "PUT"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("denial line lacks %q:\n%s", want, line)
		}
	}
	if len(line) > 1200 {
		t.Errorf("denial line is %d bytes, want the values bounded", len(line))
	}
}

func replyHeader(hs []abi.Header, name string) string {
	for _, h := range hs {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// A stream Envoy creates only for its access log (an earlier filter replied) gets no header
// callbacks; the plugin must cope, and release its record.
func TestStreamWithoutHeaderCallbacks(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	for i := 0; i < 3; i++ {
		vm.NewStream(root).End()
	}
	if got := statusOf(t, vm, root, preflight("/site/a", "https://app.example", "GET")); got != 200 {
		t.Errorf("status %d after access-log-only streams, want 200", got)
	}
}

// Response callbacks that arrive without a decision (the request side was skipped) leave the
// response alone.
func TestResponseWithoutRequestIsUntouched(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	s := vm.NewStream(root)
	in := []abi.Header{{Name: ":status", Value: "200"}, {Name: "access-control-allow-origin", Value: "*"}}
	s.ResponseHeaders(in, true)
	s.End()
	if got := s.Headers(); len(got) != 2 || got[1] != in[1] {
		t.Errorf("response headers %q, want %q untouched", got, in)
	}
}

// A configuration Envoy delivers with surrounding whitespace (a YAML block scalar) is fine; an
// Istio pluginConfig arrives as the same JSON.
func TestConfigurationWithWhitespace(t *testing.T) {
	config := []byte("\n  " + siteConfig + "\n")
	vm, root := startVM(t, config)
	if got := statusOf(t, vm, root, preflight("/site/a", "https://app.example", "GET")); got != 200 {
		t.Errorf("status %d, want 200", got)
	}
	// The hash is of the bytes as Envoy handed them over, whitespace included, in the
	// ext_proc server's format (s3cors_config_info{hash="sha256:..."}).
	want := `info: s3cors: configuration accepted: 1 bucket, default: none, unlistedBuckets: "not-enabled", upstreamCORSHeaders: "strip", vary: "s3", hash: ` + sha256Hex(config) + "\n"
	if logs := logText(vm.Host().Logs()); !strings.Contains(logs, want) {
		t.Errorf("logs lack %q:\n%s", want, logs)
	}
}

// Envoy keeps repeated Forwarded lines apart (no inline header) and proxy_get_header_map_value
// gives only the first, so the filter reads every line: a later one whose host= is no host
// makes the request ambiguous, and the log shows the lines joined.
func TestRepeatedForwardedLinesAreAllRead(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	h := vm.Host()
	h.Level = abi.LogDebug
	one := append(preflight("/site/k", "https://app.example", "GET"), abi.Header{Name: "forwarded", Value: "for=192.0.2.1;host=s3.internal"})
	if got := statusOf(t, vm, root, one); got != 200 {
		t.Fatalf("preflight with one Forwarded line naming the same bucket: status %d, want 200", got)
	}
	two := append(one, abi.Header{Name: "x-other", Value: "v"}, abi.Header{Name: "forwarded", Value: `host="user@s3.internal"`})
	if got := statusOf(t, vm, root, two); got != 403 {
		t.Fatalf("preflight whose second Forwarded line is ambiguous: status %d, want 403", got)
	}
	want := `(forwarded): authority "s3.internal", path "/site/k", host (none), x-forwarded-host (none), forwarded "for=192.0.2.1;host=s3.internal,host=\"user@s3.internal\""`
	if logs := logText(h.Logs()); !strings.Contains(logs, want) {
		t.Errorf("logs lack %q:\n%s", want, logs)
	}
	if got := statusOf(t, vm, root, one); got != 200 {
		t.Fatalf("the one-line preflight again: status %d, want 200", got)
	}
}

// sha256Hex is what `sha256sum` prints for data, in the form s3cors logs and exports hashes.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// A request whose bucket is uncertain (evaluator.Ambiguity) is counted under its own metric,
// preflight and actual alike, and logged at debug with why: the ambiguity, the authority, the
// path without its query, Host and X-Forwarded-Host.
func TestAmbiguousRequestsAreCountedAndLogged(t *testing.T) {
	vm, root := startVM(t, []byte(siteConfig))
	h := vm.Host()
	h.Level = abi.LogDebug
	pre := append(preflight("/site/k", "https://app.example", "GET"), abi.Header{Name: "x-forwarded-host", Value: "other.internal:9000"})
	pre[1].Value = "site.internal"
	if got := statusOf(t, vm, root, preflight("/site%2Fk?X-Amz-Signature=secret", "https://app.example", "GET")); got != 403 {
		t.Fatalf("preflight with %%2F in the bucket segment: status %d, want 403", got)
	}
	if got := statusOf(t, vm, root, pre); got != 200 {
		t.Fatalf("preflight whose X-Forwarded-Host reads the same bucket: status %d, want 200", got)
	}
	s := vm.NewStream(root)
	s.RequestHeaders([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: "/site/k"}, {Name: "origin", Value: "https://app.example"},
		{Name: "x-forwarded-host", Value: "site.s3.other"}}, true)
	s.End()
	m := h.Metrics()
	// Without virtual-host suffixes an X-Forwarded-Host reads the same /site: not ambiguous.
	if m["s3cors.preflight.denied.ambiguous"] != 1 || m["s3cors.actual.undecorated.ambiguous"] != 0 {
		t.Errorf("metrics %v: want one ambiguous preflight and no ambiguous actual request", m)
	}
	logs := logText(h.Logs())
	want := `debug: s3cors: preflight denied: 403 ambiguous (bucket_segment): authority "s3.internal", path "/site%2Fk", host (none), x-forwarded-host (none): bucket "", key ""`
	if !strings.Contains(logs, want) || strings.Contains(logs, "secret") {
		t.Errorf("logs lack %q, or hold the query:\n%s", want, logs)
	}
	s = vm.NewStream(root)
	s.RequestHeaders([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: "/site/../other/k"}, {Name: "origin", Value: "https://app.example"}}, true)
	s.End()
	if got := h.Metrics()["s3cors.actual.undecorated.ambiguous"]; got != 1 {
		t.Errorf("s3cors.actual.undecorated.ambiguous = %d, want 1", got)
	}
	if want := `debug: s3cors: actual request undecorated: actual_ambiguous (dot_segment): authority "s3.internal", path "/site/../other/k"`; !strings.Contains(logText(h.Logs()), want) {
		t.Errorf("logs lack %q:\n%s", want, logText(h.Logs()))
	}
}
