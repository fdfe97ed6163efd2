package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Handler returns an http.Handler that runs each request through the plugin as Envoy's HTTP
// connection manager would, with upstream as the router's destination: request headers, body
// and trailers go through the plugin to upstream; upstream's response headers, body and
// trailers come back through it; a local reply is written to the client instead. Bodies are
// streamed in both directions and reach the other side byte for byte unless the plugin changes
// them. Hop-by-hop headers are dropped as Envoy drops them.
//
// # Notes
//
//   - A plugin that stops a stream and continues it later (from on_tick) is waited for up to
//     Options.StreamIdleTimeout; then the client gets Envoy's 408 "stream timeout".
//   - Envoy's own request headers (x-request-id, x-forwarded-proto, x-envoy-*) are not added:
//     a request the plugin does not touch reaches upstream unchanged. Its response headers
//     server and x-envoy-upstream-service-time are added with Options.EnvoyHeaders; Date is
//     net/http's.
//   - A repeated O(1) header (Origin, Vary, Access-Control-*, Content-Type, ...) reaches the
//     plugin, upstream and the client folded into one line, as Envoy's header maps hold it.
//   - A 400 local reply to an HTTP/1 request closes the connection with "Connection: close".
//   - A failure inside the host itself is answered 500 and logged; the plugin's failures follow
//     Options.FailurePolicy (503 "wasm_fail_stream" when failing closed).
func (h *Host) Handler(upstream http.Handler) http.Handler {
	return &handler{host: h, upstream: upstream}
}

type handler struct {
	host     *Host
	upstream http.Handler
}

// Details receives the response code details of a request Handler serves, as Envoy's access
// log has them (%RESPONSE_CODE_DETAILS%): a local reply's details (the plugin's own, or
// "wasm_fail_stream" when a failed VM fails the stream closed), "stream_idle_timeout" for the
// 408, or "via_upstream" when the upstream's response went to the client. Empty until the
// answer is written. Read it after ServeHTTP returns.
type Details struct{ s string }

func (d *Details) String() string { return d.s }

type detailsKey struct{}

// WithDetails returns ctx carrying d: Handler records the details of a request made with it
// in d, so that the caller can tell who answered without guessing from the status.
func WithDetails(ctx context.Context, d *Details) context.Context {
	return context.WithValue(ctx, detailsKey{}, d)
}

// setDetails records v for the request, when its caller asked (WithDetails).
func (x *exchange) setDetails(v string) {
	if d, ok := x.r.Context().Value(detailsKey{}).(*Details); ok {
		d.s = v
	}
}

// errLocalReply and friends end the upstream's reads and writes once the stream is over.
var (
	errLocalReply    = errors.New("wasmhost: the stream was answered locally")
	errStreamReset   = errors.New("wasmhost: the stream was reset")
	errStreamTimeout = errors.New("wasmhost: the plugin held the stream past the stream idle timeout")
)

// hopByHop are the connection-specific headers Envoy's codecs and connection manager remove.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true,
}

// exchange is the state of one request through the handler.
type exchange struct {
	host  *Host
	s     *Stream
	w     http.ResponseWriter
	r     *http.Request
	reply *Reply // a local reply waiting to be written
	reset bool
	// timeout: the plugin held the stream past the idle timeout.
	timeout bool
	// wrote: response headers went to the client.
	wrote bool
	// upstreamStart is when the request went to upstream.
	upstreamStart time.Time
}

func (hd *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{host: hd.host, w: w, r: r}
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			hd.host.logf(LevelError, SourceHost, "handler", "wasmhost: internal error serving %s %q: %v", r.Method, r.URL.Path, p)
			if !x.wrote {
				x.writeStatus(http.StatusInternalServerError, "wasmhost internal error")
				return
			}
			panic(http.ErrAbortHandler)
		}
	}()
	x.s = hd.host.NewStream()
	defer x.s.Done()

	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	res := x.s.RequestHeaders(requestHeaders(r), !hasBody)
	if res.Action == Stop {
		res = x.wait()
	}
	switch res.Action {
	case Replied:
		x.writeReply(res.Reply)
		return
	case Reset:
		panic(http.ErrAbortHandler)
	case Stop:
		x.writeTimeout()
		return
	}
	upReq, err := upstreamRequest(r, res.Headers)
	if err != nil {
		// The plugin left headers no HTTP request can be built from; Envoy's router would
		// answer such a request locally too.
		hd.host.logf(LevelWarn, SourceHost, "handler", "%v", err)
		x.writeStatus(http.StatusBadRequest, "Bad Request")
		return
	}
	body := &filterBody{x: x, req: upReq, released: res.Body, eof: res.EndOfStream, remaining: r.ContentLength}
	if hasBody {
		body.src = r.Body
		body.chunk = make([]byte, 64<<10)
	} else {
		body.eof = true
	}
	upReq.Body = body
	fw := &filterWriter{x: x, header: http.Header{}, contentLength: -1}
	x.upstreamStart = time.Now()
	hd.upstream.ServeHTTP(fw, upReq)
	fw.finish()

	switch {
	case x.reply != nil && !x.wrote:
		x.writeReply(x.reply)
	case x.timeout && !x.wrote:
		x.writeTimeout()
	case x.reset || x.reply != nil || x.timeout:
		panic(http.ErrAbortHandler)
	}
}

// wait waits for the plugin to continue a stopped stream, at most StreamIdleTimeout.
func (x *exchange) wait() Result {
	ctx, cancel := context.WithTimeout(x.r.Context(), x.host.opts.StreamIdleTimeout)
	defer cancel()
	return x.s.Wait(ctx)
}

func (x *exchange) writeStatus(code int, body string) {
	x.wrote = true
	x.w.Header().Set("Content-Type", "text/plain")
	x.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	x.writeHead(code, true)
	_, _ = io.WriteString(x.w, body)
}

// writeHead sends the response headers with what Envoy's connection manager adds after the
// filters: "Server: envoy" with Options.EnvoyHeaders (server_header_transformation
// OVERWRITE), and, for a 400 local reply to an HTTP/1 request, "Connection: close" and the
// connection closed (onLocalReply; the plugin's own Connection header never reaches the
// client, as hop-by-hop headers do not). Date is net/http's, as Envoy's is its own. Over
// HTTP/2 no content-length is made up for a response whose headers have none.
func (x *exchange) writeHead(code int, local bool) {
	if x.host.opts.EnvoyHeaders {
		x.w.Header().Set("Server", "envoy")
	}
	if code == http.StatusBadRequest && x.r.ProtoMajor == 1 && local {
		x.w.Header().Set("Connection", "close")
	}
	if _, ok := x.w.Header()["Content-Length"]; !ok && x.r.ProtoMajor == 2 {
		// Envoy's HTTP/2 codec sends the header map as it is; net/http's would add a
		// content-length (0 for a reply without a body) unless the key is there.
		x.w.Header()["Content-Length"] = nil
	}
	x.w.WriteHeader(code)
}

// writeTimeout is Envoy's stream idle timeout reply (408 "stream timeout").
func (x *exchange) writeTimeout() {
	x.host.logf(LevelWarn, SourceHost, "handler", "stream %d: the plugin held it for %v; answering 408 stream timeout", x.s.ID(), x.host.opts.StreamIdleTimeout)
	x.setDetails("stream_idle_timeout")
	x.writeStatus(http.StatusRequestTimeout, "stream timeout")
}

func (x *exchange) writeReply(rep *Reply) {
	x.setDetails(rep.Details)
	x.wrote = true
	writeHeaders(x.w.Header(), rep.Headers)
	x.writeHead(rep.Status, true)
	if len(rep.Body) > 0 && x.r.Method != http.MethodHead {
		_, _ = x.w.Write(rep.Body)
	}
}

// requestHeaders builds the request header map an Envoy codec would: pseudo-headers, then the
// request's headers with lower-case names, hop-by-hop ones removed. Go does not keep the wire
// order of headers, so they are sorted by name.
func requestHeaders(r *http.Request) Headers {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if path == "" || !strings.HasPrefix(path, "/") && path != "*" {
		path = r.URL.RequestURI()
	}
	h := Headers{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", scheme}}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := lowerASCII(k)
		if hopByHop[lk] || lk == "host" || (lk == "expect" && strings.EqualFold(r.Header.Get(k), "100-continue")) {
			continue
		}
		for _, v := range r.Header[k] {
			h = append(h, [2]string{lk, v})
		}
	}
	if r.ContentLength > 0 && r.Header.Get("Content-Length") == "" {
		h = append(h, [2]string{"content-length", strconv.FormatInt(r.ContentLength, 10)})
	}
	return h
}

// upstreamRequest builds the request upstream sees from the headers the plugin passed on.
func upstreamRequest(r *http.Request, h Headers) (*http.Request, error) {
	up := r.Clone(r.Context())
	up.Header = http.Header{}
	up.Trailer = nil
	up.ContentLength = -1
	var method, path, authority string
	for _, kv := range h {
		switch kv[0] {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority":
			authority = kv[1]
		case ":scheme":
		default:
			if strings.HasPrefix(kv[0], ":") {
				continue
			}
			up.Header.Add(kv[0], kv[1])
		}
	}
	if method == "" || path == "" {
		return nil, fmt.Errorf("wasmhost: the plugin passed on request headers without :method or :path (%q, %q)", method, path)
	}
	u, err := url.ParseRequestURI(path)
	if err != nil && path != "*" {
		return nil, fmt.Errorf("wasmhost: the plugin passed on :path %q: %w", path, err)
	}
	if u != nil {
		up.URL.Path, up.URL.RawPath, up.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	}
	up.Method, up.RequestURI, up.Host = method, path, authority
	if cl := up.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			up.ContentLength = n
		}
	}
	if up.ContentLength < 0 && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		up.ContentLength = 0
	}
	return up, nil
}

// writeHeaders copies a header map (without pseudo-headers and hop-by-hop headers) into h.
func writeHeaders(dst http.Header, h Headers) {
	for _, kv := range h {
		if strings.HasPrefix(kv[0], ":") || hopByHop[kv[0]] {
			continue
		}
		dst.Add(kv[0], kv[1])
	}
}

// filterBody is the request body upstream reads: client data pulled through the plugin.
type filterBody struct {
	x         *exchange
	req       *http.Request
	src       io.ReadCloser
	chunk     []byte
	released  []byte
	eof       bool
	err       error
	remaining int64
	sawEOS    bool
}

func (b *filterBody) Read(p []byte) (int, error) {
	for len(b.released) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.eof {
			return 0, io.EOF
		}
		b.pull()
	}
	n := copy(p, b.released)
	b.released = b.released[n:]
	return n, nil
}

func (b *filterBody) Close() error {
	if b.src != nil {
		return b.src.Close()
	}
	return nil
}

// pull reads one chunk from the client and runs it through the plugin.
func (b *filterBody) pull() {
	s := b.x.s
	if b.sawEOS {
		// Everything was delivered; the plugin still holds data: wait for it.
		b.apply(b.x.wait(), true)
		return
	}
	n, err := b.src.Read(b.chunk)
	if err != nil && err != io.EOF {
		// The client went away: Envoy resets the stream.
		b.err = err
		b.x.reset = true
		return
	}
	data := append([]byte(nil), b.chunk[:n]...)
	eos := err == io.EOF
	if b.remaining > 0 {
		b.remaining -= int64(n)
		if b.remaining <= 0 {
			eos = true
		}
	}
	if !eos && n == 0 {
		return
	}
	if eos {
		b.sawEOS = true
		trailers := requestTrailers(b.x.r)
		if trailers != nil {
			if n > 0 {
				if !b.apply(s.RequestBody(data, false), false) {
					return
				}
			}
			b.apply(s.RequestTrailers(trailers), true)
			return
		}
	}
	b.apply(s.RequestBody(data, eos), eos)
}

// apply takes what a step released; it returns false when the stream is over.
func (b *filterBody) apply(res Result, last bool) bool {
	switch res.Action {
	case Replied:
		b.x.reply = res.Reply
		b.err = errLocalReply
		return false
	case Reset:
		b.x.reset = true
		b.err = errStreamReset
		return false
	case Stop:
		if last && res.Body == nil && !res.EndOfStream {
			res = b.x.wait()
			if res.Action == Stop {
				b.x.timeout = true
				b.err = errStreamTimeout
				return false
			}
			return b.apply(res, last)
		}
	}
	b.released = append(b.released, res.Body...)
	if res.Trailers != nil {
		b.req.Trailer = http.Header{}
		writeHeaders(b.req.Trailer, res.Trailers)
	}
	if res.EndOfStream || (last && res.Action == Continue) {
		b.eof = true
	}
	return true
}

// requestTrailers returns the client's trailers (after its body was read), or nil.
func requestTrailers(r *http.Request) Headers {
	var h Headers
	keys := make([]string, 0, len(r.Trailer))
	for k := range r.Trailer {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Trailer[k] {
			h = append(h, [2]string{lowerASCII(k), v})
		}
	}
	return h
}

// filterWriter is the ResponseWriter upstream writes to: its response goes through the plugin
// to the client.
type filterWriter struct {
	x             *exchange
	header        http.Header
	status        int
	headersDone   bool
	contentLength int64
	written       int64
	eosSent       bool
	over          bool // the stream ended (reply, reset, timeout): upstream output is dropped
}

func (fw *filterWriter) Header() http.Header { return fw.header }

func (fw *filterWriter) WriteHeader(code int) {
	if fw.headersDone || fw.over {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// 1xx headers pass Envoy's wasm filter without a callback (encode1xxHeaders).
		writeHeaders(fw.x.w.Header(), responseHeaders(code, fw.header))
		fw.x.w.WriteHeader(code)
		return
	}
	if fw.status == 0 {
		fw.status = code
	}
}

func (fw *filterWriter) Write(p []byte) (int, error) {
	if fw.over || fw.x.reply != nil || fw.x.reset || fw.x.timeout {
		fw.over = true
		return 0, errLocalReply
	}
	if !fw.headersDone && !fw.sendHeaders(false) {
		return 0, errLocalReply
	}
	if fw.eosSent {
		return 0, errors.New("wasmhost: response body written after the end of the stream")
	}
	eos := fw.contentLength >= 0 && fw.written+int64(len(p)) >= fw.contentLength
	fw.written += int64(len(p))
	if !fw.apply(fw.x.s.ResponseBody(p, eos), eos) {
		return 0, errLocalReply
	}
	return len(p), nil
}

// Flush sends what the plugin released so far.
func (fw *filterWriter) Flush() {
	if fw.over {
		return
	}
	if !fw.headersDone && !fw.sendHeaders(false) {
		return
	}
	if f, ok := fw.x.w.(http.Flusher); ok && fw.x.wrote {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's ResponseWriter.
func (fw *filterWriter) Unwrap() http.ResponseWriter { return fw.x.w }

// sendHeaders runs the response headers through the plugin.
func (fw *filterWriter) sendHeaders(eos bool) bool {
	fw.headersDone = true
	if fw.status == 0 {
		fw.status = http.StatusOK
	}
	h := responseHeaders(fw.status, fw.header)
	if fw.x.host.opts.EnvoyHeaders {
		// The router's, before the filters see the response (an upstream's own is replaced).
		m := &headerMap{h: h, inline: inlineResponse}
		m.set("x-envoy-upstream-service-time", strconv.FormatInt(time.Since(fw.x.upstreamStart).Milliseconds(), 10))
		h = m.h
	}
	if v, ok := h.Get("content-length"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			fw.contentLength = n
		}
	}
	return fw.apply(fw.x.s.ResponseHeaders(h, eos), eos)
}

// finish ends the response once upstream returned.
func (fw *filterWriter) finish() {
	if fw.over || fw.x.reply != nil || fw.x.reset || fw.x.timeout {
		return
	}
	trailers := responseTrailers(fw.header)
	if !fw.headersDone {
		if !fw.sendHeaders(trailers == nil) || trailers == nil {
			return
		}
	}
	if fw.eosSent {
		return
	}
	if trailers != nil {
		fw.apply(fw.x.s.ResponseTrailers(trailers), true)
		return
	}
	fw.apply(fw.x.s.ResponseBody(nil, true), true)
}

// apply writes what a response step released to the client; false when the stream is over.
func (fw *filterWriter) apply(res Result, last bool) bool {
	x := fw.x
	switch res.Action {
	case Replied:
		x.reply = res.Reply
		fw.over = true
		return false
	case Reset:
		x.reset = true
		fw.over = true
		return false
	case Stop:
		if last {
			res = x.wait()
			if res.Action == Stop {
				x.timeout = true
				fw.over = true
				return false
			}
			return fw.apply(res, last)
		}
		return true
	}
	if res.Headers != nil && !x.wrote {
		x.wrote = true
		x.setDetails("via_upstream")
		status := fw.status
		if v, ok := res.Headers.Get(":status"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				status = n
			}
		}
		writeHeaders(x.w.Header(), res.Headers)
		if _, ok := res.Headers.Get("content-type"); !ok {
			// net/http would sniff one; Envoy sends none.
			x.w.Header()["Content-Type"] = nil
		}
		x.writeHead(status, false)
	}
	if len(res.Body) > 0 {
		if _, err := x.w.Write(res.Body); err != nil {
			x.reset = true
			fw.over = true
			return false
		}
	}
	if res.Trailers != nil {
		for _, kv := range res.Trailers {
			x.w.Header().Add(http.TrailerPrefix+kv[0], kv[1])
		}
	}
	if res.EndOfStream {
		fw.eosSent = true
	}
	return true
}

// responseHeaders builds the response header map: ":status", then upstream's headers with
// lower-case names (sorted, as Go does not keep their order), without hop-by-hop headers and
// trailers.
func responseHeaders(status int, hdr http.Header) Headers {
	h := Headers{{":status", strconv.Itoa(status)}}
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := lowerASCII(k)
		if hopByHop[lk] || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range hdr[k] {
			h = append(h, [2]string{lk, v})
		}
	}
	return h
}

// responseTrailers collects upstream's trailers: those announced in "Trailer" and those set
// with http.TrailerPrefix.
func responseTrailers(hdr http.Header) Headers {
	var h Headers
	for _, k := range hdr.Values("Trailer") {
		for _, name := range strings.Split(k, ",") {
			name = strings.TrimSpace(name)
			for _, v := range hdr.Values(name) {
				h = append(h, [2]string{lowerASCII(name), v})
			}
		}
	}
	keys := make([]string, 0)
	for k := range hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range hdr[k] {
			h = append(h, [2]string{lowerASCII(strings.TrimPrefix(k, http.TrailerPrefix)), v})
		}
	}
	return h
}
