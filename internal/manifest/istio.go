package manifest

import (
	"strconv"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
)

// The istio-* targets: s3cors at an Istio ingress gateway.

var istioWasmPlugin = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		preparePolicyImage(d, o, bad)
		prepareIstio(d, o, bad)
		img := strings.TrimPrefix(stringOpt(d, "image", o.Image, DefaultWasmImage), "oci://")
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
		d.FailStrategy = stringOpt(d, "fail-strategy", o.FailStrategy, DefaultFailStrategy)
		switch d.FailStrategy {
		case "FAIL_CLOSE", "FAIL_RELOAD":
		case "FAIL_OPEN":
			bad("--fail-strategy %q: refused: a failed filter would let preflights and responses through unchecked, to a store that may reflect any origin", d.FailStrategy)
		default:
			bad("--fail-strategy %q: want FAIL_CLOSE or FAIL_RELOAD", d.FailStrategy)
		}
	},
	fill: func(d *data, js []byte, cfg *evaluator.Config) error {
		d.suffixHosts = suffixDomains(cfg)
		if d.PluginImage != "" {
			return nil
		}
		if err := survivesStruct(js, cfg); err != nil {
			return err
		}
		var err error
		d.PluginYAML, err = blockYAML(js)
		return err
	},
	about: func(w func(string), _ *data) {
		w("s3cors for Istio (>= 1.25): Amazon S3's bucket CORS at the ingress gateway, as a WasmPlugin.")
	},
	usage: func(w func(string), d *data) {
		w("  1. make oci && s3cors oci push <registry>/s3cors-wasm:<tag>   (prints url and sha256)")
		w("  2. Regenerate with --image <that url> (pinned by digest: sha256 follows), or edit url and sha256.")
		w("  3. kubectl apply -f istio-wasmplugin.yaml")
		w("Changing pluginConfig reconfigures the gateways without a restart; a configuration the")
		w("module rejects is refused by Envoy and the previous one stays. See docs/deploy.md.")
		istioHostsAdvice(w, d)
	},
}

var istioExtProc = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		prepareMessageTimeout(d, o, bad)
		prepareIstio(d, o, bad)
		prepareServer(d, o, bad)
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
		d.ExtProcCluster = istioCluster(d.ExtProcPort, "s3cors-extproc", d.Namespace)
	},
	fill: func(d *data, js []byte, cfg *evaluator.Config) error {
		d.suffixHosts = suffixDomains(cfg)
		var err error
		d.ConfigYAML, err = blockYAML(js)
		return err
	},
	about: func(w func(string), _ *data) {
		w("s3cors for Istio: Amazon S3's bucket CORS at the ingress gateway, answered by the s3cors")
		w("ext_proc server, which this file deploys.")
	},
	usage: func(w func(string), d *data) {
		w("  1. Build and push a container image whose entrypoint is the s3cors binary; set image.")
		w("  2. kubectl apply -f istio-extproc.yaml")
		w("Edit the ConfigMap to change the configuration: the server reloads it in place and")
		w("keeps the last good one if the new one is invalid. See docs/deploy.md.")
		istioHostsAdvice(w, d)
	},
}

// prepareIstio checks the options every istio-* target reads: which gateway, where.
func prepareIstio(d *data, o Options, bad badFunc) {
	d.GatewayNamespace = stringOpt(d, "gateway-namespace", o.GatewayNamespace, DefaultGatewayNamespace)
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
		return
	}
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

// prepareServer checks the options of a server the file deploys: its image and namespace.
func prepareServer(d *data, o Options, bad badFunc) {
	d.Image = stringOpt(d, "image", o.Image, DefaultServerImage)
	if !imageRe.MatchString(d.Image) {
		bad("--image %q: want a container image reference such as %s", d.Image, exampleServerImage)
	}
	d.Namespace = stringOpt(d, "namespace", o.Namespace, DefaultNamespace)
	if !k8sNameRe.MatchString(d.Namespace) {
		bad("--namespace %q: not a Kubernetes namespace name", d.Namespace)
	}
}

// istioCluster is the name of the cluster Istio gives a gateway for port of the Service
// name in namespace.
func istioCluster(port int, name, namespace string) string {
	return "outbound|" + strconv.Itoa(port) + "||" + name + "." + namespace + ".svc.cluster.local"
}

// blockYAML is the configuration js as a YAML mapping indented by 4, without the final
// line break.
func blockYAML(js []byte) (string, error) {
	s, err := toYAML(js, 4)
	return strings.TrimSuffix(s, "\n"), err
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
