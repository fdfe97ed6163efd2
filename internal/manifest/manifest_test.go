package manifest_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	extensionsapi "istio.io/api/extensions/v1alpha1"
	networkingapi "istio.io/api/networking/v1alpha3"
	extensionsclient "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	networkingclient "istio.io/client-go/pkg/apis/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/internal/configfile"
	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/ociwasm"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

var update = flag.Bool("update", false, "rewrite envoy/*.yaml from testdata/demo/config.json")

// demoSource is the configuration the files in envoy/ are generated from.
const demoSource = "testdata/demo/config.json"

// envoyFiles names each target's file in envoy/.
var envoyFiles = map[manifest.Target]string{
	manifest.EnvoyWasm:       "wasm.yaml",
	manifest.EnvoyExtProc:    "extproc.yaml",
	manifest.IstioWasmPlugin: "istio-wasmplugin.yaml",
	manifest.IstioExtProc:    "istio-extproc.yaml",

	manifest.EnvoyControlPlane: "controlplane.yaml",
	manifest.IstioControlPlane: "istio-controlplane.yaml",
}

// demoHosts are the path-style hosts the files in envoy/ route to the store besides the demo
// configuration's s3.localhost and *.s3.localhost, so that the documentation's
// `curl http://localhost:8080/<bucket>/<key>` works.
var demoHosts = []string{"localhost", "127.0.0.1"}

// demoOptions are the options the files in envoy/ are generated with.
func demoOptions(target manifest.Target) manifest.Options {
	return withHosts(target, manifest.Options{Source: demoSource}, demoHosts...)
}

// withHosts gives o the path-style hosts when target routes by host (envoy-*): a
// configuration without virtual-host suffixes needs one.
func withHosts(target manifest.Target, o manifest.Options, hosts ...string) manifest.Options {
	if target == manifest.EnvoyWasm || target == manifest.EnvoyExtProc || target == manifest.EnvoyControlPlane {
		o.Hosts = hosts
	}
	return o
}

func demo(t *testing.T) ([]byte, evaluator.Config) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), demoSource))
	if err != nil {
		t.Fatal(err)
	}
	return data, loadConfig(t, demoSource, data)
}

// TestEnvoyDirectoryIsGenerated regenerates every file in envoy/ from the demo configuration
// and compares byte for byte (make generate rewrites them), so they never drift from the
// generator, and checks envoy/ holds nothing else.
func TestEnvoyDirectoryIsGenerated(t *testing.T) {
	cfg, _ := demo(t)
	dir := filepath.Join(testenv.RepoRoot(t), "envoy")
	for _, target := range manifest.Targets() {
		got, err := manifest.Generate(target, cfg, demoOptions(target))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		path := filepath.Join(dir, envoyFiles[target])
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run make generate)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("envoy/%s differs from `s3cors manifest --target %s --config %s`; run make generate\n%s",
				envoyFiles[target], target, demoSource, firstDiff(want, got))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.ContainsFunc(manifest.Targets(), func(tg manifest.Target) bool { return envoyFiles[tg] == e.Name() }) {
			t.Errorf("envoy/%s is not generated, so nothing keeps it right", e.Name())
		}
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  file:      %q\n  generated: %q", i+1, x, y)
		}
	}
	return ""
}

// TestEnvoyDirectory checks the committed files themselves, as a user would copy them.
func TestEnvoyDirectory(t *testing.T) {
	_, want := demo(t)
	for _, target := range manifest.Targets() {
		t.Run(envoyFiles[target], func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "envoy", envoyFiles[target]))
			if err != nil {
				t.Fatal(err)
			}
			checkTarget(t, target, data, want)
		})
	}
}

// checkTarget checks one generated file for target through the real types, and that the
// configuration it carries loads as want.
func checkTarget(t *testing.T, target manifest.Target, data []byte, want evaluator.Config) {
	t.Helper()
	name := string(target)
	if !bytes.HasPrefix(data, []byte("# s3cors for ")) || !bytes.Contains(data, []byte("# Generated by `s3cors manifest --target "+name+" ")) {
		t.Errorf("%s: no header saying what the file is and how to regenerate it", name)
	}
	switch target {
	case manifest.EnvoyWasm:
		b := checkBootstrap(t, name, data)
		checkAccessLog(t, name, s3Listener(t, b))
		checkHostRouting(t, name, s3Listener(t, b), want)
		_, js := wasmPluginConfig(t, b)
		sameConfig(t, name+" plugin configuration", loadConfig(t, name, js), want)
		cluster(t, b, "s3")
	case manifest.EnvoyExtProc:
		b := checkBootstrap(t, name, data)
		checkAccessLog(t, name, s3Listener(t, b))
		checkHostRouting(t, name, s3Listener(t, b), want)
		ep := extProcFilter(t, firstHTTPFilter(t, s3Listener(t, b)))
		c := cluster(t, b, ep.GetGrpcService().GetEnvoyGrpc().GetClusterName())
		var po upstreamhttpv3.HttpProtocolOptions
		if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil ||
			po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			t.Errorf("the ext_proc cluster does not speak HTTP/2 (gRPC): %v", err)
		}
		if hc := c.GetHealthChecks(); len(hc) != 1 || hc[0].GetGrpcHealthCheck().GetServiceName() != "envoy.service.ext_proc.v3.ExternalProcessor" {
			t.Errorf("the ext_proc cluster has no gRPC health check of the ext_proc service: %v", hc)
		}
		if th := c.GetCircuitBreakers().GetThresholds(); len(th) != 1 || th[0].GetMaxRequests().GetValue() < 10000 {
			t.Errorf("the ext_proc cluster keeps Envoy's default circuit breaker (1024 requests): %v", th)
		}
		cluster(t, b, "s3")
	case manifest.IstioWasmPlugin:
		objs := checkK8s(t, name, data)
		if len(objs) != 1 || objs[0].Kind != "WasmPlugin" {
			t.Fatalf("want exactly one WasmPlugin, got %v", kinds(objs))
		}
		checkWasmPlugin(t, objs[0].Obj.(*extensionsclient.WasmPlugin), want)
	case manifest.IstioExtProc:
		checkExtProcObjects(t, checkK8s(t, name, data), want)
	case manifest.EnvoyControlPlane:
		checkEnvoyControlPlane(t, name, data, want)
	case manifest.IstioControlPlane:
		checkIstioControlPlane(t, checkK8s(t, name, data), want)
	default:
		t.Fatalf("no check for target %s", target)
	}
}

func sameConfig(t *testing.T, where string, got, want evaluator.Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: loads as a different configuration:\n got %+v\nwant %+v", where, got, want)
	}
}

func kinds(objs []k8sObject) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Kind)
	}
	return ks
}

var ociURLRe = regexp.MustCompile(`^oci://[^@]+(@sha256:([a-f0-9]{64}))?$`)

func checkWasmPlugin(t *testing.T, wp *extensionsclient.WasmPlugin, want evaluator.Config) {
	t.Helper()
	s := &wp.Spec
	m := ociURLRe.FindStringSubmatch(s.GetUrl())
	if m == nil {
		t.Errorf("url %q is not an oci:// reference", s.GetUrl())
	} else if m[2] != "" && m[2] != s.GetSha256() {
		t.Errorf("url pinned to %s but sha256 %q: Istio refuses a mismatch", m[2], s.GetSha256())
	}
	// The CRD's CEL rule: at most one of selector, targetRef, targetRefs; we want exactly one.
	n := 0
	for _, set := range []bool{s.GetSelector() != nil, s.GetTargetRef() != nil, len(s.GetTargetRefs()) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want exactly one of selector and targetRefs, got %d", n)
	}
	if s.GetPhase() != extensionsapi.PluginPhase_AUTHN {
		t.Errorf("phase %v: s3cors must run before Istio's authentication (AUTHN)", s.GetPhase())
	}
	if s.GetFailStrategy() == extensionsapi.FailStrategy_FAIL_OPEN {
		t.Error("failStrategy FAIL_OPEN")
	}
	if s.GetType() == extensionsapi.PluginType_NETWORK {
		t.Error("type NETWORK: s3cors is an HTTP filter")
	}
	js, err := protojson.Marshal(s.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	// This is the JSON Istio hands the module.
	sameConfig(t, "pluginConfig", loadConfig(t, "pluginConfig", js), want)
}

func checkExtProcObjects(t *testing.T, objs []k8sObject, want evaluator.Config) {
	t.Helper()
	checkServerObjects(t, objs, "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "EnvoyFilter")
	sa := objs[1].Obj.(*corev1.ServiceAccount)
	cm := objs[2].Obj.(*corev1.ConfigMap)
	dep := objs[3].Obj.(*appsv1.Deployment)
	pdb := objs[4].Obj.(*policyv1.PodDisruptionBudget)
	svc := objs[5].Obj.(*corev1.Service)
	ef := objs[6].Obj.(*networkingclient.EnvoyFilter)

	pod := dep.Spec.Template
	if !labelsMatch(dep.Spec.Selector.MatchLabels, pod.Labels) || !labelsMatch(pdb.Spec.Selector.MatchLabels, pod.Labels) || !labelsMatch(svc.Spec.Selector, pod.Labels) {
		t.Errorf("selectors do not select the pods (labels %v)", pod.Labels)
	}
	if pod.Spec.ServiceAccountName != sa.Name || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("pods run as %q, want the token-less service account %q", pod.Spec.ServiceAccountName, sa.Name)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pods may run as root")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
		c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("container may escalate privileges or write its root filesystem")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// The server is started as `s3cors extproc --config F --listen :P --metrics-listen :M`,
	// F comes from the ConfigMap, P is the gRPC port the probes, Service and EnvoyFilter use.
	flags := map[string]string{}
	if len(c.Args) == 0 || c.Args[0] != "extproc" || len(c.Args)%2 != 1 {
		t.Fatalf("args %q, want extproc and flag/value pairs", c.Args)
	}
	for i := 1; i < len(c.Args); i += 2 {
		flags[c.Args[i]] = c.Args[i+1]
	}
	port := func(name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		t.Fatalf("no container port %q", name)
		return 0
	}
	grpcPort, metricsPort := port("grpc"), port("metrics")
	if flags["--listen"] != fmt.Sprintf(":%d", grpcPort) || flags["--metrics-listen"] != fmt.Sprintf(":%d", metricsPort) {
		t.Errorf("args %q do not listen on the declared ports %d and %d", c.Args, grpcPort, metricsPort)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != grpcPort {
			t.Errorf("probe %v is not a gRPC health probe on port %d", p, grpcPort)
		}
	}
	if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("prometheus annotations %v, want port %d", a, metricsPort)
	}
	cfgPath := flags["--config"]
	var mounted bool
	for _, vm := range c.VolumeMounts {
		if filepath.Dir(cfgPath) != vm.MountPath {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("--config %s is not in the ConfigMap %s's mount", cfgPath, cm.Name)
	}
	body, ok := cm.Data[filepath.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap has no %s", filepath.Base(cfgPath))
	}
	// Read as the server reads its --config file.
	js, err := configfile.JSON(cfgPath, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sameConfig(t, "ConfigMap", loadConfig(t, "ConfigMap", js), want)

	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "grpc" || svc.Spec.Ports[0].AppProtocol == nil || *svc.Spec.Ports[0].AppProtocol != "grpc" {
		t.Errorf("service ports %v: want one gRPC port targeting the container's grpc port", svc.Spec.Ports)
	}

	// The EnvoyFilter: ext_proc first in the gateway's chain, calling the Service's cluster.
	hf := gatewayFilter(t, ef)
	ep := extProcFilter(t, hf.GetTypedConfig())
	wantCluster := fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", svc.Spec.Ports[0].Port, svc.Name, svc.Namespace)
	if got := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != wantCluster {
		t.Errorf("ext_proc calls cluster %q, want the Service's %q", got, wantCluster)
	}
}

// gatewayFilter checks that the EnvoyFilter ef selects its gateway's pods and makes one
// patch, which inserts an HTTP filter first in the gateway's connection managers, and returns
// that filter, checked through go-control-plane's types.
func gatewayFilter(t *testing.T, ef *networkingclient.EnvoyFilter) *hcmv3.HttpFilter {
	t.Helper()
	s := &ef.Spec
	if len(s.GetWorkloadSelector().GetLabels()) == 0 {
		t.Error("the EnvoyFilter has no workload selector: it would patch every proxy in its namespace")
	}
	if len(s.GetConfigPatches()) != 1 {
		t.Fatalf("%d config patches", len(s.GetConfigPatches()))
	}
	p := s.GetConfigPatches()[0]
	if p.GetApplyTo() != networkingapi.EnvoyFilter_HTTP_FILTER || p.GetMatch().GetContext() != networkingapi.EnvoyFilter_GATEWAY ||
		p.GetPatch().GetOperation() != networkingapi.EnvoyFilter_Patch_INSERT_FIRST ||
		p.GetMatch().GetListener().GetFilterChain().GetFilter().GetName() != "envoy.filters.network.http_connection_manager" {
		t.Errorf("patch %v: want the first HTTP filter of the gateway's connection managers", p)
	}
	vjs, err := protojson.Marshal(p.GetPatch().GetValue())
	if err != nil {
		t.Fatal(err)
	}
	var hf hcmv3.HttpFilter
	if err := strictJSON.Unmarshal(vjs, &hf); err != nil {
		t.Fatalf("patch value is not an Envoy HttpFilter: %v", err)
	}
	if err := hf.ValidateAll(); err != nil {
		t.Error(err)
	}
	walkAnys(t, "EnvoyFilter patch", hf.ProtoReflect())
	return &hf
}

// checkServerObjects checks that objs, the objects of a file deploying a server, are of the
// kinds exp, a Namespace first, and that all but the first and the last (the gateway's
// EnvoyFilter) are in that namespace.
func checkServerObjects(t *testing.T, objs []k8sObject, exp ...string) {
	t.Helper()
	if got := kinds(objs); !slices.Equal(got, exp) || exp[0] != "Namespace" {
		t.Fatalf("objects %v, want %v", got, exp)
	}
	ns := objs[0].Obj.(*corev1.Namespace)
	for _, o := range objs[1 : len(objs)-1] {
		if m := metaOf(o.Obj); m.Namespace != ns.Name {
			t.Errorf("%s %s in namespace %q, want %q", o.Kind, m.Name, m.Namespace, ns.Name)
		}
	}
}

func labelsMatch(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// variants are non-default options, each generated and checked like the committed files, so
// every branch of the templates is proven.
var variants = []struct {
	target manifest.Target
	opts   manifest.Options
	check  func(t *testing.T, out []byte)
}{
	{manifest.EnvoyWasm, manifest.Options{Upstream: "s3.eu-west-1.amazonaws.com:443", UpstreamTLS: true, ListenPort: 10000, AdminPort: 19000, WasmPath: "/opt/s3cors/s3cors.wasm"},
		func(t *testing.T, out []byte) {
			b := checkBootstrap(t, "variant", out)
			c := cluster(t, b, "s3")
			var tls tlsv3.UpstreamTlsContext
			if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
				t.Fatal(err)
			}
			if tls.GetSni() != "s3.eu-west-1.amazonaws.com" || tls.GetCommonTlsContext().GetValidationContext().GetTrustedCa() == nil ||
				tls.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != "s3.eu-west-1.amazonaws.com" {
				t.Errorf("upstream TLS %v: want SNI and a verified certificate for the host", &tls)
			}
			pc, _ := wasmPluginConfig(t, b)
			if pc.GetVmConfig().GetCode().GetLocal().GetFilename() != "/opt/s3cors/s3cors.wasm" {
				t.Errorf("module path %q", pc.GetVmConfig().GetCode().GetLocal().GetFilename())
			}
			if b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue() != 19000 {
				t.Error("admin port not applied")
			}
		}},
	{manifest.EnvoyExtProc, manifest.Options{Upstream: "10.0.0.7:9000", UpstreamTLS: true, ExtProc: "s3cors-extproc.internal:50051", MessageTimeout: 250 * time.Millisecond},
		func(t *testing.T, out []byte) {
			b := checkBootstrap(t, "variant", out)
			var tls tlsv3.UpstreamTlsContext
			if err := cluster(t, b, "s3").GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
				t.Fatal(err)
			}
			if tls.GetSni() != "" || tls.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()[0].GetSanType() != tlsv3.SubjectAltNameMatcher_IP_ADDRESS {
				t.Errorf("TLS to an IP address: want no SNI and an IP SAN, got %v", &tls)
			}
			ep := extProcFilter(t, firstHTTPFilter(t, s3Listener(t, b)))
			if ep.GetMessageTimeout().AsDuration() != 250*time.Millisecond {
				t.Errorf("message_timeout %v", ep.GetMessageTimeout().AsDuration())
			}
		}},
	{manifest.IstioWasmPlugin, manifest.Options{GatewayName: "s3-gateway", GatewayNamespace: "storage", FailStrategy: "FAIL_RELOAD",
		Image: "oci://ghcr.io/acme/s3cors-wasm@sha256:" + strings.Repeat("ab", 32)},
		func(t *testing.T, out []byte) {
			wp := checkK8s(t, "variant", out)[0].Obj.(*extensionsclient.WasmPlugin)
			if wp.Namespace != "storage" || len(wp.Spec.GetTargetRefs()) != 1 || wp.Spec.GetTargetRefs()[0].GetName() != "s3-gateway" ||
				wp.Spec.GetTargetRefs()[0].GetKind() != "Gateway" || wp.Spec.GetTargetRefs()[0].GetGroup() != "gateway.networking.k8s.io" {
				t.Errorf("targetRefs %v in %s", wp.Spec.GetTargetRefs(), wp.Namespace)
			}
			if wp.Spec.GetSha256() != strings.Repeat("ab", 32) || wp.Spec.GetFailStrategy() != extensionsapi.FailStrategy_FAIL_RELOAD {
				t.Errorf("sha256 %q failStrategy %v", wp.Spec.GetSha256(), wp.Spec.GetFailStrategy())
			}
		}},
	{manifest.IstioWasmPlugin, manifest.Options{GatewaySelector: map[string]string{"app": "istio-ingress", "istio.io/rev": "1-27"}, Image: "ghcr.io/acme/s3cors-wasm:v2", WasmSHA256: strings.Repeat("0f", 32)},
		func(t *testing.T, out []byte) {
			wp := checkK8s(t, "variant", out)[0].Obj.(*extensionsclient.WasmPlugin)
			if !reflect.DeepEqual(wp.Spec.GetSelector().GetMatchLabels(), map[string]string{"app": "istio-ingress", "istio.io/rev": "1-27"}) {
				t.Errorf("selector %v", wp.Spec.GetSelector())
			}
			if wp.Spec.GetUrl() != "oci://ghcr.io/acme/s3cors-wasm:v2" || wp.Spec.GetSha256() != strings.Repeat("0f", 32) {
				t.Errorf("url %q sha256 %q", wp.Spec.GetUrl(), wp.Spec.GetSha256())
			}
		}},
	{manifest.IstioExtProc, manifest.Options{Namespace: "edge-cors", GatewayNamespace: "istio-ingress", GatewaySelector: map[string]string{"istio": "gw"},
		Image: "ghcr.io/acme/s3cors:v1.2.3", Replicas: 3, MessageTimeout: time.Second},
		func(t *testing.T, out []byte) {
			objs := checkK8s(t, "variant", out)
			dep := objs[3].Obj.(*appsv1.Deployment)
			if *dep.Spec.Replicas != 3 || dep.Namespace != "edge-cors" || dep.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/s3cors:v1.2.3" {
				t.Errorf("deployment %s/%s replicas %d image %q", dep.Namespace, dep.Name, *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Image)
			}
			ef := objs[6].Obj.(*networkingclient.EnvoyFilter)
			if ef.Namespace != "istio-ingress" || ef.Spec.GetWorkloadSelector().GetLabels()["istio"] != "gw" {
				t.Errorf("EnvoyFilter in %q selecting %v", ef.Namespace, ef.Spec.GetWorkloadSelector())
			}
		}},
}

func TestVariants(t *testing.T) {
	cfg, want := demo(t)
	for i, v := range variants {
		t.Run(fmt.Sprintf("%s/%d", v.target, i), func(t *testing.T) {
			v.opts.Source = "cors.json"
			out, err := manifest.Generate(v.target, cfg, v.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkTarget(t, v.target, out, want)
			v.check(t, out)
			checkHeaderRegenerates(t, v.target, cfg, out)
		})
	}
}

// checkHeaderRegenerates runs the command the header names (with the flags `s3cors manifest`
// has) and expects the same file.
func checkHeaderRegenerates(t *testing.T, target manifest.Target, cfg, out []byte) {
	t.Helper()
	m := regexp.MustCompile("# Generated by `s3cors manifest ([^`]*)`").FindSubmatch(out)
	if m == nil {
		t.Fatal("no regeneration command in the header")
	}
	args := strings.Fields(string(m[1]))
	var o manifest.Options
	var tg string
	for i := 0; i < len(args); i++ {
		flagName, val := args[i], ""
		if flagName != "--upstream-tls" {
			i++
			val = args[i]
		}
		switch flagName {
		case "--target":
			tg = val
		case "--config":
			o.Source = val
		case "--upstream":
			o.Upstream = val
		case "--upstream-tls":
			o.UpstreamTLS = true
		case "--host":
			o.Hosts = append(o.Hosts, val)
		case "--listen-port":
			o.ListenPort, _ = strconv.Atoi(val)
		case "--admin-port":
			o.AdminPort, _ = strconv.Atoi(val)
		case "--wasm-path":
			o.WasmPath = val
		case "--extproc":
			o.ExtProc = val
		case "--message-timeout":
			o.MessageTimeout, _ = time.ParseDuration(val)
		case "--image":
			o.Image = val
		case "--wasm-sha256":
			o.WasmSHA256 = val
		case "--fail-strategy":
			o.FailStrategy = val
		case "--gateway-namespace":
			o.GatewayNamespace = val
		case "--gateway-selector":
			o.GatewaySelector = map[string]string{}
			for _, kv := range strings.Split(val, ",") {
				k, v, _ := strings.Cut(kv, "=")
				o.GatewaySelector[k] = v
			}
		case "--gateway-name":
			o.GatewayName = val
		case "--namespace":
			o.Namespace = val
		case "--replicas":
			o.Replicas, _ = strconv.Atoi(val)
		default:
			t.Fatalf("header names flag %q, which s3cors manifest does not have", flagName)
		}
	}
	if tg != string(target) {
		t.Fatalf("header says --target %s", tg)
	}
	again, err := manifest.Generate(target, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("the header's command gives a different file:\n%s", firstDiff(out, again))
	}
}

func TestHeadersOfCommittedFilesRegenerate(t *testing.T) {
	cfg, _ := demo(t)
	for _, target := range manifest.Targets() {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "envoy", envoyFiles[target]))
		if err != nil {
			t.Fatal(err)
		}
		checkHeaderRegenerates(t, target, cfg, data)
	}
}

// TestYAMLConfiguration: a configuration written in YAML gives files carrying the same
// configuration.
func TestYAMLConfiguration(t *testing.T) {
	cfg, want := demo(t)
	y, err := yaml.JSONToYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range manifest.Targets() {
		out, err := manifest.Generate(target, y, manifest.Options{Source: "cors.yaml"})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		checkTarget(t, target, out, want)
	}
}

// TestVaryAlwaysCarried: "vary": "always" reaches every target's plugin or server
// configuration, so the deployed filter adds Vary as the file says.
func TestVaryAlwaysCarried(t *testing.T) {
	cfg := []byte(`{"buckets": {"photos": {"CORSRules": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"]}]}}, "vary": "always"}`)
	want := loadConfig(t, "vary.json", cfg)
	if want.Vary != evaluator.VaryAlways {
		t.Fatalf("the configuration loads with vary %q", want.Vary)
	}
	for _, target := range manifest.Targets() {
		// Envoy routes only named hosts to the store.
		out, err := manifest.Generate(target, cfg, withHosts(target, manifest.Options{}, "s3.example.com"))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		checkTarget(t, target, out, want)
	}
}

// TestMultiLineXMLBucket: an XML bucket written over several lines becomes a YAML literal
// block in Istio objects and still loads the same.
func TestMultiLineXMLBucket(t *testing.T) {
	cfg := []byte(`{"buckets": {"legacy": "<CORSConfiguration>\n  <CORSRule>\n    <AllowedOrigin>https://app.example.com</AllowedOrigin>\n    <AllowedMethod>GET</AllowedMethod>\n    <MaxAgeSeconds>2147483647</MaxAgeSeconds>\n  </CORSRule>\n</CORSConfiguration>\n"}}`)
	want := loadConfig(t, "xml", cfg)
	for _, target := range manifest.Targets() {
		out, err := manifest.Generate(target, cfg, withHosts(target, manifest.Options{}, "s3.example.com"))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		checkTarget(t, target, out, want)
		if strings.HasPrefix(string(target), "istio") && !strings.Contains(string(out), "legacy: |\n") {
			t.Errorf("%s: the XML bucket is not a literal block", target)
		}
	}
}

func TestInvalidConfigurationGivesNoManifest(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "testdata", "invalid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configurations in testdata/invalid: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".bucket.json") {
			continue // a bare bucket document, not a configuration
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, loadErr := evaluator.Load(data)
		var wantV *evaluator.ValidationError
		if !errors.As(loadErr, &wantV) {
			t.Fatalf("%s: the evaluator accepts it (%v)", f, loadErr)
		}
		for _, target := range manifest.Targets() {
			out, err := manifest.Generate(target, data, manifest.Options{})
			var v *evaluator.ValidationError
			if out != nil || !errors.As(err, &v) {
				t.Fatalf("%s %s: got %d bytes and %v, want no manifest and the validation error", filepath.Base(f), target, len(out), err)
			}
			if !reflect.DeepEqual(v.Problems, wantV.Problems) {
				t.Errorf("%s %s: problems %v, want every problem %v", filepath.Base(f), target, v.Problems, wantV.Problems)
			}
			if !strings.Contains(err.Error(), "refusing to generate from an invalid configuration") {
				t.Errorf("error %q does not say why there is no manifest", err)
			}
		}
	}
}

func TestBadOptions(t *testing.T) {
	cfg, _ := demo(t)
	for _, tc := range []struct {
		target manifest.Target
		opts   manifest.Options
		want   []string // each must appear in the one error
	}{
		{manifest.EnvoyWasm, manifest.Options{Upstream: "minio", ListenPort: 70000, WasmPath: "relative.wasm"},
			[]string{`upstream "minio": want host:port`, "listen-port 70000: not a TCP port", `wasm-path "relative.wasm"`}},
		{manifest.EnvoyWasm, manifest.Options{Upstream: "bad host!:9000", ListenPort: 9901},
			[]string{`host "bad host!" is neither`, "listen-port 9901: the admin port uses it too"}},
		{manifest.EnvoyWasm, manifest.Options{Image: "x/y:z", GatewayName: "gw", Namespace: "n", Replicas: 2, ExtProc: "a:1", MessageTimeout: time.Second},
			[]string{`image "x/y:z": only the istio-*`, `gateway-name "gw": only the istio-wasmplugin`, `namespace "n"`, "replicas 2", `extproc "a:1"`, "message-timeout"}},
		{manifest.EnvoyExtProc, manifest.Options{ExtProc: "server:0", MessageTimeout: 1500 * time.Microsecond},
			[]string{`extproc "server:0": port "0" is not a TCP port`, "message-timeout \"1.5ms\": want whole milliseconds"}},
		{manifest.IstioWasmPlugin, manifest.Options{Upstream: "minio:9000", FailStrategy: "FAIL_OPEN", WasmSHA256: "ABC"},
			[]string{`upstream "minio:9000": only the envoy-*`, `fail-strategy "FAIL_OPEN": refused`, `wasm-sha256 "ABC"`}},
		{manifest.IstioWasmPlugin, manifest.Options{Image: "ghcr.io/a/b@sha256:" + strings.Repeat("1", 64), WasmSHA256: strings.Repeat("2", 64)},
			[]string{"Istio requires them to agree"}},
		{manifest.IstioWasmPlugin, manifest.Options{Image: "https://example.com/s3cors.wasm", FailStrategy: "NOPE"},
			[]string{`image "https://example.com/s3cors.wasm"`, `fail-strategy "NOPE": want FAIL_CLOSE or FAIL_RELOAD`}},
		{manifest.IstioWasmPlugin, manifest.Options{GatewayName: "gw", GatewaySelector: map[string]string{"a": "b"}, GatewayNamespace: "Bad_NS"},
			[]string{"either a selector or gateway-name", `gateway-namespace "Bad_NS"`}},
		{manifest.IstioExtProc, manifest.Options{GatewayName: "gw", GatewaySelector: map[string]string{"bad key!": "v", "k": "bad value!"}, Replicas: -1, Namespace: "UPPER"},
			[]string{"gateway-name \"gw\": only the istio-wasmplugin", `label key "bad key!"`, `label k value "bad value!"`, "replicas -1", `namespace "UPPER"`}},
		{manifest.IstioExtProc, manifest.Options{WasmPath: "/x.wasm", WasmSHA256: strings.Repeat("a", 64), FailStrategy: "FAIL_RELOAD", Image: "Not An Image"},
			[]string{`wasm-path "/x.wasm"`, "wasm-sha256", `fail-strategy "FAIL_RELOAD"`, `image "Not An Image"`}},
	} {
		out, err := manifest.Generate(tc.target, cfg, tc.opts)
		if err == nil {
			t.Errorf("%s %+v: generated %d bytes, want an error", tc.target, tc.opts, len(out))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %+v:\nerror %q\nlacks %q", tc.target, tc.opts, err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "manifest: bad options for "+string(tc.target)) {
			t.Errorf("error %q lacks its prefix", err)
		}
	}
}

func TestBadInput(t *testing.T) {
	cfg, _ := demo(t)
	for _, tc := range []struct {
		target manifest.Target
		source string
		cfg    []byte
		want   string
	}{
		{"envoy", "", cfg, `unknown target "envoy" (want one of envoy-wasm, envoy-extproc, istio-wasmplugin, istio-extproc, envoy-controlplane, istio-controlplane)`},
		{manifest.EnvoyWasm, "", nil, "the configuration is empty"},
		{manifest.EnvoyWasm, "cors.json", []byte(`{"buckets": {}`), "refusing to generate from an invalid configuration"},
		{manifest.EnvoyWasm, "cors.json", []byte("buckets: {}\n"), "refusing to generate from an invalid configuration"},
		{manifest.EnvoyWasm, "cors.yaml", []byte("buckets: [\n"), "invalid YAML"},
	} {
		_, err := manifest.Generate(tc.target, tc.cfg, manifest.Options{Source: tc.source})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Generate(%q, %q): %v, want %q", tc.target, tc.cfg, err, tc.want)
		}
	}
}

// TestYAMLReadAsTheServerReadsIt: bucket names YAML 1.1 would turn into booleans or numbers
// stay names, as `s3cors validate` and the ext_proc server read them.
func TestYAMLReadAsTheServerReadsIt(t *testing.T) {
	y := []byte("buckets:\n  yes: null\n  0123: null\n")
	for _, target := range manifest.Targets() {
		out, err := manifest.Generate(target, y, withHosts(target, manifest.Options{Source: "cors.yaml"}, "s3.example.com"))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		js, err := configfile.JSON("cors.yaml", y)
		if err != nil {
			t.Fatal(err)
		}
		checkTarget(t, target, out, loadConfig(t, "yaml", js))
	}
}

// TestWasmPluginPinsTheOCILayoutDigest builds the module's image the way `make oci` does and
// checks that a WasmPlugin generated with its digest carries exactly that sha256, which is
// what Istio compares with the manifest digest it pulls.
func TestWasmPluginPinsTheOCILayoutDigest(t *testing.T) {
	cfg, want := demo(t)
	img, err := ociwasm.Image(testenv.ModuleBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := ociwasm.WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	back, err := ociwasm.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociwasm.Verify(back); err != nil {
		t.Fatal(err)
	}
	d, err := back.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []manifest.Options{
		{Image: "ghcr.io/acme/s3cors-wasm:v1", WasmSHA256: d.Hex},
		{Image: "ghcr.io/acme/s3cors-wasm@" + d.String()},
	} {
		out, err := manifest.Generate(manifest.IstioWasmPlugin, cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		checkTarget(t, manifest.IstioWasmPlugin, out, want)
		wp := checkK8s(t, "wasmplugin", out)[0].Obj.(*extensionsclient.WasmPlugin)
		if wp.Spec.GetSha256() != d.Hex {
			t.Errorf("sha256 %q, want the layout's manifest digest %s", wp.Spec.GetSha256(), d.Hex)
		}
	}
}

func TestTargetsAreDocumented(t *testing.T) {
	var names []string
	for _, tg := range manifest.Targets() {
		names = append(names, string(tg))
	}
	if want := []string{"envoy-wasm", "envoy-extproc", "istio-wasmplugin", "istio-extproc", "envoy-controlplane", "istio-controlplane"}; !slices.Equal(names, want) {
		t.Errorf("targets %v, want %v (the CLI and docs/deploy.md name these)", names, want)
	}
}

// TestDeployDocsNameEverything keeps docs/deploy.md in step with the code: every target and
// every metric the filter defines is documented.
func TestDeployDocsNameEverything(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range manifest.Targets() {
		if !bytes.Contains(doc, []byte("`"+string(tg)+"`")) {
			t.Errorf("docs/deploy.md does not document the target %s", tg)
		}
	}
	for _, m := range filter.MetricNames {
		if !bytes.Contains(doc, []byte("`"+m+"`")) {
			t.Errorf("docs/deploy.md does not list the filter metric %s", m)
		}
	}
	for _, f := range envoyFiles {
		if !bytes.Contains(doc, []byte("envoy/"+f)) {
			t.Errorf("docs/deploy.md does not mention envoy/%s", f)
		}
	}
}
