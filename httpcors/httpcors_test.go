package httpcors_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/s3cors/s3cors/httpcors"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

func loadTables(t *testing.T) []casetable.Table {
	t.Helper()
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// upstream is the fake store of the case tables: 200, "upstream-body", text/plain and the
// case's headers. reached records that a request got through.
func upstream(c casetable.Case, reached *bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*reached = true
		w.Header().Set("Content-Type", "text/plain")
		for _, h := range c.Upstream {
			w.Header().Add(h[0], h[1])
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, casetable.UpstreamBody)
	})
}

func observed(status int, header http.Header, body []byte, reached bool) casetable.Response {
	resp := casetable.Response{Status: status, Body: body, ReachedUpstream: reached}
	for name, vs := range header {
		for _, v := range vs {
			resp.Headers = append(resp.Headers, casetable.Header{name, v})
		}
	}
	return resp
}

// TestCaseTablesRecorder runs every shared case through the middleware in-process.
func TestCaseTablesRecorder(t *testing.T) {
	for _, tb := range loadTables(t) {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			m, err := httpcors.Load(tb.Config)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tb.Cases {
				req := httptest.NewRequest(c.Request.Method, "http://placeholder"+c.Request.Path, nil)
				req.RequestURI = c.Request.Path
				req.Host = c.Request.Authority
				for _, h := range c.Request.Headers {
					req.Header.Add(h[0], h[1])
				}
				var reached bool
				rec := httptest.NewRecorder()
				m.Handler(upstream(c, &reached)).ServeHTTP(rec, req)
				got := observed(rec.Code, rec.Header(), rec.Body.Bytes(), reached)
				// The middleware leaves framing to the server, and the recorder is no server:
				// net/http frames a reply that wrote nothing with Content-Length: 0
				// (TestCaseTablesServer sees it on the wire), so the recorder's answer gets it.
				if !reached && rec.Body.Len() == 0 && rec.Header().Get("Content-Length") == "" {
					got.Headers = append(got.Headers, casetable.Header{"Content-Length", "0"})
				}
				if err := c.Check(got); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestCaseTablesServer runs every shared case over a real HTTP/1.1 connection, so what
// net/http adds or drops on the wire is part of the test.
func TestCaseTablesServer(t *testing.T) {
	for _, tb := range loadTables(t) {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			m, err := httpcors.Load(tb.Config)
			if err != nil {
				t.Fatal(err)
			}
			var current casetable.Case
			var reached bool
			srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstream(current, &reached).ServeHTTP(w, r)
			})))
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			for _, c := range tb.Cases {
				current, reached = c, false
				status, header, body := rawExchange(t, addr, c.Request)
				if err := c.Check(observed(status, header, body, reached)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// rawExchange sends the request exactly as written (casetable.Exchange) and returns the
// headers as they were on the wire, Connection: close included.
func rawExchange(t *testing.T, addr string, r casetable.Request) (int, http.Header, []byte) {
	t.Helper()
	status, headers, body, err := casetable.Exchange(addr, r)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, kv := range headers {
		h.Add(kv[0], kv[1])
	}
	return status, h, body
}

// TestPreflightOverHTTP2 checks what the middleware leaves to the server: a preflight reply
// sets no Content-Length, and net/http's HTTP/2 server, like its HTTP/1.1 one
// (TestCaseTablesServer), frames the empty reply with content-length: 0 as S3 does.
func TestPreflightOverHTTP2(t *testing.T) {
	m, err := httpcors.Load([]byte(`{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["PUT"]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(m.Handler(http.NotFoundHandler()))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	req, err := http.NewRequest("OPTIONS", srv.URL+"/site/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if cl := resp.Header.Values("Content-Length"); len(cl) != 1 || cl[0] != "0" {
		t.Errorf("content-length %q, want one \"0\"", cl)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("allow-origin %q", got)
	}
}
