package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// newProxy forwards to target keeping the request as the client sent it.
func newProxy(target *url.URL, logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			// Keep the client's Host: virtual-hosted addressing and SigV4 signatures depend
			// on it.
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("upstream unreachable", "upstream", target.String(), "error", err)
			markUnreachable(r)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("gateway: upstream unreachable\n"))
		},
	}
}

// MaxHeaderBytes bounds a request's header section, as Envoy's max_request_headers_kb (default
// 60 KiB) does.
const MaxHeaderBytes = 60 << 10

// Serve serves h on ln until ctx is done, then shuts the server down gracefully, giving
// in-flight requests up to grace to finish. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Envoy's default max_request_headers_kb, answered 431 as Envoy does. Go's own default
		// (1 MB) would let one request carry some 60,000 requested header names, each checked
		// against up to 100 rules (BENCHMARKS.md, hostile inputs).
		MaxHeaderBytes: MaxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
