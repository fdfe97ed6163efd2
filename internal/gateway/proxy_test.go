package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// forwardTargets are request-targets a proxy is tempted to normalise or re-encode. Each must
// reach the store exactly as sent: the filter evaluated these bytes.
var forwardTargets = []string{
	"/beta%2Fk|",
	"/beta%2Fsecret.txt",
	"/beta%2F",
	"/beta%5Csecret.txt",
	"/website/a#b",
	"/website/#",
	"/website/k?x=1#frag",
	"/%2e%2e/beta/k",
	"/website/%2E%2E/%2e%2e/beta/k",
	"/website/../beta/k",
	"/website/./k",
	"//beta/k",
	"//",
	"///website//k//",
	"//beta%2Fk",
	"/website/k;a=b",
	"/website;x/k",
	"/website/k?a=1;b=2&c",
	"/website/k?",
	"/website/k??x",
	"/website/%C3%A9t%C3%A9/%E2%82%AC.txt",
	"/website/\xc3\xa9t\xc3\xa9",
	"/website/%c3%a9",
	"/website/a%20b+c",
	"/website/{x}[y]<z>\"q\"`^",
	"/website/k?prefix=a%2Fb&delimiter=%2F&list-type=2&" + strings.Repeat("x-amz-meta=v&", 300) + "end",
	"/website/k?X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc",
}

// rawRoundTrip sends method target over a new connection to addr, as written, and returns
// the status. (Go's server answers "OPTIONS *" itself, so "*" is not among the targets.)
func rawRoundTrip(t *testing.T, addr, method, target, host string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, method+" "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// recordingStore is a loopback store that reports each request-target, Host and header set
// it receives.
func recordingStore(t *testing.T) (*url.URL, <-chan *http.Request) {
	t.Helper()
	seen := make(chan *http.Request, 64)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Clone(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(store.Close)
	u, _ := url.Parse(store.URL)
	return u, seen
}

// TestProxyToForwardsTheTargetByteForByte: ProxyTo alone, then behind the gateway (routing,
// counting; the fake filter passes requests on).
func TestProxyToForwardsTheTargetByteForByte(t *testing.T) {
	u, seen := recordingStore(t)
	p, err := ProxyTo(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := newTestGateway(t, routingConfig, p)
	for name, h := range map[string]http.Handler{"ProxyTo": p, "gateway": g} {
		front := httptest.NewServer(h)
		for _, target := range forwardTargets {
			const method, host = "GET", "website.s3.localhost:8080"
			if code := rawRoundTrip(t, front.Listener.Addr().String(), method, target, host); code != http.StatusNoContent {
				t.Errorf("%s: %s %q: status %d, want the store's 204", name, method, target, code)
				continue
			}
			r := <-seen
			if r.RequestURI != target || r.Host != host {
				t.Errorf("%s: client sent %q Host %q; store saw %q Host %q", name, target, host, r.RequestURI, r.Host)
			}
		}
		front.Close()
	}
}

// TestProxyToRefusesATargetItCannotKeep: a target Go's client cannot write unchanged ("//"
// then a byte it escapes) is answered 502, never forwarded altered.
func TestProxyToRefusesATargetItCannotKeep(t *testing.T) {
	u, seen := recordingStore(t)
	p, err := ProxyTo(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	for _, target := range []string{"//beta/k|", "//a#b"} {
		if code := rawRoundTrip(t, front.Listener.Addr().String(), "GET", target, "s3.localhost"); code != http.StatusBadGateway {
			t.Errorf("GET %q: status %d, want 502", target, code)
		}
	}
	select {
	case r := <-seen:
		t.Errorf("store received %q", r.RequestURI)
	default:
	}
}
