package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/internal/extprocd"
)

func newExtprocCmd() *cobra.Command {
	var o extprocd.Options
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "extproc (--config FILE | --config-from ADDR) [--listen ADDR] [--metrics-listen ADDR]",
		Short: "Run the Envoy ext_proc gRPC server over the same evaluator",
		Long: `Extproc serves Envoy's external processing protocol (envoy.service.ext_proc.v3) on --listen:
preflights are answered with an ImmediateResponse exactly as S3 answers them, actual responses
get S3's CORS headers. The --config file (JSON or YAML) is reloaded when it changes and on
SIGHUP; a bad new configuration is logged and the last good one kept. A configuration that
does not load at startup is logged (one record, every problem) and the command exits 1.

--config-from takes the configuration from a control plane instead (s3cors controlplane
--xds-listen), as the wasm filter's Envoys do, over ECDS: the command waits for the first
configuration, then applies every change the control plane pushes; one that does not load is
refused (NACKed, logged, counted) and the last good one kept.

--metrics-listen serves /metrics (Prometheus), /healthz and /readyz. Both listen on loopback
unless told otherwise: where Envoy or Prometheus connect from another host (a pod), pass
--listen :50051 --metrics-listen :9090 and restrict who may connect (docs/deploy.md: Istio mTLS,
NetworkPolicy). SIGINT or SIGTERM drains open streams (after --shutdown-delay, for at most
--drain-timeout), then exits.`,
		Example: `  s3cors extproc --config cors.yaml
  s3cors extproc --config cors.yaml --listen :50051 --metrics-listen :9090   # in a pod
  s3cors extproc --config-from 127.0.0.1:18000                               # from s3cors controlplane`,
		Args: exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.ConfigPath == "" && o.ConfigFrom == "":
				return usageErrorf("extproc: --config is required (or --config-from)")
			case o.ConfigPath != "" && o.ConfigFrom != "":
				return usageErrorf("extproc: --config %q and --config-from %q: give one", o.ConfigPath, o.ConfigFrom)
			}
			// Checked here, before anything listens: extprocd.New reads a zero drain timeout
			// as its default, which a user who typed --drain-timeout 0 did not ask for.
			if o.DrainTimeout <= 0 {
				return usageErrorf("extproc: --drain-timeout %s: want a positive duration", o.DrainTimeout)
			}
			if o.ShutdownDelay < 0 {
				return usageErrorf("extproc: --shutdown-delay %s: want a duration of 0 or more", o.ShutdownDelay)
			}
			logger, err := newLogger(cmd.ErrOrStderr(), "extproc", logLevel, logFormat)
			if err != nil {
				return err
			}
			o.Logger = logger
			d, err := extprocd.New(cmd.Context(), o)
			if ce := (*extprocd.ConfigLoadError)(nil); errors.As(err, &ce) {
				// New logged it, as one record in --log-format with every problem: printed
				// again in plain text, a JSON log pipeline would get a second, multi-line
				// copy it cannot parse.
				return &exitError{code: exitFailure}
			}
			if err != nil {
				return err
			}
			stop := reloadOnSIGHUP(cmd.Context(), d)
			defer stop()
			return d.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", "", "s3cors configuration file, JSON or YAML")
	f.StringVar(&o.ConfigFrom, "config-from", "", "take the configuration from this control plane's xDS address (s3cors controlplane --xds-listen) instead of a file")
	f.StringVar(&o.ConfigName, "config-name", extprocd.DefaultConfigName, "with --config-from: the filter configuration to ask for (the control plane's plugin name)")
	f.StringVar(&o.Listen, "listen", extprocd.DefaultListen, "gRPC address Envoy connects to")
	f.StringVar(&o.MetricsListen, "metrics-listen", extprocd.DefaultMetricsListen, `HTTP address for /metrics, /healthz and /readyz ("" for none)`)
	f.DurationVar(&o.DrainTimeout, "drain-timeout", extprocd.DefaultDrainTimeout, "on SIGINT/SIGTERM, how long open streams may finish before they are cut")
	f.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "on SIGINT/SIGTERM, keep serving this long with health NOT_SERVING before draining, so load balancers stop sending new streams first (e.g. 5s on Kubernetes)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// reloadOnSIGHUP reloads d's configuration on every SIGHUP until stop is called; stop waits
// for a reload in progress.
func reloadOnSIGHUP(ctx context.Context, d *extprocd.Daemon) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.Reload(ctx, "SIGHUP")
			}
		}
	})
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
