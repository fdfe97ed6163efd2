package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/manifest"
)

func newManifestCmd() *cobra.Command {
	var (
		configPath, target, outPath string
		selector                    []string
		o                           manifest.Options
	)
	targets := make([]string, 0, len(manifest.Targets()))
	for _, t := range manifest.Targets() {
		targets = append(targets, string(t))
	}
	cmd := &cobra.Command{
		Use:   "manifest --config FILE --target " + strings.Join(targets, "|"),
		Short: "Generate ready-to-apply Envoy or Istio deployment files from a configuration",
		Long: `Manifest prints a deployment file built from the s3cors configuration:

  envoy-wasm        an Envoy bootstrap running s3cors.wasm as an HTTP Wasm filter in front of
                    the store, the configuration inline
  envoy-extproc     an Envoy bootstrap calling ` + "`s3cors extproc`" + ` through the ext_proc filter
  istio-wasmplugin  an Istio WasmPlugin loading the module's OCI image (see ` + "`s3cors oci push`" + `)
                    into an ingress gateway, the configuration as pluginConfig
  istio-extproc     the ext_proc server (Deployment, Service, ConfigMap...) and the
                    EnvoyFilter that inserts it into an ingress gateway
  envoy-controlplane  an Envoy bootstrap whose Wasm filter takes its rules from
                    ` + "`s3cors controlplane`" + ` (ECDS) and whose bucket ?cors requests go to it
  istio-controlplane  the control plane (Deployment, Service, ConfigMap...) and the
                    EnvoyFilter that inserts the filter, configured by it, into an ingress gateway

The configuration is validated first: an invalid one yields no manifest, exit code 1, and
every problem as validate prints it.`,
		Example: `  s3cors manifest --config cors.json --target envoy-wasm --upstream minio.storage:9000 > envoy.yaml
  s3cors manifest --config cors.yaml --target istio-wasmplugin \
      --image ghcr.io/acme/s3cors-wasm@sha256:4f2c...`,
		Args: exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			if !flags.Changed("config") {
				return usageErrorf("manifest: --config is required")
			}
			if !flags.Changed("target") {
				return usageErrorf("manifest: --target is required (one of %s)", strings.Join(targets, ", "))
			}
			if err := oneOf("target", target, targets...); err != nil {
				return err
			}
			// --config and --out are the command's own; manifest.Generate judges the rest,
			// knowing which were given, so an option given as zero is refused, not defaulted.
			if configPath == "" {
				return &exitError{code: exitFailure, err: errors.New(`manifest: --config "": want a configuration file, JSON or YAML`)}
			}
			if flags.Changed("out") && outPath == "" {
				return &exitError{code: exitFailure, err: errors.New(`manifest: --out "": want a file path; use - for standard output`)}
			}
			flags.Visit(func(f *pflag.Flag) {
				switch f.Name {
				case "config", "target", "out":
				default:
					o.Given = append(o.Given, f.Name)
				}
			})
			if len(selector) > 0 {
				o.GatewaySelector = map[string]string{}
				for _, kv := range selector {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						// A bad value, as manifest.Generate's refusals are: exit 1.
						return &exitError{code: exitFailure, err: fmt.Errorf("manifest: --gateway-selector %q: want key=value", kv)}
					}
					o.GatewaySelector[k] = v
				}
			}
			data, err := os.ReadFile(configPath)
			if err != nil {
				return fmt.Errorf("manifest: reading configuration: %w", err)
			}
			o.Source = configPath
			out, err := manifest.Generate(manifest.Target(target), data, o)
			var verr *evaluator.ValidationError
			if errors.As(err, &verr) {
				w := cmd.ErrOrStderr()
				_, _ = fmt.Fprintf(w, "%s: invalid configuration, no manifest generated:\n", configPath)
				for _, p := range verr.Problems {
					_, _ = fmt.Fprintf(w, "  %s\n", p)
				}
				return &exitError{code: exitFailure}
			} else if err != nil {
				return err
			}
			if outPath == "" || outPath == "-" { // not given, or -
				_, err = cmd.OutOrStdout().Write(out)
			} else if err = os.WriteFile(outPath, out, 0o644); err != nil {
				err = fmt.Errorf("manifest: %w", err)
			}
			if err == nil {
				warnPlaceholderImage(cmd, manifest.Target(target), o.Image)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "s3cors configuration file, JSON or YAML (required)")
	f.StringVar(&target, "target", "", "what to generate: "+strings.Join(targets, ", "))
	f.StringVarP(&outPath, "out", "o", "", "write to this file instead of stdout (- for stdout)")
	f.StringVar(&o.Upstream, "upstream", "", fmt.Sprintf("S3-compatible store as host:port (envoy-*; default %q)", manifest.DefaultUpstream))
	f.BoolVar(&o.UpstreamTLS, "upstream-tls", false, "speak TLS to the store, the host as SNI (envoy-*)")
	f.StringArrayVar(&o.Hosts, "host", nil, "a path-style host Envoy routes to the store besides <suffix> and *.<suffix> of each virtual-host suffix, without a port; repeat for more (envoy-*)")
	f.IntVar(&o.ListenPort, "listen-port", 0, fmt.Sprintf("port Envoy serves S3 on (envoy-*; default %d)", manifest.DefaultListenPort))
	f.IntVar(&o.AdminPort, "admin-port", 0, fmt.Sprintf("Envoy admin port on 127.0.0.1 (envoy-*; default %d)", manifest.DefaultAdminPort))
	f.StringVar(&o.WasmPath, "wasm-path", "", fmt.Sprintf("where Envoy reads the module (envoy-wasm, *-controlplane; default %q)", manifest.DefaultWasmPath))
	f.StringVar(&o.ControlPlane, "controlplane", "", fmt.Sprintf("the control plane's S3 API as host:port, for ?cors requests (envoy-controlplane; default %q)", manifest.DefaultControlPlane))
	f.StringVar(&o.ControlPlaneXDS, "controlplane-xds", "", fmt.Sprintf("the control plane's ECDS as host:port (envoy-controlplane; default %q)", manifest.DefaultControlPlaneXDS))
	f.StringVar(&o.ExtProc, "extproc", "", fmt.Sprintf("ext_proc server as host:port (envoy-extproc; default %q)", manifest.DefaultExtProc))
	f.DurationVar(&o.MessageTimeout, "message-timeout", 0, fmt.Sprintf("Envoy's wait for each ext_proc answer (*-extproc; default %s)", manifest.DefaultMessageTimeout))
	f.StringVar(&o.Image, "image", "", fmt.Sprintf("OCI image of the module (istio-wasmplugin; default %q) or of the s3cors binary (istio-extproc, istio-controlplane; default %q)", manifest.DefaultWasmImage, manifest.DefaultServerImage))
	f.StringVar(&o.WasmSHA256, "wasm-sha256", "", "image manifest digest (hex) Istio checks (istio-wasmplugin; default from an @sha256 image)")
	f.StringVar(&o.FailStrategy, "fail-strategy", "", fmt.Sprintf("WasmPlugin failStrategy: FAIL_CLOSE or FAIL_RELOAD (istio-wasmplugin; default %s)", manifest.DefaultFailStrategy))
	f.StringVar(&o.GatewayNamespace, "gateway-namespace", "", fmt.Sprintf("ingress gateway namespace (istio-*; default %q)", manifest.DefaultGatewayNamespace))
	f.StringSliceVar(&selector, "gateway-selector", nil, "gateway pod labels key=value,... (istio-*; default istio=ingressgateway)")
	f.StringVar(&o.GatewayName, "gateway-name", "", "attach to this Kubernetes Gateway by targetRefs instead of a selector (istio-wasmplugin)")
	f.StringVar(&o.Namespace, "namespace", "", fmt.Sprintf("namespace of the ext_proc server or the control plane (istio-extproc, istio-controlplane; default %q)", manifest.DefaultNamespace))
	f.IntVar(&o.Replicas, "replicas", 0, fmt.Sprintf("ext_proc server replicas (istio-extproc; default %d)", manifest.DefaultReplicas))
	f.StringVar(&o.PolicyImage, "policy-image", "", fmt.Sprintf("carry the configuration as a compiled policy image: on, off, or auto, when its JSON is over %d KiB (*-wasm*; default auto)", manifest.PolicyImageThreshold>>10))
	return cmd
}

// warnPlaceholderImage warns when an Istio manifest names the placeholder image because
// --image was not given. For istio-wasmplugin, the gateway's Istio agent cannot pull the
// module, and under the WasmPlugin's FAIL_CLOSE the gateway refuses every request it serves;
// for istio-extproc, the kubelet cannot pull the server's image, so its pods never start and
// the ext_proc filter, failing closed, refuses every request; for istio-controlplane, the
// control plane never starts, so the gateway grants no CORS and ?cors requests fail. The file
// itself stays as documented, so the committed examples regenerate unchanged.
func warnPlaceholderImage(cmd *cobra.Command, target manifest.Target, image string) {
	def, puller, what := manifest.DefaultServerImage, "Kubernetes cannot pull for the server's pods", "the s3cors container image"
	effect := "the gateway fails closed and refuses every request"
	switch target {
	case manifest.IstioWasmPlugin:
		def, puller, what = manifest.DefaultWasmImage, "the gateway's Istio agent cannot pull", "the module's OCI image (`s3cors oci push` prints it)"
	case manifest.IstioExtProc:
	case manifest.IstioControlPlane:
		effect = "the gateway grants no CORS and the bucket CORS API fails"
	default:
		return
	}
	if image != "" {
		return
	}
	_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "s3cors: warning: no --image given: the manifest names the placeholder %q, which %s; "+
		"applied as is, %s. Regenerate with --image set to %s.\n", def, puller, effect, what)
}
