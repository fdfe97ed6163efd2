package extproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
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

// Options configures [Run]. Only ConfigPath is required.
type Options struct {
	// ConfigPath is the s3cors configuration file, JSON or YAML (see [LoadConfigFile]). It is
	// reloaded when it changes and on SIGHUP.
	ConfigPath string
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

	// Tests only.
	reloadDebounce time.Duration
	onReload       func(reloadResult)
	onServing      func(*running)
}

// running is what Run has started, for tests.
type running struct {
	grpcAddr, metricsAddr net.Addr
	holder                *PolicyHolder
	metrics               *Metrics
	health                *health.Server
}

// ConfigLoadError is [Run]'s error when the configuration file does not load at startup. Run
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

// loadInitial loads the configuration Run starts with. A failure is logged as the reload
// refusal is (one structured record, problems as a list), because it is the same event seen at
// a different time: a ConfigMap broken while the pod restarts. The process then exits before
// serving metrics, so no s3cors_* series can report it; docs/deploy.md gives the alert that
// does.
func loadInitial(ctx context.Context, log *slog.Logger, path string) (*LoadedPolicy, error) {
	data, err := os.ReadFile(path)
	reason := reloadInvalid
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason, err = reloadMissing, fmt.Errorf("extproc: reading config: %w", err)
	case err != nil:
		reason, err = reloadUnreadable, fmt.Errorf("extproc: reading config: %w", err)
	}
	var live *LoadedPolicy
	if err == nil {
		live, err = LoadConfig(path, data)
	}
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "configuration refused; not starting",
			appendLoadError([]slog.Attr{slog.String("file", path), slog.String("reason", reason)}, err)...)
		return nil, &ConfigLoadError{Path: path, Reason: reason, Err: err}
	}
	return live, nil
}

// Run serves ext_proc until ctx is cancelled (the CLI cancels it on SIGINT and SIGTERM), then
// sets gRPC health to NOT_SERVING, waits ShutdownDelay, drains open streams for at most
// DrainTimeout and returns nil. It reloads the configuration when the file changes and on
// SIGHUP; a file that fails to load is logged with every problem and counted, and the last
// good configuration stays live.
//
// Run returns an error, without serving, when the initial configuration does not load (a
// [*ConfigLoadError], already logged; its message lists every problem) or a listener cannot be
// opened; and an error if serving fails.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ConfigPath == "" {
		return errors.New("extproc: no configuration file given")
	}
	drain := opts.DrainTimeout
	switch {
	case drain < 0:
		return fmt.Errorf("extproc: Options.DrainTimeout %s: want a positive duration (0 for the default %s)", drain, DefaultDrainTimeout)
	case drain == 0:
		drain = DefaultDrainTimeout
	}
	if opts.ShutdownDelay < 0 {
		return fmt.Errorf("extproc: Options.ShutdownDelay %s: want a duration of 0 or more", opts.ShutdownDelay)
	}

	live, err := loadInitial(ctx, log, opts.ConfigPath)
	if err != nil {
		return err
	}
	holder := NewPolicyHolder(live)
	metrics := NewMetrics()
	metrics.configLoaded(live, false)

	lis := opts.Listener
	if lis == nil {
		addr := opts.Listen
		if addr == "" {
			addr = DefaultListen
		}
		if lis, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("extproc: listening on %q: %w", addr, err)
		}
	}
	defer func() { _ = lis.Close() }() // Serve closes it too; this covers early returns
	mlis := opts.MetricsListener
	if mlis == nil && opts.MetricsListen != "" {
		if mlis, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			return fmt.Errorf("extproc: metrics listening on %q: %w", opts.MetricsListen, err)
		}
	}

	gs := grpc.NewServer(
		// The server's answers are already protobuf bytes; the codec sends them as they are.
		ServerCodecOption(),
		// Envoy may be configured with HTTP/2 keepalive pings on the ext_proc cluster; the
		// default policy would answer pings more frequent than 5 minutes with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	srv := NewServer(holder, ServerOptions{Logger: log, Metrics: metrics})
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)

	var ready atomic.Bool
	ready.Store(true)
	var hsrv *http.Server
	if mlis != nil {
		defer func() { _ = mlis.Close() }()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry(), promhttp.HandlerOpts{Registry: metrics.Registry()}))
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

	rl := &reloader{path: opts.ConfigPath, holder: holder, metrics: metrics, log: log, debounce: opts.reloadDebounce, onResult: opts.onReload}
	wg.Go(func() {
		if err := rl.watch(bg); err != nil {
			log.LogAttrs(bg, slog.LevelWarn, "cannot watch the configuration file; it reloads on SIGHUP only",
				slog.String("file", opts.ConfigPath), slog.String("error", err.Error()))
		}
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-bg.Done():
				return
			case <-hup:
				rl.reload(bg, "SIGHUP")
			}
		}
	})

	serveErr := make(chan error, 2)
	go func() { serveErr <- gs.Serve(lis) }()
	attrs := []slog.Attr{slog.String("listen", lis.Addr().String()), slog.String("config", opts.ConfigPath), slog.String("hash", live.Hash)}
	if hsrv != nil {
		go func() {
			if err := hsrv.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("extproc: metrics server: %w", err)
			}
		}()
		attrs = append(attrs, slog.String("metrics_listen", mlis.Addr().String()))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "s3cors ext_proc serving", attrs...)
	if opts.onServing != nil {
		var maddr net.Addr
		if mlis != nil {
			maddr = mlis.Addr()
		}
		opts.onServing(&running{grpcAddr: lis.Addr(), metricsAddr: maddr, holder: holder, metrics: metrics, health: hs})
	}

	var result error
	select {
	case <-ctx.Done():
		log.LogAttrs(bg, slog.LevelInfo, "shutting down: health NOT_SERVING, draining streams",
			slog.Duration("shutdown_delay", opts.ShutdownDelay), slog.Duration("drain_timeout", drain))
	case err := <-serveErr:
		result = fmt.Errorf("extproc: serving: %w", err)
		log.LogAttrs(bg, slog.LevelError, "serving failed; shutting down", slog.String("error", err.Error()))
	}

	ready.Store(false)
	hs.Shutdown()
	if opts.ShutdownDelay > 0 && result == nil {
		time.Sleep(opts.ShutdownDelay)
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	drainTimer := time.NewTimer(drain)
	select {
	case <-stopped:
		drainTimer.Stop()
	case <-drainTimer.C:
		log.LogAttrs(bg, slog.LevelWarn, "drain timed out; cutting the streams still open", slog.Int64("streams", srv.ActiveStreams()))
		gs.Stop()
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
