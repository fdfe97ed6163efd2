package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/shell"
)

// The envoy-* targets: Envoy bootstraps with s3cors in front of the store.

var envoyWasm = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		preparePolicyImage(d, o, bad)
		prepareEnvoy(d, o, bad)
		prepareWasmPath(d, o, bad)
	},
	route: envoyRoute("envoy.filters.http.wasm"),
	fill: func(d *data, js []byte, _ *evaluator.Config) error {
		if d.PluginImage != "" {
			return nil
		}
		var err error
		d.PluginJSON, err = pluginJSON(js, 20)
		return err
	},
	about: func(w func(string), _ *data) {
		w("s3cors for Envoy (>= 1.33): Amazon S3's bucket CORS, answered by the s3cors Wasm filter")
		w("in front of an S3-compatible store.")
	},
	usage: func(w func(string), d *data) {
		w("  1. Put build/s3cors.wasm (`make build`) at " + d.WasmPath + ".")
		w(fmt.Sprintf("  2. Point the cluster \"s3\" at your store (now %s:%d).", d.UpstreamHost, d.UpstreamPort))
		w("  3. envoy -c wasm.yaml, then send S3 requests to port " + strconv.Itoa(d.ListenPort) + ".")
		w("A configuration change means a new file and an Envoy restart (or hot restart); Envoy")
		w("refuses to start with a configuration s3cors rejects. See docs/deploy.md.")
	},
}

var envoyExtProc = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		prepareEnvoy(d, o, bad)
		ep := stringOpt(d, "extproc", o.ExtProc, DefaultExtProc)
		if h, p, err := hostPort(ep); err != nil {
			bad("--extproc %q: %v", ep, err)
		} else {
			d.ExtProcHost, d.ExtProcPort = h, p
		}
		d.ExtProcCluster = "s3cors_extproc"
		prepareMessageTimeout(d, o, bad)
	},
	route: envoyRoute("envoy.filters.http.ext_proc"),
	fill:  func(*data, []byte, *evaluator.Config) error { return nil }, // the server reads the configuration
	about: func(w func(string), _ *data) {
		w("s3cors for Envoy: Amazon S3's bucket CORS, answered by the s3cors ext_proc server")
		w("(`s3cors extproc`) in front of an S3-compatible store.")
	},
	usage: func(w func(string), d *data) {
		w(fmt.Sprintf("  1. Run the server: s3cors extproc %s --listen %s", flagArg("config", d.sourceOpt), shell.Quote(net.JoinHostPort(d.ExtProcHost, strconv.Itoa(d.ExtProcPort)))))
		w(fmt.Sprintf("  2. Point the cluster \"s3\" at your store (now %s:%d).", d.UpstreamHost, d.UpstreamPort))
		w("  3. envoy -c extproc.yaml, then send S3 requests to port " + strconv.Itoa(d.ListenPort) + ".")
		w("The server reloads its configuration file when it changes (or on SIGHUP), keeping the")
		w("last good one if the new one is invalid. See docs/deploy.md.")
	},
}

// prepareEnvoy checks the options every envoy-* target reads: the store, its hosts, the ports.
func prepareEnvoy(d *data, o Options, bad badFunc) {
	up := stringOpt(d, "upstream", o.Upstream, DefaultUpstream)
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

// prepareWasmPath checks --wasm-path, where Envoy reads the module.
func prepareWasmPath(d *data, o Options, bad badFunc) {
	d.WasmPath = stringOpt(d, "wasm-path", o.WasmPath, DefaultWasmPath)
	if !pathRe.MatchString(d.WasmPath) || strings.Contains(d.WasmPath, "..") {
		bad("--wasm-path %q: want an absolute file path of letters, digits, '.', '_', '-' and '/'", d.WasmPath)
	}
}

// envoyRoute fills the store's virtual host and names s3cors's HTTP filter (filter), which
// the other hosts' virtual host turns off.
func envoyRoute(filter string) func(*data, *evaluator.Config, []string) error {
	return func(d *data, cfg *evaluator.Config, hosts []string) error {
		var err error
		d.Domains, err = storeDomains(cfg, hosts)
		d.FilterName = filter
		return err
	}
}

// pluginJSON is the configuration js as the text of a YAML literal block indented by n.
func pluginJSON(js []byte, n int) (string, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, js, "", "  "); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	return indentLines(strings.TrimRight(yamlSafeJSON(buf.String()), "\n"), strings.Repeat(" ", n)), nil
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
