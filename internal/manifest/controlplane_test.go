package manifest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1alpha3"
	networkingclient "istio.io/client-go/pkg/apis/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestControlPlaneDefaults: the manifest's defaults are the control plane's own.
func TestControlPlaneDefaults(t *testing.T) {
	if manifest.DefaultControlPlane != controlplane.DefaultListen || manifest.DefaultControlPlaneXDS != controlplane.DefaultXDSListen {
		t.Errorf("manifest defaults %s and %s, control plane's %s and %s", manifest.DefaultControlPlane,
			manifest.DefaultControlPlaneXDS, controlplane.DefaultListen, controlplane.DefaultXDSListen)
	}
}

// checkECDSFilter checks the s3cors filter of a *-controlplane file: discovered by ECDS over
// gRPC from xdsCluster, and until then the module at wasmPath with the configuration want
// without any bucket's rules, configured as the control plane configures it. It returns the
// default configuration, loaded.
func checkECDSFilter(t *testing.T, hf *hcmv3.HttpFilter, xdsCluster, wasmPath string, want evaluator.Config) {
	t.Helper()
	cd := hf.GetConfigDiscovery()
	if cd == nil {
		t.Fatalf("filter %q is not discovered (no config_discovery)", hf.GetName())
	}
	api := cd.GetConfigSource().GetApiConfigSource()
	if api.GetApiType() != corev3.ApiConfigSource_GRPC || len(api.GetGrpcServices()) != 1 ||
		api.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != xdsCluster {
		t.Errorf("config source %v: want gRPC from cluster %q", cd.GetConfigSource(), xdsCluster)
	}
	if !slices.Equal(cd.GetTypeUrls(), []string{"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"}) {
		t.Errorf("type_urls %v: want only the Wasm filter", cd.GetTypeUrls())
	}
	if cd.GetApplyDefaultConfigWithoutWarming() {
		t.Error("apply_default_config_without_warming: Envoy would serve without the rules it could have had")
	}
	var w httpwasmv3.Wasm
	if err := cd.GetDefaultConfig().UnmarshalTo(&w); err != nil {
		t.Fatalf("default config is not the Wasm filter: %v", err)
	}
	var sv wrapperspb.StringValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&sv); err != nil {
		t.Fatalf("default plugin configuration is not a StringValue: %v", err)
	}
	got := loadConfig(t, "default config", []byte(sv.GetValue()))
	if len(got.Buckets) != 0 || got.Default != nil || got.UnlistedBuckets != evaluator.UnlistedNotEnabled ||
		!slices.Equal(got.Addressing.VirtualHostSuffixes, want.Addressing.VirtualHostSuffixes) || got.Addressing.PathStyle != want.Addressing.PathStyle {
		t.Errorf("default configuration %+v: want no CORS for any bucket, addressed as %+v", got, want.Addressing)
	}
	pol, err := evaluator.Load([]byte(sv.GetValue()))
	if err != nil {
		t.Fatal(err)
	}
	for name := range want.Buckets {
		var d evaluator.Decision
		pol.Evaluate(&evaluator.Request{Method: "OPTIONS", Authority: "localhost", Path: "/" + name + "/k",
			Origin: "https://any.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true}, &d)
		if d.Outcome != evaluator.Reply || d.Status != 403 {
			t.Errorf("the default configuration answers a preflight to %s with %v %d, want a 403 reply", name, d.Outcome, d.Status)
		}
	}
	// The control plane serves the same filter, its configuration aside.
	res, err := controlplane.NewXDS(context.Background(), controlplane.Plugin{Module: wasmPath}, nil, nil).Resource([]byte(sv.GetValue()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var served httpwasmv3.Wasm
	if err := res.GetTypedConfig().UnmarshalTo(&served); err != nil {
		t.Fatal(err)
	}
	if res.GetName() != hf.GetName() {
		t.Errorf("the control plane serves %q, the filter asks for %q", res.GetName(), hf.GetName())
	}
	if !proto.Equal(&served, &w) {
		t.Errorf("the default filter differs from the one the control plane serves:\n default %v\n served  %v", &w, &served)
	}
}

// corsRoutePath is what the ?cors route's path regex must take: a bucket (path style) or "/"
// (virtual-hosted), never an object key.
func checkCORSRoute(t *testing.T, hcm *hcmv3.HttpConnectionManager, apiCluster string) {
	t.Helper()
	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(routes) != 2 || routes[1].GetRoute().GetCluster() != "s3" {
		t.Fatalf("routes %v: want the ?cors route, then the store's", routes)
	}
	r := routes[0]
	if r.GetRoute().GetCluster() != apiCluster {
		t.Errorf("the ?cors route goes to %q, want %q", r.GetRoute().GetCluster(), apiCluster)
	}
	m := r.GetMatch()
	if q := m.GetQueryParameters(); len(q) != 1 || q[0].GetName() != "cors" || !q[0].GetPresentMatch() {
		t.Errorf("query match %v: want cors present", q)
	}
	re := regexp.MustCompile(m.GetSafeRegex().GetRegex())
	for path, want := range map[string]bool{"/": true, "/website": true, "/website/": true, "/website/key": false, "//": false, "/a/b/": false} {
		if re.MatchString(path) != want {
			t.Errorf("the ?cors route takes %q: %v, want %v", path, !want, want)
		}
	}
	if h := m.GetHeaders(); len(h) != 1 || h[0].GetName() != ":method" {
		t.Fatalf("header match %v: want the method", h)
	}
	mre := regexp.MustCompile(m.GetHeaders()[0].GetStringMatch().GetSafeRegex().GetRegex())
	for _, method := range []string{"GET", "PUT", "DELETE", "OPTIONS", "POST", "HEAD", "GETX"} {
		if mre.MatchString(method) != (method == "GET" || method == "PUT" || method == "DELETE") {
			t.Errorf("the ?cors route and method %s: %v", method, mre.MatchString(method))
		}
	}
}

func checkEnvoyControlPlane(t *testing.T, name string, data []byte, want evaluator.Config) {
	t.Helper()
	b := checkBootstrap(t, name, data)
	hcm := s3Listener(t, b)
	checkAccessLog(t, name, hcm)
	checkHostRouting(t, name, hcm, want)
	fs := hcm.GetHttpFilters()
	if len(fs) != 2 || fs[0].GetName() != "s3cors" {
		t.Fatalf("HTTP filters %v: want s3cors, then the router", fs)
	}
	xds := fs[0].GetConfigDiscovery().GetConfigSource().GetApiConfigSource().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName()
	c := cluster(t, b, xds)
	var po upstreamhttpv3.HttpProtocolOptions
	if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil ||
		po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("the xDS cluster does not speak HTTP/2 (gRPC): %v", err)
	}
	var w httpwasmv3.Wasm
	_ = fs[0].GetConfigDiscovery().GetDefaultConfig().UnmarshalTo(&w)
	checkECDSFilter(t, fs[0], xds, w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename(), want)
	api := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster()
	checkCORSRoute(t, hcm, api)
	cluster(t, b, api)
	cluster(t, b, "s3")
	if b.GetNode().GetId() == "" || b.GetNode().GetCluster() == "" {
		t.Error("no node id and cluster: Envoy's xDS client needs them")
	}
}

func checkIstioControlPlane(t *testing.T, objs []k8sObject, want evaluator.Config) {
	t.Helper()
	checkServerObjects(t, objs, "Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "EnvoyFilter")
	cm := objs[2].Obj.(*corev1.ConfigMap)
	pvc := objs[3].Obj.(*corev1.PersistentVolumeClaim)
	dep := objs[4].Obj.(*appsv1.Deployment)
	svc := objs[5].Obj.(*corev1.Service)
	ef := objs[6].Obj.(*networkingclient.EnvoyFilter)
	pod := dep.Spec.Template
	if !labelsMatch(dep.Spec.Selector.MatchLabels, pod.Labels) || !labelsMatch(svc.Spec.Selector, pod.Labels) {
		t.Errorf("selectors do not select the pods (labels %v)", pod.Labels)
	}
	if *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %s: one replica owns the state file", *dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	c := pod.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "controlplane" || len(c.Args)%2 != 1 {
		t.Fatalf("args %q, want controlplane and flag/value pairs", c.Args)
	}
	flags := map[string]string{}
	for i := 1; i < len(c.Args); i += 2 {
		flags[c.Args[i]] = c.Args[i+1]
	}
	mounts := map[string]corev1.Volume{} // by mount path
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == vm.Name {
				mounts[vm.MountPath] = v
			}
		}
	}
	dirOf := func(p string) string { return p[:strings.LastIndex(p, "/")] }
	if v := mounts[dirOf(flags["--config"])]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("--config %s is not in the ConfigMap's mount", flags["--config"])
	}
	if v := mounts[dirOf(flags["--credentials"])]; v.Secret == nil {
		t.Errorf("--credentials %s is not in a Secret's mount", flags["--credentials"])
	}
	if v := mounts[dirOf(flags["--state"])]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
		t.Errorf("--state %s is not on the PersistentVolumeClaim", flags["--state"])
	}
	js, err := configfile.JSON("config.yaml", []byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	sameConfig(t, "ConfigMap", loadConfig(t, "ConfigMap", js), want)

	svcPort := func(name string) corev1.ServicePort {
		for _, p := range svc.Spec.Ports {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("the Service has no port %q", name)
		return corev1.ServicePort{}
	}
	api, xds := svcPort("http-api"), svcPort("grpc-xds")
	if flags["--listen"] != fmt.Sprintf(":%d", api.Port) || flags["--xds-listen"] != fmt.Sprintf(":%d", xds.Port) {
		t.Errorf("args %q do not listen on the Service's ports %d and %d", c.Args, api.Port, xds.Port)
	}
	if xds.AppProtocol == nil || *xds.AppProtocol != "grpc" {
		t.Error("the xDS port is not appProtocol grpc: Istio would not speak HTTP/2 to it")
	}

	hf := gatewayFilter(t, ef)
	checkECDSFilter(t, hf, fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", xds.Port, svc.Name, svc.Namespace), flags["--module"], want)
}

// TestDeployDocsCORSRoute: the VirtualService route docs/deploy.md gives Istio users for the
// bucket CORS API is an Istio HTTPRoute, to the Service and port envoy/istio-controlplane.yaml
// deploys, matching what the Envoy bootstrap's route matches.
func TestDeployDocsCORSRoute(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n  http:\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/deploy.md has no VirtualService http: block for the control plane")
	}
	js, err := yaml.YAMLToJSON([]byte("http:\n" + block))
	if err != nil {
		t.Fatal(err)
	}
	var vs networkingapi.VirtualService
	if err := strictJSON.Unmarshal(js, &vs); err != nil {
		t.Fatalf("the docs' route is not an Istio HTTPRoute: %v", err)
	}
	r := vs.GetHttp()[0]
	m := r.GetMatch()[0]
	if m.GetQueryParams()["cors"] == nil || m.GetMethod().GetRegex() != "GET|PUT|DELETE" || m.GetUri().GetRegex() != "/([^/]+/?)?" {
		t.Errorf("the docs' route matches %v", m)
	}
	cfg, _ := demo(t)
	out, err := manifest.Generate(manifest.IstioControlPlane, cfg, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := checkK8s(t, "istio-controlplane", out)
	svc := objs[5].Obj.(*corev1.Service)
	d := r.GetRoute()[0].GetDestination()
	if d.GetHost() != svc.Name+"."+svc.Namespace+".svc.cluster.local" || d.GetPort().GetNumber() != uint32(svc.Spec.Ports[0].Port) {
		t.Errorf("the docs' route goes to %s:%d, the Service is %s.%s port %d", d.GetHost(), d.GetPort().GetNumber(), svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
	}
}
