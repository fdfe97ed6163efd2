// Package manifest generates ready-to-apply deployment files for s3cors from an s3cors
// configuration: Envoy bootstraps for the wasm filter and for the ext_proc server, an Istio
// WasmPlugin, and the Istio EnvoyFilter plus Kubernetes objects that run the ext_proc server
// behind an ingress gateway. It is what `s3cors manifest` prints, and what the files in the
// repository's envoy/ directory are generated from, so they never drift from the code.
//
// The configuration is validated with evaluator.Load first: an invalid configuration yields
// no manifest, and the error lists every problem. Whatever the configuration holds reaches
// the output exactly: embedded as JSON text for Envoy, as YAML for Istio and Kubernetes, and
// checked to read back as the same configuration.
//
// Typical use:
//
//	out, err := manifest.Generate(manifest.EnvoyWasm, configJSON, manifest.Options{
//		Source:   "config.json",
//		Upstream: "minio.storage.svc:9000",
//	})
//
// Where it sits: under internal/, imported by cmd/s3cors. It reads configurations through
// internal/configfile and the evaluator and imports no adapter; make check fails if it pulls in
// gRPC, Prometheus or fsnotify, which every command would then link.
package manifest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
)

// Target names one kind of deployment file.
type Target string

const (
	// EnvoyWasm is an Envoy bootstrap running build/s3cors.wasm as an HTTP Wasm filter in
	// front of an S3-compatible store, with the configuration inline.
	EnvoyWasm Target = "envoy-wasm"
	// EnvoyExtProc is an Envoy bootstrap calling `s3cors extproc` through the ext_proc filter.
	EnvoyExtProc Target = "envoy-extproc"
	// IstioWasmPlugin is an Istio WasmPlugin loading the module from an OCI image into an
	// ingress gateway, with the configuration as its pluginConfig.
	IstioWasmPlugin Target = "istio-wasmplugin"
	// IstioExtProc is the ext_proc server (Namespace, ServiceAccount, ConfigMap, Deployment,
	// PodDisruptionBudget, Service) and the EnvoyFilter that puts it in an ingress gateway.
	IstioExtProc Target = "istio-extproc"
	// EnvoyControlPlane is an Envoy bootstrap whose Wasm filter takes its configuration from
	// `s3cors controlplane` by ECDS, and whose bucket ?cors requests go to that control plane.
	EnvoyControlPlane Target = "envoy-controlplane"
	// IstioControlPlane is the control plane (Namespace, ServiceAccount, ConfigMap,
	// PersistentVolumeClaim, Deployment, Service) and the EnvoyFilter that puts the Wasm
	// filter, configured by it over ECDS, into an ingress gateway.
	IstioControlPlane Target = "istio-controlplane"
)

// Targets lists every target, in the order the CLI documents them.
func Targets() []Target {
	return []Target{EnvoyWasm, EnvoyExtProc, IstioWasmPlugin, IstioExtProc, EnvoyControlPlane, IstioControlPlane}
}

// Defaults of Options, also named in the CLI's help.
const (
	DefaultUpstream         = "minio:9000"
	DefaultListenPort       = 8080
	DefaultAdminPort        = 9901
	DefaultWasmPath         = "/etc/envoy/s3cors.wasm"
	DefaultExtProc          = "127.0.0.1:50051"
	DefaultExtProcPort      = 50051
	DefaultMetricsPort      = 9090
	DefaultMessageTimeout   = 200 * time.Millisecond
	DefaultWasmImage        = "registry.example.com/s3cors/s3cors-wasm:v0.1.0"
	DefaultServerImage      = "registry.example.com/s3cors/s3cors:v0.1.0"
	DefaultGatewayNamespace = "istio-system"
	DefaultNamespace        = "s3cors"
	DefaultReplicas         = 2
	DefaultFailStrategy     = "FAIL_CLOSE"
	DefaultControlPlane     = "127.0.0.1:8090"  // `s3cors controlplane`'s default --listen
	DefaultControlPlaneXDS  = "127.0.0.1:18000" // and --xds-listen
)

// DefaultGatewaySelector selects the ingress gateway of Istio's default installation.
func DefaultGatewaySelector() map[string]string { return map[string]string{"istio": "ingressgateway"} }

// Options adjust the generated files. The zero value gives the documented defaults; each field
// says which targets read it. Values are checked: a bad one is an error naming the option, as
// the `s3cors manifest` flag it is (--replicas), and the value, never a silently corrected
// file. An option set for a target that does not read it is an error too.
type Options struct {
	// Source names the configuration file in the generated header, so the file says how to
	// regenerate it. Default "config.json".
	Source string

	// Upstream is the S3-compatible store as host:port (envoy-*). Default "minio:9000".
	Upstream string
	// UpstreamTLS makes Envoy speak TLS to the store, with the host as SNI (envoy-*).
	UpstreamTLS bool
	// ListenPort is the port Envoy serves S3 on (envoy-*). Default 8080.
	ListenPort int
	// AdminPort is Envoy's admin port on 127.0.0.1, where /stats lives (envoy-*). Default 9901.
	AdminPort int
	// Hosts are the path-style hosts Envoy routes to the store besides the configuration's
	// "<suffix>" and "*.<suffix>" (envoy-*): DNS names or IP addresses, without a port (any
	// port matches), e.g. "s3.example.com". Any other Host is answered 404 by Envoy. Default
	// none: path-style requests reach the store only through a suffix host.
	Hosts []string
	// WasmPath is where Envoy reads the module (envoy-wasm). Default "/etc/envoy/s3cors.wasm".
	// For the *-controlplane targets, the default configuration's module, which must be the
	// control plane's --module: the file on the Envoys (the gateway's pods for Istio).
	WasmPath string
	// ExtProc is the ext_proc server as host:port (envoy-extproc). Default "127.0.0.1:50051".
	ExtProc string
	// ControlPlane is the control plane's S3 API as host:port, where Envoy sends a bucket's
	// ?cors requests (envoy-controlplane). Default "127.0.0.1:8090".
	ControlPlane string
	// ControlPlaneXDS is the control plane's ECDS (gRPC) as host:port (envoy-controlplane).
	// Default "127.0.0.1:18000".
	ControlPlaneXDS string
	// MessageTimeout bounds Envoy's wait for each ext_proc answer; past it the request fails
	// with 504 (envoy-extproc, istio-extproc). Default 200ms, Envoy's own default.
	MessageTimeout time.Duration
	// PolicyImage says whether the wasm targets carry the configuration as a compiled policy
	// image (`s3cors compile`) instead of JSON: "on", "off", or "auto" (the default), which
	// chooses the image when the configuration's JSON is over PolicyImageThreshold. Every VM
	// then uses the image in place instead of parsing the JSON (envoy-wasm: a BytesValue;
	// istio-wasmplugin: {"s3corsImage": "<base64>"} as pluginConfig).
	PolicyImage string

	// Image is, for istio-wasmplugin, the OCI image of the module (`s3cors oci push` prints
	// it), optionally pinned as REF@sha256:HEX; default
	// "registry.example.com/s3cors/s3cors-wasm:v0.1.0". For istio-extproc it is the container
	// image of the s3cors binary; default "registry.example.com/s3cors/s3cors:v0.1.0".
	Image string
	// WasmSHA256 is the image's manifest digest in hex, which Istio checks after pulling
	// (istio-wasmplugin). Default: taken from Image when pinned by digest, else none.
	WasmSHA256 string
	// FailStrategy is the WasmPlugin failStrategy: FAIL_CLOSE (default) or FAIL_RELOAD
	// (Istio >= 1.27). FAIL_OPEN is refused: see docs/deploy.md.
	FailStrategy string

	// GatewayNamespace is the ingress gateway's namespace, where the WasmPlugin or the
	// EnvoyFilter goes (istio-*). Default "istio-system".
	GatewayNamespace string
	// GatewaySelector selects the gateway's pods by label (istio-*). Default
	// istio=ingressgateway. Ignored when GatewayName is set.
	GatewaySelector map[string]string
	// GatewayName, if set, attaches the WasmPlugin to that Kubernetes Gateway
	// (gateway.networking.k8s.io) through targetRefs instead of a selector (istio-wasmplugin).
	GatewayName string
	// Namespace is where the ext_proc server runs (istio-extproc). Default "s3cors".
	Namespace string
	// Replicas of the ext_proc server (istio-extproc). Default 2.
	Replicas int

	// Given names the options set on purpose, by their flag names ("replicas", "image",
	// "gateway-selector"...), as `s3cors manifest` fills it from the flags on its command
	// line. An option given is checked even when its value is the zero one: given to a
	// target that does not use it, it is refused as any other value would be; given as zero
	// or empty to one that does, it is refused ("--replicas 0: want 1 to 100") rather than
	// read as "use the default". Default none: a zero field is an option not set.
	Given []string
}

// PolicyImageThreshold is the size of a configuration's JSON above which PolicyImage "auto"
// embeds a policy image: about 600 buckets of three rules, where parsing the JSON starts to
// cost each VM tens of milliseconds on every push (BENCHMARKS.md, "Policy images").
const PolicyImageThreshold = 256 << 10

// Generate returns the deployment file for target, built from the s3cors configuration cfg
// (JSON, or YAML with the same keys, told apart by Options.Source's extension or the content,
// as `s3cors validate` does). It refuses an invalid configuration with an error that
// wraps the evaluator's *evaluator.ValidationError, and bad options with an error naming each.
func Generate(target Target, cfg []byte, opts Options) ([]byte, error) {
	if !slices.Contains(Targets(), target) {
		return nil, fmt.Errorf("manifest: unknown target %q (want one of %s)", target, targetList())
	}
	spec := specs[target]
	d, err := prepare(target, spec, opts)
	if err != nil {
		return nil, err
	}
	js, err := configJSON(d.sourceOpt, cfg)
	if err != nil {
		return nil, err
	}
	pol, err := evaluator.Load(js)
	if err != nil {
		return nil, fmt.Errorf("manifest: refusing to generate from an invalid configuration: %w", err)
	}
	if spec.route != nil {
		if err := spec.route(d, pol.Config(), opts.Hosts); err != nil {
			return nil, err
		}
	}
	var img []byte
	if policyImage(target, opts.PolicyImage, len(js)) {
		if img, err = evaluator.CompileImage(pol.Config()); err != nil {
			return nil, fmt.Errorf("manifest: compiling the policy image: %w", err)
		}
		d.PluginImage = base64.StdEncoding.EncodeToString(img)
	}
	// The image, when there is one, replaces the JSON; nothing else of the file changes.
	if err := spec.fill(d, js, pol.Config()); err != nil {
		return nil, err
	}
	d.Header = header(target, spec, d)
	var out bytes.Buffer
	if err := templates.ExecuteTemplate(&out, string(target)+".yaml.tmpl", d); err != nil {
		return nil, fmt.Errorf("manifest: rendering %s: %w", target, err)
	}
	// Every manifest must at least be well-formed YAML; the tests check each against the
	// real Envoy, Istio and Kubernetes types.
	for i, doc := range splitDocs(out.Bytes()) {
		if _, err := yaml.YAMLToJSON(doc); err != nil {
			return nil, fmt.Errorf("manifest: generated %s document %d is not YAML (a bug): %w", target, i, err)
		}
	}
	if err := embeddedConfigReadsBack(target, out.Bytes(), js, img); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// targetSpec is what one target adds to the steps Generate takes for every target.
type targetSpec struct {
	// prepare checks the target's own options and fills d from them, calling bad for each
	// bad one; the order of its steps is the order of the options in the header's command.
	prepare func(d *data, o Options, bad badFunc)
	// route, if set, fills the store's virtual host domains (envoy-*).
	route func(d *data, cfg *evaluator.Config, hosts []string) error
	// fill puts the configuration (js, or the policy image already in d.PluginImage) into d
	// as the target's file carries it.
	fill func(d *data, js []byte, cfg *evaluator.Config) error
	// about and usage write the header's lines: what the file is, and how to use it.
	about, usage func(w func(string), d *data)
}

// specs holds every target's own steps; each target's file (envoy.go, istio.go) defines them.
var specs = map[Target]targetSpec{
	EnvoyWasm:       envoyWasm,
	EnvoyExtProc:    envoyExtProc,
	IstioWasmPlugin: istioWasmPlugin,
	IstioExtProc:    istioExtProc,

	EnvoyControlPlane: envoyControlPlane,
	IstioControlPlane: istioControlPlane,
}

// badFunc records one bad option, as fmt.Errorf would word it.
type badFunc func(format string, args ...any)

// policyImage reports whether target carries the configuration (js bytes of JSON) as a policy
// image under the PolicyImage option mode (checked by prepare).
func policyImage(target Target, mode string, js int) bool {
	if target != EnvoyWasm && target != IstioWasmPlugin {
		return false
	}
	return mode == "on" || (mode == "" || mode == "auto") && js > PolicyImageThreshold
}

func targetList() string {
	var names []string
	for _, t := range Targets() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// configJSON returns the configuration as JSON, read exactly as `s3cors validate` and the
// ext_proc server read it (configfile.JSON): JSON unchanged, YAML (by the source's extension
// or the content) as YAML 1.2 with key order and bucket names kept as written. A blank or
// comment-only file comes back blank, for the evaluator to call empty in the words every
// other surface uses.
func configJSON(source string, cfg []byte) ([]byte, error) {
	js, err := configfile.JSON(source, cfg)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return bytes.TrimSpace(js), nil
}

// data is what the templates see. Every string from Options is already checked to be a plain
// YAML scalar or is quoted by the q function.
type data struct {
	Header string

	ListenPort, AdminPort  int
	Domains                string // the store's virtual host domains, a YAML flow sequence
	FilterName             string // s3cors's HTTP filter in an Envoy bootstrap
	UpstreamHost           string
	UpstreamPort           int
	UpstreamTLS            bool
	UpstreamIsIP           bool
	WasmPath               string
	PluginJSON             string
	PluginImage            string // base64 of the policy image, when the wasm targets carry one
	ExtProcHost            string
	ExtProcPort            int
	ExtProcCluster         string
	MessageTimeout         string
	MetricsPort            int
	HealthService          string
	GatewayNamespace       string
	Namespace              string
	Selector               []labelKV
	GatewayName            string
	URL, SHA256            string
	FailStrategy           string
	PluginYAML, ConfigYAML string
	Image                  string
	Replicas               int
	APICluster             string // the control plane's S3 API cluster, for the ?cors route
	APIHost                string
	APIPort                int
	XDSCluster             string // the control plane's ECDS cluster
	XDSHost                string
	XDSPort                int
	StateSize              string // the control plane's state volume (istio-controlplane)

	sourceOpt   string   // Options.Source or its default
	suffixHosts []string // "<suffix>", "*.<suffix>" of each virtual-host suffix (istio-*, for the header)
	regenerate  []string // the options given, as shell words (flagArg), for the header
}

type labelKV struct{ Key, Value string }
