package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/shell"
)

// The *-controlplane targets: the Wasm filter configured by `s3cors controlplane` over ECDS,
// and the bucket CORS API (a bucket's ?cors requests) answered by it.

// Names the control-plane targets give Envoy's objects; `s3cors controlplane --filter-name`
// defaults to ecdsName.
const (
	ecdsName       = "s3cors"
	apiClusterName = "s3cors_controlplane_api"
	xdsClusterName = "s3cors_controlplane"
	controlPlaneSA = "s3cors-controlplane"
)

// Ports of the control plane istio-controlplane deploys.
const (
	controlPlaneAPIPort     = 8090
	controlPlaneXDSPort     = 18000
	controlPlaneMetricsPort = 9091
)

var envoyControlPlane = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		prepareEnvoy(d, o, bad)
		prepareWasmPath(d, o, bad)
		api := stringOpt(d, "controlplane", o.ControlPlane, DefaultControlPlane)
		if h, p, err := hostPort(api); err != nil {
			bad("--controlplane %q: %v", api, err)
		} else {
			d.APIHost, d.APIPort = h, p
		}
		xds := stringOpt(d, "controlplane-xds", o.ControlPlaneXDS, DefaultControlPlaneXDS)
		if h, p, err := hostPort(xds); err != nil {
			bad("--controlplane-xds %q: %v", xds, err)
		} else {
			d.XDSHost, d.XDSPort = h, p
		}
		d.APICluster, d.XDSCluster = apiClusterName, xdsClusterName
	},
	route: envoyRoute(ecdsName),
	fill:  fillDenyAll(10),
	about: func(w func(string), _ *data) {
		w("s3cors for Envoy (>= 1.33) with the control plane: Amazon S3's bucket CORS, answered by the")
		w("s3cors Wasm filter, its rules pushed by `s3cors controlplane` (ECDS), which also answers")
		w("PutBucketCors, GetBucketCors and DeleteBucketCors in front of an S3-compatible store.")
	},
	usage: func(w func(string), d *data) {
		w("  1. Put build/s3cors.wasm (`make build`) at " + d.WasmPath + ".")
		w("  2. Run the control plane (keys.json: see `s3cors controlplane --help`):")
		w(fmt.Sprintf("     s3cors controlplane %s --credentials keys.json --module %s \\", flagArg("config", d.sourceOpt), shell.Quote(d.WasmPath)))
		w(fmt.Sprintf("       --listen %s --xds-listen %s", shell.Quote(net.JoinHostPort(d.APIHost, strconv.Itoa(d.APIPort))), shell.Quote(net.JoinHostPort(d.XDSHost, strconv.Itoa(d.XDSPort)))))
		w(fmt.Sprintf("  3. Point the cluster \"s3\" at your store (now %s:%d).", d.UpstreamHost, d.UpstreamPort))
		w("  4. envoy -c controlplane.yaml, then send S3 requests to port " + strconv.Itoa(d.ListenPort) + ", and")
		w("     aws s3api put-bucket-cors --endpoint-url http://<envoy>:" + strconv.Itoa(d.ListenPort) + " ... to change the rules.")
		w("Every change is pushed to every connected Envoy at once, without a restart. See docs/deploy.md.")
	},
}

var istioControlPlane = targetSpec{
	prepare: func(d *data, o Options, bad badFunc) {
		prepareIstio(d, o, bad)
		prepareWasmPath(d, o, bad)
		prepareServer(d, o, bad)
		d.FilterName = ecdsName
		d.APIPort, d.XDSPort, d.MetricsPort = controlPlaneAPIPort, controlPlaneXDSPort, controlPlaneMetricsPort
		d.APICluster = istioCluster(d.APIPort, controlPlaneSA, d.Namespace)
		d.XDSCluster = istioCluster(d.XDSPort, controlPlaneSA, d.Namespace)
		d.StateSize = "64Mi"
	},
	fill: func(d *data, js []byte, cfg *evaluator.Config) error {
		d.suffixHosts = suffixDomains(cfg)
		var err error
		if d.ConfigYAML, err = blockYAML(js); err != nil {
			return err
		}
		return fillDenyAll(10)(d, js, cfg)
	},
	about: func(w func(string), _ *data) {
		w("s3cors for Istio with the control plane: Amazon S3's bucket CORS at the ingress gateway,")
		w("answered by the s3cors Wasm filter, its rules pushed by the control plane this file deploys")
		w("(ECDS), which also answers PutBucketCors, GetBucketCors and DeleteBucketCors.")
	},
	usage: func(w func(string), d *data) {
		w("  1. Give the gateway's pods build/s3cors.wasm at " + d.WasmPath + " (docs/deploy.md).")
		w("  2. Build and push a container image whose entrypoint is the s3cors binary; set image.")
		w("  3. kubectl create namespace " + d.Namespace + " && kubectl -n " + d.Namespace + " create secret generic \\")
		w("       s3cors-controlplane-credentials --from-file=keys.json")
		w("  4. kubectl apply -f istio-controlplane.yaml")
		w("  5. Route a bucket's ?cors requests to the Service s3cors-controlplane, port " + strconv.Itoa(d.APIPort) + ", ahead")
		w("     of the store, in your VirtualService (docs/deploy.md, \"Control-plane mode\").")
		w("The ConfigMap is the seed; the API's changes are kept on the volume. See docs/deploy.md.")
		istioHostsAdvice(w, d)
	},
}

// fillDenyAll puts into d, as JSON text indented by n, the configuration Envoy uses until the
// control plane's first answer: js without any bucket's rules.
func fillDenyAll(n int) func(*data, []byte, *evaluator.Config) error {
	return func(d *data, js []byte, _ *evaluator.Config) error {
		doc, err := denyAll(js)
		if err != nil {
			return err
		}
		d.PluginJSON, err = pluginJSON(doc, n)
		return err
	}
}

// denyAll is the configuration js with no CORS for any bucket: no buckets, no "default",
// unlisted buckets "not-enabled" (preflights 403 "CORS is not enabled for this bucket"); its
// other members (addressing, upstreamCORSHeaders, vary) as written, so requests are read as
// the control plane's rules will read them.
func denyAll(js []byte) ([]byte, error) {
	n, err := parseJSON(js)
	if err != nil || n.kind != '{' {
		return nil, fmt.Errorf("manifest: the configuration is not a JSON object (a bug): %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`{"buckets": {}, "unlistedBuckets": "not-enabled"`)
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for _, k := range n.keys {
		switch k {
		case "buckets", "default", "unlistedBuckets":
			continue
		}
		key, _ := json.Marshal(k)
		fmt.Fprintf(&b, ", %s: %s", key, top[k])
	}
	b.WriteString("}")
	if _, err := evaluator.Load(b.Bytes()); err != nil {
		return nil, fmt.Errorf("manifest: the configuration without its buckets is invalid (a bug): %w", err)
	}
	return b.Bytes(), nil
}
