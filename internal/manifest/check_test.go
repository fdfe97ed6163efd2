package manifest_test

// Checks every generated file against the types its consumer uses: Envoy bootstraps against
// go-control-plane (strict protojson, every Any resolved, ValidateAll), Istio objects against
// istio.io/api (strict protojson) and the CRD schemas shipped in the istio.io/api module,
// Kubernetes objects against k8s.io/api with unknown fields refused. Every embedded s3cors
// configuration must load. istio.io/client-go and k8s.io/api are big to compile, so this is
// the only package that imports them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	reqwithoutqueryv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensionsclient "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	networkingclient "istio.io/client-go/pkg/apis/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// The typed_config messages our bootstraps use, named so that their registration (which
// protojson needs to resolve "@type") does not depend on an import elsewhere.
var _ = []proto.Message{
	&hcmv3.HttpConnectionManager{}, &httpwasmv3.Wasm{}, &wasmv3.PluginConfig{}, &routerv3.Router{},
	&extprocv3.ExternalProcessor{}, &upstreamhttpv3.HttpProtocolOptions{}, &tlsv3.UpstreamTlsContext{},
	&wrapperspb.StringValue{}, &streamv3.StdoutAccessLog{}, &reqwithoutqueryv3.ReqWithoutQuery{},
}

// strictJSON is how every proto is read: unknown fields are errors.
var strictJSON = protojson.UnmarshalOptions{DiscardUnknown: false}

// splitDocs splits a multi-document YAML file; the header comment before the first document
// belongs to it.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			// The line break before a separator belongs to the document before it.
			docs = append(docs, append(bytes.TrimSuffix(d, []byte("\n")), '\n'))
		}
	}
	return docs
}

// validator is what go-control-plane's generated ValidateAll methods satisfy.
type validator interface{ ValidateAll() error }

// checkBootstrap reads an Envoy bootstrap the way Envoy's protojson would (strictly), checks
// it with the protoc-gen-validate rules, and resolves and validates every Any inside it.
func checkBootstrap(t *testing.T, name string, doc []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: not YAML: %v", name, err)
	}
	var b bootstrapv3.Bootstrap
	if err := strictJSON.Unmarshal(js, &b); err != nil {
		t.Fatalf("%s: not an Envoy bootstrap: %v", name, err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("%s: bootstrap fails validation: %v", name, err)
	}
	n := walkAnys(t, name, b.ProtoReflect())
	if n == 0 {
		t.Errorf("%s: no typed_config found; the walk is broken", name)
	}
	return &b
}

// walkAnys resolves every google.protobuf.Any under m (recursively, into the resolved
// messages too), validates each, and returns how many it found.
func walkAnys(t *testing.T, where string, m protoreflect.Message) int {
	t.Helper()
	n := 0
	var visit func(path string, m protoreflect.Message)
	visit = func(path string, m protoreflect.Message) {
		if m.Descriptor().FullName() == "google.protobuf.Any" {
			a := m.Interface().(*anypb.Any)
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("%s: %s: cannot resolve %q: %v", where, path, a.GetTypeUrl(), err)
				return
			}
			n++
			if v, ok := inner.(validator); ok {
				if err := v.ValidateAll(); err != nil {
					t.Errorf("%s: %s (%s) fails validation: %v", where, path, a.GetTypeUrl(), err)
				}
			}
			visit(path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">", inner.ProtoReflect())
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			p := path + "." + string(fd.Name())
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					visit(fmt.Sprintf("%s[%d]", p, i), v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(fmt.Sprintf("%s[%v]", p, k), mv.Message())
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				visit(p, v.Message())
			}
			return true
		})
	}
	visit("", m)
	return n
}

// s3Listener returns the HTTP connection manager of the bootstrap's only listener.
func s3Listener(t *testing.T, b *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 || len(ls[0].GetFilterChains()) != 1 || len(ls[0].GetFilterChains()[0].GetFilters()) != 1 {
		t.Fatalf("want one listener with one filter chain and one network filter, got %d listeners", len(ls))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatalf("network filter is not the HTTP connection manager: %v", err)
	}
	return &hcm
}

func cluster(t *testing.T, b *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %q", name)
	return nil
}

// accessLogFields are the command operators the access log must carry for an operator to
// trace a request from a user's complaint: when, what, what s3cors answered and why, the id
// in the reply, and the CORS request headers the answer depends on.
var accessLogFields = []string{
	"%START_TIME%", "%REQ(:METHOD)%", "%REQ_WITHOUT_QUERY(:PATH):", "%RESPONSE_CODE%",
	"%RESPONSE_CODE_DETAILS%", "%RESP(X-AMZ-REQUEST-ID)%", "%REQ(ORIGIN):",
	"%REQ(ACCESS-CONTROL-REQUEST-METHOD):", "%REQ(ACCESS-CONTROL-REQUEST-HEADERS):", "%DURATION%",
}

// unboundedClientValue matches a request-header operator without a length (":N"): the
// client chooses those values, up to Envoy's 60 KiB header limit.
var unboundedClientValue = regexp.MustCompile(`(?i)%REQ(_WITHOUT_QUERY)?\((ORIGIN|ACCESS-CONTROL-REQUEST-[A-Z]+|:PATH|:AUTHORITY|X-ENVOY-ORIGINAL-PATH\?:PATH)\)%`)

// pathWithQuery matches the operators that log the path with its query string, which for a
// presigned URL holds the credential and the signature.
var pathWithQuery = regexp.MustCompile(`(?i)%REQ\((X-ENVOY-ORIGINAL-PATH\?)?:PATH\)|%PATH(\(WQ[^)]*\))?%|%PATH\(:`)

// checkAccessLog checks that the connection manager logs every request to standard output
// with accessLogFields, never the query string, and with the formatter extension
// REQ_WITHOUT_QUERY needs (Envoy refuses the format without it).
func checkAccessLog(t *testing.T, name string, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	for _, p := range accessLogProblems(hcm) {
		t.Errorf("%s: %s", name, p)
	}
}

func accessLogProblems(hcm *hcmv3.HttpConnectionManager) []string {
	var stdout *streamv3.StdoutAccessLog
	for _, al := range hcm.GetAccessLog() {
		var s streamv3.StdoutAccessLog
		if al.GetName() == "envoy.access_loggers.stdout" && al.GetTypedConfig().UnmarshalTo(&s) == nil {
			stdout = &s
		}
	}
	if stdout == nil {
		return []string{"no envoy.access_loggers.stdout access log on the connection manager"}
	}
	lf := stdout.GetLogFormat()
	format := lf.GetTextFormatSource().GetInlineString() // text_format is deprecated; the generator never writes it
	if js := lf.GetJsonFormat(); js != nil {
		b, err := protojson.Marshal(js)
		if err != nil {
			return []string{err.Error()}
		}
		format += string(b)
	}
	var problems []string
	for _, f := range accessLogFields {
		if !strings.Contains(format, f) {
			problems = append(problems, fmt.Sprintf("the access log lacks %s; format: %s", f, format))
		}
	}
	if m := unboundedClientValue.FindString(format); m != "" {
		problems = append(problems, fmt.Sprintf("the access log writes %s without a length (%s:N): one request could make a 60 KiB line", m, strings.TrimSuffix(m, "%")))
	}
	if m := pathWithQuery.FindString(format); m != "" {
		problems = append(problems, fmt.Sprintf("the access log logs the query string (%s): a presigned URL's signature would be logged", m))
	}
	var formatter bool
	for _, f := range lf.GetFormatters() {
		formatter = formatter || f.GetTypedConfig().MessageIs(&reqwithoutqueryv3.ReqWithoutQuery{})
	}
	if strings.Contains(format, "%REQ_WITHOUT_QUERY(") && !formatter {
		problems = append(problems, "the access log uses REQ_WITHOUT_QUERY without the envoy.formatter.req_without_query formatter")
	}
	return problems
}

// TestAccessLogCheckCatches: the access-log check refuses a bootstrap without the logger, one
// that logs the query string (in either case), one missing a field, one writing a client's
// header without a length and one without the formatter extension.
func TestAccessLogCheckCatches(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "envoy", "wasm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	good := s3Listener(t, checkBootstrap(t, "wasm.yaml", data))
	if p := accessLogProblems(good); len(p) > 0 {
		t.Fatalf("the committed bootstrap fails: %v", p)
	}
	fields := func(hcm *hcmv3.HttpConnectionManager) (*streamv3.StdoutAccessLog, func()) {
		var s streamv3.StdoutAccessLog
		if err := hcm.GetAccessLog()[0].GetTypedConfig().UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		return &s, func() {
			a, err := anypb.New(&s)
			if err != nil {
				t.Fatal(err)
			}
			hcm.GetAccessLog()[0].ConfigType = &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}
		}
	}
	for name, mutate := range map[string]func(hcm *hcmv3.HttpConnectionManager){
		"no access log": func(hcm *hcmv3.HttpConnectionManager) { hcm.AccessLog = nil },
		"path with query": func(hcm *hcmv3.HttpConnectionManager) {
			s, save := fields(hcm)
			s.GetLogFormat().GetJsonFormat().Fields["path"] = structpb.NewStringValue("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%")
			save()
		},
		"no request id": func(hcm *hcmv3.HttpConnectionManager) {
			s, save := fields(hcm)
			delete(s.GetLogFormat().GetJsonFormat().Fields, "x_amz_request_id")
			save()
		},
		"origin without a length": func(hcm *hcmv3.HttpConnectionManager) {
			s, save := fields(hcm)
			s.GetLogFormat().GetJsonFormat().Fields["origin"] = structpb.NewStringValue("%REQ(ORIGIN)%")
			save()
		},
		"lower-case path with query": func(hcm *hcmv3.HttpConnectionManager) {
			s, save := fields(hcm)
			s.GetLogFormat().GetJsonFormat().Fields["path2"] = structpb.NewStringValue("%REQ(:path):100%")
			save()
		},
		"no formatter": func(hcm *hcmv3.HttpConnectionManager) {
			s, save := fields(hcm)
			s.GetLogFormat().Formatters = nil
			save()
		},
	} {
		hcm := proto.Clone(good).(*hcmv3.HttpConnectionManager)
		mutate(hcm)
		if p := accessLogProblems(hcm); len(p) == 0 {
			t.Errorf("%s: the access-log check accepts it", name)
		}
	}
}

// firstHTTPFilter checks the filter order every s3cors bootstrap must have (s3cors first, the
// router last) and returns the first filter's config.
func firstHTTPFilter(t *testing.T, hcm *hcmv3.HttpConnectionManager) *anypb.Any {
	t.Helper()
	fs := hcm.GetHttpFilters()
	if len(fs) < 2 {
		t.Fatalf("%d HTTP filters, want s3cors and the router", len(fs))
	}
	if last := fs[len(fs)-1]; !last.GetTypedConfig().MessageIs(&routerv3.Router{}) {
		t.Errorf("last HTTP filter is %q, want the router", last.GetName())
	}
	if hcm.GetNormalizePath().GetValue() || hcm.GetMergeSlashes() || hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_KEEP_UNCHANGED {
		t.Errorf("the connection manager may rewrite object keys (normalize_path %v, merge_slashes %v, escaped slashes %v)",
			hcm.GetNormalizePath(), hcm.GetMergeSlashes(), hcm.GetPathWithEscapedSlashesAction())
	}
	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(routes) != 1 || routes[0].GetRoute().GetCluster() != "s3" || routes[0].GetRoute().GetTimeout().AsDuration() != 0 {
		t.Errorf("want one route to cluster s3 without a timeout, got %v", routes)
	}
	return fs[0].GetTypedConfig()
}

// wasmPluginConfig checks the Wasm filter's settings and returns its plugin configuration.
func wasmPluginConfig(t *testing.T, b *bootstrapv3.Bootstrap) (*wasmv3.PluginConfig, []byte) {
	t.Helper()
	var w httpwasmv3.Wasm
	if err := firstHTTPFilter(t, s3Listener(t, b)).UnmarshalTo(&w); err != nil {
		t.Fatalf("first HTTP filter is not the Wasm filter: %v", err)
	}
	pc := w.GetConfig()
	vm := pc.GetVmConfig()
	if vm.GetRuntime() != "envoy.wasm.runtime.v8" || vm.GetVmId() == "" || vm.GetCode().GetLocal().GetFilename() == "" {
		t.Errorf("vm_config %v: want vm_id, the v8 runtime and a local file", vm)
	}
	// fail_open is deprecated, so read through reflection; it must stay false all the same.
	failOpen := pc.ProtoReflect().Get(pc.ProtoReflect().Descriptor().Fields().ByName("fail_open")).Bool()
	if failOpen || pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN {
		t.Errorf("the Wasm filter fails open (fail_open %v, failure_policy %v)", failOpen, pc.GetFailurePolicy())
	}
	var sv wrapperspb.StringValue
	if err := pc.GetConfiguration().UnmarshalTo(&sv); err != nil {
		t.Fatalf("plugin configuration is not a StringValue: %v", err)
	}
	return pc, []byte(sv.GetValue())
}

// extProcFilter checks the ext_proc filter's settings and returns it.
func extProcFilter(t *testing.T, a *anypb.Any) *extprocv3.ExternalProcessor {
	t.Helper()
	var ep extprocv3.ExternalProcessor
	if err := a.UnmarshalTo(&ep); err != nil {
		t.Fatalf("filter is not ext_proc: %v", err)
	}
	pm := ep.GetProcessingMode()
	if ep.GetFailureModeAllow() || !ep.GetAllowModeOverride() || ep.GetDisableImmediateResponse() || ep.GetObservabilityMode() ||
		pm.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND || pm.GetResponseHeaderMode() != extprocv3.ProcessingMode_SEND ||
		pm.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE || pm.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE ||
		pm.GetRequestTrailerMode() != extprocv3.ProcessingMode_SKIP || pm.GetResponseTrailerMode() != extprocv3.ProcessingMode_SKIP {
		t.Errorf("ext_proc settings %v: want fail closed, mode override, headers SEND, bodies NONE, trailers SKIP", &ep)
	}
	if am := ep.GetAllowedOverrideModes(); len(am) != 1 || am[0].GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP ||
		am[0].GetRequestBodyMode() != extprocv3.ProcessingMode_NONE || am[0].GetResponseBodyMode() != extprocv3.ProcessingMode_NONE {
		t.Errorf("allowed_override_modes %v: want exactly {response_header_mode: SKIP}, the override the server sends", am)
	}
	if d := ep.GetMessageTimeout().AsDuration(); d <= 0 {
		t.Errorf("message_timeout %v", d)
	}
	return &ep
}

// loadConfig loads an embedded configuration and returns its Config, without the key order
// (which YAML conversions and Istio's Struct do not keep).
func loadConfig(t *testing.T, where string, js []byte) evaluator.Config {
	t.Helper()
	pol, err := evaluator.Load(js)
	if err != nil {
		t.Fatalf("%s: the embedded configuration does not load: %v", where, err)
	}
	c := *pol.Config()
	c.BucketOrder = nil
	return c
}

// k8sObject is a decoded Kubernetes object of any kind we generate.
type k8sObject struct {
	Kind string
	Obj  any
}

// checkK8s decodes every document strictly into its Kubernetes or Istio type and checks Istio
// objects against their CRD schema.
func checkK8s(t *testing.T, name string, data []byte) []k8sObject {
	t.Helper()
	var out []k8sObject
	for i, doc := range splitDocs(data) {
		where := fmt.Sprintf("%s document %d", name, i)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		var obj any
		istio := false
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "extensions.istio.io/v1alpha1 WasmPlugin":
			wp := &extensionsclient.WasmPlugin{TypeMeta: tm}
			checkIstio(t, where, doc, &wp.ObjectMeta, &wp.Spec, "WasmPlugin")
			obj, istio = wp, true
		case "networking.istio.io/v1alpha3 EnvoyFilter":
			ef := &networkingclient.EnvoyFilter{TypeMeta: tm}
			checkIstio(t, where, doc, &ef.ObjectMeta, &ef.Spec, "EnvoyFilter")
			obj, istio = ef, true
		default:
			t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
		}
		if !istio {
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: not a strict %s: %v", where, tm.Kind, err)
			}
		}
		if m := metaOf(obj); m.Name == "" || (tm.Kind != "Namespace" && m.Namespace == "") {
			t.Errorf("%s: %s without name or namespace", where, tm.Kind)
		}
		out = append(out, k8sObject{tm.Kind, obj})
	}
	return out
}

func metaOf(obj any) metav1.ObjectMeta {
	return reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta)
}

// checkIstio decodes an Istio object: apiVersion, kind and metadata strictly into the
// Kubernetes types, spec strictly with protojson into the istio.io/api message (the client-go
// type's own JSON decoding would ignore unknown spec fields), then the whole object against
// the CRD's OpenAPI schema.
func checkIstio(t *testing.T, where string, doc []byte, meta *metav1.ObjectMeta, spec proto.Message, kind string) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var top struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       json.RawMessage   `json:"spec"`
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	*meta = top.Metadata
	if err := strictJSON.Unmarshal(top.Spec, spec); err != nil {
		t.Fatalf("%s: spec is not a strict %s: %v", where, kind, err)
	}
	var whole any
	if err := json.Unmarshal(js, &whole); err != nil {
		t.Fatal(err)
	}
	schema := crdSchema(t, kind)
	if errs := checkSchema("", whole.(map[string]any)["spec"], schema["properties"].(map[string]any)["spec"].(map[string]any)); len(errs) > 0 {
		t.Errorf("%s: against the %s CRD schema of istio.io/api: %v", where, kind, errors.Join(errs...))
	}
}

var (
	crdOnce sync.Once
	crds    map[string]map[string]any
	crdErr  error
)

// crdSchema returns the openAPIV3Schema of an Istio kind, read from the CRDs that the
// istio.io/api module ships (kubernetes/customresourcedefinitions.gen.yaml).
func crdSchema(t *testing.T, kind string) map[string]any {
	t.Helper()
	crdOnce.Do(func() {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
		cmd.Dir = testenv.RepoRoot(t)
		dir, err := cmd.Output()
		if err != nil {
			crdErr = fmt.Errorf("locating istio.io/api: %w", err)
			return
		}
		data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "kubernetes", "customresourcedefinitions.gen.yaml"))
		if err != nil {
			crdErr = err
			return
		}
		crds = map[string]map[string]any{}
		for _, doc := range splitDocs(data) {
			var crd struct {
				Spec struct {
					Names    struct{ Kind string } `json:"names"`
					Versions []struct {
						Name    string `json:"name"`
						Storage bool   `json:"storage"`
						Schema  struct {
							OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
						} `json:"schema"`
					} `json:"versions"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(doc, &crd); err != nil {
				crdErr = err
				return
			}
			for _, v := range crd.Spec.Versions {
				if v.Storage {
					crds[crd.Spec.Names.Kind] = v.Schema.OpenAPIV3Schema
				}
			}
		}
	})
	if crdErr != nil {
		t.Fatalf("istio CRDs: %v", crdErr)
	}
	s, ok := crds[kind]
	if !ok {
		t.Fatalf("no CRD for %s in istio.io/api", kind)
	}
	return s
}

// checkSchema validates v against a Kubernetes structural schema: types, unknown fields
// (which the API server would silently prune), required, enum, pattern, lengths, bounds, and
// the oneOf/anyOf/not combinations Istio's CRDs use. CEL rules are checked by hand in the
// tests that care.
func checkSchema(path string, v any, s map[string]any) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{orRoot(path)}, args...)...))
	}
	if v == nil {
		if s["nullable"] != true {
			bad("null")
		}
		return errs
	}
	preserve := s["x-kubernetes-preserve-unknown-fields"] == true
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		addl, _ := s["additionalProperties"].(map[string]any)
		for k, val := range m {
			switch {
			case props[k] != nil:
				errs = append(errs, checkSchema(path+"."+k, val, props[k].(map[string]any))...)
			case addl != nil:
				errs = append(errs, checkSchema(path+"."+k, val, addl)...)
			case !preserve:
				bad("unknown field %q", k)
			}
		}
		if max, ok := s["maxProperties"].(float64); ok && float64(len(m)) > max {
			bad("%d properties, at most %v", len(m), max)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("%T, want an array", v)
			return errs
		}
		if max, ok := s["maxItems"].(float64); ok && float64(len(a)) > max {
			bad("%d items, at most %v", len(a), max)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range a {
				errs = append(errs, checkSchema(fmt.Sprintf("%s[%d]", path, i), it, items)...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			if f, isNum := v.(float64); !(isNum && s["x-kubernetes-int-or-string"] == true && f == math.Trunc(f)) {
				bad("%v (%T), want a string", v, v)
			}
			break
		}
		if enum, ok := s["enum"].([]any); ok && !containsAny(enum, str) {
			bad("%q is not one of %v", str, enum)
		}
		if p, ok := s["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(str) {
				bad("%q does not match %s", str, p)
			}
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len(str)) > n {
			bad("%q longer than %v", str, n)
		}
		if n, ok := s["minLength"].(float64); ok && float64(len(str)) < n {
			bad("%q shorter than %v", str, n)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			bad("%v, want an integer", v)
			break
		}
		if n, ok := s["maximum"].(float64); ok && f > n {
			bad("%v above %v", f, n)
		}
		if n, ok := s["minimum"].(float64); ok && f < n {
			bad("%v below %v", f, n)
		}
		if s["format"] == "int32" && (f > math.MaxInt32 || f < math.MinInt32) {
			bad("%v is not an int32", f)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%v, want a boolean", v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			bad("%v, want a number", v)
		}
	}
	if req, ok := s["required"].([]any); ok {
		m, _ := v.(map[string]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				bad("missing required field %q", r)
			}
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, b := range one {
			if len(checkSchema(path, v, b.(map[string]any))) == 0 {
				n++
			}
		}
		if n != 1 {
			bad("matches %d of the oneOf alternatives, want exactly 1", n)
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		n := 0
		for _, b := range anyOf {
			if len(checkSchema(path, v, b.(map[string]any))) == 0 {
				n++
			}
		}
		if n == 0 {
			bad("matches none of the anyOf alternatives")
		}
	}
	if not, ok := s["not"].(map[string]any); ok && len(checkSchema(path, v, not)) == 0 {
		bad("matches a forbidden (not) alternative")
	}
	return errs
}

func orRoot(p string) string {
	if p == "" {
		return "spec"
	}
	return "spec" + p
}

func containsAny(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSchemaCheckCatches proves the CRD check refuses what the API server would refuse even
// where protojson is content: a sha256 of the wrong form, too many targetRefs, a pruned field.
func TestSchemaCheckCatches(t *testing.T) {
	schema := crdSchema(t, "WasmPlugin")["properties"].(map[string]any)["spec"].(map[string]any)
	ok := map[string]any{"url": "oci://ghcr.io/a/b:v1", "sha256": strings.Repeat("a", 64), "phase": "AUTHN",
		"selector": map[string]any{"matchLabels": map[string]any{"istio": "ingressgateway"}}, "pluginConfig": map[string]any{"any": []any{1.0}}}
	if errs := checkSchema("", ok, schema); len(errs) > 0 {
		t.Fatalf("a valid spec fails: %v", errs)
	}
	refs := make([]any, 17)
	for i := range refs {
		refs[i] = map[string]any{"kind": "Gateway", "name": "gw"}
	}
	for name, mutate := range map[string]func(m map[string]any){
		"upper-case sha256": func(m map[string]any) { m["sha256"] = strings.Repeat("A", 64) },
		"unknown phase":     func(m map[string]any) { m["phase"] = "FIRST" },
		"pruned field":      func(m map[string]any) { m["selector"].(map[string]any)["labels"] = map[string]any{} },
		"17 targetRefs":     func(m map[string]any) { m["targetRefs"] = refs },
		"no url":            func(m map[string]any) { delete(m, "url") },
		"priority too big":  func(m map[string]any) { m["priority"] = float64(1 << 40) },
	} {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		m["selector"] = map[string]any{"matchLabels": map[string]any{"istio": "ingressgateway"}}
		mutate(m)
		if errs := checkSchema("", m, schema); len(errs) == 0 {
			t.Errorf("%s: the schema check accepts it", name)
		}
	}
}
