package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// realEnvoyOpenHosts routes every Host of a case-table listener to the store. The case tables
// test the filter, which must be fail-safe whatever Envoy routes (their hosts are arbitrary:
// IP literals, foreign names, hostile variants); the manifests' host restriction is tested on
// its own (TestRealEnvoyHosts).
func realEnvoyOpenHosts(hcm *hcmv3.HttpConnectionManager) {
	rc := hcm.GetRouteConfig()
	store := rc.GetVirtualHosts()[0]
	store.Domains = []string{"*"}
	rc.VirtualHosts = []*routev3.VirtualHost{store}
}

// realEnvoyEditHCMs returns bootstrap with edit applied to each listener's connection manager.
func realEnvoyEditHCMs(t *testing.T, bootstrap []byte, edit func(l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager)) []byte {
	t.Helper()
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(bootstrap, &b); err != nil {
		t.Fatal(err)
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		hcm := realEnvoyHCM(t, l)
		edit(l, hcm)
		l.GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, hcm)}
	}
	out, err := protojson.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// realEnvoyManifestRoutes is the route configuration of envoy/<file>, as users deploy it.
func realEnvoyManifestRoutes(t *testing.T, file string) *routev3.RouteConfiguration {
	t.Helper()
	return realEnvoyHCM(t, realEnvoyManifest(t, file).GetStaticResources().GetListeners()[0]).GetRouteConfig()
}

// realEnvoyRecordingStore answers 204 and reports each request-target and Host it receives.
func realEnvoyRecordingStore(t *testing.T) (string, chan [2]string) {
	t.Helper()
	seen := make(chan [2]string, 256)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- [2]string{r.RequestURI, r.Host}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), seen
}

// realEnvoyProbe sends method target with host to addr and returns the status and what the
// store received ("" when nothing reached it).
func realEnvoyProbe(t *testing.T, addr string, seen chan [2]string, method, host, target string, hdr ...casetable.Header) (int, string) {
	t.Helper()
	status, _, _, err := casetable.Exchange(addr, casetable.Request{Method: method, Authority: host, Path: target, Headers: append(hdr, casetable.Header{"Connection", "close"})})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-seen:
		return status, s[0] + " Host " + s[1]
	default:
		return status, ""
	}
}

// TestRealEnvoyHosts runs envoy/wasm.yaml and envoy/extproc.yaml as generated, routes and all,
// in each pinned Envoy: a Host the configuration does not address gets Envoy's 404 and never
// reaches the store, whatever the method; the configured ones reach it with the target
// unchanged.
func TestRealEnvoyHosts(t *testing.T) {
	cfg := gwDemoConfig(t)
	tables := []casetable.Table{{Config: cfg}}
	for _, e := range testenv.Envoys(t) {
		for _, file := range []string{"wasm.yaml", "extproc.yaml"} {
			t.Run(e.Version+"/"+file, func(t *testing.T) {
				store, seen := realEnvoyRecordingStore(t)
				module, servers := "", []string(nil)
				if file == "wasm.yaml" {
					module = testenv.Module(t)
				} else {
					servers = []string{startRealEnvoyExtProc(t, 0, tables[0])}
				}
				routes := realEnvoyManifestRoutes(t, file)
				boot := realEnvoyEditHCMs(t, realEnvoyBootstrap(t, file, tables, store, module, servers),
					func(_ *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager) {
						hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes}
					})
				addr := startRealEnvoy(t, e.Path, boot).listeners["s3-0"]
				origin := casetable.Header{"Origin", "http://127.0.0.1:8081"}
				for _, tc := range []struct {
					method, host, target string
					routed               bool
				}{
					{"GET", "website.s3.localhost", "/k", true},
					{"GET", "WEBSITE.S3.LOCALHOST:8080", "/k", true},
					{"GET", "my.dotted.bucket.s3.localhost", "/k", true},
					{"GET", "s3.localhost:8080", "/website/k", true},
					{"GET", "localhost:8080", "/website/k", true},
					{"GET", "127.0.0.1:8080", "/website/k", true},
					{"GET", "beta.s3.localhost.evil.example", "/website/k", false},
					{"GET", "beta.s3.localhostx", "/website/k", false},
					{"GET", "beta.s3.localhost.", "/website/k", false},
					{"GET", "beta.s3.localhost..", "/website/k", false},
					{"GET", "s3.localhost.", "/website/k", false},
					{"GET", "other.example", "/website/k", false},
					{"GET", "[::1]:8080", "/website/k", false},
					{"PUT", "evil.example", "/website/k", false},
					{"OPTIONS", "evil.example", "/website/k", false},
				} {
					hdr := []casetable.Header{origin}
					if tc.method == "OPTIONS" {
						hdr = append(hdr, casetable.Header{"Access-Control-Request-Method", "GET"})
					}
					if tc.method == "PUT" {
						hdr = append(hdr, casetable.Header{"Content-Length", "0"})
					}
					status, got := realEnvoyProbe(t, addr, seen, tc.method, tc.host, tc.target, hdr...)
					want := ""
					if tc.routed {
						want = tc.target + " Host " + tc.host
					}
					if got != want || !tc.routed && status != http.StatusNotFound || tc.routed && status != http.StatusNoContent {
						t.Errorf("%s %s%s: status %d, store saw %q; want %s", tc.method, tc.host, tc.target, status, got, map[bool]string{true: "the store's 204, target and Host unchanged", false: "Envoy's 404, nothing at the store"}[tc.routed])
					}
				}
			})
		}
	}
}

// TestRealEnvoyPathOptions records what each of the connection manager's path options does to
// targets S3 keys legitimately contain, in each pinned Envoy, and checks the shipped setting
// (no normalisation, escaped slashes kept) forwards every one unchanged.
func TestRealEnvoyPathOptions(t *testing.T) {
	cfg := gwDemoConfig(t)
	type option struct {
		name string
		set  func(hcm *hcmv3.HttpConnectionManager)
	}
	options := []option{
		{"shipped", func(*hcmv3.HttpConnectionManager) {}},
		{"normalize_path", func(h *hcmv3.HttpConnectionManager) { h.NormalizePath = wrapperspb.Bool(true) }},
		{"merge_slashes", func(h *hcmv3.HttpConnectionManager) { h.MergeSlashes = true }},
		{"UNESCAPE_AND_FORWARD", func(h *hcmv3.HttpConnectionManager) {
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD
		}},
		{"UNESCAPE_AND_REDIRECT", func(h *hcmv3.HttpConnectionManager) {
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT
		}},
		{"REJECT_REQUEST", func(h *hcmv3.HttpConnectionManager) {
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_REJECT_REQUEST
		}},
	}
	targets := []string{"/beta%2Fk", "/website/a%2Fb", "//x", "/website//k", "/a/../b", "/website/%2e%2e/beta/k", "/website/k;x=1"}
	tables := make([]casetable.Table, len(options))
	for i := range tables {
		tables[i] = casetable.Table{Config: cfg}
	}
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			store, seen := realEnvoyRecordingStore(t)
			routes := realEnvoyManifestRoutes(t, "wasm.yaml")
			boot := realEnvoyEditHCMs(t, realEnvoyBootstrap(t, "wasm.yaml", tables, store, testenv.Module(t), nil),
				func(l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager) {
					hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes}
					var i int
					fmt.Sscanf(l.GetName(), "s3-%d", &i)
					options[i].set(hcm)
				})
			env := startRealEnvoy(t, e.Path, boot)
			var report strings.Builder
			for i, o := range options {
				for _, target := range targets {
					status, got := realEnvoyProbe(t, env.listeners[fmt.Sprintf("s3-%d", i)], seen, "GET", "127.0.0.1", target)
					got, _, _ = strings.Cut(got, " Host ")
					fmt.Fprintf(&report, "%-22s %-24s -> %d %q\n", o.name, target, status, got)
					if o.name == "shipped" && (status != http.StatusNoContent || got != target) {
						t.Errorf("shipped path options: %s reached the store as %q (status %d), want it unchanged", target, got, status)
					}
				}
			}
			t.Logf("Envoy %s, path options (status, what the store received):\n%s", e.Version, report.String())
		})
	}
}
