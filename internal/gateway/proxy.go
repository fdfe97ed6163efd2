package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// RedactURL returns raw, a URL as given on a command line (it need not parse), with the
// password of its user:password@ part replaced by "xxxxx", as url.URL.Redacted does for a URL
// that parses. It is for error messages and logs: it also covers a value url.Parse refuses and
// one without a scheme ("user:pass@host", which parses as an opaque URL that Redacted shows
// as is).
func RedactURL(raw string) string {
	prefix, rest := "", raw
	// A scheme counts only before anything that ends the authority: "://" in a query is not.
	if i := strings.Index(raw, "://"); i >= 0 && !strings.ContainsAny(raw[:i], "/?#@") {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return raw
	}
	return prefix + user + ":xxxxx" + rest[at:]
}

// ProxyTo returns a handler that forwards requests to an S3-compatible endpoint unchanged:
// same method, Host header, request-target (path and query byte for byte, as received) and
// headers, so that signed requests stay valid and the store serves what the filter evaluated.
// Only the scheme and address of the connection change. Failures to reach it, and the rare
// target Go's client cannot write unchanged ("//" followed by a byte it would escape, such as
// '|'), are answered 502 and logged to logger (nil discards them).
func ProxyTo(target *url.URL, logger *slog.Logger) (http.Handler, error) {
	if target.Scheme != "http" && target.Scheme != "https" || target.Host == "" {
		return nil, fmt.Errorf("gateway: upstream %q: want http://host[:port] or https://host[:port]", RedactURL(target.String()))
	}
	if target.Path != "" && target.Path != "/" {
		return nil, fmt.Errorf("gateway: upstream %q: a path prefix is not supported (S3 paths name buckets)", RedactURL(target.String()))
	}
	if target.User != nil {
		// Each S3 request carries its own signature; credentials in the URL would go unused
		// and end up in the log's upstream field.
		return nil, fmt.Errorf("gateway: upstream %q: credentials in the URL are not supported (S3 requests carry their own signature)", RedactURL(target.String()))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return newProxy(target, logger), nil
}

// newProxy forwards to target keeping the request as the client sent it.
func newProxy(target *url.URL, logger *slog.Logger) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = forwardURL(target, pr.In)
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := forwardURL(target, r); u.RequestURI() != requestTarget(r) {
			// Go's client cannot write this target unchanged; forwarding another would let
			// the store serve something other than what the filter evaluated.
			logger.Warn("request target cannot be forwarded unchanged", "target", requestTarget(r))
			markUnreachable(r)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("gateway: request target cannot be forwarded unchanged\n"))
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// requestTarget is r's request-target as received (through wasmhost: the :path the filter
// passed on).
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI() // a request built in-process
}

// forwardURL is the URL whose request line carries r's request-target byte for byte, sent to
// target. Go's client writes URL.RequestURI(): from Opaque as is, except that an Opaque
// starting with "//" gains the scheme; from Path/RawPath re-encoded when RawPath holds a byte
// Go would escape ('|', '#', '"', non-ASCII). So the target goes in Opaque, or in
// Path/RawPath when it starts with "//". The query is RawQuery as sent: ReverseProxy's
// re-encoding of a query with ';' is undone.
func forwardURL(target *url.URL, r *http.Request) *url.URL {
	raw := requestTarget(r)
	path, query, hasQuery := strings.Cut(raw, "?")
	u := &url.URL{Scheme: target.Scheme, Host: target.Host, RawQuery: query, ForceQuery: hasQuery && query == ""}
	if !strings.HasPrefix(path, "//") {
		u.Opaque = path
		return u
	}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path, u.RawPath = p, path
	}
	return u
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
