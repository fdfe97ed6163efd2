package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/s3cors/s3cors/internal/gateway"
)

// faultGateway serves `s3cors serve`'s gateway (the built filter in wasmhost) for config in
// front of upstream on a loopback port until the test ends, and returns its base URL.
func faultGateway(t testing.TB, config []byte, upstream http.Handler) string {
	t.Helper()
	addr, _ := gwStart(t, config, upstream)
	return "http://" + addr
}

// gatewayAnswer is a response with its body read.
type gatewayAnswer struct {
	StatusCode int
	Header     http.Header
}

// gatewayDo sends one request to the gateway with the given headers (pairs) and returns the response
// with its body read.
func gatewayDo(t testing.TB, method, u string, body io.Reader, headers ...string) (gatewayAnswer, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "s3.example.test"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return gatewayAnswer{resp.StatusCode, resp.Header}, b
}

// TestFaultGatewayUpstreamDown: with the store unreachable, actual requests get the proxy's
// 502 (decorated with CORS headers like any upstream answer, so that the page can read it),
// and preflights are still answered at the proxy, exactly.
func TestFaultGatewayUpstreamDown(t *testing.T) {
	// A port that was just listened on and closed: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	ln.Close()
	upstream, err := gateway.ProxyTo(dead, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := faultGateway(t, hostileConfig(t), upstream)

	resp, body := gatewayDo(t, "GET", gw+"/site/k", nil, "Origin", appOrigin)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET with the store down: %d %q, want 502", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != appOrigin {
		t.Errorf("the 502 carries Access-Control-Allow-Origin %q, want %q (S3 decorates every answer of a matched request)", v, appOrigin)
	}
	resp, body = gatewayDo(t, "PUT", gw+"/site/k", bytes.NewReader([]byte("data")), "Origin", evilOrigin)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("PUT from a denied origin with the store down: %d %q, Allow-Origin %q; want 502 without CORS headers", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	for _, c := range []struct {
		origin string
		status int
		acao   string
	}{
		{appOrigin, 200, appOrigin},
		{evilOrigin, 403, ""},
	} {
		resp, body := gatewayDo(t, "OPTIONS", gw+"/site/k", nil, "Origin", c.origin, "Access-Control-Request-Method", "PUT")
		if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.acao {
			t.Errorf("preflight from %s with the store down: %d %q, Allow-Origin %q; want %d, %q", c.origin, resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"), c.status, c.acao)
		}
	}
}

// TestFaultGatewaySlowUpstream: requests held by a slow store hold nothing else: with one wasm
// worker VM, preflights are answered while actual requests wait for the store, and the held
// requests are decorated exactly once it answers.
func TestFaultGatewaySlowUpstream(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	const held = 8
	arrived.Add(held)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			arrived.Done()
			<-release
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "slow-body")
	})
	gw := faultGateway(t, hostileConfig(t), upstream)

	type result struct {
		status int
		acao   string
		body   string
	}
	results := make(chan result, held)
	for range held {
		go func() {
			req, _ := http.NewRequest("GET", gw+"/site/k", nil)
			req.Header.Set("Origin", appOrigin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), string(b)}
		}()
	}
	arrived.Wait() // every GET is now inside the store, in the middle of its stream
	for i := range 50 {
		resp, body := gatewayDo(t, "OPTIONS", gw+"/site/k", nil, "Origin", appOrigin, "Access-Control-Request-Method", "GET")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
			t.Fatalf("preflight %d while the store holds %d requests: %d %q", i, held, resp.StatusCode, body)
		}
	}
	close(release)
	for range held {
		r := <-results
		if r.status != 200 || r.acao != appOrigin || r.body != "slow-body" {
			t.Errorf("held GET: %d, Allow-Origin %q, body %q", r.status, r.acao, r.body)
		}
	}
}

// patternReader yields size bytes of a deterministic pseudo-random stream, hashing what it
// yields, so that 100 MB can be sent without being held.
type patternReader struct {
	rng  *rand.ChaCha8
	left int64
	sum  hash.Hash
}

func newPatternReader(seed byte, size int64) *patternReader {
	return &patternReader{rng: rand.NewChaCha8([32]byte{seed}), left: size, sum: sha256.New()}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	p.sum.Write(b[:n])
	return n, nil
}

// liveHeapProbe records the most live heap seen at points where it is sampled: it collects
// first, so garbage (chunks already passed on) does not count, only what is held.
type liveHeapProbe struct {
	mu   sync.Mutex
	max  uint64
	next int64
}

func (p *liveHeapProbe) sample(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.next {
		return
	}
	p.next = done + 16<<20
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	p.max = max(p.max, m.HeapAlloc)
}

// TestFaultGateway100MB streams a 100 MB body through the gateway each way: a PUT whose body
// the store hashes as it reads, and a GET whose body the store generates as it writes. Both
// arrive byte-identical (SHA-256), and the live heap never holds more than a small part of
// them: the gateway streams, it does not buffer.
func TestFaultGateway100MB(t *testing.T) {
	const size = 100 << 20
	probe := &liveHeapProbe{}
	var (
		putSum []byte
		putLen int64
	)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			h := sha256.New()
			buf := make([]byte, 256<<10)
			for {
				n, err := r.Body.Read(buf)
				h.Write(buf[:n])
				putLen += int64(n)
				probe.sample(putLen)
				if err == io.EOF {
					break
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
			putSum = h.Sum(nil)
			w.WriteHeader(http.StatusOK)
		case http.MethodGet:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(size))
			src := newPatternReader(2, size)
			buf := make([]byte, 256<<10)
			var sent int64
			for {
				n, err := src.Read(buf)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						return
					}
					sent += int64(n)
					probe.sample(sent)
				}
				if err != nil {
					break
				}
			}
		}
	})
	gw := faultGateway(t, hostileConfig(t), upstream)
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)

	src := newPatternReader(1, size)
	req, err := http.NewRequest("PUT", gw+"/site/big", src)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Origin", appOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("PUT of 100 MB: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if putLen != size || !bytes.Equal(putSum, src.sum.Sum(nil)) {
		t.Fatalf("PUT: the store read %d bytes with SHA-256 %x; the client sent %d with %x", putLen, putSum, size, src.sum.Sum(nil))
	}

	req, err = http.NewRequest("GET", gw+"/site/big", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", appOrigin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The store's bytes are a seeded pattern, so their hash is known without waiting for its
	// handler to finish (the client may read the last byte before the handler returns).
	ref := newPatternReader(2, size)
	if _, err := io.Copy(io.Discard, ref); err != nil {
		t.Fatal(err)
	}
	want := ref.sum.Sum(nil)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("GET of 100 MB: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("GET: the client read %d bytes with SHA-256 %x; the store sent %d with %x", n, h.Sum(nil), size, want)
	}
	held := int64(probe.max) - int64(base.HeapAlloc)
	t.Logf("live heap: %d bytes before, at most %d while streaming (%+d)", base.HeapAlloc, probe.max, held)
	if held > 32<<20 {
		t.Errorf("the live heap grew by %d bytes while streaming 100 MB; want under 32 MB (the body must stream, not be held)", held)
	}
}

// TestFaultGatewayHeaderLimit: the gateway takes request headers up to Envoy's default
// max_request_headers_kb (60 KiB) and answers 431 beyond, as Envoy does, which bounds the work
// one preflight can ask of the evaluator (up to 100 rules, each checked against every
// requested header name).
func TestFaultGatewayHeaderLimit(t *testing.T) {
	gw := faultGateway(t, hostileConfig(t), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	under := manyNames("x-amz-meta-", 2500, ",") // 40 KB
	resp, body := gatewayDo(t, "OPTIONS", gw+"/site/k", nil, "Origin", appOrigin, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", under)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("preflight with a %d-byte Access-Control-Request-Headers: %d %q", len(under), resp.StatusCode, body)
	}
	over := manyNames("x-amz-meta-", 6000, ",") // 96 KB
	resp, _ = gatewayDo(t, "OPTIONS", gw+"/site/k", nil, "Origin", appOrigin, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", over)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("preflight with a %d-byte Access-Control-Request-Headers: %d, want 431", len(over), resp.StatusCode)
	}
}
