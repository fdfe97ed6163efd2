package manifest_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

func checkHostRouting(t *testing.T, name string, hcm *hcmv3.HttpConnectionManager, cfg evaluator.Config) {
	t.Helper()
	for _, p := range hostRoutingProblems(hcm, cfg) {
		t.Errorf("%s: %s", name, p)
	}
}

// hostRoutingProblems checks that only the hosts the configuration addresses reach the store:
// the first virtual host routes "<suffix>" and "*.<suffix>" of each virtual-host suffix and
// plain path-style hosts, whatever their port; the last answers every other Host 404 itself.
func hostRoutingProblems(hcm *hcmv3.HttpConnectionManager, cfg evaluator.Config) []string {
	rc := hcm.GetRouteConfig()
	vhs := rc.GetVirtualHosts()
	if len(vhs) != 2 {
		return []string{fmt.Sprintf("%d virtual hosts, want the store's and a catch-all 404", len(vhs))}
	}
	var problems []string
	if !rc.GetIgnorePortInHostMatching() {
		problems = append(problems, "ignore_port_in_host_matching is off: a Host with a port would match no domain")
	}
	store, other := vhs[0], vhs[1]
	var wildcards []string
	for _, suf := range cfg.Addressing.VirtualHostSuffixes {
		suf = strings.ToLower(strings.TrimSuffix(suf, "."))
		wildcards = append(wildcards, "*."+suf)
		for _, d := range []string{suf, "*." + suf} {
			if !slices.Contains(store.GetDomains(), d) {
				problems = append(problems, fmt.Sprintf("the store's virtual host lacks domain %q", d))
			}
		}
	}
	for _, d := range store.GetDomains() {
		if strings.Contains(d, "*") && !slices.Contains(wildcards, d) {
			problems = append(problems, fmt.Sprintf("the store's virtual host has wildcard domain %q, not a configured suffix's", d))
		}
		if _, _, err := net.SplitHostPort(d); err == nil {
			problems = append(problems, fmt.Sprintf("domain %q has a port", d))
		}
	}
	for i, r := range store.GetRoutes() {
		// The control-plane bootstrap's first route takes a bucket's ?cors requests
		// (checkCORSRoute); every other goes to the store.
		if i == 0 && len(r.GetMatch().GetQueryParameters()) > 0 && r.GetRoute().GetCluster() == "s3cors_controlplane_api" {
			continue
		}
		if r.GetRoute().GetCluster() != "s3" {
			problems = append(problems, fmt.Sprintf("the store's virtual host has a route not to cluster s3: %v", r))
		}
	}
	if !slices.Equal(other.GetDomains(), []string{"*"}) {
		problems = append(problems, fmt.Sprintf("the last virtual host has domains %q, want the catch-all [\"*\"]", other.GetDomains()))
	}
	routes := other.GetRoutes()
	if len(routes) != 1 || routes[0].GetMatch().GetPrefix() != "/" || routes[0].GetDirectResponse().GetStatus() != 404 || routes[0].GetRoute() != nil {
		problems = append(problems, fmt.Sprintf("the catch-all virtual host must answer every request 404 itself, got %v", routes))
	}
	// s3cors is off there, so that Envoy's 404 answers preflights too: the filter would
	// otherwise answer them for a host the store never sees.
	var fc routev3.FilterConfig
	s3cors := hcm.GetHttpFilters()[0].GetName()
	if a := other.GetTypedPerFilterConfig()[s3cors]; a == nil || a.UnmarshalTo(&fc) != nil || !fc.GetDisabled() {
		problems = append(problems, fmt.Sprintf("the catch-all virtual host does not disable %s: preflights for other hosts would be answered by the filter", s3cors))
	}
	return problems
}

// TestHostRoutingCheckCatches: the check refuses a bootstrap that routes any host to the store,
// one with a wildcard of no configured suffix, one whose catch-all forwards, one without the
// catch-all and one matching ports.
func TestHostRoutingCheckCatches(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "envoy", "wasm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, cfg := demo(t)
	good := s3Listener(t, checkBootstrap(t, "wasm.yaml", data))
	if p := hostRoutingProblems(good, cfg); len(p) > 0 {
		t.Fatalf("the committed bootstrap fails: %v", p)
	}
	for name, mutate := range map[string]func(rc *routev3.RouteConfiguration){
		"any host": func(rc *routev3.RouteConfiguration) { rc.VirtualHosts[0].Domains = []string{"*"} },
		"foreign wildcard": func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Domains = append(rc.VirtualHosts[0].Domains, "*.localhost")
		},
		"suffix missing": func(rc *routev3.RouteConfiguration) { rc.VirtualHosts[0].Domains = rc.VirtualHosts[0].Domains[1:] },
		"catch-all forwards": func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[1].Routes = rc.VirtualHosts[0].Routes
		},
		"no catch-all": func(rc *routev3.RouteConfiguration) { rc.VirtualHosts = rc.VirtualHosts[:1] },
		"filter on in the catch-all": func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[1].TypedPerFilterConfig = nil
		},
		"ports matched": func(rc *routev3.RouteConfiguration) { rc.IgnorePortInHostMatching = false },
		"domain with a port": func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Domains = append(rc.VirtualHosts[0].Domains, "s3.example.com:8080")
		},
	} {
		hcm := proto.Clone(good).(*hcmv3.HttpConnectionManager)
		mutate(hcm.GetRouteConfig())
		if p := hostRoutingProblems(hcm, cfg); len(p) == 0 {
			t.Errorf("%s: the host-routing check accepts it", name)
		}
	}
}

// TestHosts: --host adds path-style hosts (lower case, an IPv6 address in brackets, each
// once); a bad one, a host for a configuration without path style, a configuration that
// names no host at all and --host for an Istio target are refused, naming the problem.
func TestHosts(t *testing.T) {
	cfg, _ := demo(t)
	out, err := manifest.Generate(manifest.EnvoyExtProc, cfg, manifest.Options{Hosts: []string{"S3.Example.COM", "::1", "[::1]", "10.0.0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	domains := s3Listener(t, checkBootstrap(t, "hosts", out)).GetRouteConfig().GetVirtualHosts()[0].GetDomains()
	if want := []string{"s3.localhost", "*.s3.localhost", "s3.example.com", "[::1]", "10.0.0.7"}; !slices.Equal(domains, want) {
		t.Errorf("domains %q, want %q", domains, want)
	}
	// Istio's routing is the user's: the header names the hosts to route.
	for _, target := range []manifest.Target{manifest.IstioWasmPlugin, manifest.IstioExtProc} {
		out, err := manifest.Generate(target, cfg, manifest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "#   s3.localhost, *.s3.localhost,\n") || !strings.Contains(string(out), `never "*"`) {
			t.Errorf("%s: the header does not name the hosts to route:\n%s", target, out[:min(len(out), 1500)])
		}
	}
	noSuffix := []byte(`{"buckets": {"b": null}}`)
	for _, tc := range []struct {
		target manifest.Target
		cfg    []byte
		hosts  []string
		want   string
	}{
		{manifest.EnvoyWasm, cfg, []string{"s3.example.com:9000"}, `--host "s3.example.com:9000": want a DNS name or an IP address, without a port`},
		{manifest.EnvoyWasm, cfg, []string{"*.example.com"}, `--host "*.example.com": want a DNS name`},
		{manifest.EnvoyWasm, cfg, []string{""}, `--host "": want a DNS name`},
		{manifest.EnvoyWasm, []byte(`{"buckets": {}, "addressing": {"virtualHostSuffixes": ["s3.example.com"], "pathStyle": false}}`), []string{"s3.example.com"}, `the configuration turns path style off`},
		{manifest.EnvoyWasm, noSuffix, nil, `names no addressing.virtualHostSuffixes and no --host was given`},
		{manifest.EnvoyExtProc, noSuffix, nil, `names no addressing.virtualHostSuffixes and no --host was given`},
		{manifest.IstioWasmPlugin, cfg, []string{"s3.example.com"}, `--host "s3.example.com": only the envoy-* targets route by host`},
	} {
		_, err := manifest.Generate(tc.target, tc.cfg, manifest.Options{Hosts: tc.hosts})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s --host %q: %v, want %q", tc.target, tc.cfg, tc.hosts, err, tc.want)
		}
	}
}
