package e2e_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// browserAttribution is the attack of issue 14 in a real browser: a page on an origin that
// only bucket alpha allows reads bucket beta's objects through `s3cors serve` in front of
// versitygw, by a host name or a path the proxy and the store read differently. Chromium
// resolves every *.localhost name to loopback, so "beta.s3.localhost" reaches the gateway:
// a suffix "s3.local" that is not at the end of the host, which versitygw finds anyway. The
// store lets any origin read (--cors-allow-origin "*"), so a request the proxy steps aside from
// is readable too. Every attack must fail in the browser; alpha's own read must work.
func browserAttribution(t *testing.T, browser context.Context) {
	store := attrStore(t)
	page := browserBlankPageServer(t)
	_, pagePort, _ := net.SplitHostPort(page)
	pageOrigin := "http://127.0.0.1:" + pagePort
	gw := startServeCLI(t, extprocCLIBinary(t), testenv.Module(t), attrListedConfig(pageOrigin), "http://"+store.Addr)
	_, port, _ := net.SplitHostPort(gw)
	tab := browserTab(t, browser, pageOrigin+"/")

	t.Run("alpha's own object is readable", func(t *testing.T) {
		res := browserFetch(t, tab, "http://localhost:"+port+"/alpha/k", `{credentials: "include"}`)
		if !res.OK || res.Status != 200 || res.Body != "alpha:k" {
			t.Errorf("GET alpha/k from %s: %+v; want 200 \"alpha:k\"", pageOrigin, res)
		}
	})
	for _, tc := range []struct{ name, host, path string }{
		{"beta path-style (no CORS)", "localhost", "/beta/secret.txt"},
		{"suffix inside the host", "beta.s3.localhost", "/alpha/k"},
		{"suffix inside the host, another key", "beta.s3.localhost", "/secret.txt"},
		{"suffix inside, hyphen", "beta.s3.local-x.localhost", "/alpha/k"},
		{"encoded slash", "localhost", "/beta%2Fsecret.txt"},
		{"encoded slash listing", "localhost", "/beta%2F"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authority := tc.host + ":" + port
			url := "http://" + authority + tc.path
			if res := browserFetch(t, tab, url, `{}`); res.OK {
				t.Errorf("the page on %s read %s: %d %q", pageOrigin, url, res.Status, cut(res.Body, 120))
			}
			// The same request outside the browser: the attack proves something only while
			// the store does serve beta for it.
			v := attrVariant{Hosts: []string{authority}, Target: tc.path}
			r := attrSend(gw, http.MethodGet, v, false)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if served := store.ServedLog(t)[r.RequestID]; served.Bucket != "beta" {
				t.Errorf("the store served bucket %q for %s, want beta: the attack no longer reaches beta", served.Bucket, url)
			}
		})
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
