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
package manifest

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
	"github.com/s3cors/s3cors/internal/shell"
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
)

// Targets lists every target, in the order the CLI documents them.
func Targets() []Target { return []Target{EnvoyWasm, EnvoyExtProc, IstioWasmPlugin, IstioExtProc} }

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
	WasmPath string
	// ExtProc is the ext_proc server as host:port (envoy-extproc). Default "127.0.0.1:50051".
	ExtProc string
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
	d, err := prepare(target, opts)
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
	if target == EnvoyWasm || target == EnvoyExtProc {
		if d.Domains, err = storeDomains(pol.Config(), opts.Hosts); err != nil {
			return nil, err
		}
		d.FilterName = "envoy.filters.http.wasm"
		if target == EnvoyExtProc {
			d.FilterName = "envoy.filters.http.ext_proc"
		}
	}
	var img []byte
	if policyImage(target, opts.PolicyImage, len(js)) {
		if img, err = evaluator.CompileImage(pol.Config()); err != nil {
			return nil, fmt.Errorf("manifest: compiling the policy image: %w", err)
		}
		d.PluginImage = base64.StdEncoding.EncodeToString(img)
	}
	switch {
	case img != nil:
		// The image replaces the JSON; nothing else of the file changes.
	case target == EnvoyWasm:
		var buf bytes.Buffer
		if err := json.Indent(&buf, js, "", "  "); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		d.PluginJSON = indentLines(strings.TrimRight(yamlSafeJSON(buf.String()), "\n"), strings.Repeat(" ", 20))
	case target == IstioWasmPlugin:
		if err := survivesStruct(js, pol.Config()); err != nil {
			return nil, err
		}
		if d.PluginYAML, err = toYAML(js, 4); err != nil {
			return nil, err
		}
		d.PluginYAML = strings.TrimSuffix(d.PluginYAML, "\n")
	case target == IstioExtProc:
		if d.ConfigYAML, err = toYAML(js, 4); err != nil {
			return nil, err
		}
		d.ConfigYAML = strings.TrimSuffix(d.ConfigYAML, "\n")
	}
	if target == IstioWasmPlugin || target == IstioExtProc {
		d.suffixHosts = suffixDomains(pol.Config())
	}
	d.Header = header(target, d)
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

// yamlSafeJSON escapes, inside JSON strings, the characters a YAML literal block would not
// carry as they are (line separators, byte-order marks, other non-printables). Outside strings
// JSON has only ASCII, so every such character is inside one, where \uXXXX means the same.
func yamlSafeJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || (printable(r) && r != 0x85 && r != 0x2028 && r != 0x2029 && r != 0xFEFF) {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\u%04X`, r)
	}
	return b.String()
}

// policyImage reports whether target carries the configuration (js bytes of JSON) as a policy
// image under the PolicyImage option mode (checked by prepare).
func policyImage(target Target, mode string, js int) bool {
	if target != EnvoyWasm && target != IstioWasmPlugin {
		return false
	}
	return mode == "on" || (mode == "" || mode == "auto") && js > PolicyImageThreshold
}

// embeddedConfigReadsBack checks that the configuration inside a generated file, read as its
// consumer reads the file, is the configuration it was generated from: the envoy-wasm plugin
// configuration (JSON text), the WasmPlugin's pluginConfig (a YAML mapping) and the ext_proc
// ConfigMap's config.yaml (YAML text, read as the server reads it); or, when img is not nil,
// the policy image (base64 in either wasm target) is img byte for byte.
func embeddedConfigReadsBack(target Target, out, js, img []byte) error {
	docs := splitDocs(out)
	if img != nil {
		var doc any
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v := dig(doc, "spec", "pluginConfig", "s3corsImage")
		if target == EnvoyWasm {
			v = dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
				"http_filters", 0, "typed_config", "config", "configuration", "value")
		}
		s, _ := v.(string)
		if got, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(got, img) {
			return fmt.Errorf("manifest: the policy image embedded in %s does not read back (a bug)", target)
		}
		return nil
	}
	var doc any
	var got []byte
	switch target {
	case EnvoyWasm:
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v, _ := dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
			"http_filters", 0, "typed_config", "config", "configuration", "value").(string)
		got = []byte(v)
	case IstioWasmPlugin:
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v := dig(doc, "spec", "pluginConfig")
		var err error
		if got, err = json.Marshal(v); err != nil || v == nil {
			return fmt.Errorf("manifest: generated %s has no pluginConfig (a bug)", target)
		}
	case IstioExtProc:
		for _, d := range docs {
			var m any
			if err := yaml.Unmarshal(d, &m); err == nil && dig(m, "kind") == "ConfigMap" {
				doc = m
			}
		}
		v, _ := dig(doc, "data", "config.yaml").(string)
		var err error
		if got, err = configfile.JSON("config.yaml", []byte(v)); err != nil {
			return fmt.Errorf("manifest: generated %s: the ConfigMap's config.yaml: %w", target, err)
		}
	default:
		return nil // envoy-extproc carries no configuration
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("manifest: the configuration embedded in %s is not readable (a bug): %w", target, err)
	}
	if err := json.Unmarshal(js, &w); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("manifest: the configuration embedded in %s does not read back as the configuration (a bug)", target)
	}
	return nil
}

// splitDocs splits a multi-document YAML file at its "---" lines. Each document keeps the line
// break before the separator, which belongs to it (a final literal block keeps its newline).
func splitDocs(b []byte) [][]byte {
	docs := bytes.Split(b, []byte("\n---\n"))
	for i := range docs[:len(docs)-1] {
		docs[i] = append(docs[i], '\n')
	}
	return docs
}

// dig follows map keys and list indexes into a decoded YAML or JSON document.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
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

// survivesStruct checks that the configuration reaches the module unchanged through Istio,
// which holds pluginConfig as a google.protobuf.Struct (every number a float64, keys
// unordered) and hands the module its JSON rendering.
func survivesStruct(js []byte, want *evaluator.Config) error {
	var s structpb.Struct
	if err := protojson.Unmarshal(js, &s); err != nil {
		return fmt.Errorf("manifest: the configuration cannot be an Istio pluginConfig: %w", err)
	}
	back, err := protojson.Marshal(&s)
	if err != nil {
		return fmt.Errorf("manifest: the configuration cannot be an Istio pluginConfig: %w", err)
	}
	pol, err := evaluator.Load(back)
	if err != nil {
		return fmt.Errorf("manifest: the configuration does not survive Istio's pluginConfig conversion (numbers become float64): %w", err)
	}
	got := *pol.Config()
	exp := *want
	got.BucketOrder, exp.BucketOrder = nil, nil // a Struct does not keep key order
	if !reflect.DeepEqual(got, exp) {
		return errors.New("manifest: the configuration does not survive Istio's pluginConfig conversion (numbers become float64): check large numbers such as MaxAgeSeconds")
	}
	return nil
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

	sourceOpt   string   // Options.Source or its default
	suffixHosts []string // "<suffix>", "*.<suffix>" of each virtual-host suffix (istio-*, for the header)
	regenerate  []string // the options given, as shell words (flagArg), for the header
}

type labelKV struct{ Key, Value string }

var (
	dnsNameRe    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	k8sNameRe    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelValueRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$`)
	pathRe       = regexp.MustCompile(`^/[A-Za-z0-9_./-]+$`)
	hexSHA256Re  = regexp.MustCompile(`^[a-f0-9]{64}$`)
	imageRe      = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._/-]*[a-z0-9])?)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
)

// prepare checks the options that matter for target, fills in defaults and returns the
// template data. Every bad option is reported at once.
func prepare(target Target, o Options) (*data, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d := &data{HealthService: "envoy.service.ext_proc.v3.ExternalProcessor", MetricsPort: DefaultMetricsPort}

	d.sourceOpt = o.Source
	if d.sourceOpt == "" {
		d.sourceOpt = "config.json"
	}
	if strings.ContainsAny(d.sourceOpt, "\n\r") {
		bad("--config %q: must be one line (the header names it)", d.sourceOpt)
	}
	envoy := target == EnvoyWasm || target == EnvoyExtProc
	istio := target == IstioWasmPlugin || target == IstioExtProc

	// Whether an option applies to target is judged here, before any of its values: an option
	// the target does not read is refused whatever its value, zero included, and one it reads
	// is refused when given as zero. The per-target checks below then see only options that
	// apply.
	given := map[string]bool{}
	for _, name := range o.Given {
		given[name] = true
	}
	for _, opt := range options(o) {
		if !given[opt.name] && !opt.set {
			continue
		}
		delete(given, opt.name)
		switch {
		case !slices.Contains(opt.targets, target):
			bad("%s: %s", flagValue(opt.name, opt.shown), opt.notUsed)
		case !opt.set && opt.want != nil:
			bad("%s: %s", flagValue(opt.name, opt.shown), opt.want(target))
		}
	}
	unknown := make([]string, 0, len(given))
	for name := range given {
		unknown = append(unknown, name)
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		bad("--%s: not an option of s3cors manifest", name)
	}

	if (target == EnvoyWasm || target == IstioWasmPlugin) && o.PolicyImage != "" {
		switch o.PolicyImage {
		case "auto", "on", "off":
			d.regenerate = append(d.regenerate, flagArg("policy-image", o.PolicyImage))
		default:
			bad("--policy-image %q: want auto, on or off", o.PolicyImage)
		}
	}

	if envoy {
		up := cmpOr(o.Upstream, DefaultUpstream)
		if o.Upstream != "" {
			d.regenerate = append(d.regenerate, flagArg("upstream", o.Upstream))
		}
		if h, p, err := hostPort(up); err != nil {
			bad("--upstream %q: %v", up, err)
		} else {
			d.UpstreamHost, d.UpstreamPort = h, p
			d.UpstreamIsIP = net.ParseIP(h) != nil
		}
		d.UpstreamTLS = o.UpstreamTLS
		if o.UpstreamTLS {
			d.regenerate = append(d.regenerate, "--upstream-tls")
		}
		for _, h := range o.Hosts {
			d.regenerate = append(d.regenerate, flagArg("host", h))
			if routeHost(h) == "" {
				bad("--host %q: want a DNS name or an IP address, without a port (any port matches)", h)
			}
		}
		d.ListenPort = portOr(o.ListenPort, DefaultListenPort, "listen-port", &d.regenerate, bad)
		d.AdminPort = portOr(o.AdminPort, DefaultAdminPort, "admin-port", &d.regenerate, bad)
		if d.ListenPort == d.AdminPort && d.ListenPort != 0 {
			bad("--listen-port %d: the admin port uses it too", d.ListenPort)
		}
	}
	if target == EnvoyWasm {
		d.WasmPath = cmpOr(o.WasmPath, DefaultWasmPath)
		if o.WasmPath != "" {
			d.regenerate = append(d.regenerate, flagArg("wasm-path", o.WasmPath))
		}
		if !pathRe.MatchString(d.WasmPath) || strings.Contains(d.WasmPath, "..") {
			bad("--wasm-path %q: want an absolute file path of letters, digits, '.', '_', '-' and '/'", d.WasmPath)
		}
	}
	if target == EnvoyExtProc {
		ep := cmpOr(o.ExtProc, DefaultExtProc)
		if o.ExtProc != "" {
			d.regenerate = append(d.regenerate, flagArg("extproc", o.ExtProc))
		}
		if h, p, err := hostPort(ep); err != nil {
			bad("--extproc %q: %v", ep, err)
		} else {
			d.ExtProcHost, d.ExtProcPort = h, p
		}
		d.ExtProcCluster = "s3cors_extproc"
	}
	if target == EnvoyExtProc || target == IstioExtProc {
		mt := o.MessageTimeout
		if mt == 0 {
			mt = DefaultMessageTimeout
		} else {
			d.regenerate = append(d.regenerate, flagArg("message-timeout", mt.String()))
		}
		if mt < time.Millisecond || mt > 10*time.Second || mt%time.Millisecond != 0 {
			bad("--message-timeout %q: want whole milliseconds between 1ms and 10s", mt)
		}
		d.MessageTimeout = strconv.FormatFloat(mt.Seconds(), 'f', -1, 64) + "s"
	}

	if istio {
		d.GatewayNamespace = cmpOr(o.GatewayNamespace, DefaultGatewayNamespace)
		if o.GatewayNamespace != "" {
			d.regenerate = append(d.regenerate, flagArg("gateway-namespace", o.GatewayNamespace))
		}
		if !k8sNameRe.MatchString(d.GatewayNamespace) {
			bad("--gateway-namespace %q: not a Kubernetes namespace name", d.GatewayNamespace)
		}
		for _, k := range sortedKeys(o.GatewaySelector) {
			if !labelKeyRe.MatchString(k) {
				bad("--gateway-selector: label key %q is not a Kubernetes label key", k)
			}
			if !labelValueRe.MatchString(o.GatewaySelector[k]) {
				bad("--gateway-selector: label %s value %q is not a Kubernetes label value", k, o.GatewaySelector[k])
			}
		}
		if o.GatewayName != "" {
			if !k8sNameRe.MatchString(o.GatewayName) {
				bad("--gateway-name %q: not a Kubernetes object name", o.GatewayName)
			}
			if len(o.GatewaySelector) > 0 {
				bad("--gateway-selector: give either a selector or gateway-name, not both")
			}
			d.GatewayName = o.GatewayName
			d.regenerate = append(d.regenerate, flagArg("gateway-name", o.GatewayName))
		} else {
			sel := o.GatewaySelector
			if len(sel) == 0 {
				sel = DefaultGatewaySelector()
			} else {
				var parts []string
				for _, k := range sortedKeys(sel) {
					parts = append(parts, k+"="+sel[k])
				}
				d.regenerate = append(d.regenerate, flagArg("gateway-selector", strings.Join(parts, ",")))
			}
			for _, k := range sortedKeys(sel) {
				d.Selector = append(d.Selector, labelKV{k, sel[k]})
			}
		}
	}

	switch target {
	case IstioWasmPlugin:
		img := cmpOr(o.Image, DefaultWasmImage)
		if o.Image != "" {
			d.regenerate = append(d.regenerate, flagArg("image", o.Image))
		}
		img = strings.TrimPrefix(img, "oci://")
		if !imageRe.MatchString(img) {
			bad("--image %q: want an OCI reference such as %s (optionally @sha256:<64 hex>)", img, exampleWasmImage)
		}
		d.URL = "oci://" + img
		d.SHA256 = o.WasmSHA256
		if o.WasmSHA256 != "" {
			d.regenerate = append(d.regenerate, flagArg("wasm-sha256", o.WasmSHA256))
			if !hexSHA256Re.MatchString(o.WasmSHA256) {
				bad("--wasm-sha256 %q: want 64 lower-case hex digits (the image manifest digest)", o.WasmSHA256)
			}
		}
		if _, pinned, ok := strings.Cut(img, "@sha256:"); ok {
			if d.SHA256 == "" {
				d.SHA256 = pinned
			} else if d.SHA256 != pinned {
				bad("--wasm-sha256 %q: the image is pinned to sha256:%s; Istio requires them to agree", d.SHA256, pinned)
			}
		}
		d.FailStrategy = cmpOr(o.FailStrategy, DefaultFailStrategy)
		if o.FailStrategy != "" {
			d.regenerate = append(d.regenerate, flagArg("fail-strategy", o.FailStrategy))
		}
		switch d.FailStrategy {
		case "FAIL_CLOSE", "FAIL_RELOAD":
		case "FAIL_OPEN":
			bad("--fail-strategy %q: refused: a failed filter would let preflights and responses through unchecked, to a store that may reflect any origin", d.FailStrategy)
		default:
			bad("--fail-strategy %q: want FAIL_CLOSE or FAIL_RELOAD", d.FailStrategy)
		}
	case IstioExtProc:
		d.Image = cmpOr(o.Image, DefaultServerImage)
		if o.Image != "" {
			d.regenerate = append(d.regenerate, flagArg("image", o.Image))
		}
		if !imageRe.MatchString(d.Image) {
			bad("--image %q: want a container image reference such as %s", d.Image, exampleServerImage)
		}
	}

	if target == IstioExtProc {
		d.Namespace = cmpOr(o.Namespace, DefaultNamespace)
		if o.Namespace != "" {
			d.regenerate = append(d.regenerate, flagArg("namespace", o.Namespace))
		}
		if !k8sNameRe.MatchString(d.Namespace) {
			bad("--namespace %q: not a Kubernetes namespace name", d.Namespace)
		}
		d.Replicas = o.Replicas
		if d.Replicas == 0 {
			d.Replicas = DefaultReplicas
		} else {
			d.regenerate = append(d.regenerate, flagArg("replicas", strconv.Itoa(o.Replicas)))
		}
		if d.Replicas < 1 || d.Replicas > 100 {
			bad("--replicas %d: want 1 to 100", o.Replicas)
		}
		d.ExtProcPort = DefaultExtProcPort
		d.ExtProcCluster = fmt.Sprintf("outbound|%d||s3cors-extproc.%s.svc.cluster.local", d.ExtProcPort, d.Namespace)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("manifest: bad options for %s: %w", target, errors.Join(errs...))
	}
	return d, nil
}

// Example images the messages suggest, one per target that pulls an image.
const (
	exampleWasmImage   = "ghcr.io/acme/s3cors-wasm:v1.2.0"
	exampleServerImage = "ghcr.io/acme/s3cors:v1.2.0"
)

// option is one field of Options as the applicability check sees it.
type option struct {
	name    string   // its flag name
	set     bool     // not the zero value
	shown   string   // the value as a message shows it; "" for a bool
	targets []Target // the targets that read it
	notUsed string   // why the others do not, for an option given to one of them
	// want says what a value looks like, for the option given as zero to a target that
	// reads it; nil when zero is a value like any other (a bool).
	want func(Target) string
}

// options lists every option of o, with the targets that read it.
func options(o Options) []option {
	envoy := []Target{EnvoyWasm, EnvoyExtProc}
	istio := []Target{IstioWasmPlugin, IstioExtProc}
	const notIstio = "only the envoy-* targets use it; Istio's gateway routes to your store"
	want := func(s string) func(Target) string { return func(Target) string { return s } }
	port := want("want a TCP port, 1 to 65535")
	namespace := want("want a Kubernetes namespace name")
	var selector []string
	for _, k := range sortedKeys(o.GatewaySelector) {
		selector = append(selector, k+"="+o.GatewaySelector[k])
	}
	return []option{
		{"upstream", o.Upstream != "", strconv.Quote(o.Upstream), envoy, notIstio,
			want("want host:port of the store, e.g. minio.storage:9000")},
		{"upstream-tls", o.UpstreamTLS, boolShown(o.UpstreamTLS), envoy, notIstio, nil},
		{"host", len(o.Hosts) > 0, strconv.Quote(strings.Join(o.Hosts, ",")), envoy,
			"only the envoy-* targets route by host; list the hosts in your Istio Gateway and VirtualService (docs/deploy.md)",
			want("want a DNS name or an IP address")},
		{"listen-port", o.ListenPort != 0, strconv.Itoa(o.ListenPort), envoy, notIstio, port},
		{"admin-port", o.AdminPort != 0, strconv.Itoa(o.AdminPort), envoy, notIstio, port},
		{"wasm-path", o.WasmPath != "", strconv.Quote(o.WasmPath), []Target{EnvoyWasm},
			"only the envoy-wasm target loads a module from a file",
			want("want an absolute file path, e.g. " + DefaultWasmPath)},
		{"extproc", o.ExtProc != "", strconv.Quote(o.ExtProc), []Target{EnvoyExtProc},
			"only the envoy-extproc target calls a server at an address of your choice (istio-extproc deploys one)",
			want("want host:port of the ext_proc server, e.g. " + DefaultExtProc)},
		{"message-timeout", o.MessageTimeout != 0, strconv.Quote(o.MessageTimeout.String()), []Target{EnvoyExtProc, IstioExtProc},
			"only the ext_proc targets use it",
			want("want whole milliseconds between 1ms and 10s")},
		{"image", o.Image != "", strconv.Quote(o.Image), istio, "only the istio-* targets pull images",
			func(t Target) string {
				if t == IstioWasmPlugin {
					return "want the OCI image of the module (`s3cors oci push` prints it), e.g. " + exampleWasmImage
				}
				return "want the container image of the s3cors binary, e.g. " + exampleServerImage
			}},
		{"wasm-sha256", o.WasmSHA256 != "", strconv.Quote(o.WasmSHA256), []Target{IstioWasmPlugin},
			"only the istio-wasmplugin target pulls the module by digest",
			want("want 64 lower-case hex digits (the image manifest digest)")},
		{"fail-strategy", o.FailStrategy != "", strconv.Quote(o.FailStrategy), []Target{IstioWasmPlugin},
			"only the istio-wasmplugin target has one (the others fail closed)",
			want("want FAIL_CLOSE or FAIL_RELOAD")},
		{"gateway-namespace", o.GatewayNamespace != "", strconv.Quote(o.GatewayNamespace), istio,
			"only the istio-* targets use it", namespace},
		{"gateway-selector", len(o.GatewaySelector) > 0, strconv.Quote(strings.Join(selector, ",")), istio,
			"only the istio-* targets use it", want("want key=value,...")},
		{"gateway-name", o.GatewayName != "", strconv.Quote(o.GatewayName), []Target{IstioWasmPlugin},
			"only the istio-wasmplugin target attaches to a Kubernetes Gateway by targetRefs (istio-extproc selects the gateway with --gateway-selector)",
			want("want the name of a Kubernetes Gateway")},
		{"namespace", o.Namespace != "", strconv.Quote(o.Namespace), []Target{IstioExtProc},
			"only the istio-extproc target deploys a server (the WasmPlugin goes to --gateway-namespace)", namespace},
		{"replicas", o.Replicas != 0, strconv.Itoa(o.Replicas), []Target{IstioExtProc},
			"only the istio-extproc target deploys a server", want("want 1 to 100")},
		{"policy-image", o.PolicyImage != "", strconv.Quote(o.PolicyImage), []Target{EnvoyWasm, IstioWasmPlugin},
			"only the wasm targets carry a policy image (the ext_proc server reads JSON or YAML)", want("want auto, on or off")},
	}
}

// flagValue is an option as a message names it: "--replicas 3"; for a bool, "--upstream-tls"
// or "--upstream-tls=false" (boolShown).
func flagValue(name, shown string) string {
	if shown == "" || shown[0] == '=' {
		return "--" + name + shown
	}
	return "--" + name + " " + shown
}

// boolShown is how flagValue shows a bool option's value: nothing for true, as it is
// usually written, "=false" for false, which can only have been written out.
func boolShown(v bool) string {
	if v {
		return ""
	}
	return "=false"
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func portOr(v, def int, name string, regen *[]string, bad func(string, ...any)) int {
	if v == 0 {
		return def
	}
	*regen = append(*regen, flagArg(name, strconv.Itoa(v)))
	if v < 1 || v > 65535 {
		bad("--%s %d: not a TCP port", name, v)
	}
	return v
}

// flagArg is the option --name value as a shell would need it typed, so the header's
// command can be pasted as it is.
func flagArg(name, value string) string { return "--" + name + " " + shell.Quote(value) }

func hostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("want host:port")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a TCP port", p)
	}
	if ip := net.ParseIP(h); ip == nil && !dnsNameRe.MatchString(h) {
		return "", 0, fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
	}
	return h, port, nil
}

// routeHost is h as an Envoy virtual host domain (lower case, an IPv6 address in brackets), or
// "" when h is not a DNS name or IP address without a port.
func routeHost(h string) string {
	bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if ip := net.ParseIP(bare); ip != nil {
		if ip.To4() == nil {
			return "[" + ip.String() + "]"
		}
		return ip.String()
	}
	if !dnsNameRe.MatchString(h) {
		return ""
	}
	return strings.ToLower(h)
}

// storeDomains lists the domains of the virtual host that routes to the store: "<suffix>" and
// "*.<suffix>" for each of the configuration's virtualHostSuffixes, then the path-style hosts,
// each once, as a YAML flow sequence. Envoy matches them case-insensitively; the route
// configuration ignores the port. A name with a trailing dot matches none: Envoy answers it
// 404, the fail-safe side of a Host the store may read differently.
func storeDomains(cfg *evaluator.Config, hosts []string) (string, error) {
	if len(hosts) > 0 && !cfg.Addressing.PathStyle {
		return "", fmt.Errorf("manifest: --host %q: the configuration turns path style off (addressing.pathStyle false), so no request names its bucket in the path", strings.Join(hosts, ","))
	}
	var domains []string
	add := func(d string) {
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	for _, d := range suffixDomains(cfg) {
		add(d)
	}
	for _, h := range hosts {
		add(routeHost(h))
	}
	if len(domains) == 0 {
		return "", errors.New("manifest: the configuration names no addressing.virtualHostSuffixes and no --host was given: Envoy would route no request to the store; give --host for each host clients use for path-style requests")
	}
	quoted := make([]string, len(domains))
	for i, d := range domains {
		quoted[i] = strconv.Quote(d)
	}
	return "[" + strings.Join(quoted, ", ") + "]", nil
}

// suffixDomains lists "<suffix>" and "*.<suffix>" for each virtual-host suffix, lower case,
// without a trailing dot.
func suffixDomains(cfg *evaluator.Config) []string {
	var domains []string
	for _, suf := range cfg.Addressing.VirtualHostSuffixes {
		suf = strings.ToLower(strings.TrimSuffix(suf, "."))
		domains = append(domains, suf, "*."+suf)
	}
	return domains
}

// istioHostsAdvice says which hosts the Istio gateway should route to the store: Istio's
// routing is the user's Gateway and VirtualService (or HTTPRoute), not this file.
func istioHostsAdvice(w func(string), d *data) {
	w("Route only the hosts the configuration addresses to the store, never \"*\": in the")
	w("Gateway's hosts and the VirtualService's (or the HTTPRoute's hostnames) list")
	if len(d.suffixHosts) > 0 {
		w("  " + strings.Join(d.suffixHosts, ", ") + ",")
	}
	w("  and the hosts clients use for path-style requests; set meshConfig")
	w("pathNormalization NONE. See docs/deploy.md, \"What is exposed where\".")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates holds every file of templates/; set in init because include refers to it.
var templates *template.Template

func init() {
	templates = template.Must(template.New("").Funcs(template.FuncMap{
		"q":       scalarString,
		"include": include,
		"indent":  func(n int, s string) string { return indentLines(s, strings.Repeat(" ", n)) },
		"item":    func(s string) string { return "- " + indentLines(s, "  ")[2:] },
	}).ParseFS(templateFS, "templates/*.tmpl"))
}

// include renders a named template to a string, so a shared block (the ext_proc filter) can be
// re-indented where it is used.
func include(name string, d *data) (string, error) {
	var b strings.Builder
	err := templates.ExecuteTemplate(&b, name, d)
	return strings.TrimSuffix(b.String(), "\n"), err
}

// header is the comment block at the top of each file: what it is, how it was made, what to
// change.
func header(t Target, d *data) string {
	cmd := "s3cors manifest --target " + string(t) + " " + flagArg("config", d.sourceOpt)
	for _, r := range d.regenerate {
		cmd += " " + r
	}
	var b strings.Builder
	w := func(s string) { b.WriteString(strings.TrimRight("# "+s, " ") + "\n") }
	switch t {
	case EnvoyWasm:
		w("s3cors for Envoy (>= 1.33): Amazon S3's bucket CORS, answered by the s3cors Wasm filter")
		w("in front of an S3-compatible store.")
	case EnvoyExtProc:
		w("s3cors for Envoy: Amazon S3's bucket CORS, answered by the s3cors ext_proc server")
		w("(`s3cors extproc`) in front of an S3-compatible store.")
	case IstioWasmPlugin:
		w("s3cors for Istio (>= 1.25): Amazon S3's bucket CORS at the ingress gateway, as a WasmPlugin.")
	case IstioExtProc:
		w("s3cors for Istio: Amazon S3's bucket CORS at the ingress gateway, answered by the s3cors")
		w("ext_proc server, which this file deploys.")
	}
	w("")
	w("Generated by `" + cmd + "`;")
	w("regenerate it rather than edit it: the configuration is validated first (`s3cors validate`).")
	w("")
	w("To use it:")
	switch t {
	case EnvoyWasm:
		w("  1. Put build/s3cors.wasm (`make build`) at " + d.WasmPath + ".")
		w(fmt.Sprintf("  2. Point the cluster \"s3\" at your store (now %s:%d).", d.UpstreamHost, d.UpstreamPort))
		w("  3. envoy -c wasm.yaml, then send S3 requests to port " + strconv.Itoa(d.ListenPort) + ".")
		w("A configuration change means a new file and an Envoy restart (or hot restart); Envoy")
		w("refuses to start with a configuration s3cors rejects. See docs/deploy.md.")
	case EnvoyExtProc:
		w(fmt.Sprintf("  1. Run the server: s3cors extproc %s --listen %s", flagArg("config", d.sourceOpt), shell.Quote(net.JoinHostPort(d.ExtProcHost, strconv.Itoa(d.ExtProcPort)))))
		w(fmt.Sprintf("  2. Point the cluster \"s3\" at your store (now %s:%d).", d.UpstreamHost, d.UpstreamPort))
		w("  3. envoy -c extproc.yaml, then send S3 requests to port " + strconv.Itoa(d.ListenPort) + ".")
		w("The server reloads its configuration file when it changes (or on SIGHUP), keeping the")
		w("last good one if the new one is invalid. See docs/deploy.md.")
	case IstioWasmPlugin:
		w("  1. make oci && s3cors oci push <registry>/s3cors-wasm:<tag>   (prints url and sha256)")
		w("  2. Regenerate with --image <that url> (pinned by digest: sha256 follows), or edit url and sha256.")
		w("  3. kubectl apply -f istio-wasmplugin.yaml")
		w("Changing pluginConfig reconfigures the gateways without a restart; a configuration the")
		w("module rejects is refused by Envoy and the previous one stays. See docs/deploy.md.")
		istioHostsAdvice(w, d)
	case IstioExtProc:
		w("  1. Build and push a container image whose entrypoint is the s3cors binary; set image.")
		w("  2. kubectl apply -f istio-extproc.yaml")
		w("Edit the ConfigMap to change the configuration: the server reloads it in place and")
		w("keeps the last good one if the new one is invalid. See docs/deploy.md.")
		istioHostsAdvice(w, d)
	}
	return b.String()
}
