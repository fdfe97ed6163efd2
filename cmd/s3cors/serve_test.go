package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// waitFor blocks until out matches re, or the command has exited.
func waitFor(t *testing.T, out *testenv.SyncBuffer, re *regexp.Regexp, exited <-chan int) []string {
	t.Helper()
	written := out.Written()
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case <-written:
		case code := <-exited:
			t.Fatalf("serve exited with %d before printing %s:\n%s", code, re, out.String())
		}
	}
}

var (
	gatewayLine = regexp.MustCompile(`s3cors gateway on (http://127\.0\.0\.1:\d+)\n`)
	demoLine    = regexp.MustCompile(`demo: +open (http://127\.0\.0\.1:\d+) in a browser`)
	debugLine   = regexp.MustCompile(`debug: +(http://127\.0\.0\.1:\d+) \(`)
)

// TestServe is `make run` in-process: the demo configuration, the built module, the embedded
// store and the demo page, then a SIGTERM (a cancelled context).
func TestServe(t *testing.T) {
	stdout, stderr := new(testenv.SyncBuffer), new(testenv.SyncBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	args := []string{"serve", "--config", filepath.Join("..", "..", "testdata", "demo", "config.json"),
		"--listen", "127.0.0.1:0", "--demo-listen", "127.0.0.1:0", "--wasm", testenv.Module(t)}
	go func() { exited <- runContext(ctx, args, stdout, stderr) }()
	gw := waitFor(t, stdout, gatewayLine, exited)[1]
	page := waitFor(t, stdout, demoLine, exited)[1]
	debug := waitFor(t, stdout, debugLine, exited)[1] // the default --debug-listen, 127.0.0.1:0
	banner := stdout.String()
	for _, want := range []string{"Try:", "an allowed preflight", "a denied preflight", "curl -i -X OPTIONS " + gw + "/website/notes/hello.txt", "s3cors explain --config", "curl -s " + debug + "/debug/s3cors/stats"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	// reply is a response already read and closed.
	type reply struct {
		StatusCode int
		Header     http.Header
	}
	do := func(method, url string, body io.Reader, hdr ...string) (reply, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return reply{res.StatusCode, res.Header}, string(b)
	}
	// The banner's two preflights do what it says; the page origin is allowed by the demo
	// configuration only when it is 127.0.0.1:8081, so use the banner's own origins.
	allowedOrigin := regexp.MustCompile(`(?m)^  curl -i -X OPTIONS \S+ -H 'Origin: ([^']+)' -H 'Access-Control-Request-Method: (\w+)'`).FindAllStringSubmatch(banner, -1)
	if len(allowedOrigin) != 2 {
		t.Fatalf("banner curl lines: %q", allowedOrigin)
	}
	res, _ := do("OPTIONS", gw+"/website/notes/hello.txt", nil, "Origin", allowedOrigin[0][1], "Access-Control-Request-Method", allowedOrigin[0][2])
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != allowedOrigin[0][1] {
		t.Errorf("banner's allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	res, body := do("OPTIONS", gw+"/website/notes/hello.txt", nil, "Origin", allowedOrigin[1][1], "Access-Control-Request-Method", allowedOrigin[1][2])
	if res.StatusCode != 403 || !strings.Contains(body, "<Code>AccessForbidden</Code>") {
		t.Errorf("banner's denied preflight: %d %s", res.StatusCode, body)
	}

	// The embedded store: an upload and its read-back, with metadata.
	res, _ = do("PUT", gw+"/website/notes/a.txt", strings.NewReader("hello"), "Content-Type", "text/plain", "x-amz-meta-author", "ada", "Origin", "http://127.0.0.1:8081")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Expose-Headers") != "ETag, x-amz-meta-author" {
		t.Errorf("PUT: %d %v", res.StatusCode, res.Header)
	}
	res, body = do("GET", gw+"/website/notes/a.txt", nil)
	if res.StatusCode != 200 || body != "hello" || res.Header.Get("x-amz-meta-author") != "ada" {
		t.Errorf("GET: %d %q %v", res.StatusCode, body, res.Header)
	}
	// Seeded for the demo page.
	if res, body = do("GET", gw+"/fonts/pixel.ttf", nil); res.StatusCode != 200 || res.Header.Get("Content-Type") != "font/ttf" || len(body) < 1000 {
		t.Errorf("seeded font: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	if res, body = do("GET", gw+"/healthz", nil); res.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", res.StatusCode, body)
	}
	if res, body = do("GET", page+"/", nil); res.StatusCode != 200 || !strings.Contains(body, "s3cors demo") {
		t.Errorf("demo page: %d", res.StatusCode)
	}
	if res, body = do("GET", page+"/config.js", nil); !strings.Contains(body, `"gateway":"`+gw+`"`) || !strings.Contains(body, `"debug":"`+debug+`"`) {
		t.Errorf("demo config.js %q does not name the gateway %s and its debug listener %s", body, gw, debug)
	}
	// The debug endpoints are off the S3 listener: there /debug/... is bucket "debug", which
	// the embedded store does not hold.
	for _, path := range []string{"/debug/s3cors/stats", "/debug/s3cors/explain?method=GET&bucket=website&key=a"} {
		if res, body = do("GET", gw+path, nil); res.StatusCode != 404 || !strings.Contains(body, "<Code>NoSuchBucket</Code>") {
			t.Errorf("GET %s on the S3 listener: %d %q, want the store's NoSuchBucket", path, res.StatusCode, body)
		}
	}
	if res, body = do("GET", debug+"/debug/s3cors/explain?method=GET&bucket=website&key=a", nil, "Origin", page); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != page || !strings.Contains(body, `"rules"`) {
		t.Errorf("explain on the debug listener, from the demo page: %d %v %q", res.StatusCode, res.Header, body)
	}
	_, body = do("GET", debug+"/debug/s3cors/stats", nil)
	var st struct {
		AnsweredAtProxy  int64            `json:"answered_at_proxy"`
		ReachedUpstream  int64            `json:"reached_upstream"`
		UpstreamByMethod map[string]int64 `json:"upstream_by_method"`
		Wasm             map[string]int64 `json:"wasm_metrics"`
		Store            struct {
			ByMethod map[string]int64 `json:"by_method"`
		} `json:"store"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("stats %q: %v", body, err)
	}
	if st.AnsweredAtProxy != 2 || st.ReachedUpstream != 5 || st.UpstreamByMethod["OPTIONS"] != 0 || st.Store.ByMethod["OPTIONS"] != 0 || st.Store.ByMethod["PUT"] != 1 || len(st.Wasm) == 0 {
		t.Errorf("stats: %s", body)
	}

	cancel() // SIGTERM
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d after the signal; stderr:\n%s", code, stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{
		`msg=request method=OPTIONS`, `answered_by=proxy`, `answered_by=upstream`, `answered_by=gateway`,
		`msg=stopped requests=`, `reached_upstream=5`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestServeDebugListenOff: --debug-listen off serves no debug endpoints anywhere, and says
// that the demo page then cannot explain a failure.
func TestServeDebugListenOff(t *testing.T) {
	stdout, stderr := new(testenv.SyncBuffer), new(testenv.SyncBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	args := []string{"serve", "--config", filepath.Join("..", "..", "testdata", "demo", "config.json"),
		"--listen", "127.0.0.1:0", "--debug-listen", "off", "--demo-listen", "127.0.0.1:0", "--wasm", testenv.Module(t)}
	go func() { exited <- runContext(ctx, args, stdout, stderr) }()
	waitFor(t, stdout, demoLine, exited)
	waitFor(t, stderr, regexp.MustCompile(`msg=serving`), exited)
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d; stderr:\n%s", code, stderr.String())
	}
	if banner := stdout.String(); strings.Contains(banner, "debug:") || strings.Contains(banner, "/debug/s3cors/stats") {
		t.Errorf("banner names a debug listener that is off:\n%s", banner)
	}
	if log := stderr.String(); !strings.Contains(log, "--debug-listen is off: the demo page cannot ask the explain endpoint") {
		t.Errorf("log lacks the warning:\n%s", log)
	}
}

// TestServeStartupErrors: a bad configuration is refused with every problem, before anything
// listens; a module that is not wasm is refused too.
func TestServeStartupErrors(t *testing.T) {
	r := runCLI(t, "serve", "--config", filepath.Join("testdata", "in", "bad-wildcards.json"), "--listen", "127.0.0.1:0", "--wasm", testenv.Module(t))
	if r.code != 1 || !strings.Contains(r.stderr, `AllowedOrigin "https://*.*.example.com" can not have more than one wildcard.`) || !strings.Contains(r.stderr, "ExposeHeader") {
		t.Errorf("bad configuration: exit %d\n%s", r.code, r.stderr)
	}
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	writeFile(t, notWasm, "not a module")
	r = runCLI(t, "serve", "--config", filepath.Join("testdata", "in", "config.json"), "--listen", "127.0.0.1:0", "--wasm", notWasm)
	if r.code != 1 || !strings.Contains(r.stderr, "wasm filter") {
		t.Errorf("bad module: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := embeddedModule(); err != nil && (!errors.Is(err, errNoEmbeddedModule) || !strings.Contains(err.Error(), "make build")) {
		t.Errorf("missing embedded module: %v", err)
	}
}

// TestExtproc wires the ext_proc server: it starts with the configuration, serves, and stops
// cleanly on SIGTERM (a cancelled context).
func TestExtproc(t *testing.T) {
	stdout, stderr := new(testenv.SyncBuffer), new(testenv.SyncBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(ctx, []string{"extproc", "--config", filepath.Join("testdata", "in", "config.yaml"),
			"--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json"}, stdout, stderr)
	}()
	waitFor(t, stderr, regexp.MustCompile(`"msg":"s3cors ext_proc serving"`), exited)
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("extproc exited %d after the signal:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "s3cors ext_proc stopped") {
		t.Errorf("no stop line in the log:\n%s", stderr.String())
	}
	r := runCLI(t, "extproc", "--config", filepath.Join("testdata", "in", "bad-method.json"), "--listen", "127.0.0.1:0", "--metrics-listen", "")
	if r.code != 1 || !strings.Contains(r.stderr, "Unsupported method is PATCH") {
		t.Errorf("extproc with an invalid configuration: exit %d\n%s", r.code, r.stderr)
	}
}
