package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/gateway"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// The local gateway (`s3cors serve`) over real HTTP: the built s3cors.wasm in wasmhost, behind
// gateway.New and gateway.Serve exactly as serve wires them, on a loopback listener.

// gwStart serves a gateway for config in front of upstream on 127.0.0.1 and returns its
// address; opts edit the options (profile, workers) before gateway.New. Every gateway of the
// test binary shares one compiled module. The server is shut down, and the gateway closed,
// when the test ends.
func gwStart(t testing.TB, config []byte, upstream http.Handler, opts ...func(*gateway.Options)) (string, *gateway.Gateway) {
	t.Helper()
	o := gateway.Options{
		Config:           config,
		Module:           testenv.ModuleBytes(t),
		Upstream:         upstream,
		CompilationCache: filterCompilation(),
	}
	for _, f := range opts {
		f(&o)
	}
	g, err := gateway.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, ln, g, time.Minute) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway.Serve: %v", err)
		}
		if err := g.Close(context.Background()); err != nil {
			t.Errorf("gateway.Close: %v", err)
		}
	})
	return ln.Addr().String(), g
}

// httpGet fetches url and returns the status and the whole body; a transport error fails the
// test.
func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, body
}

// gwRawExchange sends the request exactly as written and returns the response with its
// headers as they were on the wire.
func gwRawExchange(t *testing.T, addr string, r casetable.Request) (status int, headers []casetable.Header, body []byte) {
	t.Helper()
	status, headers, body, err := casetable.Exchange(addr, r)
	if err != nil {
		t.Fatal(err)
	}
	return status, headers, body
}

// TestGatewayCaseTables runs every shared case through the gateway over HTTP/1.1. The fake
// upstream answers as casetable says and counts what reaches it.
func TestGatewayCaseTables(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join(testenv.RepoRoot(t), "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			var (
				mu      sync.Mutex
				current casetable.Case
				reached atomic.Int64
			)
			upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				mu.Lock()
				c := current
				mu.Unlock()
				w.Header().Set("Content-Type", "text/plain")
				for _, h := range c.Upstream {
					w.Header().Add(h[0], h[1])
				}
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, casetable.UpstreamBody)
			})
			addr, _ := gwStart(t, tb.Config, upstream)
			for _, c := range tb.Cases {
				mu.Lock()
				current = c
				mu.Unlock()
				before := reached.Load()
				status, headers, body := gwRawExchange(t, addr, c.Request)
				got := casetable.Response{Status: status, Headers: headers, Body: body, ReachedUpstream: reached.Load() > before}
				if err := c.Check(got); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func gwDemoConfig(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "demo", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gwStore(t testing.TB, maxSize int64) *s3mem.Store {
	t.Helper()
	return s3mem.New(s3mem.Options{
		Buckets:             []string{"website", "fonts", "public", "sandboxed", "partner-fonts", "private"},
		VirtualHostSuffixes: []string{"s3.localhost"},
		PathStyle:           true,
		MaxObjectSize:       maxSize,
	})
}

// TestGatewayPreflightsNeverReachTheStore sends allowed and denied preflights, path-style and
// virtual-hosted, and checks that the store saw none of them, while actual requests get
// through.
func TestGatewayPreflightsNeverReachTheStore(t *testing.T) {
	store := gwStore(t, 0)
	addr, g := gwStart(t, gwDemoConfig(t), store)
	client := &http.Client{}
	// gwReply is a response already read and closed.
	type gwReply struct {
		StatusCode int
		Header     http.Header
	}
	send := func(method, host, path string, hdr ...string) gwReply {
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return gwReply{res.StatusCode, res.Header}
	}
	demo := "http://127.0.0.1:8081"
	for _, tc := range []struct {
		host, path, origin, method string
		want                       int
	}{
		{addr, "/website/a.txt", demo, "PUT", 200},
		{"website.s3.localhost:8080", "/a.txt", demo, "PUT", 200},
		{addr, "/website/a.txt", "https://evil.example", "PUT", 403},
		{addr, "/website/a.txt", demo, "DELETE", 403},
		{addr, "/private/a.txt", demo, "GET", 403},
		{addr, "/nowhere/a.txt", demo, "GET", 403},
	} {
		res := send("OPTIONS", tc.host, tc.path, "Origin", tc.origin, "Access-Control-Request-Method", tc.method)
		if res.StatusCode != tc.want {
			t.Errorf("preflight %s %s%s from %s: %d, want %d", tc.method, tc.host, tc.path, tc.origin, res.StatusCode, tc.want)
		}
	}
	if res := send("OPTIONS", addr, "/website/a.txt", "Access-Control-Request-Method", "PUT"); res.StatusCode != 400 {
		t.Errorf("preflight without Origin: %d, want 400", res.StatusCode)
	}
	if res := send("PUT", addr, "/website/a.txt", "Origin", demo); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != demo {
		t.Errorf("PUT: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	st := store.Stats()
	if st.ByMethod["OPTIONS"] != 0 || st.ByMethod["PUT"] != 1 || st.Requests != 1 {
		t.Errorf("the store saw %+v; want the one PUT and no OPTIONS", st)
	}
	gs := g.Stats()
	if gs.UpstreamByMethod["OPTIONS"] != 0 || gs.AnsweredAtProxy != 7 || gs.ReachedUpstream != 1 {
		t.Errorf("gateway stats %+v", gs)
	}
}

// TestGatewayLargeUpload streams a PUT body of several MB through the filter: it must reach
// the store byte for byte.
func TestGatewayLargeUpload(t *testing.T) {
	const size = 12 << 20
	store := gwStore(t, 64<<20)
	addr, _ := gwStart(t, gwDemoConfig(t), store)
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("PUT", "http://"+addr+"/website/big.bin", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://127.0.0.1:8081")
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PUT of %d bytes: status %d", size, res.StatusCode)
	}
	obj, ok := store.Get("website", "big.bin")
	if !ok {
		t.Fatal("object not stored")
	}
	if sha256.Sum256(obj.Body) != sha256.Sum256(payload) {
		t.Fatalf("stored %d bytes differ from the %d sent", len(obj.Body), size)
	}
	if res.Header.Get("ETag") != obj.ETag {
		t.Errorf("ETag %q, store has %q", res.Header.Get("ETag"), obj.ETag)
	}
	// And back: a GET streams the object to the client unchanged.
	res, err = http.Get("http://" + addr + "/website/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, res.Body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), func() []byte { s := sha256.Sum256(payload); return s[:] }()) {
		t.Error("downloaded object differs from the upload")
	}
}

// TestGatewayShutdown is SIGTERM as serve sees it: the context is cancelled while a request is
// in flight; the request completes, Serve returns nil, and the gateway closes.
func TestGatewayShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		<-release
		_, _ = io.WriteString(w, "done")
	})
	g, err := gateway.New(context.Background(), gateway.Options{
		Config: gwDemoConfig(t), Module: testenv.ModuleBytes(t), Upstream: slow, CompilationCache: filterCompilation(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, ln, g, time.Minute) }()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/website/a.txt")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request: %q, want it completed", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open after shutdown")
	}
}

// TestGatewayOwnEndpoints checks /healthz on the S3 listener, the stats and the explain
// endpoint on the debug listener, with the real filter in place.
func TestGatewayOwnEndpoints(t *testing.T) {
	store := gwStore(t, 0)
	addr, g := gwStart(t, gwDemoConfig(t), store, func(o *gateway.Options) {
		o.DemoOrigin = "http://127.0.0.1:8081"
		o.UpstreamStats = func() any { return store.Stats() }
	})
	debug := browserListen(t, g.Debug())
	if code, b := httpGet(t, "http://"+addr+"/healthz"); code != 200 || string(b) != "ok\n" {
		t.Errorf("/healthz: %d %q", code, b)
	}
	req, _ := http.NewRequest("GET", "http://"+debug+"/debug/s3cors/explain?method=OPTIONS&origin=http://127.0.0.1:8081&request-method=DELETE&url=http://"+addr+"/website/a.txt", nil)
	req.Header.Set("Origin", "http://127.0.0.1:8081")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Allowed bool   `json:"allowed"`
		Summary string `json:"summary"`
	}
	err = json.NewDecoder(res.Body).Decode(&rep)
	res.Body.Close()
	if err != nil || rep.Allowed || !strings.Contains(rep.Summary, `method "DELETE" is not in AllowedMethods`) {
		t.Errorf("explain: %v %+v", err, rep)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "http://127.0.0.1:8081" {
		t.Errorf("explain for the demo origin: Access-Control-Allow-Origin %q", got)
	}
	res, err = http.Get("http://" + debug + "/debug/s3cors/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st gateway.Stats
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || st.Gateway != 3 || len(st.Wasm) == 0 || st.Store == nil {
		t.Errorf("stats: %v %+v", err, st)
	}
}

// TestGatewayForwardsRequestsUnchanged: a request the filter does not answer reaches the store
// as the client sent it: method, Host, raw path and query, headers (hop-by-hop ones aside,
// as Envoy drops them) and body.
func TestGatewayForwardsRequestsUnchanged(t *testing.T) {
	type seen struct {
		method, host, uri string
		header            http.Header
		body              []byte
	}
	got := make(chan seen, 1)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Host, r.RequestURI, r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	})
	addr, _ := gwStart(t, gwDemoConfig(t), upstream)
	for _, tc := range []struct {
		name, method, host, target string
		header                     []casetable.Header
		body                       string
	}{
		{"signed PUT, path style", "PUT", addr, "/website/a%20b/c%2Fd.txt?x-id=PutObject",
			[]casetable.Header{{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"},
				{"X-Amz-Date", "20260101T000000Z"}, {"X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"}, {"Origin", "http://127.0.0.1:8081"},
				{"Content-Type", "text/plain"}, {"X-Amz-Meta-Author", "ada"}, {"Content-Length", "7"}}, "payload"},
		{"virtual-hosted GET with a query", "GET", "website.s3.localhost:8080", "/photos/cat.jpg?versionId=3&response-content-type=image%2Fjpeg",
			[]casetable.Header{{"Range", "bytes=0-99"}, {"If-None-Match", `"abc"`}}, ""},
		{"not a bucket request", "GET", "other.example", "/", []casetable.Header{{"X-Custom", "1"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var b strings.Builder
			b.WriteString(tc.method + " " + tc.target + " HTTP/1.1\r\nHost: " + tc.host + "\r\n")
			for _, h := range tc.header {
				b.WriteString(h[0] + ": " + h[1] + "\r\n")
			}
			b.WriteString("\r\n" + tc.body)
			if _, err := io.WriteString(conn, b.String()); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			s := <-got
			if s.method != tc.method || s.host != tc.host || s.uri != tc.target || string(s.body) != tc.body {
				t.Errorf("store saw %s %s %s body %q; client sent %s %s %s body %q", s.method, s.host, s.uri, s.body, tc.method, tc.host, tc.target, tc.body)
			}
			for _, h := range tc.header {
				if h[0] == "Content-Length" {
					continue // framing, which the host may re-derive
				}
				if v := s.header.Get(h[0]); v != h[1] {
					t.Errorf("header %s: store saw %q, client sent %q", h[0], v, h[1])
				}
			}
		})
	}
}
