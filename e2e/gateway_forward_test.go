package e2e_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/gateway"
)

// TestGatewayForwardsTheTargetByteForByte: through the real filter in wasmhost and ProxyTo, a
// store on loopback receives each request-target exactly as the client sent it (the :path
// wasmhost hands the filter is the one forwarded), with the client's Host.
func TestGatewayForwardsTheTargetByteForByte(t *testing.T) {
	seen := make(chan *http.Request, 64)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Clone(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	defer store.Close()
	u, _ := url.Parse(store.URL)
	proxy, err := gateway.ProxyTo(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := gwStart(t, gwDemoConfig(t), proxy)
	for _, tc := range []struct{ host, target string }{
		{"website.s3.localhost:8080", "/beta%2Fk|"},
		{addr, "/beta%2Fsecret.txt"},
		{addr, "/website/a#b"},
		{addr, "/%2e%2e/website/k"},
		{addr, "/website/../website/k"},
		{addr, "//website/k"},
		{addr, "//website%2Fk"},
		{addr, "/website/k;a=b?x=1;y=2&z"},
		{addr, "/website/\xc3\xa9t\xc3\xa9/%E2%82%AC.txt"},
		{addr, "/website/k?" + strings.Repeat("p=v&", 2000) + "end"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.WriteString(conn, "GET "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\nConnection: close\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("GET %q: %v", tc.target, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Errorf("GET %q: status %d, want the store's 204", tc.target, res.StatusCode)
			continue
		}
		if r := <-seen; r.RequestURI != tc.target || r.Host != tc.host {
			t.Errorf("client sent %q Host %q; store saw %q Host %q", tc.target, tc.host, r.RequestURI, r.Host)
		}
	}
}

// TestGatewayDebugEndpointsOffTheS3Listener: with the real filter, /debug/s3cors/* on the S3
// listener reach the store like any other path (here the embedded store's bucket "debug",
// which it does not hold), and no rule leaks there.
func TestGatewayDebugEndpointsOffTheS3Listener(t *testing.T) {
	addr, _ := gwStart(t, gwDemoConfig(t), gwStore(t, 0))
	for _, path := range []string{"/debug/s3cors/stats", "/debug/s3cors/explain?method=GET&bucket=website&key=a"} {
		code, body := httpGet(t, "http://"+addr+path)
		if code != http.StatusNotFound || !strings.Contains(string(body), "<Code>NoSuchBucket</Code>") || strings.Contains(string(body), "AllowedOrigins") {
			t.Errorf("GET %s on the S3 listener: %d %q, want the store's NoSuchBucket", path, code, body)
		}
	}
}
