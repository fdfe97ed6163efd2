package e2e_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestRealEnvoyImagePush pushes a 10,000-bucket policy image (wrapped in JSON, as Istio's
// pluginConfig carries it) over LDS to a running Envoy 1.40 at --concurrency 2 that serves a
// one-bucket image, and waits until the new rules answer on every worker: a preflight only
// the last bucket's rules allow must succeed on 16 fresh connections in a row (Envoy spreads
// connections over its workers). It logs the time from the push to that point and Envoy's
// resident memory before and after (BENCHMARKS.md, "Policy images"); the bound it asserts is
// a generous one, against a hang, not a target.
func TestRealEnvoyImagePush(t *testing.T) {
	bin := realEnvoy140(t)
	const n = 10000
	small := evaluator.WrapImage(testenv.PolicyImage(t, testenv.StressConfig(1)))
	large := evaluator.WrapImage(testenv.PolicyImage(t, testenv.StressConfig(n)))
	store := startRealEnvoyStore(t, nil)

	b := wasmBootstrap(t, small, testenv.Module(t), store.addr)
	port := freePort(t)
	b.StaticResources.Listeners[0].Address = realEnvoyAddress("127.0.0.1", port)
	tmpl := proto.Clone(b.StaticResources.Listeners[0]).(*listenerv3.Listener)
	push := toLDS(t, b)
	p := launchEnvoy(t, bin, marshalBootstrap(t, b), 2)
	p.waitLive(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// A preflight for the last bucket from its own origin: 200 only under the large image.
	probe := func() int {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		req, _ := http.NewRequest(http.MethodOptions, fmt.Sprintf("http://%s/b%d/k", addr, n-1), nil)
		req.Host = "s3.internal"
		req.Header.Set("Origin", fmt.Sprintf("https://a%d.example", n-1))
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("preflight: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if st := probe(); st != http.StatusForbidden {
		t.Fatalf("before the push the last bucket's preflight got %d, want 403 (not enabled)", st)
	}
	before, err := p.rssKiB()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	push(t, withPluginConfig(t, tmpl, large))
	var first time.Duration
	for ok := 0; ok < 16; {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("the pushed image's rules were not served on every worker within 2 minutes (%d in a row)", ok)
		}
		switch st := probe(); st {
		case http.StatusOK:
			if ok == 0 {
				first = time.Since(start)
			}
			ok++
		case http.StatusForbidden:
			ok = 0
			time.Sleep(5 * time.Millisecond)
		default:
			t.Fatalf("preflight during the push got %d", st)
		}
	}
	all := time.Since(start)
	after, err := p.rssKiB()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-bucket image (%d bytes wrapped): first answer by the new rules %v after the push, 16 in a row by %v; RSS %d -> %d KiB (%+d KiB)",
		n, len(large), first.Round(time.Millisecond), all.Round(time.Millisecond), before, after, after-before)
}
