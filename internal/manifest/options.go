package manifest

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3cors/s3cors/internal/shell"
)

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
func prepare(target Target, spec targetSpec, o Options) (*data, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d := &data{HealthService: "envoy.service.ext_proc.v3.ExternalProcessor", MetricsPort: DefaultMetricsPort}

	d.sourceOpt = cmp.Or(o.Source, "config.json")
	if strings.ContainsAny(d.sourceOpt, "\n\r") {
		bad("--config %q: must be one line (the header names it)", d.sourceOpt)
	}

	// Whether an option applies to target is judged here, before any of its values: an option
	// the target does not read is refused whatever its value, zero included, and one it reads
	// is refused when given as zero. The target's own checks then see only options that
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

	spec.prepare(d, o, bad)
	if len(errs) > 0 {
		return nil, fmt.Errorf("manifest: bad options for %s: %w", target, errors.Join(errs...))
	}
	return d, nil
}

// preparePolicyImage checks --policy-image (the wasm targets).
func preparePolicyImage(d *data, o Options, bad badFunc) {
	if o.PolicyImage == "" {
		return
	}
	switch o.PolicyImage {
	case "auto", "on", "off":
		d.regenerate = append(d.regenerate, flagArg("policy-image", o.PolicyImage))
	default:
		bad("--policy-image %q: want auto, on or off", o.PolicyImage)
	}
}

// prepareMessageTimeout checks --message-timeout (the ext_proc targets).
func prepareMessageTimeout(d *data, o Options, bad badFunc) {
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

// stringOpt is the value of a string option, or def when it is not set; a set one joins the
// header's command.
func stringOpt(d *data, name, v, def string) string {
	if v == "" {
		return def
	}
	d.regenerate = append(d.regenerate, flagArg(name, v))
	return v
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
	envoy := []Target{EnvoyWasm, EnvoyExtProc, EnvoyControlPlane}
	istio := []Target{IstioWasmPlugin, IstioExtProc, IstioControlPlane}
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
		{"wasm-path", o.WasmPath != "", strconv.Quote(o.WasmPath), []Target{EnvoyWasm, EnvoyControlPlane, IstioControlPlane},
			"only the envoy-wasm and *-controlplane targets load the module from a file",
			want("want an absolute file path, e.g. " + DefaultWasmPath)},
		{"extproc", o.ExtProc != "", strconv.Quote(o.ExtProc), []Target{EnvoyExtProc},
			"only the envoy-extproc target calls a server at an address of your choice (istio-extproc deploys one)",
			want("want host:port of the ext_proc server, e.g. " + DefaultExtProc)},
		{"controlplane", o.ControlPlane != "", strconv.Quote(o.ControlPlane), []Target{EnvoyControlPlane},
			"only the envoy-controlplane target calls a control plane at an address of your choice (istio-controlplane deploys one)",
			want("want host:port of the control plane's S3 API, e.g. " + DefaultControlPlane)},
		{"controlplane-xds", o.ControlPlaneXDS != "", strconv.Quote(o.ControlPlaneXDS), []Target{EnvoyControlPlane},
			"only the envoy-controlplane target calls a control plane at an address of your choice (istio-controlplane deploys one)",
			want("want host:port of the control plane's xDS, e.g. " + DefaultControlPlaneXDS)},
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
		{"namespace", o.Namespace != "", strconv.Quote(o.Namespace), []Target{IstioExtProc, IstioControlPlane},
			"only the istio-extproc and istio-controlplane targets deploy a server (the WasmPlugin goes to --gateway-namespace)", namespace},
		{"replicas", o.Replicas != 0, strconv.Itoa(o.Replicas), []Target{IstioExtProc},
			"only the istio-extproc target deploys a server", want("want 1 to 100")},
		{"policy-image", o.PolicyImage != "", strconv.Quote(o.PolicyImage), []Target{EnvoyWasm, IstioWasmPlugin},
			"only the envoy-wasm and istio-wasmplugin targets carry a policy image (the ext_proc server reads JSON or YAML; the control plane pushes JSON)", want("want auto, on or off")},
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
