package filter_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/filter/abi"
)

// quietHost is an abi.Host that allocates nothing itself (unlike abitest.Host), so that
// allocation counts and benchmarks measure the plugin alone. It serves one stream at a time.
type quietHost struct {
	config   []byte
	request  []abi.Header
	response []abi.Header
	replied  uint32
}

func (*quietHost) Log(abi.LogLevel, string) error                        { return nil }
func (*quietHost) LogLevel() (abi.LogLevel, error)                       { return abi.LogInfo, nil }
func (*quietHost) IncrementMetric(uint32, int64) error                   { return nil }
func (h *quietHost) DefineMetric(abi.MetricType, string) (uint32, error) { return 4, nil }
func (h *quietHost) GetBuffer(abi.BufferType, uint32, uint32) ([]byte, error) {
	return h.config, nil
}

func (h *quietHost) GetHeader(m abi.MapType, name string) (string, bool, error) {
	for _, x := range h.mapOf(m) {
		if x.Name == name {
			return x.Value, true, nil
		}
	}
	return "", false, nil
}

func (h *quietHost) mapOf(m abi.MapType) []abi.Header {
	if m == abi.RequestHeaders {
		return h.request
	}
	return h.response
}

func (h *quietHost) GetHeaders(m abi.MapType, dst []abi.Header) ([]abi.Header, error) {
	return append(dst, h.mapOf(m)...), nil
}

func (h *quietHost) AddHeader(_ abi.MapType, name, value string) error {
	h.response = append(h.response, abi.Header{Name: name, Value: value})
	return nil
}

func (h *quietHost) ReplaceHeader(m abi.MapType, name, value string) error {
	_ = h.RemoveHeader(m, name)
	return h.AddHeader(m, name, value)
}

func (h *quietHost) RemoveHeader(_ abi.MapType, name string) error {
	out := h.response[:0]
	for _, x := range h.response {
		if !strings.EqualFold(x.Name, name) {
			out = append(out, x)
		}
	}
	h.response = out
	return nil
}

func (h *quietHost) SendLocalResponse(status uint32, _ string, _ []byte, _ []abi.Header, _ int32) error {
	h.replied = status
	return nil
}

// quietRig runs streams through a plugin on a quietHost.
type quietRig struct {
	host     *quietHost
	plugin   *filter.Plugin
	upstream []abi.Header
	next     uint32
}

func newQuietRig(tb testing.TB, config string) *quietRig {
	tb.Helper()
	h := &quietHost{config: []byte(config)}
	p := filter.New(h)
	p.OnContextCreate(1, 0)
	if !p.OnVMStart(1, 0) || !p.OnConfigure(1, uint32(len(config))) {
		tb.Fatal("the plugin refused the configuration")
	}
	return &quietRig{host: h, plugin: p, next: 1}
}

// stream runs one stream and returns the reply status (0 when it went upstream).
func (r *quietRig) stream(request []abi.Header) uint32 {
	r.next++
	id := r.next
	r.host.request, r.host.replied = request, 0
	r.host.response = append(r.host.response[:0], r.upstream...)
	r.plugin.OnContextCreate(id, 1)
	r.plugin.OnRequestHeaders(id, uint32(len(request)), true)
	if r.host.replied == 0 {
		r.plugin.OnResponseHeaders(id, uint32(len(r.host.response)), false)
	}
	r.plugin.OnDone(id)
	r.plugin.OnDelete(id)
	return r.host.replied
}

// benchConfig has n buckets, "b0" … "b<n-1>", each with three rules.
func benchConfig(n int) string {
	var b strings.Builder
	b.WriteString(`{"buckets": {`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"b` + strconv.Itoa(i) + `": {"CORSRules": [` +
			`{"AllowedOrigins": ["https://a` + strconv.Itoa(i) + `.example"], "AllowedMethods": ["PUT", "POST"], "AllowedHeaders": ["x-amz-*", "content-type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000},` +
			`{"AllowedOrigins": ["https://*.app.example"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]},` +
			`{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`)
	}
	b.WriteString(`}}`)
	return b.String()
}

var (
	allowedPreflight = []abi.Header{{Name: ":method", Value: "OPTIONS"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: "/b0/photos/cat.jpg"}, {Name: "origin", Value: "https://a0.example"},
		{Name: "access-control-request-method", Value: "PUT"},
		{Name: "access-control-request-headers", Value: "content-type, x-amz-meta-owner"}}
	deniedPreflight = []abi.Header{{Name: ":method", Value: "OPTIONS"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: "/b0/photos/cat.jpg"}, {Name: "origin", Value: "https://evil.example"},
		{Name: "access-control-request-method", Value: "DELETE"}}
	actualGet = []abi.Header{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "s3.internal"},
		{Name: ":path", Value: "/b0/photos/cat.jpg"}, {Name: "origin", Value: "https://x.app.example"},
		{Name: "user-agent", Value: "Mozilla/5.0"}, {Name: "accept", Value: "image/*"}}
	upstreamPlain = []abi.Header{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "image/jpeg"},
		{Name: "content-length", Value: "1234"}, {Name: "etag", Value: `"abc"`},
		{Name: "access-control-allow-origin", Value: "*"}}
)

// TestRequestPathDoesNotAllocate: once warm, the plugin's request path allocates nothing, so a
// worker VM's heap does not churn with traffic (each allocation in the module is GC work
// inside a request). A decorated response merging an upstream Vary is the exception:
// evaluator.MergeVary builds a new string.
func TestRequestPathDoesNotAllocate(t *testing.T) {
	rig := newQuietRig(t, benchConfig(10))
	rig.upstream = upstreamPlain
	for _, tc := range []struct {
		name    string
		request []abi.Header
		status  uint32
	}{
		{"allowed preflight", allowedPreflight, 200},
		{"denied preflight", deniedPreflight, 403},
		{"preflight with Forwarded", append(allowedPreflight[:len(allowedPreflight):len(allowedPreflight)],
			abi.Header{Name: "forwarded", Value: "for=192.0.2.1;host=s3.internal"}), 200},
		{"preflight with two Forwarded lines", append(allowedPreflight[:len(allowedPreflight):len(allowedPreflight)],
			abi.Header{Name: "forwarded", Value: "for=192.0.2.1"}, abi.Header{Name: "forwarded", Value: "for=10.0.0.1;host=s3.internal"}), 200},
		{"decorated actual request", actualGet, 0}, // last: its response is checked below
	} {
		if got := rig.stream(tc.request); got != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, got, tc.status)
		}
		if n := testing.AllocsPerRun(200, func() { rig.stream(tc.request) }); n != 0 {
			t.Errorf("%s: %v allocations per request, want 0", tc.name, n)
		}
	}
	if !hasHeader(rig.host.response, "access-control-allow-origin", "https://x.app.example") ||
		!hasHeader(rig.host.response, "vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method") {
		t.Errorf("the decorated response lacks S3's headers: %q", rig.host.response)
	}
}

func hasHeader(hs []abi.Header, name, value string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) && h.Value == value {
			return true
		}
	}
	return false
}

// BenchmarkPlugin is the plugin's native cost per stream (all callbacks), host excluded; the
// same requests through the built module are in e2e (BenchmarkWasmFilter).
func BenchmarkPlugin(b *testing.B) {
	for _, buckets := range []int{1, 1000} {
		rig := newQuietRig(b, benchConfig(buckets))
		rig.upstream = upstreamPlain
		for _, tc := range []struct {
			name    string
			request []abi.Header
		}{
			{"allowed-preflight", allowedPreflight},
			{"denied-preflight", deniedPreflight},
			{"decorated-actual", actualGet},
		} {
			b.Run("buckets="+strconv.Itoa(buckets)+"/req="+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rig.stream(tc.request)
				}
			})
		}
	}
}
