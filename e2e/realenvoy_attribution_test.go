package e2e_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// realEnvoyWireVariants are the hostile attribution variants a case table cannot carry,
// because the client side must write bytes Go's client refuses or a proxy treats on its own:
// repeated Host lines, absolute-form targets, control and non-ASCII bytes. Each is an actual
// request from an origin alpha allows (testdata/cases/attribution.json's configuration).
var realEnvoyWireVariants = []struct{ name, target, host, extra string }{
	{"repeated Host, alpha first", "/k", "alpha.s3.local", "Host: beta.s3.local\r\n"},
	{"repeated Host, beta first", "/k", "beta.s3.local", "Host: alpha.s3.local\r\n"},
	{"absolute-form naming beta, Host alpha", "http://beta.s3.local/k", "alpha.s3.local", ""},
	{"absolute-form naming alpha, Host beta", "http://alpha.s3.local/k", "beta.s3.local", ""},
	{"absolute-form path style", "http://s3.local/alpha/k", "beta.s3.local", ""},
	{"control byte in the path", "/alpha/k\x01", "s3.local", ""},
	{"DEL in the path", "/alpha/k\x7f", "s3.local", ""},
	{"non-ASCII in the path", "/alpha/k\xc3\xa9", "s3.local", ""},
	{"raw # in the path", "/alpha#/../beta/k", "s3.local", ""},
	{"tab in the path", "/alpha/k\tx", "s3.local", ""},
	{"non-ASCII host", "/alpha/k", "b\xc3\xa9ta.s3.local", ""},
	{"user-info in the host", "/k", "beta@alpha.s3.local", ""},
	{"percent-encoded host", "/alpha/k", "beta%2es3.local", ""},
	{"space in the host", "/alpha/k", "beta.s3.local .x", ""},
	{"Host and X-Forwarded-Host disagree", "/k", "alpha.s3.local", "X-Forwarded-Host: beta.s3.local\r\n"},
}

// TestRealEnvoyAttributionOnTheWire sends realEnvoyWireVariants through each real Envoy, with
// the wasm filter and with ext_proc, and asserts the attribution rule end to end: a response
// carrying alpha's CORS headers is allowed only when the store received a request that names
// alpha (by its Host and target). Envoy may answer 400 itself, or rewrite the request (an
// absolute-form target becomes :authority and the Host it forwards); the log line of each
// variant says which.
func TestRealEnvoyAttributionOnTheWire(t *testing.T) {
	tb, err := casetable.LoadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "cases", "attribution.json"))
	if err != nil {
		t.Fatal(err)
	}
	tables := []casetable.Table{tb}
	store := startWireStore(t)
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			var wasm, extproc []int
			t.Run("wasm", func(t *testing.T) {
				env := startRealEnvoy(t, e.Path, realEnvoyBootstrap(t, "wasm.yaml", tables, store.addr, testenv.Module(t), nil))
				wasm = runWireVariants(t, "wasm-"+e.Version, env.listeners["s3-0"], store)
			})
			t.Run("extproc", func(t *testing.T) {
				servers := []string{startRealEnvoyExtProc(t, 0, tb)}
				env := startRealEnvoy(t, e.Path, realEnvoyBootstrap(t, "extproc.yaml", tables, store.addr, "", servers))
				extproc = runWireVariants(t, "extproc-"+e.Version, env.listeners["s3-0"], store)
			})
			// Where Envoy answers itself (it refuses the request before the filters run), the
			// client gets Envoy's answer whichever filter is configured: the ext_proc server is
			// then sent the response headers alone, and must not turn Envoy's 400 into a 500.
			// The one difference is Envoy's: when its HTTP/1 codec refuses the request line or
			// a header (control or non-ASCII bytes), it closes the connection before the
			// ext_proc answer comes back, so that client gets no answer at all.
			for i, v := range realEnvoyWireVariants {
				if i >= len(wasm) || i >= len(extproc) || wasm[i] == extproc[i] || wasm[i] == 400 && extproc[i] == 0 {
					continue
				}
				t.Errorf("%s: status %d with the wasm filter, %d with ext_proc (0: no answer)", v.name, wasm[i], extproc[i])
			}
		})
	}
}

// runWireVariants sends every variant to addr and returns the status each got, 0 where the
// connection closed without an answer (nothing granted either way).
func runWireVariants(t *testing.T, run, addr string, store *wireStore) []int {
	statuses := make([]int, len(realEnvoyWireVariants))
	for i, v := range realEnvoyWireVariants {
		id := fmt.Sprintf("%s/%d", run, i)
		t.Run(realEnvoyName(v.name), func(t *testing.T) {
			raw := "GET " + v.target + " HTTP/1.1\r\nHost: " + v.host + "\r\n" + v.extra +
				"Origin: https://a.example\r\n" + realEnvoyCaseHeader + ": " + id + "\r\nConnection: close\r\n\r\n"
			status, header, err := wireExchange(addr, raw)
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				t.Logf("%s: connection closed without an answer", v.name)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			statuses[i] = status
			got, reached := store.received(id)
			acao := header.Get("Access-Control-Allow-Origin")
			t.Logf("%s: status %d, Access-Control-Allow-Origin %q, store received %v %q", v.name, status, acao, reached, got)
			if acao != "https://a.example" {
				return // not alpha's grant; the store's own header may pass under "keep"
			}
			// Granted: the store must have served alpha, by virtual host or by path.
			if !reached || !namesAlpha(got) {
				t.Errorf("%s: alpha's CORS granted (%q), but the store received %q", v.name, acao, got)
			}
		})
	}
	return statuses
}

// namesAlpha reports whether a request the store received as "host target" addresses
// bucket alpha without doubt: virtual-hosted alpha.s3.local, or path style /alpha/ on a host
// that holds no ".s3.local".
func namesAlpha(got string) bool {
	host, target, _ := strings.Cut(got, " ")
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch {
	case strings.HasPrefix(target, "//"):
		return false
	case host == "alpha.s3.local":
		return true
	default:
		return !strings.Contains(host, ".s3.local") && strings.HasPrefix(target, "/alpha/")
	}
}

// wireStore answers every request 200 with CORS headers of its own (Allow-Origin
// https://store.example, told apart from alpha's https://a.example), and records the Host
// and target each case's request arrived with.
type wireStore struct {
	addr string
	mu   sync.Mutex
	got  map[string]string
}

func startWireStore(t *testing.T) *wireStore {
	t.Helper()
	s := &wireStore{got: map[string]string{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got[r.Header.Get(realEnvoyCaseHeader)] = r.Host + " " + r.RequestURI
		s.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "https://store.example")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		_, _ = io.WriteString(w, casetable.UpstreamBody)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *wireStore) received(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, ok := s.got[id]
	return got, ok
}

// wireExchange writes raw to addr and reads one response.
func wireExchange(addr, raw string) (int, http.Header, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer to %q: %w", raw, err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}
