package extproc

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// TestConcurrentStreams runs many streams at once over one gRPC connection, as Envoy does,
// while the policy is swapped back and forth between two configurations. Under -race (the
// Makefile's test-go) it shows the server shares nothing unsafely; every answer must be one
// of the two configurations' answers, never a mix.
func TestConcurrentStreams(t *testing.T) {
	noLeaks(t)
	a, err := LoadConfig("a.json", []byte(configA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadConfig("b.json", []byte(configB))
	if err != nil {
		t.Fatal(err)
	}
	holder := NewPolicyHolder(a)
	srv := NewServer(holder, ServerOptions{Logger: discardLogger()})
	client := extproctest.Loopback(t, srv, ServerCodecOption())

	ctx, stop := context.WithCancel(t.Context())
	var swapper sync.WaitGroup
	swapper.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			holder.Store([]*LoadedPolicy{a, b}[i%2])
		}
	})

	const workers, perWorker = 8, 40
	errs := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				origin := []string{"https://a.example", "https://b.example"}[(w+i)%2]
				var c casetable.Case
				if i%5 == 4 { // no bucket: pass-through, with the shared mode_override
					c = casetable.Case{Request: casetable.Request{Method: "GET", Authority: "store.local", Path: "/",
						Headers: []casetable.Header{{"Origin", origin}}}}
				} else if i%3 == 0 {
					c = casetable.Case{Request: casetable.Request{Method: "GET", Authority: "store.local", Path: "/site/k",
						Headers: []casetable.Header{{"Origin", origin}}}, Upstream: []casetable.Header{{"Vary", "Accept-Encoding"}}}
				} else {
					c = casetable.Case{Request: casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/k",
						Headers: []casetable.Header{{"Origin", origin}, {"Access-Control-Request-Method", "GET"}}}}
				}
				got, err := extproctest.Envoy{AllowModeOverride: w%2 == 0}.Do(ctx, client, c)
				if err != nil {
					errs <- err
					continue
				}
				if err := consistent(c, origin, got); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	stop()
	swapper.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.ActiveStreams(); n != 0 {
		t.Errorf("%d streams still active", n)
	}
}

// consistent checks an answer is what one whole configuration gives: allowed (origin echoed,
// Vary merged) or refused (403, or forwarded without CORS headers).
func consistent(c casetable.Case, origin string, got casetable.Response) error {
	acao := got.Values("access-control-allow-origin")
	vary := got.Values("vary")
	switch {
	case c.Request.Path == "/" && got.ReachedUpstream && len(acao) == 0 && len(vary) == 0:
	case c.Request.Method == "OPTIONS" && got.Status == 200 && len(acao) == 1 && acao[0] == origin:
	case c.Request.Method == "OPTIONS" && got.Status == 403 && len(acao) == 0:
	case c.Request.Method == "GET" && got.ReachedUpstream && len(acao) == 1 && acao[0] == origin &&
		len(vary) == 1 && vary[0] == "Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method":
	case c.Request.Method == "GET" && got.ReachedUpstream && len(acao) == 0 && len(vary) == 1 && vary[0] == "Accept-Encoding":
	default:
		return fmt.Errorf("%s %s from %s: inconsistent answer %d %q", c.Request.Method, c.Request.Path, origin, got.Status, got.Headers)
	}
	return nil
}
