package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/explain"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// fakeHost stands in for the wasm filter: it answers OPTIONS itself and passes everything
// else on, which is all the routing, counting and logging tests need. The real filter runs in
// the e2e tests.
type fakeHost struct {
	closed bool
	failed []string // as wasmhost.Host.Failed; nil: one healthy VM
	reload []string // as wasmhost.Host.ReloadFailed; nil: no reload failed
}

func (f *fakeHost) Handler(upstream http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		upstream.ServeHTTP(w, r)
	})
}

func (f *fakeHost) Metrics() map[string]int64       { return map[string]int64{"fake_requests": 1} }
func (f *fakeHost) MemoryBytes() []uint64           { return []uint64{1 << 20} }
func (f *fakeHost) Close(ctx context.Context) error { f.closed = true; return nil }
func (f *fakeHost) ReloadFailed() []string {
	if f.reload == nil {
		return make([]string, len(f.Failed()))
	}
	return f.reload
}
func (f *fakeHost) Failed() []string {
	if f.failed == nil {
		return []string{""}
	}
	return f.failed
}

const routingConfig = `{
  "buckets": {
    "website": {"CORSRules": [{"ID": "site", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"]}]},
    "healthz": null
  },
  "addressing": {"virtualHostSuffixes": ["s3.localhost"], "pathStyle": true}
}`

func newTestGateway(t *testing.T, config string, upstream http.Handler) (*Gateway, *fakeHost, *testenv.SyncBuffer) {
	t.Helper()
	fh := &fakeHost{}
	orig := newHost
	newHost = func(context.Context, Options, *slog.Logger) (filterHost, error) { return fh, nil }
	t.Cleanup(func() { newHost = orig })
	logs := new(testenv.SyncBuffer)
	g, err := New(context.Background(), Options{
		Config: []byte(config), Module: []byte("\x00asm"), Upstream: upstream,
		DemoOrigin: "http://127.0.0.1:8081",
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g, fh, logs
}

func storeStub(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "store:"+r.Host+r.URL.Path)
}

func get(t *testing.T, h http.Handler, method, host, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestOwnEndpointsNeverShadowBuckets(t *testing.T) {
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	for _, tc := range []struct {
		method, host, target string
		want                 string // body prefix
	}{
		// A virtual-hosted bucket request for key "healthz" goes to the store.
		{"GET", "website.s3.localhost:8080", "/healthz", "store:website.s3.localhost:8080/healthz"},
		// Only GET and HEAD: anything else is for the filter.
		{"PUT", "127.0.0.1:8080", "/healthz", "store:"},
		{"GET", "127.0.0.1:8080", "/healthz/", "store:"},
	} {
		rec := get(t, g, tc.method, tc.host, tc.target)
		if !strings.HasPrefix(rec.Body.String(), tc.want) {
			t.Errorf("%s %s%s: body %q, want prefix %q", tc.method, tc.host, tc.target, rec.Body.String(), tc.want)
		}
	}
}

// TestDebugEndpointsOffTheS3Listener: on the S3 listener the debug paths are paths like any
// other (they reach the store, whatever the Host); the debug handler serves them and nothing
// else.
func TestDebugEndpointsOffTheS3Listener(t *testing.T) {
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	explainQuery := "?method=GET&bucket=website&key=a"
	for _, method := range []string{"GET", "HEAD"} {
		for _, host := range []string{"127.0.0.1:8080", "localhost", "website.s3.localhost"} {
			for _, path := range []string{StatsPath, ExplainPath + explainQuery} {
				rec := get(t, g, method, host, path, "Origin", "http://127.0.0.1:8081")
				if method == "GET" && !strings.HasPrefix(rec.Body.String(), "store:"+host+"/debug/s3cors/") {
					t.Errorf("S3 listener: %s %s%s: %d %q, want the store's answer", method, host, path, rec.Code, rec.Body.String())
				}
				if rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Content-Type") == "application/json" {
					t.Errorf("S3 listener: %s %s%s answered by the gateway: %v", method, host, path, rec.Header())
				}
			}
		}
	}
	d := g.Debug()
	for _, tc := range []struct {
		method, target string
		code           int
		want           string // body prefix
	}{
		{"GET", StatsPath, 200, "{"},
		{"HEAD", StatsPath, 200, ""},
		{"GET", ExplainPath + explainQuery, 200, "{"},
		{"GET", HealthPath, 200, "ok"},
		{"PUT", StatsPath, 404, "gateway: the debug listener serves"},
		{"GET", "/website/a", 404, "gateway: the debug listener serves"},
	} {
		rec := get(t, d, tc.method, "127.0.0.1:8082", tc.target)
		if rec.Code != tc.code || !strings.HasPrefix(rec.Body.String(), tc.want) {
			t.Errorf("debug listener: %s %s: %d %q, want %d and prefix %q", tc.method, tc.target, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
}

func TestHealthzBucketWins(t *testing.T) {
	// routingConfig lists a bucket named healthz: path-style /healthz is that bucket.
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/healthz"); rec.Body.String() != "store:127.0.0.1:8080/healthz" {
		t.Errorf("GET /healthz with a listed bucket healthz: %q, want the store", rec.Body.String())
	}
	noHealthzBucket := strings.Replace(routingConfig, `"healthz": null`, `"other": null`, 1)
	g2, _, _ := newTestGateway(t, noHealthzBucket, http.HandlerFunc(storeStub))
	if rec := get(t, g2, "GET", "127.0.0.1:8080", "/healthz"); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("GET /healthz: %d %q, want the gateway's ok", rec.Code, rec.Body.String())
	}
}

func TestStatsAndLog(t *testing.T) {
	g, fh, logs := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	get(t, g, "OPTIONS", "127.0.0.1:8080", "/website/a", "Origin", "https://app.example")
	get(t, g, "GET", "127.0.0.1:8080", "/website/a", "Origin", "https://app.example")
	get(t, g, "PUT", "website.s3.localhost", "/b")
	rec := get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/stats", "Origin", "http://127.0.0.1:8081")
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("stats body %q: %v", rec.Body.String(), err)
	}
	if st.AnsweredAtProxy != 1 || st.ReachedUpstream != 2 || st.UpstreamByMethod["GET"] != 1 || st.UpstreamByMethod["PUT"] != 1 || st.Requests != 4 || st.Gateway != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.Wasm["fake_requests"] != 1 {
		t.Errorf("wasm metrics missing from stats: %+v", st.Wasm)
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "http://127.0.0.1:8081" {
		t.Errorf("stats for the demo origin: Access-Control-Allow-Origin %q", got)
	}
	if got := get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/stats", "Origin", "https://evil.example").Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("stats for another origin: Access-Control-Allow-Origin %q, want none", got)
	}
	log := logs.String()
	for _, want := range []string{
		`method=OPTIONS host=127.0.0.1:8080 path=/website/a origin=https://app.example status=200 answered_by=proxy`,
		`method=GET host=127.0.0.1:8080 path=/website/a origin=https://app.example status=200 answered_by=upstream`,
		`method=PUT host=website.s3.localhost path=/b origin="" status=200 answered_by=upstream`,
		`path=/debug/s3cors/stats origin=http://127.0.0.1:8081 status=200 answered_by=gateway`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if err := g.Close(context.Background()); err != nil || !fh.closed {
		t.Errorf("Close: %v, host closed %v", err, fh.closed)
	}
}

func TestExplainEndpoint(t *testing.T) {
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	q := url.Values{"method": {"OPTIONS"}, "url": {"http://127.0.0.1:8080/website/a.txt"}, "origin": {"https://evil.example"}, "request-method": {"PUT"}}
	rec := get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/explain?"+q.Encode())
	var rep explain.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("explain body %q: %v", rec.Body.String(), err)
	}
	if rep.Allowed || rep.Reason != "not_allowed" || rep.Response.Status != 403 || len(rep.Rules) != 1 || rep.Rules[0].Origin.Matched {
		t.Errorf("explain report %+v", rep)
	}
	rec = get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/explain?url=http://x/y")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "a method is required") {
		t.Errorf("explain without method: %d %s", rec.Code, rec.Body.String())
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(context.Background(), Options{Config: []byte(routingConfig), Module: []byte("x")}); err == nil || !strings.Contains(err.Error(), "Upstream") {
		t.Errorf("no upstream: %v", err)
	}
	_, err := New(context.Background(), Options{Config: []byte(`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}}`), Module: []byte("x"), Upstream: http.NotFoundHandler()})
	if err == nil || !strings.Contains(err.Error(), "Unsupported method is PATCH") {
		t.Errorf("bad configuration: %v", err)
	}
}

func TestProxyToKeepsTheRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(201)
	}))
	defer store.Close()
	u, _ := url.Parse(store.URL)
	p, err := ProxyTo(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	req, _ := http.NewRequest("PUT", front.URL+"/website/a%2Fb.txt?x-id=PutObject", strings.NewReader("payload"))
	req.Host = "website.s3.localhost:9000"
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=...")
	req.Header.Set("x-amz-meta-author", "ada")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 || res.Header.Get("ETag") != `"x"` {
		t.Errorf("response %d ETag %q", res.StatusCode, res.Header.Get("ETag"))
	}
	if got.Host != "website.s3.localhost:9000" || got.URL.RawPath != "/website/a%2Fb.txt" || got.URL.RawQuery != "x-id=PutObject" ||
		got.Header.Get("Authorization") == "" || got.Header.Get("x-amz-meta-author") != "ada" || string(body) != "payload" {
		t.Errorf("store saw Host %q path %q query %q headers %v body %q", got.Host, got.URL.RawPath, got.URL.RawQuery, got.Header, body)
	}
	for _, bad := range []string{"ftp://x", "http://", "http://x/prefix"} {
		u, _ := url.Parse(bad)
		if _, err := ProxyTo(u, nil); err == nil {
			t.Errorf("ProxyTo(%q) accepted", bad)
		}
	}
}

// shutdownGraceForTests is generous: the test waits for the request, never for the clock.
const shutdownGraceForTests = time.Minute

func TestServeShutsDownOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, shutdownGraceForTests) }()
	resc := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			resc <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		resc <- string(b)
	}()
	<-entered
	cancel() // as SIGTERM does in serve
	close(release)
	if got := <-resc; got != "finished" {
		t.Errorf("in-flight request during shutdown: %q, want it to finish", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v, want nil", err)
	}
	if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Error("server still accepting after shutdown")
	}
}

// TestUnreachableStoreAnsweredByGateway: the 502 ProxyTo sends when the store refuses the
// connection is the gateway's answer, and the request log says so.
func TestUnreachableStoreAnsweredByGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	_ = ln.Close()
	upstream, err := ProxyTo(dead, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, logs := newTestGateway(t, routingConfig, upstream)
	if rec := get(t, g, "GET", "127.0.0.1:8080", "/website/a"); rec.Code != http.StatusBadGateway {
		t.Fatalf("GET with the store down: %d, want 502", rec.Code)
	}
	if want := `path=/website/a origin="" status=502 answered_by=gateway`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}

// TestLogKeepsPresignedCredentialsOut: a presigned URL's query is a bearer credential; the
// request log names its parameters, never their values.
func TestLogKeepsPresignedCredentialsOut(t *testing.T) {
	g, _, logs := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	secrets := []string{"AKIDEXAMPLE", "f1e2d3c4b5a6secret", "FwoGZXIvYXdzEXAMPLETOKEN"}
	q := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + secrets[0] + "%2F20250101%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20250101T000000Z&X-Amz-Expires=300&X-Amz-Security-Token=" + secrets[2] +
		"&X-Amz-SignedHeaders=host&X-Amz-Signature=" + secrets[1]
	get(t, g, "PUT", "127.0.0.1:8080", "/website/a%20b.txt?"+q, "Origin", "https://app.example")
	get(t, g, "OPTIONS", "127.0.0.1:8080", "/website/a?"+q, "Origin", "https://app.example", "Access-Control-Request-Method", "PUT")
	get(t, g, "GET", "127.0.0.1:8080", "/website/list?uploads&x-id=ListUploads&uploads")
	log := logs.String()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the request log holds the presigned URL's %q:\n%s", s, log)
		}
	}
	keys := "X-Amz-Algorithm,X-Amz-Credential,X-Amz-Date,X-Amz-Expires,X-Amz-Security-Token,X-Amz-SignedHeaders,X-Amz-Signature"
	for _, want := range []string{
		`method=PUT host=127.0.0.1:8080 path=/website/a%20b.txt query_keys=` + keys + ` origin=https://app.example status=200 answered_by=upstream`,
		`method=OPTIONS host=127.0.0.1:8080 path=/website/a query_keys=` + keys + ` origin=https://app.example status=200 answered_by=proxy`,
		// Each name once, in the order sent.
		`path=/website/list query_keys=uploads,x-id origin=""`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestQueryKeys(t *testing.T) {
	many := strings.Repeat("k=v&", maxQueryKeys) // one name, many times
	for i := range maxQueryKeys + 3 {
		many += "p" + string(rune('a'+i)) + "=secret&"
	}
	for raw, want := range map[string]string{
		"a=1&b=2":          "a,b",
		"acl":              "acl",
		"&&=x&a=":          "a",
		"x%2Did=PutObject": "x-id",
		"a=1;b=2":          "a",
		many:               "k,pa,pb,pc,pd,pe,pf,pg,ph,pi,pj,pk,pl,pm,pn,po,...",
		// A comma in a name cannot split it: names are shown query-escaped, '.' included, so
		// "..." is only ever a mark.
		"a%2Cb=1&c":      "a%2Cb,c",
		"a,b=1&c":        "a%2Cb,c",
		"...=1&a.b":      "%2E%2E%2E,a%2Eb",
		"a%252C=1":       "a%252C",
		"a+b&a%20b":      "a+b",
		"x%2Did&x-id":    "x-id",
		"bad%zz&%0Aline": "bad%25zz,%0Aline",
		// Each name is cut at 64 bytes, marked.
		strings.Repeat("n", 100) + "=v&" + strings.Repeat("n", 64) + "x": strings.Repeat("n", 64) + "...",
		strings.Repeat("n", 64) + "=v&" + strings.Repeat("n", 65):        strings.Repeat("n", 64) + "," + strings.Repeat("n", 64) + "...",
		strings.Repeat("%2C", 70):                                        strings.Repeat("%2C", 64) + "...",
	} {
		got := queryKeys(raw)
		if got != want {
			t.Errorf("queryKeys(%q) = %q, want %q", raw, got, want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "PutObject") {
			t.Errorf("queryKeys(%q) = %q holds a value", raw, got)
		}
	}
}

// TestQueryKeysAllocations: queryKeys runs for every request with a query; its names are
// compared by a scan over at most 16, and plain names are not copied, so the list is its one
// allocation.
func TestQueryKeysAllocations(t *testing.T) {
	raw := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101&X-Amz-Date=20250101T000000Z" +
		"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abc&x-id=PutObject"
	if n := testing.AllocsPerRun(100, func() { _ = queryKeys(raw) }); n > 1 {
		t.Errorf("queryKeys: %v allocations per call, want at most 1", n)
	}
}

func TestProxyToRefusesCredentialsInTheURL(t *testing.T) {
	u, _ := url.Parse("http://admin:hunter2@127.0.0.1:9000")
	_, err := ProxyTo(u, nil)
	if err == nil || !strings.Contains(err.Error(), "credentials in the URL") {
		t.Fatalf("ProxyTo(%q): %v, want the credentials refused", u.Redacted(), err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://admin:hunter2@127.0.0.1:9000":       "http://admin:xxxxx@127.0.0.1:9000",
		"http://admin:hunter2@[::1":                 "http://admin:xxxxx@[::1",
		"https://a:b:c@d@host:1/p?q=1":              "https://a:xxxxx@host:1/p?q=1",
		"admin:hunter2@127.0.0.1:9000":              "admin:xxxxx@127.0.0.1:9000",
		"http://admin@127.0.0.1:9000":               "http://admin@127.0.0.1:9000", // a user alone, as url.URL.Redacted
		"http://127.0.0.1:9000/p?u=http://a:b@c":    "http://127.0.0.1:9000/p?u=http://a:b@c",
		"127.0.0.1:9000/x@y":                        "127.0.0.1:9000/x@y",
		"http://:pw@host":                           "http://:xxxxx@host",
		"":                                          "",
		"http://user:p%zz@host:90x/":                "http://user:xxxxx@host:90x/",
		"http://127.0.0.1:9000?x=http://u:p@h/":     "http://127.0.0.1:9000?x=http://u:p@h/",
		"http://u:p@127.0.0.1:9000?x=http://u:p@h/": "http://u:xxxxx@127.0.0.1:9000?x=http://u:p@h/",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestProxyToRefusesAnOpaqueURLWithoutItsPassword: "user:pass@host" without a scheme parses
// as scheme "user" with an opaque part, which url.URL.Redacted shows as is.
func TestProxyToRefusesAnOpaqueURLWithoutItsPassword(t *testing.T) {
	u, err := url.Parse("admin:hunter2@127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ProxyTo(u, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), `"admin:xxxxx@127.0.0.1:9000"`) {
		t.Errorf("ProxyTo(%q): %v, want it refused with the password hidden", "admin:…@127.0.0.1:9000", err)
	}
}
