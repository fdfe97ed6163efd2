package wasmhost

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamRecord is what the fake upstream saw.
type upstreamRecord struct {
	mu      sync.Mutex
	method  string
	uri     string
	host    string
	header  http.Header
	body    []byte
	trailer http.Header
	calls   int
}

// echoUpstream records the request and answers with a streamed body (three flushed chunks)
// and a trailer.
func echoUpstream(rec *upstreamRecord, respBody []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.calls++
		rec.method, rec.uri, rec.host, rec.header, rec.body, rec.trailer = r.Method, r.RequestURI, r.Host, r.Header.Clone(), body, r.Trailer
		rec.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusCreated)
		third := len(respBody) / 3
		for _, part := range [][]byte{respBody[:third], respBody[third : 2*third], respBody[2*third:]} {
			_, _ = w.Write(part)
			w.(http.Flusher).Flush()
		}
		sum := sha256.Sum256(respBody)
		w.Header().Set("X-Checksum", hexString(sum[:]))
	})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandlerStreamsBodiesUnchanged: a several-MB PUT reaches upstream byte-identical (with a
// content-length and chunked), and upstream's streamed response and trailer reach the client
// unchanged, for a plugin that sees every body chunk and for one that sees none, under every
// failure policy.
func TestHandlerStreamsBodiesUnchanged(t *testing.T) {
	reqBody := randomBytes(t, 5<<20+123)
	respBody := randomBytes(t, 3<<20+7)
	for _, tc := range []struct {
		guest  string
		policy FailurePolicy
	}{{"noop", FailClosed}, {"noop", FailOpen}, {"noop", FailReload}, {"noop", FailOpenLegacy}, {"probe", FailClosed}} {
		guest, policy := tc.guest, tc.policy
		{
			t.Run(guest+"/"+policy.String(), func(t *testing.T) {
				h := newHost(t, guest, Options{FailurePolicy: policy})
				rec := &upstreamRecord{}
				srv := httptest.NewServer(h.Handler(echoUpstream(rec, respBody)))
				defer srv.Close()
				for _, chunked := range []bool{false, true} {
					var body io.Reader = bytes.NewReader(reqBody)
					if chunked {
						body = io.MultiReader(bytes.NewReader(reqBody)) // unknown length: chunked
					}
					req, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/key?x=1", body)
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("X-Custom", "v1")
					req.Header.Add("X-Custom", "v2")
					resp, err := srv.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode != http.StatusCreated || !bytes.Equal(got, respBody) {
						t.Fatalf("response %d with %d bytes (equal: %v)", resp.StatusCode, len(got), bytes.Equal(got, respBody))
					}
					sum := sha256.Sum256(respBody)
					if resp.Trailer.Get("X-Checksum") != hexString(sum[:]) || resp.Header.Get("X-Upstream") != "yes" {
						t.Errorf("response headers %v trailer %v", resp.Header, resp.Trailer)
					}
					rec.mu.Lock()
					if !bytes.Equal(rec.body, reqBody) {
						t.Errorf("chunked=%v: upstream got %d bytes, not the %d sent", chunked, len(rec.body), len(reqBody))
					}
					if rec.method != http.MethodPut || rec.uri != "/bucket/key?x=1" || strings.Join(rec.header.Values("X-Custom"), ",") != "v1,v2" {
						t.Errorf("upstream saw %s %s %v", rec.method, rec.uri, rec.header)
					}
					rec.mu.Unlock()
				}
			})
		}
	}
}

// TestHandlerPluginChanges: the plugin's header changes reach upstream and the client.
func TestHandlerPluginChanges(t *testing.T) {
	h := newHost(t, "probe", Options{})
	rec := &upstreamRecord{}
	srv := httptest.NewServer(h.Handler(echoUpstream(rec, []byte("abc"))))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/p", nil)
	req.Header.Set("X-Probe", "headers")
	req.Header.Set("X-Removed", "gone")
	req.Header.Set("X-Replaced", "old")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rec.header.Get("X-Added") != "one" || rec.header.Get("X-Replaced") != "new" || rec.header.Get("X-Removed") != "" {
		t.Errorf("upstream headers %v", rec.header)
	}
	if resp.Header.Get("X-Probe-Seen") != "headers" {
		t.Errorf("client headers %v", resp.Header)
	}
}

// TestHandlerLocalReply: the client gets the local reply as Envoy would send it, and upstream
// never sees the request.
func TestHandlerLocalReply(t *testing.T) {
	h := newHost(t, "localreply", Options{})
	rec := &upstreamRecord{}
	srv := httptest.NewServer(h.Handler(echoUpstream(rec, []byte("abc"))))
	defer srv.Close()
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		req, _ := http.NewRequest(method, srv.URL+"/", strings.NewReader("request body"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantBody := `{"error":"unauthorized"}`
		if method == http.MethodHead {
			wantBody = ""
		}
		if resp.StatusCode != 401 || string(body) != wantBody || resp.Header.Get("Content-Type") != "application/json" ||
			resp.Header.Get("Www-Authenticate") != "Basic" || resp.Header.Get("X-Own-Reply") != "seen" || resp.ContentLength != 24 {
			t.Errorf("%s: %d %v %q", method, resp.StatusCode, resp.Header, body)
		}
	}
	if rec.calls != 0 {
		t.Errorf("upstream was called %d times", rec.calls)
	}
}

// TestHandlerFailurePolicies: after a trap, fail closed answers 503 to every request; fail
// open answers 503 to the request that trapped and passes the next ones to upstream.
func TestHandlerFailurePolicies(t *testing.T) {
	for _, tt := range []struct {
		policy   FailurePolicy
		statuses []int
	}{{FailClosed, []int{503, 503}}, {FailOpen, []int{503, 201}}, {FailOpenLegacy, []int{201, 201}}} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			h := newHost(t, "probe", Options{FailurePolicy: tt.policy})
			rec := &upstreamRecord{}
			srv := httptest.NewServer(h.Handler(echoUpstream(rec, []byte("abc"))))
			defer srv.Close()
			for i, want := range tt.statuses {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
				req.Header.Set("X-Probe", "panic")
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("request %d: status %d %q, want %d", i, resp.StatusCode, body, want)
				}
				if want == 503 && len(body) != 0 {
					t.Errorf("fail-closed body %q, want empty", body)
				}
			}
		})
	}
}

// TestHandlerPausedStream: a stream the plugin never continues gets Envoy's 408 "stream
// timeout"; one continued from on_tick reaches upstream.
func TestHandlerPausedStream(t *testing.T) {
	h := newHost(t, "probe", Options{StreamIdleTimeout: 50 * time.Millisecond})
	rec := &upstreamRecord{}
	srv := httptest.NewServer(h.Handler(echoUpstream(rec, []byte("abc"))))
	defer srv.Close()
	do := func(scenario string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Header.Set("X-Probe", scenario)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	if code, body := do("pause"); code != 408 || body != "stream timeout" {
		t.Errorf("paused: %d %q, want 408 stream timeout", code, body)
	}
	h2 := newHost(t, "probe", Options{StreamIdleTimeout: time.Minute})
	srv2 := httptest.NewServer(h2.Handler(echoUpstream(rec, []byte("abc"))))
	defer srv2.Close()
	req, _ := http.NewRequest(http.MethodGet, srv2.URL+"/", nil)
	req.Header.Set("X-Probe", "continue-on-tick")
	resp, err := srv2.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("continued from tick: %d", resp.StatusCode)
	}
}

// TestHandlerReplyFromResponse: a reply from on_response_headers replaces upstream's response.
func TestHandlerReplyFromResponse(t *testing.T) {
	h := newHost(t, "probe", Options{})
	srv := httptest.NewServer(h.Handler(echoUpstream(&upstreamRecord{}, []byte("abcdef"))))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header.Set("X-Probe", "resp-reply")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || string(body) != "bad upstream" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// TestHandlerNoSniffingAndTrailers: a response without content-type gets none (net/http would
// sniff one, Envoy does not); request trailers reach upstream through the plugin.
func TestHandlerNoSniffingAndTrailers(t *testing.T) {
	h := newHost(t, "probe", Options{})
	var gotTrailer http.Header
	srv := httptest.NewServer(h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		gotTrailer = r.Trailer.Clone()
		_, _ = io.WriteString(w, "<html><body>hi</body></html>")
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", io.MultiReader(strings.NewReader("payload")))
	req.Trailer = http.Header{"X-T": {"tv"}}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("client got Content-Type %q, want none", ct)
	}
	if gotTrailer.Get("X-T") != "tv" {
		t.Errorf("upstream trailer %v", gotTrailer)
	}
	if got := lastLine(t, h, "probe request_trailers:"); !strings.Contains(got, `x-t="tv"`) {
		t.Errorf("plugin saw %s", got)
	}
}

// TestHandlerConcurrent: concurrent requests over two workers.
func TestHandlerConcurrent(t *testing.T) {
	h := newHost(t, "probe", Options{Workers: 2})
	srv := httptest.NewServer(h.Handler(echoUpstream(&upstreamRecord{}, []byte("abcdef"))))
	defer srv.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/k", strings.NewReader("body"))
				req.Header.Set("X-Probe", "headers")
				resp, err := srv.Client().Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 || string(b) != "abcdef" || resp.Header.Get("X-Probe-Seen") != "headers" {
					errs <- io.ErrUnexpectedEOF
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHandlerBufferLimit: a plugin buffering a request body past the buffer limit gets Envoy's
// 413, written to the client although upstream had already been called.
func TestHandlerBufferLimit(t *testing.T) {
	h := newHost(t, "probe", Options{BufferLimit: 64 << 10})
	rec := &upstreamRecord{}
	srv := httptest.NewServer(h.Handler(echoUpstream(rec, []byte("abc"))))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/", bytes.NewReader(randomBytes(t, 1<<20)))
	req.Header.Set("X-Probe", "body-buffer")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(body) != "Payload Too Large" {
		t.Errorf("got %d %q, want 413 Payload Too Large", resp.StatusCode, body)
	}
}

// TestHandlerDetails: a caller that asks (WithDetails) learns who answered each request, as
// Envoy's %RESPONSE_CODE_DETAILS% says it, whatever the status: the upstream, or a failed
// VM's wasm_fail_stream before the upstream was asked or after it answered.
func TestHandlerDetails(t *testing.T) {
	h := newHost(t, "probe", Options{FailurePolicy: FailReload})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	handler := h.Handler(up)
	for _, c := range []struct{ probe, want string }{
		{"", "via_upstream"}, // the store's own 503
		{"panic", "wasm_fail_stream"},
		{"resp-panic", "wasm_fail_stream"},
	} {
		var d Details
		r := httptest.NewRequest("GET", "http://example.com/p", nil)
		if c.probe != "" {
			r.Header.Set("x-probe", c.probe)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r.WithContext(WithDetails(r.Context(), &d)))
		if d.String() != c.want || rec.Code != http.StatusServiceUnavailable {
			t.Errorf("x-probe %q: %d, details %q; want 503 and %q", c.probe, rec.Code, d.String(), c.want)
		}
	}
}

// TestHandlerBadRequestClosesConnection: as Envoy's connection manager does (seen in Envoy
// 1.36.2 and 1.40.0), a 400 local reply to an HTTP/1 request says "Connection: close" and
// closes the connection; other local replies keep it open.
func TestHandlerBadRequestClosesConnection(t *testing.T) {
	h := newHost(t, "probe", Options{})
	srv := httptest.NewServer(h.Handler(echoUpstream(&upstreamRecord{}, []byte("abc"))))
	defer srv.Close()
	for _, tt := range []struct {
		scenario string
		status   int
		close    bool
	}{{"reply-bad-headers", 400, true}, {"reply", 403, false}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Header.Set("X-Probe", tt.scenario)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Close != tt.close {
			t.Errorf("%s: status %d, Connection: close %v; want %d, %v", tt.scenario, resp.StatusCode, resp.Close, tt.status, tt.close)
		}
	}
}

// TestHandlerEnvoyHeaders: with Options.EnvoyHeaders the plugin sees the router's
// x-envoy-upstream-service-time among upstream's response headers and the client gets
// "server: envoy" on proxied responses and local replies alike; without it, neither.
func TestHandlerEnvoyHeaders(t *testing.T) {
	for _, on := range []bool{true, false} {
		h := newHost(t, "probe", Options{EnvoyHeaders: on})
		srv := httptest.NewServer(h.Handler(echoUpstream(&upstreamRecord{}, []byte("abc"))))
		for _, scenario := range []string{"reply", ""} { // the last response_headers line is upstream's
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			req.Header.Set("X-Probe", scenario)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := resp.Header.Get("Server") == "envoy"; got != on {
				t.Errorf("EnvoyHeaders %v, %q: server %q", on, scenario, resp.Header.Get("Server"))
			}
			if got := resp.Header.Get("X-Envoy-Upstream-Service-Time") != ""; got != (on && scenario == "") {
				t.Errorf("EnvoyHeaders %v, %q: x-envoy-upstream-service-time %q", on, scenario, resp.Header.Get("X-Envoy-Upstream-Service-Time"))
			}
		}
		seen := strings.Contains(lastLine(t, h, "probe response_headers:"), "x-envoy-upstream-service-time=")
		if seen != on {
			t.Errorf("EnvoyHeaders %v: the plugin saw x-envoy-upstream-service-time: %v", on, seen)
		}
		srv.Close()
	}
}

// TestHandlerHTTP2NoMadeUpContentLength: over HTTP/2 the client gets the headers the plugin
// passed on and no content-length of the handler's own, as from Envoy's HTTP/2 codec (Envoy
// 1.36.2 and 1.40.0 answer an h2c preflight without one; over HTTP/1 they say
// "content-length: 0", as net/http does).
func TestHandlerHTTP2NoMadeUpContentLength(t *testing.T) {
	h := newHost(t, "noop", Options{})
	srv := httptest.NewUnstartedServer(h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(h2)
		tr.Protocols.SetHTTP1(!h2)
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "0"
		if h2 {
			want = ""
		}
		if resp.Header.Get("Content-Length") != want || (resp.ProtoMajor == 2) != h2 {
			t.Errorf("%s: content-length %q, want %q", resp.Proto, resp.Header.Get("Content-Length"), want)
		}
	}
}
