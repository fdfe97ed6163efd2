package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserVaryCache shows S3's best-known CORS flaw in a real browser, and "vary": "always"
// fixing it. A page loads an object as a plain <img> (no Origin: S3 sends no Vary), the
// browser caches the response, and a later fetch() of the same URL in CORS mode is served
// that cached copy, which has no Access-Control-Allow-Origin, and fails. With "vary":
// "always" the first response varies by Origin, so the CORS request goes to the network and
// gets S3's headers.
//
// The pages are on two origins of one site (127.0.0.1, two ports): Chromium partitions its
// HTTP cache by top-level site, so origins of one site share entries, as they would share a
// CDN's.
func TestBrowserVaryCache(t *testing.T) {
	browser := browserStart(t)
	blank := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, browserBlankPage)
	})
	originA := "http://" + browserListen(t, blank)
	originB := "http://" + browserListen(t, blank)

	var pixel bytes.Buffer
	if err := png.Encode(&pixel, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	// The store: a cacheable image at any key, counting the requests that reach it.
	var mu sync.Mutex
	hits := map[string]int{}
	store := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("ETag", `"pixel"`)
		_, _ = w.Write(pixel.Bytes())
	})
	reached := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[path]
	}

	for _, mode := range []string{"s3", "always"} {
		cfg := fmt.Appendf(nil, `{"buckets": {"pics": {"CORSRules": [{"AllowedOrigins": [%q, %q], "AllowedMethods": ["GET"]}]}}, "vary": %q}`,
			originA, originB, mode)
		gw, _ := gwStart(t, cfg, store)
		base := "http://" + gw
		fixed := mode == "always"

		t.Run("vary="+mode+"/img then fetch on one page", func(t *testing.T) {
			tab := browserTab(t, browser, originA+"/")
			path := "/pics/" + mode + "-same-page.png"
			if got := browserImage(t, tab, base+path); got != "load" {
				t.Fatalf("<img>: %s", got)
			}
			res := browserFetch(t, tab, base+path, `{cache: "default"}`)
			browserCheckCached(t, fixed, res, reached(path))
		})
		t.Run("vary="+mode+"/img on one origin, fetch on another", func(t *testing.T) {
			path := "/pics/" + mode + "-two-origins.png"
			if got := browserImage(t, browserTab(t, browser, originB+"/"), base+path); got != "load" {
				t.Fatalf("<img> on %s: %s", originB, got)
			}
			res := browserFetch(t, browserTab(t, browser, originA+"/"), base+path, `{cache: "default"}`)
			browserCheckCached(t, fixed, res, reached(path))
		})
		t.Run("vary="+mode+"/two allowed origins fetch one object", func(t *testing.T) {
			// S3's Vary on a decorated response already keeps these apart: both succeed.
			path := "/pics/" + mode + "-two-fetches.png"
			for _, o := range []string{originA, originB} {
				res := browserFetch(t, browserTab(t, browser, o+"/"), base+path, `{cache: "default"}`)
				if !res.OK || res.Status != 200 {
					t.Errorf("fetch from %s: %+v", o, res)
				}
			}
			if n := reached(path); n != 2 {
				t.Errorf("the store saw %d requests, want 2 (one per origin: the responses vary by Origin)", n)
			}
		})
	}
}

// browserCheckCached checks the CORS fetch that followed a plain <img> load of the same URL:
// without the fix the browser served it the cached, Vary-less response and failed it (the
// store saw only the image request); with it, the fetch reached the store and succeeded.
func browserCheckCached(t *testing.T, fixed bool, res fetchResult, reached int) {
	t.Helper()
	if !fixed {
		if res.OK {
			t.Errorf("the CORS fetch succeeded after the <img> load; S3's behaviour (no Vary without Origin) should have failed it from the cache: %+v", res)
		}
		if reached != 1 {
			t.Errorf("the store saw %d requests, want 1: the fetch should have been served from the cache", reached)
		}
		return
	}
	if !res.OK || res.Status != 200 || res.Headers["content-type"] != "image/png" {
		t.Errorf("the CORS fetch failed with \"vary\": \"always\": %+v", res)
	}
	if reached != 2 {
		t.Errorf("the store saw %d requests, want 2: the fetch should have gone past the cached <img> response", reached)
	}
}

// browserImage loads url as a plain <img> (no crossorigin attribute, so no Origin header) and
// returns "load" or "error".
func browserImage(t *testing.T, tab context.Context, url string) string {
	t.Helper()
	js := fmt.Sprintf(`new Promise((resolve) => {
	  const img = new Image();
	  img.onload = () => resolve("load");
	  img.onerror = () => resolve("error");
	  img.src = %q;
	})`, url)
	got, err := chromedp.Run(tab, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("<img> %s: %v", url, err)
	}
	return strings.TrimSpace(got)
}
