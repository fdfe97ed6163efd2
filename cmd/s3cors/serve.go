package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/gateway"
	"github.com/s3cors/s3cors/internal/gateway/demo"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/wasmhost"
)

// embedded holds build/s3cors.wasm, copied to embedded/s3cors.wasm by `make build` (the
// Makefile's cli target). A binary built without it still runs with --wasm.
//
//go:embed embedded
var embedded embed.FS

// errNoEmbeddedModule says how to get a module when the binary has none.
var errNoEmbeddedModule = errors.New("this binary has no embedded s3cors.wasm: build it with `make build` (which copies build/s3cors.wasm into cmd/s3cors/embedded/) or pass --wasm build/s3cors.wasm")

func embeddedModule() ([]byte, error) {
	b, err := embedded.ReadFile("embedded/s3cors.wasm")
	if err != nil || len(b) == 0 {
		return nil, errNoEmbeddedModule
	}
	return b, nil
}

// shutdownGrace bounds how long in-flight requests may take to finish after SIGINT/SIGTERM.
const shutdownGrace = 10 * time.Second

type serveFlags struct {
	config, listen, upstream, wasm, profile, failurePolicy, demoListen, debugListen string
	logLevel, logFormat                                                             string
	workers                                                                         int
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE [--listen ADDR] [--upstream embedded|URL] [--debug-listen ADDR|off] [--demo-listen ADDR]",
		Short: "Run the local gateway: the s3cors wasm filter, as Envoy runs it, in front of a store",
		Long: `Serve runs the s3cors.wasm filter in wasmhost, an Envoy-faithful proxy-wasm host, in front of an
object store, and serves HTTP on --listen. The plugin configuration is the --config file (JSON,
or YAML converted to JSON). The module is the one embedded in this binary by ` + "`make build`" + `, or
--wasm.

--upstream embedded (the default) is a small in-memory S3-style store holding the buckets named
in the configuration (GET, PUT, HEAD, DELETE of objects, path-style and virtual-hosted
addressing, S3 XML errors). --upstream http://host:port forwards to any S3-compatible store,
keeping the client's Host header, request-target (path and query, byte for byte) and headers,
so signed requests stay valid and the store serves what the filter evaluated.

On --listen the gateway answers one endpoint itself, never through the filter:
  GET /healthz                200 "ok" while the filter can serve; 503 "unavailable: ..." once a
                              wasm VM has failed under fail-closed (its requests all get 503),
                              or under reload while replacing a failed VM fails too; 200
                              "ok: ..." naming the failure under fail-open and reload
It is answered only when the request cannot be for a bucket of the configuration: the Host is
not a virtual-hosted bucket host and the first path segment is not a listed bucket. List a
store bucket named healthz in the configuration to reach it.

--debug-listen (default 127.0.0.1:0, a free loopback port shown in the banner; "off" disables
it) serves /healthz and the debug endpoints, which show any bucket's rules and so are never on
--listen (there they are paths like any other, for the store):
  GET /debug/s3cors/stats     counters (answered at the proxy, reached the store, by method,
                              answered by a failed VM), failed VMs and the filter's metrics, JSON
  GET /debug/s3cors/explain   ?method=&url=&origin=[&request-method=][&request-headers=],
                              the JSON of ` + "`s3cors explain`" + `
Keep it on loopback: give it a non-loopback address only on a network you trust.

--demo-listen serves a demo page on a second origin that plays S3's two CORS scenarios (a site
uploading to its bucket, a web font) against the gateway, and asks the debug listener why a
request failed; it seeds hello.txt and pixel.ttf into every bucket of the embedded store.

Each request is logged (method, host, path, query_keys, origin, status, answered_by
proxy|upstream|gateway|failed_vm, duration) to stderr; failed_vm is the 503 of a VM that has
failed, not the filter's answer (with store_status when the store had answered before the VM
failed: its answer was replaced, but a PUT may have been stored). The path is logged without its query and query_keys lists the
parameter names only: a presigned URL's credentials never reach the log. SIGINT or SIGTERM
shuts down gracefully.`,
		Example: `  s3cors serve --config testdata/demo/config.json --debug-listen 127.0.0.1:8082 --demo-listen 127.0.0.1:8081
  s3cors serve --config cors.yaml --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9000 --workers 2`,
		Args: exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "s3cors configuration file, JSON or YAML (required)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to serve the gateway on")
	fl.StringVar(&f.upstream, "upstream", "embedded", `"embedded" (in-memory store) or the URL of an S3-compatible store`)
	fl.StringVar(&f.wasm, "wasm", "", "s3cors.wasm to run instead of the embedded one")
	fl.StringVar(&f.profile, "envoy-profile", string(wasmhost.Envoy133), "Envoy release line the host reproduces: envoy-1.33 (Envoy 1.33 to 1.38) or envoy-1.39 (1.39 and later); envoy-1.34 to envoy-1.38 select envoy-1.33, envoy-1.40 and later envoy-1.39")
	fl.IntVar(&f.workers, "workers", 1, "wasm VMs, as Envoy's --concurrency")
	fl.StringVar(&f.failurePolicy, "failure-policy", "fail-closed", "after a VM failure: fail-closed (503), fail-open (pass through) or reload (new VM)")
	fl.StringVar(&f.debugListen, "debug-listen", "127.0.0.1:0", `address of the debug endpoints (stats, explain), loopback by default, or "off"`)
	fl.StringVar(&f.demoListen, "demo-listen", "", "also serve the demo page on this address, e.g. 127.0.0.1:8081")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func parseFailurePolicy(s string) (wasmhost.FailurePolicy, error) {
	switch s {
	case "fail-closed":
		return wasmhost.FailClosed, nil
	case "fail-open":
		return wasmhost.FailOpen, nil
	case "reload":
		return wasmhost.FailReload, nil
	}
	return 0, usageErrorf("serve: --failure-policy %q: want fail-closed, fail-open or reload", s)
}

// newLogger is the logger of the command named cmd (serve, extproc), which prefixes its flag
// errors.
func newLogger(w io.Writer, cmd, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("%s: --log-level %q: want debug, info, warn or error", cmd, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("%s: --log-format %q: want text or json", cmd, format)
}

func serve(ctx context.Context, f serveFlags, stdout, stderr io.Writer) error {
	if f.config == "" {
		return usageErrorf("serve: --config is required")
	}
	if f.workers < 1 {
		return usageErrorf("serve: --workers %d: want at least 1", f.workers)
	}
	profile, err := wasmhost.ParseProfile(f.profile)
	if err != nil {
		return usageErrorf("serve: --envoy-profile: %w", err) // the error quotes the value
	}
	policy, err := parseFailurePolicy(f.failurePolicy)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, "serve", f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if string(profile) != f.profile {
		logger.Info("envoy profile resolved", "requested", f.profile, "profile", string(profile))
	}
	pol, doc, err := loadPolicy(f.config)
	if err != nil {
		return err
	}
	cfg := pol.Config()

	var module []byte
	if f.wasm != "" {
		if module, err = os.ReadFile(f.wasm); err != nil {
			return fmt.Errorf("serve: --wasm: %w", err)
		}
	} else if module, err = embeddedModule(); err != nil {
		return err
	}

	var (
		upstream     http.Handler
		store        *s3mem.Store
		upstreamDesc string
		storeStats   func() any
	)
	if f.upstream == "embedded" {
		store = s3mem.New(s3mem.Options{
			Buckets:             cfg.BucketOrder,
			VirtualHostSuffixes: cfg.Addressing.VirtualHostSuffixes,
			PathStyle:           cfg.Addressing.PathStyle,
		})
		upstream = store
		storeStats = func() any { return store.Stats() }
		upstreamDesc = "embedded in-memory store, buckets " + strings.Join(cfg.BucketOrder, ", ")
	} else {
		u, err := url.Parse(f.upstream)
		if err != nil {
			return usageErrorf("serve: --upstream %q: %w", gateway.RedactURL(f.upstream), upstreamParseError(f.upstream, err))
		}
		if upstream, err = gateway.ProxyTo(u, logger); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		upstreamDesc = u.String()
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("serve: --listen: %w", err)
	}
	defer func() { _ = ln.Close() }() // already closed by a clean shutdown
	gwURL := "http://" + browsable(ln.Addr())

	var debugLn net.Listener
	debugURL := ""
	if f.debugListen != "off" {
		if debugLn, err = net.Listen("tcp", f.debugListen); err != nil {
			return fmt.Errorf("serve: --debug-listen: %w", err)
		}
		defer func() { _ = debugLn.Close() }()
		debugURL = "http://" + browsable(debugLn.Addr())
	}

	var demoLn net.Listener
	demoOrigin := ""
	if f.demoListen != "" {
		if demoLn, err = net.Listen("tcp", f.demoListen); err != nil {
			return fmt.Errorf("serve: --demo-listen: %w", err)
		}
		defer func() { _ = demoLn.Close() }()
		demoOrigin = "http://" + browsable(demoLn.Addr())
		if store != nil {
			if err := demo.Seed(store.Put, cfg.BucketOrder); err != nil {
				return err
			}
		}
	}

	gw, err := gateway.New(ctx, gateway.Options{
		Config:        doc,
		Module:        module,
		Profile:       profile,
		Workers:       f.workers,
		FailurePolicy: policy,
		Upstream:      upstream,
		UpstreamStats: storeStats,
		DemoOrigin:    demoOrigin,
		Logger:        logger,
		// The filter's own level follows --log-level (Envoy's names are the same but warning).
		FilterLogLevel: filterLevel(f.logLevel),
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := gw.Close(cctx); err != nil {
			logger.Error("closing the gateway", "error", err)
		}
	}()

	printBanner(stdout, bannerInfo{
		configPath: f.config, gateway: gwURL, debug: debugURL, demo: demoOrigin, upstream: upstreamDesc,
		profile: profile, workers: f.workers, policy: pol,
	})
	if demoOrigin != "" && !originAllowedSomewhere(pol, demoOrigin) {
		logger.Warn("no rule of the configuration allows the demo page's origin: every action of the page will be blocked; use testdata/demo/config.json with --demo-listen 127.0.0.1:8081", "origin", demoOrigin)
	}
	if demoOrigin != "" && debugURL == "" {
		logger.Warn("--debug-listen is off: the demo page cannot ask the explain endpoint why a request failed")
	}
	logger.Info("serving", "gateway", gwURL, "debug", debugURL, "demo", demoOrigin, "upstream", upstreamDesc, "profile", string(profile), "workers", f.workers, "failure_policy", f.failurePolicy)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	servers := 1
	go func() { errc <- gateway.Serve(sctx, ln, gw, shutdownGrace) }()
	if debugLn != nil {
		servers++
		go func() { errc <- gateway.Serve(sctx, debugLn, gw.Debug(), shutdownGrace) }()
	}
	if demoLn != nil {
		servers++
		go func() { errc <- gateway.Serve(sctx, demoLn, demo.Handler(gwURL, debugURL), shutdownGrace) }()
	}
	var first error
	for range servers {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one server failed: stop the other
		}
	}
	st := gw.Stats()
	logger.Info("stopped", "requests", st.Requests, "answered_at_proxy", st.AnsweredAtProxy, "reached_upstream", st.ReachedUpstream, "answered_by_failed_vm", st.AnsweredByFailedVM)
	if first != nil {
		return fmt.Errorf("serve: %w", first)
	}
	return nil
}

// upstreamParseError is url.Parse's error about raw, without the URL (the message shows the
// redacted one) and without any piece of a password: an error in the user:password@ part
// (an invalid escape quotes it) is reported from the redacted value, which has none.
func upstreamParseError(raw string, err error) error {
	if shown := gateway.RedactURL(raw); shown != raw {
		if _, rerr := url.Parse(shown); rerr != nil {
			err = rerr
		} else {
			return errors.New("invalid user:password@ part (and credentials in the URL are not supported: S3 requests carry their own signature)")
		}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err // its message repeats the URL
	}
	return err
}

func filterLevel(level string) wasmhost.LogLevel {
	if l, err := wasmhost.ParseLogLevel(level); err == nil {
		return l
	}
	return wasmhost.LevelDefault
}

// browsable is the listener's address as a browser on this machine reaches it: a wildcard
// host becomes 127.0.0.1.
func browsable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// originAllowedSomewhere reports whether a rule of a listed bucket names origin (a simple GET
// from it gets the origin echoed back); rules open to * do not count, since the demo's uploads
// need a rule for the page.
func originAllowedSomewhere(pol *evaluator.Policy, origin string) bool {
	cfg := pol.Config()
	for _, b := range cfg.BucketOrder {
		auth, path := addressFor(cfg, b, demo.HelloKey)
		var d evaluator.Decision
		pol.Evaluate(&evaluator.Request{Method: http.MethodGet, Authority: auth, Path: path, Origin: origin, HasOrigin: true}, &d)
		if d.Outcome != evaluator.Decorate {
			continue
		}
		for _, h := range d.Headers {
			if h.Name == "Access-Control-Allow-Origin" && h.Value == origin {
				return true
			}
		}
	}
	return false
}
