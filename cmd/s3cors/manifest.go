package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

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
			if err := refuseExplicitZeros(cmd, target, configPath, outPath, selector, o); err != nil {
				return err
			}
			if len(selector) > 0 {
				o.GatewaySelector = map[string]string{}
				for _, kv := range selector {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usageErrorf("--gateway-selector %q: want key=value", kv)
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
			if outPath == "" || outPath == "-" {
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
	f.StringVarP(&outPath, "out", "o", "", "write to this file instead of stdout")
	f.StringVar(&o.Upstream, "upstream", "", fmt.Sprintf("S3-compatible store as host:port (envoy-*; default %q)", manifest.DefaultUpstream))
	f.BoolVar(&o.UpstreamTLS, "upstream-tls", false, "speak TLS to the store, the host as SNI (envoy-*)")
	f.IntVar(&o.ListenPort, "listen-port", 0, fmt.Sprintf("port Envoy serves S3 on (envoy-*; default %d)", manifest.DefaultListenPort))
	f.IntVar(&o.AdminPort, "admin-port", 0, fmt.Sprintf("Envoy admin port on 127.0.0.1 (envoy-*; default %d)", manifest.DefaultAdminPort))
	f.StringVar(&o.WasmPath, "wasm-path", "", fmt.Sprintf("where Envoy reads the module (envoy-wasm; default %q)", manifest.DefaultWasmPath))
	f.StringVar(&o.ExtProc, "extproc", "", fmt.Sprintf("ext_proc server as host:port (envoy-extproc; default %q)", manifest.DefaultExtProc))
	f.DurationVar(&o.MessageTimeout, "message-timeout", 0, fmt.Sprintf("Envoy's wait for each ext_proc answer (*-extproc; default %s)", manifest.DefaultMessageTimeout))
	f.StringVar(&o.Image, "image", "", fmt.Sprintf("OCI image of the module (istio-wasmplugin; default %q) or of the s3cors binary (istio-extproc; default %q)", manifest.DefaultWasmImage, manifest.DefaultServerImage))
	f.StringVar(&o.WasmSHA256, "wasm-sha256", "", "image manifest digest (hex) Istio checks (istio-wasmplugin; default from an @sha256 image)")
	f.StringVar(&o.FailStrategy, "fail-strategy", "", fmt.Sprintf("WasmPlugin failStrategy: FAIL_CLOSE or FAIL_RELOAD (istio-wasmplugin; default %s)", manifest.DefaultFailStrategy))
	f.StringVar(&o.GatewayNamespace, "gateway-namespace", "", fmt.Sprintf("ingress gateway namespace (istio-*; default %q)", manifest.DefaultGatewayNamespace))
	f.StringSliceVar(&selector, "gateway-selector", nil, "gateway pod labels key=value,... (istio-*; default istio=ingressgateway)")
	f.StringVar(&o.GatewayName, "gateway-name", "", "attach to this Kubernetes Gateway by targetRefs instead of a selector (istio-wasmplugin)")
	f.StringVar(&o.Namespace, "namespace", "", fmt.Sprintf("namespace of the ext_proc server (istio-extproc; default %q)", manifest.DefaultNamespace))
	f.IntVar(&o.Replicas, "replicas", 0, fmt.Sprintf("ext_proc server replicas (istio-extproc; default %d)", manifest.DefaultReplicas))
	return cmd
}

// refuseExplicitZeros refuses an option given explicitly as zero or empty. manifest.Options
// reads a zero field as "not set, use the default", so without this check `--replicas 0` or
// `--image ""` would quietly produce the default instead of what was asked. Like the options
// manifest.Generate refuses, these are bad values (exit code 1), all reported at once.
func refuseExplicitZeros(cmd *cobra.Command, target, configPath, outPath string, selector []string, o manifest.Options) error {
	checks := []struct {
		flag string
		zero bool
		want string
	}{
		{"config", configPath == "", "want a configuration file, JSON or YAML"},
		{"out", outPath == "", "want a file path, or - for stdout"},
		{"upstream", o.Upstream == "", "want host:port of the store, e.g. minio.storage:9000"},
		{"listen-port", o.ListenPort == 0, "want a TCP port, 1 to 65535"},
		{"admin-port", o.AdminPort == 0, "want a TCP port, 1 to 65535"},
		{"wasm-path", o.WasmPath == "", "want an absolute file path, e.g. " + manifest.DefaultWasmPath},
		{"extproc", o.ExtProc == "", "want host:port of the ext_proc server, e.g. " + manifest.DefaultExtProc},
		{"message-timeout", o.MessageTimeout == 0, "want whole milliseconds between 1ms and 10s"},
		{"image", o.Image == "", "want an image reference, e.g. ghcr.io/acme/s3cors-wasm:v1.2.0"},
		{"wasm-sha256", o.WasmSHA256 == "", "want 64 lower-case hex digits (the image manifest digest)"},
		{"fail-strategy", o.FailStrategy == "", "want FAIL_CLOSE or FAIL_RELOAD"},
		{"gateway-namespace", o.GatewayNamespace == "", "want a Kubernetes namespace name"},
		{"gateway-selector", len(selector) == 0, "want key=value,..."},
		{"gateway-name", o.GatewayName == "", "want the name of a Kubernetes Gateway"},
		{"namespace", o.Namespace == "", "want a Kubernetes namespace name"},
		{"replicas", o.Replicas == 0, "want 1 to 100"},
	}
	flags := cmd.Flags()
	var errs []error
	for _, c := range checks {
		if !c.zero || !flags.Changed(c.flag) {
			continue
		}
		v := flags.Lookup(c.flag).Value
		shown := v.String()
		switch v.Type() {
		case "string":
			shown = strconv.Quote(shown)
		case "stringSlice":
			shown = `""`
		}
		errs = append(errs, fmt.Errorf("--%s %s: %s", c.flag, shown, c.want))
	}
	if len(errs) > 0 {
		return fmt.Errorf("manifest: bad options for %s: %w", target, errors.Join(errs...))
	}
	return nil
}

// warnPlaceholderImage warns when an Istio manifest names the placeholder image because
// --image was not given: Istio cannot pull it, and under the WasmPlugin's FAIL_CLOSE (or the
// ext_proc filter's fail-closed default) the gateway then refuses every request it serves.
// The file itself stays as documented, so the committed examples regenerate unchanged.
func warnPlaceholderImage(cmd *cobra.Command, target manifest.Target, image string) {
	var def, what string
	switch target {
	case manifest.IstioWasmPlugin:
		def, what = manifest.DefaultWasmImage, "the module's OCI image (`s3cors oci push` prints it)"
	case manifest.IstioExtProc:
		def, what = manifest.DefaultServerImage, "the s3cors container image"
	default:
		return
	}
	if image != "" {
		return
	}
	_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "s3cors: warning: no --image given: the manifest names the placeholder %q, which Istio cannot pull; "+
		"applied as is, the gateway fails closed and refuses every request. Regenerate with --image set to %s.\n", def, what)
}
