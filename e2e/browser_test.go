package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/s3cors/s3cors/internal/gateway"
	"github.com/s3cors/s3cors/internal/gateway/demo"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// Real-browser tests: headless Chromium, a page on one origin, the gateway (the built
// s3cors.wasm in wasmhost) on another, the embedded store behind it. What is asserted is what
// the browser let the page do, and what reached the store.
//
// One Chromium serves the whole test binary: TestBrowser starts it and every case runs in a
// new tab.

// browserChromium finds Chromium, or fails with how to install it: locally as in CI, a
// browser test never skips.
func browserChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("S3CORS_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Chromium and it is not on PATH (%v): install it with "+
			"`apt-get update && apt-get install -y chromium` (Debian/Ubuntu; .ci/run does this in CI), "+
			"or point S3CORS_CHROMIUM at a Chromium or Chrome binary", err)
	}
	return p
}

// browserStart starts the one headless Chromium and returns its root context.
func browserStart(t *testing.T) context.Context {
	t.Helper()
	exe := browserChromium(t)
	profile := t.TempDir() // registered first, so removed after the browser has exited
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Run starts the browser, on a context without a timeout (see chromedp.Run).
	if _, err := chromedp.Run(browserCtx, chromedp.Evaluate[int]("1")); err != nil {
		t.Fatalf("starting Chromium %s: %v", exe, err)
	}
	return browserCtx
}

// browserTab opens a new tab on url; it closes when the test ends.
func browserTab(t *testing.T, browser context.Context, url string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
	return tab
}

// fetchResult is what a page's fetch saw.
type fetchResult struct {
	OK      bool              `json:"ok"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"` // the headers JavaScript may read
	Body    string            `json:"body"`
	Error   string            `json:"error"`
}

// browserFetch runs fetch(url, init) in the tab; init is a JavaScript object literal.
func browserFetch(t *testing.T, tab context.Context, url, init string) fetchResult {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
	  try {
	    const r = await fetch(%q, Object.assign({cache: "no-store"}, %s));
	    const headers = {};
	    for (const [k, v] of r.headers) headers[k] = v;
	    return {ok: true, status: r.status, headers, body: await r.text()};
	  } catch (e) {
	    return {ok: false, error: String(e)};
	  }
	})()`, url, init)
	res, err := chromedp.Run(tab, chromedp.Evaluate[fetchResult](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s: %v", url, err)
	}
	return res
}

// browserFontStatus declares an @font-face for url, asks document.fonts to load it, and
// returns the face's status: "loaded" or "error".
func browserFontStatus(t *testing.T, tab context.Context, url string) string {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
	  const family = "F" + Math.random().toString(36).slice(2);
	  const style = document.createElement("style");
	  style.textContent = '@font-face { font-family: "' + family + '"; src: url(%q) format("truetype"); }';
	  document.head.appendChild(style);
	  try { await document.fonts.load('16px "' + family + '"'); } catch (e) {}
	  let status = "not declared";
	  document.fonts.forEach((f) => { if (f.family.replace(/"/g, "") === family) status = f.status; });
	  return status;
	})()`, url)
	status, err := chromedp.Run(tab, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("font %s: %v", url, err)
	}
	return status
}

// browserListen listens on a fresh loopback port and serves h until the test ends.
func browserListen(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, ln, h, time.Minute) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("page server: %v", err)
		}
	})
	return ln.Addr().String()
}

const browserBlankPage = `<!doctype html><html><head><meta charset="utf-8"><title>s3cors browser test</title></head><body></body></html>`

// browserBlankPageServer serves browserBlankPage on a fresh loopback port and returns its
// address: the page whose origin the tests' fetches come from.
func browserBlankPageServer(t testing.TB) string {
	t.Helper()
	return browserListen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, browserBlankPage)
	}))
}

// browserConfig is the configuration of the browser tests; page is the page's origin.
func browserConfig(page string) []byte {
	return fmt.Appendf(nil, `{
	  "buckets": {
	    "uploads": {"CORSRules": [{"ID": "uploads", "AllowedOrigins": [%[1]q], "AllowedMethods": ["PUT", "GET", "HEAD"],
	                               "AllowedHeaders": ["x-amz-meta-*", "content-type"], "ExposeHeaders": ["ETag"]}]},
	    "readonly": {"CORSRules": [{"AllowedOrigins": [%[1]q], "AllowedMethods": ["GET"]}]},
	    "creds-echo": {"CORSRules": [{"AllowedOrigins": [%[1]q], "AllowedMethods": ["GET"]}]},
	    "creds-star": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]},
	    "fonts-allowed": [{"AllowedOrigins": [%[1]q], "AllowedMethods": ["GET"]}],
	    "fonts-denied": [{"AllowedOrigins": ["https://elsewhere.example"], "AllowedMethods": ["GET"]}],
	    "expose": {"CORSRules": [{"AllowedOrigins": [%[1]q], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag", "x-amz-meta-visible"]}]}
	  }
	}`, page)
}

func TestBrowser(t *testing.T) {
	browser := browserStart(t)

	page := browserBlankPageServer(t)
	_, port, _ := net.SplitHostPort(page)
	pageOrigin := "http://127.0.0.1:" + port
	otherOrigin := "http://localhost:" + port // same server, another origin: not in any rule

	buckets := []string{"uploads", "readonly", "creds-echo", "creds-star", "fonts-allowed", "fonts-denied", "expose"}
	store := s3mem.New(s3mem.Options{Buckets: buckets, PathStyle: true})
	for _, b := range buckets {
		if err := store.Put(b, "hello.txt", []byte("hello from "+b), "text/plain", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"fonts-allowed", "fonts-denied"} {
		if err := store.Put(b, "pixel.ttf", demo.Font(), "font/ttf", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Put("expose", "obj.txt", []byte("exposed"), "text/plain", map[string]string{"visible": "yes", "hidden": "no"}); err != nil {
		t.Fatal(err)
	}
	gw, g := gwStart(t, browserConfig(pageOrigin), store)
	base := "http://" + gw

	tab := browserTab(t, browser, pageOrigin+"/")

	t.Run("allowed PUT with a custom header is stored", func(t *testing.T) {
		res := browserFetch(t, tab, base+"/uploads/allowed.txt",
			`{method: "PUT", headers: {"x-amz-meta-author": "ada", "Content-Type": "text/plain"}, body: "written by the browser"}`)
		if !res.OK || res.Status != 200 {
			t.Fatalf("PUT: %+v", res)
		}
		obj, ok := store.Get("uploads", "allowed.txt")
		if !ok || string(obj.Body) != "written by the browser" || obj.Meta["author"] != "ada" {
			t.Fatalf("stored %v %q meta %v", ok, obj.Body, obj.Meta)
		}
		if res.Headers["etag"] != obj.ETag {
			t.Errorf("ETag readable from JavaScript %q, want %q (it is exposed)", res.Headers["etag"], obj.ETag)
		}
	})

	for _, tc := range []struct {
		name, origin, url, init string
		bucket, key             string
	}{
		{"PUT from a disallowed origin is blocked", otherOrigin, "/uploads/other-origin.txt",
			`{method: "PUT", headers: {"x-amz-meta-author": "eve"}, body: "x"}`, "uploads", "other-origin.txt"},
		{"PUT with a disallowed header is blocked", pageOrigin, "/uploads/bad-header.txt",
			`{method: "PUT", headers: {"x-custom-header": "1"}, body: "x"}`, "uploads", "bad-header.txt"},
		{"PUT with a disallowed method is blocked", pageOrigin, "/readonly/put.txt",
			`{method: "PUT", body: "x"}`, "readonly", "put.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := tab
			if tc.origin != pageOrigin {
				tb = browserTab(t, browser, tc.origin+"/")
			}
			res := browserFetch(t, tb, base+tc.url, tc.init)
			if res.OK {
				t.Errorf("the browser let the page through: %+v", res)
			}
			if _, ok := store.Get(tc.bucket, tc.key); ok {
				t.Errorf("%s/%s was written although the preflight failed", tc.bucket, tc.key)
			}
		})
	}

	t.Run("DELETE not in AllowedMethods is blocked and the object stays", func(t *testing.T) {
		res := browserFetch(t, tab, base+"/uploads/hello.txt", `{method: "DELETE"}`)
		if res.OK {
			t.Errorf("DELETE went through: %+v", res)
		}
		if _, ok := store.Get("uploads", "hello.txt"); !ok {
			t.Error("uploads/hello.txt was deleted")
		}
	})

	t.Run("credentials with an echoed origin succeed", func(t *testing.T) {
		res := browserFetch(t, tab, base+"/creds-echo/hello.txt", `{credentials: "include"}`)
		if !res.OK || res.Status != 200 || res.Body != "hello from creds-echo" {
			t.Errorf("GET with credentials: %+v", res)
		}
	})
	t.Run("credentials with a * rule are blocked", func(t *testing.T) {
		if res := browserFetch(t, tab, base+"/creds-star/hello.txt", `{credentials: "include"}`); res.OK {
			t.Errorf("GET with credentials from a * rule went through: %+v", res)
		}
		// The same request without credentials is fine: * is the reason, not the rule.
		if res := browserFetch(t, tab, base+"/creds-star/hello.txt", `{}`); !res.OK || res.Body != "hello from creds-star" {
			t.Errorf("GET without credentials: %+v", res)
		}
	})

	t.Run("a web font loads only where the rule allows the origin", func(t *testing.T) {
		if got := browserFontStatus(t, tab, base+"/fonts-allowed/pixel.ttf"); got != "loaded" {
			t.Errorf("font from fonts-allowed: status %q, want loaded", got)
		}
		if got := browserFontStatus(t, tab, base+"/fonts-denied/pixel.ttf"); got != "error" {
			t.Errorf("font from fonts-denied: status %q, want error", got)
		}
	})

	t.Run("Expose-Headers makes exactly the listed headers readable", func(t *testing.T) {
		res := browserFetch(t, tab, base+"/expose/obj.txt", `{}`)
		if !res.OK || res.Body != "exposed" {
			t.Fatalf("GET: %+v", res)
		}
		// What the gateway sent, seen without a browser: the readable set is the safelisted
		// headers it sent plus the exposed ones, and nothing else.
		req, _ := http.NewRequest("GET", base+"/expose/obj.txt", nil)
		req.Header.Set("Origin", pageOrigin)
		raw, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw.Body.Close()
		if got := raw.Header.Get("Access-Control-Expose-Headers"); got != "ETag, x-amz-meta-visible" {
			t.Errorf("Access-Control-Expose-Headers %q", got)
		}
		safelisted := []string{"cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"}
		var want []string
		for _, h := range safelisted {
			if raw.Header.Get(h) != "" {
				want = append(want, h)
			}
		}
		want = append(want, "etag", "x-amz-meta-visible")
		sort.Strings(want)
		var got []string
		for h := range res.Headers {
			got = append(got, h)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("JavaScript can read %v, want exactly %v", got, want)
		}
		if res.Headers["x-amz-meta-visible"] != "yes" || raw.Header.Get("x-amz-meta-hidden") != "no" {
			t.Errorf("x-amz-meta-visible %q (readable), x-amz-meta-hidden %q (sent but hidden)", res.Headers["x-amz-meta-visible"], raw.Header.Get("x-amz-meta-hidden"))
		}
	})

	t.Run("the store never saw a preflight", func(t *testing.T) {
		st := store.Stats()
		if st.ByMethod["OPTIONS"] != 0 {
			t.Errorf("%d OPTIONS reached the store", st.ByMethod["OPTIONS"])
		}
		// The browser did send preflights (the PUTs with custom headers, the DELETE): the
		// filter answered them.
		if gs := g.Stats(); gs.AnsweredAtProxy < 4 {
			t.Errorf("the filter answered %d requests itself; the browser should have sent at least 4 preflights", gs.AnsweredAtProxy)
		}
	})

	t.Run("demo page", func(t *testing.T) { browserDemoPage(t, browser) })
	t.Run("bucket attribution", func(t *testing.T) { browserAttribution(t, browser) })
}

// browserDemoPage opens the demo page of `s3cors serve --demo-listen` against a gateway with
// the demo configuration, runs every action and checks each card against what it teaches. The
// screenshot goes to e2e/testdata/out/demo.png.
func browserDemoPage(t *testing.T, browser context.Context) {
	pageLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageOrigin := "http://" + pageLn.Addr().String()
	cfg := strings.ReplaceAll(string(gwDemoConfig(t)), "http://127.0.0.1:8081", pageOrigin)
	buckets := []string{"website", "fonts", "public", "sandboxed", "partner-fonts", "private"}
	store := s3mem.New(s3mem.Options{Buckets: buckets, VirtualHostSuffixes: []string{"s3.localhost"}, PathStyle: true})
	if err := demo.Seed(store.Put, buckets); err != nil {
		t.Fatal(err)
	}
	gw, g := gwStart(t, []byte(cfg), store, func(o *gateway.Options) { o.DemoOrigin = pageOrigin })
	debug := browserListen(t, g.Debug())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Serve(ctx, pageLn, demo.Handler("http://"+gw, "http://"+debug), time.Minute) }()
	t.Cleanup(func() { cancel(); <-done })

	tab := browserTab(t, browser, pageOrigin+"/")
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById("run-all").click(), true`)); err != nil {
		t.Fatal(err)
	}
	// The actions run one after another; a generous bound only turns a hang into a message.
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.demoDone === true`, chromedp.WithPollingTimeout(3*time.Minute))); err != nil {
		t.Fatalf("the demo's actions did not finish: %v", err)
	}
	type card struct {
		ID     string `json:"id"`
		Expect string `json:"expect"`
		State  string `json:"state"`
		Why    string `json:"why"`
	}
	cards, err := chromedp.Run(tab, chromedp.Evaluate[[]card](`[...document.querySelectorAll(".card")].map((c) => ({
	  id: c.id, expect: c.dataset.expect, state: c.dataset.state || "", why: c.querySelector(".why").textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) < 8 {
		t.Fatalf("%d cards on the demo page", len(cards))
	}
	for _, c := range cards {
		if c.State != c.Expect {
			t.Errorf("demo action %s: %s, want %s (%s)", c.ID, c.State, c.Expect, c.Why)
		}
		if strings.TrimSpace(c.Why) == "" || strings.Contains(c.Why, "explain:") {
			t.Errorf("demo action %s: no explanation from the gateway (%q)", c.ID, c.Why)
		}
	}
	if _, ok := store.Get("website", "notes/tracked.txt"); ok {
		t.Error("the demo's blocked upload was stored")
	}
	if store.Stats().ByMethod["OPTIONS"] != 0 {
		t.Error("a preflight of the demo reached the store")
	}
	// Open the details of the blocked actions, so the screenshot shows the rules that decided.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelectorAll(".card.bad details").forEach((d) => (d.open = true)), true`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(testenv.RepoRoot(t), "e2e", "testdata", "out")
	if err := os.MkdirAll(out, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(out, "demo.png"), png, 0o644)
	}
	js, _ := json.MarshalIndent(cards, "", "  ")
	t.Logf("demo cards:\n%s", js)
}
