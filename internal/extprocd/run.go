package extprocd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/s3cors/s3cors/extproc"
)

// Defaults of [Options] and of `s3cors extproc`'s flags. Both addresses are loopback: a
// server reachable from every interface would answer anyone who can reach the host. In a pod,
// where Envoy connects from elsewhere, pass the address explicitly (the generated Istio
// Deployment gives ":50051" and ":9090").
const (
	DefaultListen        = "127.0.0.1:50051"
	DefaultMetricsListen = "127.0.0.1:9090"
	DefaultDrainTimeout  = 15 * time.Second
)

// Options configures [New]. ConfigPath or ConfigFrom is required, not both.
type Options struct {
	// ConfigPath is the s3cors configuration file, JSON or YAML (see extproc.LoadConfigFile).
	// It is reloaded when it changes and when [Daemon.Reload] is called.
	ConfigPath string
	// ConfigFrom is the address of a control plane's ECDS listener (`s3cors controlplane
	// --xds-listen`) to take the configuration from instead, as the wasm filter's Envoys do:
	// the plugin configuration of the filter named ConfigName (default "s3cors"). New waits
	// for the first configuration that loads; every later one is applied as it comes, and one
	// that does not load is refused (NACKed) with the last good one kept live.
	ConfigFrom string
	ConfigName string
	// Listen is the gRPC address Envoy connects to. Default "127.0.0.1:50051".
	Listen string
	// MetricsListen is the HTTP address serving /metrics (Prometheus), /healthz (the process
	// is up) and /readyz (serving; 503 once shutdown began). Default "": no HTTP server.
	MetricsListen string
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// DrainTimeout bounds the graceful drain on shutdown: streams still open after it (an
	// actual request whose upstream has not answered yet) are cut. Zero means the default,
	// 15s, below Kubernetes' default 30s termination grace period; negative is an error.
	DrainTimeout time.Duration
	// ShutdownDelay keeps serving, with health already NOT_SERVING, for this long after the
	// shutdown signal before draining, so that Envoy's health checks and Kubernetes endpoint
	// updates move new streams elsewhere first. Default 0; negative is an error.
	ShutdownDelay time.Duration

	// Listener, when set, is used instead of listening on Listen (socket activation, tests).
	Listener net.Listener
	// MetricsListener, when set, is used instead of listening on MetricsListen.
	MetricsListener net.Listener
}

// ConfigLoadError is [New]'s error when the configuration file does not load at startup. New
// has already logged it through Options.Logger, as one record at error level ("configuration
// refused; not starting", with the file, the reason and every problem as a list), so a caller
// logging through the same logger need not print it again; Err is the cause.
type ConfigLoadError struct {
	Path string
	// Reason is why the file was refused, as in s3cors_config_reload_errors_total: "invalid"
	// (it does not parse or validate), "unreadable" or "missing".
	Reason string
	Err    error
}

func (e *ConfigLoadError) Error() string { return e.Err.Error() }
func (e *ConfigLoadError) Unwrap() error { return e.Err }

// loadInitial loads the configuration the daemon starts with. A failure is logged as the reload
// refusal is (one structured record, problems as a list), because it is the same event seen at
// a different time: a ConfigMap broken while the pod restarts. The process then exits before
// serving metrics, so no s3cors_* series can report it; docs/deploy.md gives the alert that
// does.
func loadInitial(ctx context.Context, log *slog.Logger, path string) (*extproc.LoadedPolicy, error) {
	data, err := os.ReadFile(path)
	reason := reloadInvalid
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason, err = reloadMissing, fmt.Errorf("extprocd: reading config: %w", err)
	case err != nil:
		reason, err = reloadUnreadable, fmt.Errorf("extprocd: reading config: %w", err)
	}
	var live *extproc.LoadedPolicy
	if err == nil {
		live, err = extproc.LoadConfig(path, data)
	}
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "configuration refused; not starting",
			appendLoadError([]slog.Attr{slog.String("file", path), slog.String("reason", reason)}, err)...)
		return nil, &ConfigLoadError{Path: path, Reason: reason, Err: err}
	}
	return live, nil
}

// Daemon is the ext_proc process: the [extproc.Server] on a gRPC listener with gRPC health, an
// optional HTTP listener for /metrics, /healthz and /readyz, the configuration file watched
// and reloaded, and a bounded graceful drain. [New] loads the configuration and opens the
// listeners; [Daemon.Serve] serves until its context ends. It installs no signal handler:
// the command turns SIGHUP into [Daemon.Reload] and SIGINT or SIGTERM into a cancelled
// context.
type Daemon struct {
	log          *slog.Logger
	path         string
	drain, delay time.Duration
	lis, mlis    net.Listener
	holder       *extproc.PolicyHolder
	metrics      *Metrics
	server       *extproc.Server
	grpc         *grpc.Server
	health       *health.Server
	reloader     *reloader
	xds          *xdsSource // the control plane, with ConfigFrom
	serveStarted atomic.Bool
}

// New loads the configuration file, or waits for the control plane's first configuration
// (Options.ConfigFrom) until ctx ends, and opens the listeners. It returns an error, with nothing
// left open, when an option is invalid, the configuration does not load (a
// [*ConfigLoadError], already logged; its message lists every problem) or a listener cannot
// be opened.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case opts.ConfigPath == "" && opts.ConfigFrom == "":
		return nil, errors.New("extprocd: no configuration file given")
	case opts.ConfigPath != "" && opts.ConfigFrom != "":
		return nil, fmt.Errorf("extprocd: a configuration file (%q) and a control plane (%q) given; want one", opts.ConfigPath, opts.ConfigFrom)
	}
	drain := opts.DrainTimeout
	switch {
	case drain < 0:
		return nil, fmt.Errorf("extprocd: Options.DrainTimeout %s: want a positive duration (0 for the default %s)", drain, DefaultDrainTimeout)
	case drain == 0:
		drain = DefaultDrainTimeout
	}
	if opts.ShutdownDelay < 0 {
		return nil, fmt.Errorf("extprocd: Options.ShutdownDelay %s: want a duration of 0 or more", opts.ShutdownDelay)
	}

	d := &Daemon{log: log, path: opts.ConfigPath, drain: drain, delay: opts.ShutdownDelay, metrics: NewMetrics()}
	if opts.ConfigFrom != "" {
		var err error
		if d.xds, err = newXDSSource(opts.ConfigFrom, opts.ConfigName, d.metrics, log); err != nil {
			return nil, err
		}
		if _, err := d.xds.first(ctx); err != nil {
			d.xds.close()
			return nil, err
		}
		d.holder, d.path = d.xds.holder, d.xds.source()
	} else {
		live, err := loadInitial(ctx, log, opts.ConfigPath)
		if err != nil {
			return nil, err
		}
		d.holder = extproc.NewPolicyHolder(live)
		d.metrics.configLoaded(live, false)
	}
	if err := d.listen(opts); err != nil {
		if d.xds != nil {
			d.xds.close()
		}
		return nil, err
	}
	d.buildServer()
	return d, nil
}

// listen opens the listeners opts asks for.
func (d *Daemon) listen(opts Options) error {
	var err error
	d.lis = opts.Listener
	if d.lis == nil {
		addr := opts.Listen
		if addr == "" {
			addr = DefaultListen
		}
		if d.lis, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("extprocd: listening on %q: %w", addr, err)
		}
	}
	d.mlis = opts.MetricsListener
	if d.mlis == nil && opts.MetricsListen != "" {
		if d.mlis, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			_ = d.lis.Close()
			return fmt.Errorf("extprocd: metrics listening on %q: %w", opts.MetricsListen, err)
		}
	}
	return nil
}

// buildServer builds the gRPC server: ext_proc and health.
func (d *Daemon) buildServer() {
	d.grpc = grpc.NewServer(
		// The server's answers are already protobuf bytes; the codec sends them as they are.
		extproc.ServerCodecOption(),
		// Envoy may be configured with HTTP/2 keepalive pings on the ext_proc cluster; the
		// default policy would answer pings more frequent than 5 minutes with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	d.server = extproc.NewServer(d.holder, extproc.ServerOptions{Logger: d.log, Observer: d.metrics})
	extprocv3.RegisterExternalProcessorServer(d.grpc, d.server)
	d.health = health.NewServer()
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	d.health.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(d.grpc, d.health)

	d.reloader = &reloader{path: d.path, holder: d.holder, metrics: d.metrics, log: d.log}
}

// Addr is the address the gRPC listener serves on.
func (d *Daemon) Addr() net.Addr { return d.lis.Addr() }

// MetricsAddr is the address of the HTTP listener, or nil when there is none.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.mlis == nil {
		return nil
	}
	return d.mlis.Addr()
}

// Policy returns the live configuration.
func (d *Daemon) Policy() *extproc.LoadedPolicy { return d.holder.Load() }

// Reload re-reads the configuration file now, as a change to it would, and swaps it in by
// atomic store when it loads; a file that does not load is logged with every problem and
// counted, and the last good configuration stays live. trigger names the cause in the log
// (`s3cors extproc` passes "SIGHUP"). Reloads are serialised; Reload may be called at any
// time, before, during or after Serve.
//
// With ConfigFrom there is no file: the control plane pushes every change, and Reload
// returns an error saying so.
func (d *Daemon) Reload(ctx context.Context, trigger string) ReloadResult {
	if d.xds != nil {
		d.log.LogAttrs(ctx, slog.LevelInfo, "reload asked for; the configuration comes from the control plane",
			slog.String("config_from", d.xds.addr), slog.String("trigger", trigger))
		return ReloadResult{Trigger: trigger, Err: errFromControlPlane}
	}
	return d.reloader.reload(ctx, trigger)
}

// Serve serves ext_proc until ctx is cancelled (the CLI cancels it on SIGINT and SIGTERM),
// then sets gRPC health to NOT_SERVING, waits ShutdownDelay, drains open streams for at most
// DrainTimeout, closes the listeners and returns nil. Meanwhile it watches the configuration
// file and reloads it when it changes (see [Daemon.Reload]). It returns an error if serving
// fails. Serve may be called once.
func (d *Daemon) Serve(ctx context.Context) error {
	if d.serveStarted.Swap(true) {
		return errors.New("extprocd: Serve called twice")
	}
	log, lis, mlis := d.log, d.lis, d.mlis
	defer func() { _ = lis.Close() }() // Serve closes it too; this covers early returns

	var ready atomic.Bool
	ready.Store(true)
	var hsrv *http.Server
	if mlis != nil {
		defer func() { _ = mlis.Close() }()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.Registry(), promhttp.HandlerOpts{Registry: d.metrics.Registry()}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
		hsrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()

	if d.xds != nil {
		wg.Go(d.xds.follow)
		defer d.xds.close() // before wg.Wait, which it ends
	} else {
		wg.Go(func() { d.watch(bg) })
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- d.grpc.Serve(lis) }()
	attrs := []slog.Attr{slog.String("listen", lis.Addr().String()), slog.String("config", d.path), slog.String("hash", d.holder.Load().Hash)}
	if hsrv != nil {
		go func() {
			if err := hsrv.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("extprocd: metrics server: %w", err)
			}
		}()
		attrs = append(attrs, slog.String("metrics_listen", mlis.Addr().String()))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "s3cors ext_proc serving", attrs...)

	var result error
	select {
	case <-ctx.Done():
		log.LogAttrs(bg, slog.LevelInfo, "shutting down: health NOT_SERVING, draining streams",
			slog.Duration("shutdown_delay", d.delay), slog.Duration("drain_timeout", d.drain))
	case err := <-serveErr:
		result = fmt.Errorf("extprocd: serving: %w", err)
		log.LogAttrs(bg, slog.LevelError, "serving failed; shutting down", slog.String("error", err.Error()))
	}

	ready.Store(false)
	d.health.Shutdown()
	if d.delay > 0 && result == nil {
		time.Sleep(d.delay)
	}
	stopped := make(chan struct{})
	go func() { d.grpc.GracefulStop(); close(stopped) }()
	drainTimer := time.NewTimer(d.drain)
	select {
	case <-stopped:
		drainTimer.Stop()
	case <-drainTimer.C:
		log.LogAttrs(bg, slog.LevelWarn, "drain timed out; cutting the streams still open", slog.Int64("streams", d.server.ActiveStreams()))
		d.grpc.Stop()
		<-stopped
	}
	stopBG()
	if hsrv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := hsrv.Shutdown(sctx); err != nil {
			_ = hsrv.Close()
		}
		cancel()
	}
	log.LogAttrs(bg, slog.LevelInfo, "s3cors ext_proc stopped")
	return result
}

// watch reloads the configuration file when it changes, until ctx ends.
func (d *Daemon) watch(ctx context.Context) {
	if err := d.reloader.watch(ctx); err != nil {
		d.log.LogAttrs(ctx, slog.LevelWarn, "cannot watch the configuration file; it reloads on SIGHUP only",
			slog.String("file", d.path), slog.String("error", err.Error()))
	}
}

// Run is [New] and [Daemon.Serve]: the whole process but for its signals, which the caller
// maps to ctx (SIGINT, SIGTERM) and to [Daemon.Reload] (SIGHUP), as `s3cors extproc` does.
func Run(ctx context.Context, opts Options) error {
	d, err := New(ctx, opts)
	if err != nil {
		return err
	}
	return d.Serve(ctx)
}
