package e2e_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/gateway"
)

// BenchmarkGateway measures `s3cors serve` end to end over loopback HTTP/1.1 with keep-alive:
// the client, Go's HTTP server, the wasm filter in wasmhost and the embedded store. The
// surface=store rows are the floor: the same requests to the store without the gateway.
func BenchmarkGateway(b *testing.B) {
	cases := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"preflight-allowed", "OPTIONS", "/website/notes/a.txt", []string{"Origin", "http://127.0.0.1:8081", "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "x-amz-meta-author"}, 200},
		{"preflight-denied", "OPTIONS", "/website/notes/a.txt", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "PUT"}, 403},
		{"get-decorated", "GET", "/website/hello.txt", []string{"Origin", "http://127.0.0.1:8081"}, 200},
		{"get-no-origin", "GET", "/website/hello.txt", nil, 200},
	}
	store := gwStore(b, 0)
	if err := store.Put("website", "hello.txt", []byte(strings.Repeat("x", 1024)), "text/plain", nil); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		addr, _ := gwStart(b, gwDemoConfig(b), store, func(o *gateway.Options) { o.Workers = workers })
		direct := browserListen(b, store)
		for _, surface := range []struct{ name, addr string }{{"gateway", addr}, {"store", direct}} {
			if surface.name == "store" && workers > 1 {
				continue
			}
			for _, c := range cases {
				if surface.name == "store" && c.method == "OPTIONS" {
					continue // the store has no CORS; its answer would mean nothing
				}
				b.Run("surface="+surface.name+"/workers="+strconv.Itoa(workers)+"/case="+c.name, func(b *testing.B) {
					client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
					defer client.CloseIdleConnections()
					url := "http://" + surface.addr + c.path
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							req, _ := http.NewRequest(c.method, url, nil)
							for i := 0; i+1 < len(c.hdr); i += 2 {
								req.Header.Set(c.hdr[i], c.hdr[i+1])
							}
							res, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, res.Body)
							res.Body.Close()
							if res.StatusCode != c.want {
								b.Errorf("%s %s: %d, want %d", c.method, url, res.StatusCode, c.want)
								return
							}
						}
					})
				})
			}
		}
	}
}
