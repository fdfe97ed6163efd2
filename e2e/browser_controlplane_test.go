package e2e_test

// Issue 18's promise, seen by a browser: in front of a store without the bucket CORS API, a
// user runs `aws s3api put-bucket-cors` through s3cors and a page on another origin may then
// PUT through every proxy; after `aws s3api delete-bucket-cors` it may not. Real Chromium, the
// real AWS CLI, two real Envoys (the oldest and newest pinned releases) on one control plane,
// the embedded store behind them.

import (
	"context"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// browserPolled is what browserPoll saw on one base URL: the last fetch's outcome, its URL,
// how many fetches it took and when the last one settled.
type browserPolled struct {
	fetchResult
	URL      string  `json:"url"`
	Attempts int     `json:"attempts"`
	At       float64 `json:"at"` // milliseconds since the Unix epoch, the page's clock
}

// browserPoll fetches, in the tab and for each base URL at once, base + "-<n>" (n = 0, 1, ...:
// a fresh URL each time, so no preflight result the browser cached decides) until the fetch
// succeeds (ok) or fails (!ok), or until 30 s have passed: a guard against a hang, not a
// timing assertion.
func browserPoll(t *testing.T, tab context.Context, bases []string, init string, ok bool) []browserPolled {
	t.Helper()
	js := fmt.Sprintf(`(async (bases, init, want) => {
	  const deadline = Date.now() + 30000;
	  return Promise.all(bases.map(async (base) => {
	    for (let n = 0; ; n++) {
	      const url = base + "-" + n;
	      let r;
	      try {
	        const resp = await fetch(url, Object.assign({cache: "no-store"}, init));
	        const headers = {};
	        for (const [k, v] of resp.headers) headers[k] = v;
	        r = {ok: true, status: resp.status, headers, body: await resp.text()};
	      } catch (e) {
	        r = {ok: false, error: String(e)};
	      }
	      if (r.ok === want || Date.now() > deadline) return Object.assign(r, {url, attempts: n + 1, at: Date.now()});
	      await new Promise((resolve) => setTimeout(resolve, 2));
	    }
	  }));
	})(%s, %s, %t)`, jsStrings(bases), init, ok)
	res, err := chromedp.Run(tab, chromedp.Evaluate[[]browserPolled](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("polling %v: %v", bases, err)
	}
	for _, r := range res {
		if r.OK != ok {
			t.Fatalf("%s: after %d fetches in 30s the page still sees %+v", r.URL, r.Attempts, r.fetchResult)
		}
	}
	return res
}

func jsStrings(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// browserCORSErrors records, for the requests of tab that Chromium failed for CORS, the reason
// it gives DevTools (PreflightInvalidStatus, PreflightMissingAllowOriginHeader...) by URL.
func browserCORSErrors(t *testing.T, tab context.Context) func(url string) string {
	t.Helper()
	var mu sync.Mutex
	urls := map[network.RequestID]string{}
	errs := map[string]string{}
	err := chromedp.Listen(tab, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[ev.RequestID] = ev.Request.URL
		case *network.EventLoadingFailed:
			if ev.CorsErrorStatus != nil {
				errs[urls[ev.RequestID]] = string(ev.CorsErrorStatus.CorsError)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(url string) string {
		mu.Lock()
		defer mu.Unlock()
		return errs[url]
	}
}

// awsCLI returns a runner of the AWS CLI (awscli from PyPI) with the control plane's key,
// path-style addressing, and no configuration of the user's; it logs how long each command
// ran (Python's start-up is most of it).
func awsCLI(t *testing.T) func(args ...string) {
	t.Helper()
	py := testenv.Python(t, []string{"boto3", "awscli"}, []string{"boto3", "awscli"})
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("aws %s %s ran %v", args[0], args[1], time.Since(start).Round(time.Millisecond)) }()
		cmd := exec.Command(filepath.Join(filepath.Dir(py), "aws"), args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
			"AWS_ACCESS_KEY_ID="+cpKey, "AWS_SECRET_ACCESS_KEY="+cpSecret)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestBrowserControlPlane: a page's cross-origin PUT with a custom header through each of two
// Envoys is blocked while the bucket has no CORS rules (Chromium reports the failed
// preflight) and never reaches the store; `aws s3api put-bucket-cors` through one Envoy
// allows it, and the page's PUT then succeeds through both, reaches the store with its
// header, and the page reads the exposed ETag; `aws s3api delete-bucket-cors` through the
// other Envoy blocks it on both again. It logs the time from the CLI's exit to the page's
// first success on each Envoy.
func TestBrowserControlPlane(t *testing.T) {
	browser := browserStart(t)
	pageOrigin := "http://" + browserBlankPageServer(t)
	store := s3mem.New(s3mem.Options{Buckets: []string{"website", "photos"}, PathStyle: true})
	storeAddr := browserListen(t, store)
	plane := startPlane(t, []byte(cpSeed), &controlplane.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}, 0, "127.0.0.1:0", "127.0.0.1:0")
	all := testenv.Envoys(t)
	envoys := []testenv.Envoy{all[0], all[len(all)-1]}
	var addrs []string
	for i, e := range envoys {
		env := startRealEnvoy(t, e.Path, cpBootstrap(t, fmt.Sprintf("envoy-%d-%s", i, e.Version), storeAddr, plane.api, plane.xds))
		addrs = append(addrs, env.listeners["s3"])
		t.Logf("envoy %s at %s", e.Version, env.listeners["s3"])
	}
	aws := awsCLI(t)
	// Both Envoys have the control plane's configuration, in which website has no rules.
	hc := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, hc, addrs, "website", pageOrigin, false, "CORS is not enabled for this bucket.")

	tab := browserTab(t, browser, pageOrigin+"/")
	corsError := browserCORSErrors(t, tab)
	const put = `{method: "PUT", headers: {"x-amz-meta-note": "from the page"}, body: "written through s3cors"}`
	bases := func(phase string) []string {
		var b []string
		for i, a := range addrs {
			b = append(b, fmt.Sprintf("http://%s/website/%s-%d", a, phase, i))
		}
		return b
	}
	// blocked checks that Chromium failed the fetch on its preflight (which the proxy
	// refused: 403 without Access-Control-Allow-Origin, PreflightMissingAllowOriginHeader
	// to Chromium, which looks at that header first), and that nothing of it reached the
	// store.
	blocked := func(t *testing.T, r browserPolled) {
		t.Helper()
		testenv.Eventually(t, "DevTools reporting the CORS error of "+r.URL, func() bool { return corsError(r.URL) != "" })
		if got := corsError(r.URL); !strings.HasPrefix(got, "Preflight") {
			t.Errorf("%s: Chromium's CORS error %q, want a failed preflight", r.URL, got)
		}
		u, err := neturl.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := store.Get("website", strings.TrimPrefix(u.Path, "/website/")); ok {
			t.Errorf("%s reached the store although its preflight failed", r.URL)
		}
	}

	// 1. No rules: the browser blocks the PUT through either Envoy.
	for _, r := range browserPoll(t, tab, bases("before"), put, false) {
		if r.Attempts != 1 {
			t.Fatalf("%s: the page's PUT went through before any rule allowed it (%d fetches)", r.URL, r.Attempts)
		}
		blocked(t, r)
	}
	if st := store.Stats(); st.Requests != 0 {
		t.Fatalf("the store saw %v before any rule allowed the page", st.ByMethod)
	}

	// 2. The user allows the page's origin with the AWS CLI, through the first Envoy.
	rules := fmt.Sprintf(`{"CORSRules": [{"AllowedOrigins": [%q], "AllowedMethods": ["PUT"], "AllowedHeaders": ["x-amz-meta-note"], "ExposeHeaders": ["ETag"]}]}`, pageOrigin)
	aws("s3api", "put-bucket-cors", "--endpoint-url", "http://"+addrs[0], "--bucket", "website", "--cors-configuration", rules)
	exited := time.Now()

	// 3. The page's PUT now succeeds through each Envoy and reaches the store.
	for i, r := range browserPoll(t, tab, bases("after-put"), put, true) {
		t.Logf("envoy %s: the page's first successful PUT %v after the CLI exited (%d fetches)",
			envoys[i].Version, time.UnixMilli(int64(r.At)).Sub(exited).Round(time.Millisecond), r.Attempts)
		key := fmt.Sprintf("after-put-%d-%d", i, r.Attempts-1)
		obj, ok := store.Get("website", key)
		if r.Status != 200 || !ok || string(obj.Body) != "written through s3cors" || obj.Meta["note"] != "from the page" {
			t.Fatalf("%s: %+v; the store has %v %q meta %v", r.URL, r.fetchResult, ok, obj.Body, obj.Meta)
		}
		if r.Headers["etag"] != obj.ETag {
			t.Errorf("%s: the page reads ETag %q, want %q (it is exposed)", r.URL, r.Headers["etag"], obj.ETag)
		}
		for n := range r.Attempts - 1 {
			blocked(t, browserPolled{URL: fmt.Sprintf("%s-%d", bases("after-put")[i], n)})
		}
	}

	// 4. The user removes the rules with the AWS CLI, through the second Envoy: the page is
	// blocked on both again.
	aws("s3api", "delete-bucket-cors", "--endpoint-url", "http://"+addrs[1], "--bucket", "website")
	exited = time.Now()
	for i, r := range browserPoll(t, tab, bases("after-delete"), put, false) {
		t.Logf("envoy %s: the page's first blocked PUT %v after the CLI exited (%d fetches)",
			envoys[i].Version, time.UnixMilli(int64(r.At)).Sub(exited).Round(time.Millisecond), r.Attempts)
		blocked(t, r)
	}
	// The filter answered every preflight; only the allowed PUTs reached the store.
	st := store.Stats()
	if st.ByMethod["OPTIONS"] != 0 {
		t.Errorf("%d preflights reached the store", st.ByMethod["OPTIONS"])
	}
	if n := int64(len(store.Keys("website"))); st.ByMethod["PUT"] != n || st.Requests != n {
		t.Errorf("the store saw %v and holds %d objects", st.ByMethod, n)
	}
}
