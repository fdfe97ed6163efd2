package wasmhost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// BenchmarkCompile measures compiling a Go guest (the noop module, 1.9 MB) with wazero's
// compiler and no cache: the one-off cost of a Host (or of a reload of the gateway).
func BenchmarkCompile(b *testing.B) {
	mod := testenv.GuestBytes(b, "noop")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(wazero.NewCompilationCache()))
		if _, err := rt.CompileModule(ctx, mod); err != nil {
			b.Fatal(err)
		}
		_ = rt.Close(ctx)
	}
}

// BenchmarkInstantiate measures one VM: instantiating the compiled module and running
// _initialize (Go's runtime and package init), as for each worker and each reload.
func BenchmarkInstantiate(b *testing.B) {
	h := newHost(b, "noop", Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := h.newVM(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if !v.start() {
			b.Fatal(v.failMsg)
		}
		v.close(ctx)
	}
}

// BenchmarkNew measures New with the module already compiled (shared cache): load checks, the
// base VM, the canary and one worker.
func BenchmarkNew(b *testing.B) {
	mod := testenv.GuestBytes(b, "noop")
	cache := compilationCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h, err := New(ctx, Options{Module: mod, CompilationCache: cache})
		if err != nil {
			b.Fatal(err)
		}
		_ = h.Close(ctx)
	}
}

// benchHeaders is a typical S3 request: pseudo-headers and a dozen headers, about 600 bytes.
func benchHeaders() Headers {
	h := Headers{{":method", "GET"}, {":path", "/bucket/some/object/key.jpg?versionId=3"}, {":authority", "s3.example.com"}, {":scheme", "https"},
		{"origin", "https://app.example.com"}, {"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"},
		{"accept", "image/avif,image/webp,*/*"}, {"accept-encoding", "gzip, deflate, br"}, {"accept-language", "en-US,en;q=0.5"},
		{"referer", "https://app.example.com/gallery"}, {"x-amz-date", "20260101T000000Z"}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
		{"authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef0123456789"}}
	return h
}

// BenchmarkStream measures the host's own cost per stream with a guest that does nothing:
// context create, request headers, response headers, log, done, delete (six guest calls). A
// filter's benchmark in the host can subtract it.
func BenchmarkStream(b *testing.B) {
	for _, guest := range []string{"noop", "probe"} {
		b.Run("guest="+guest+"/body=none", func(b *testing.B) {
			h := newHost(b, guest, Options{LogLevel: LevelOff})
			reqH := benchHeaders()
			respH := Headers{{":status", "200"}, {"content-type", "image/jpeg"}, {"content-length", "1024"}, {"etag", `"abc"`}}
			b.ReportAllocs()
			for b.Loop() {
				s := h.NewStream()
				if r := s.RequestHeaders(reqH, true); r.Action != Continue {
					b.Fatal(r)
				}
				if r := s.ResponseHeaders(respH, true); r.Action != Continue {
					b.Fatal(r)
				}
			}
		})
	}
	for _, size := range []int{64 << 10} {
		b.Run("guest=probe/body="+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			h := newHost(b, "probe", Options{LogLevel: LevelOff})
			body := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				s := h.NewStream()
				s.RequestHeaders(benchHeaders(), false)
				if r := s.RequestBody(body, true); len(r.Body) != size {
					b.Fatal(r.Action)
				}
				s.ResponseHeaders(Headers{{":status", "204"}}, true)
			}
		})
	}
}

// BenchmarkHandler measures a request through the HTTP adapter (no network) with the noop
// guest and a trivial upstream.
func BenchmarkHandler(b *testing.B) {
	h := newHost(b, "noop", Options{})
	handler := h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	}))
	req := httptest.NewRequest(http.MethodGet, "http://s3.example.com/bucket/key", nil)
	for _, kv := range benchHeaders()[4:] {
		req.Header.Add(kv[0], kv[1])
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
