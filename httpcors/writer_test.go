package httpcors_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/httpcors"
)

const testConfig = `{"buckets": {
  "site": {"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]},
  "kept": null}}`

func mustLoad(t testing.TB, cfg string) *httpcors.Middleware {
	t.Helper()
	m, err := httpcors.Load([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get(path, origin string) *http.Request {
	r := httptest.NewRequest("GET", "http://s3.local"+path, nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	return r
}

func TestHandlerThatWritesNothingIsDecorated(t *testing.T) {
	m := mustLoad(t, testConfig)
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // as MinIO would
	})).ServeHTTP(rec, get("/site/k", "https://app.example"))
	if got := rec.Header().Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example" {
		t.Errorf("Allow-Origin %q", got)
	}
	if got := rec.Header().Get("Access-Control-Max-Age"); got != "60" {
		t.Errorf("Max-Age %q", got)
	}
}

func TestErrorStatusesAreDecorated(t *testing.T) {
	m := mustLoad(t, testConfig)
	for _, status := range []int{304, 403, 404, 500} {
		rec := httptest.NewRecorder()
		m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		})).ServeHTTP(rec, get("/site/k", "https://app.example"))
		if rec.Code != status || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || rec.Header().Get("Vary") != evaluator.VaryValue {
			t.Errorf("status %d: got %d %v", status, rec.Code, rec.Header())
		}
	}
}

func TestInformationalStatusLeavesHeadersOpen(t *testing.T) {
	m := mustLoad(t, testConfig)
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Vary", "Accept-Encoding")
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, get("/site/k", "https://app.example"))
	if got := rec.Header().Get("Vary"); got != "Accept-Encoding, "+evaluator.VaryValue {
		t.Errorf("Vary %q", got)
	}
}

func TestFlushCommitsDecoratedHeaders(t *testing.T) {
	m := mustLoad(t, testConfig)
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through ResponseController: %v", err)
		}
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "streamed")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/site/k", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || string(body) != "streamed" {
		t.Errorf("got %v %q", resp.Header, body)
	}
}

func TestHijackAndReadFrom(t *testing.T) {
	m := mustLoad(t, testConfig)
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/site/copy" {
			_, _ = io.Copy(w, strings.NewReader("copied"))
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = buf.Flush()
	})))
	defer srv.Close()
	for path, want := range map[string]string{"/site/copy": "copied", "/site/hijack": "hijacked"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Origin", "https://app.example")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("%s: body %q, want %q", path, body, want)
		}
		if path == "/site/copy" && resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("io.Copy response not decorated: %v", resp.Header)
		}
	}
	// Hijack on a writer that cannot is an error, not a panic.
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := w.(http.Hijacker).Hijack(); !errors.Is(err, http.ErrNotSupported) {
			t.Errorf("Hijack on a recorder: %v", err)
		}
	})).ServeHTTP(rec, get("/site/k", "https://app.example"))
}

func TestPassThroughIsUntouched(t *testing.T) {
	m := mustLoad(t, `{"buckets": {}, "unlistedBuckets": "forward", "upstreamCORSHeaders": "strip"}`)
	var sawWriter http.ResponseWriter
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawWriter = w
		w.Header().Set("Access-Control-Allow-Origin", "*")
	})).ServeHTTP(rec, get("/any/k", "https://app.example"))
	if sawWriter != rec {
		t.Error("a pass-through request got a wrapped ResponseWriter")
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Error("a pass-through response lost the upstream's header")
	}
}

func TestSetPolicy(t *testing.T) {
	m := mustLoad(t, testConfig)
	h := m.Handler(http.NotFoundHandler())
	pre := httptest.NewRequest("OPTIONS", "http://s3.local/site/k", nil)
	pre.Header.Set("Origin", "https://other.example")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	if rec.Code != 403 {
		t.Fatalf("before reload: %d", rec.Code)
	}
	p, err := evaluator.Load([]byte(`{"buckets": {"site": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	m.SetPolicy(p)
	m.SetPolicy(nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "*" || m.Policy() != p {
		t.Fatalf("after reload: %d %v", rec.Code, rec.Header())
	}
}

func TestReplyIDsOutliveTheRequest(t *testing.T) {
	// net/http keeps the header map after the handler returns; the ids in it must not change
	// when the middleware's buffers are reused by the next request.
	m := mustLoad(t, testConfig)
	h := m.Handler(http.NotFoundHandler())
	pre := httptest.NewRequest("OPTIONS", "http://s3.local/site/k", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "PUT")
	pre.Header.Set("Access-Control-Request-Headers", "x-a")
	first := httptest.NewRecorder()
	h.ServeHTTP(first, pre)
	id := first.Header().Get("X-Amz-Request-Id")
	id2 := first.Header().Get("X-Amz-Id-2")
	for i := 0; i < 10; i++ {
		h.ServeHTTP(httptest.NewRecorder(), pre)
	}
	if first.Header().Get("X-Amz-Request-Id") != id || first.Header().Get("X-Amz-Id-2") != id2 || id == "" {
		t.Errorf("ids changed after later requests: %q -> %q", id, first.Header().Get("X-Amz-Request-Id"))
	}
}

// discard is a ResponseWriter that costs nothing, so allocation counts are the middleware's.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func TestDecorateDoesNotAllocate(t *testing.T) {
	m := mustLoad(t, testConfig)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	r := get("/site/k", "https://app.example")
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	if n := testing.AllocsPerRun(200, func() { clear(w.h); h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("%v allocations per decorated request, want 0", n)
	}
}

// A rule that allows the requested headers, so that replies carry the Allow-Headers echo.
const echoConfig = `{"buckets": {"site": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]}}`

func preflightRequest(origin, acrh string) *http.Request {
	r := httptest.NewRequest("OPTIONS", "http://s3.local/site/k", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", "PUT")
	if acrh != "" {
		r.Header.Set("Access-Control-Request-Headers", acrh)
	}
	return r
}

func TestReplyHeadersOutliveTheRequestUnderLoad(t *testing.T) {
	// Header maps of earlier replies are read while other goroutines answer more preflights
	// from the same pooled memory: every value must stay as it was written (the race
	// detector reports any overlap), and every reply gets ids of its own.
	m := mustLoad(t, echoConfig)
	h := m.Handler(http.NotFoundHandler())
	long := strings.Repeat("x-amz-meta-long, ", 30)
	reqs := []*http.Request{
		preflightRequest("https://app.example", "x-a,X-B"),
		preflightRequest("https://app.example", long),
		preflightRequest("https://app.example", ""),
		preflightRequest("https://evil.example", ""),
	}
	const workers, each = 4, 150
	ids := make(chan string, workers*each)
	errs := make(chan error, workers)
	for g := range workers {
		go func() {
			type kept struct {
				h    http.Header
				want http.Header
			}
			var all []kept
			for i := range each {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, reqs[(g+i)%len(reqs)])
				snap := http.Header{}
				for k, vs := range rec.Header() {
					for _, v := range vs {
						snap[k] = append(snap[k], strings.Clone(v))
					}
				}
				all = append(all, kept{rec.Header(), snap})
				ids <- rec.Header().Get("X-Amz-Request-Id") + " " + rec.Header().Get("X-Amz-Id-2")
				for _, k := range all {
					for name, vs := range k.want {
						if got := k.h[name]; len(got) != len(vs) || got[0] != vs[0] {
							errs <- fmt.Errorf("%s changed from %q to %q", name, vs, got)
							return
						}
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if len(id) != 16+1+76 || seen[id] {
			t.Fatalf("id pair %q: malformed or repeated", id)
		}
		seen[id] = true
	}
}
