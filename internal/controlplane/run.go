package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/s3cors/s3cors/evaluator"
)

// Default addresses: loopback, as every s3cors server.
const (
	DefaultListen    = "127.0.0.1:8090"  // the S3 API (PutBucketCors, ...)
	DefaultXDSListen = "127.0.0.1:18000" // ECDS for Envoy
)

// RunOptions configure Run: the control plane, its listeners and the plugin it serves.
type RunOptions struct {
	Options
	Plugin Plugin

	// Listen is the S3 API's address (default DefaultListen); Listener, when set, is used
	// instead (tests).
	Listen   string
	Listener net.Listener
	// XDSListen is the ECDS gRPC address (default DefaultXDSListen); XDSListener overrides.
	XDSListen   string
	XDSListener net.Listener
	// MetricsListen serves /metrics and /healthz ("" for none); MetricsListener overrides.
	MetricsListen   string
	MetricsListener net.Listener
	// Poll, when positive, is how often the stored state is re-read for changes other
	// replicas made (a shared store such as ObjectStore); 0 for a store of its own.
	Poll time.Duration
	// Ready, when set, is called once everything listens.
	Ready func(cp *ControlPlane)
}

// Run serves the S3 API, ECDS and metrics until ctx ends, then stops the servers (open xDS
// streams are cut: Envoys keep their last configuration and reconnect).
func Run(ctx context.Context, o RunOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		o.Logger = log
	}
	listen := func(l net.Listener, addr, def, what string) (net.Listener, error) {
		if l != nil {
			return l, nil
		}
		if addr == "" {
			addr = def
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("controlplane: %s listening on %q: %w", what, addr, err)
		}
		return l, nil
	}
	api, err := listen(o.Listener, o.Listen, DefaultListen, "S3 API")
	if err != nil {
		return err
	}
	defer func() { _ = api.Close() }() // Serve closes it too; this covers early returns
	xl, err := listen(o.XDSListener, o.XDSListen, DefaultXDSListen, "xDS")
	if err != nil {
		return err
	}
	defer func() { _ = xl.Close() }() // Serve closes it too; this covers early returns
	var ml net.Listener
	if o.MetricsListener != nil || o.MetricsListen != "" {
		if ml, err = listen(o.MetricsListener, o.MetricsListen, "", "metrics"); err != nil {
			return err
		}
		defer func() { _ = ml.Close() }() // Serve closes it too; this covers early returns
	}

	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	m := o.Metrics
	x := NewXDS(ctx, o.Plugin, m, log)
	var cp *ControlPlane
	push := o.Push
	o.Push = func(doc []byte, cfg *evaluator.Config, version uint64) {
		if err := x.Push(doc, cfg, version); err != nil {
			log.Error("xDS push failed", "version", version, "err", err)
			return
		}
		m.pushes.Inc()
		if push != nil {
			push(doc, cfg, version)
		}
	}
	cp, err = New(o.Options)
	if err != nil {
		return err
	}
	_, version := cp.Document()
	log.Info("control plane serving", "api", api.Addr().String(), "xds", xl.Addr().String(), "version", version, "buckets", len(cp.seedDigests))

	gs := grpc.NewServer(
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	x.Register(gs)
	hs := &http.Server{Handler: cp, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	errs := make(chan error, 3)
	go func() { errs <- gs.Serve(xl) }()
	go func() { errs <- hs.Serve(api) }()
	var ms *http.Server
	if ml != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(cp.metrics.Registry(), promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- ms.Serve(ml) }()
	}
	if o.Poll > 0 {
		go func() {
			tick := time.NewTicker(o.Poll)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if err := cp.Refresh(); err != nil {
						log.Warn("reading the shared state failed; serving the last one", "err", err)
					}
				}
			}
		}()
	}
	if o.Ready != nil {
		o.Ready(cp)
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if ms != nil {
		_ = ms.Shutdown(sctx)
	}
	gs.Stop()
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}
