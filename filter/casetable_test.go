package filter_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// startVM runs a fresh plugin with config, failing the test if it refuses to start.
func startVM(t testing.TB, config []byte) (*abitest.VM, uint32) {
	t.Helper()
	h := abitest.NewHost()
	vm := abitest.NewVM(h, filter.New(h))
	root, err := vm.StartPlugin(config)
	if err != nil {
		t.Fatalf("%v; logs:\n%s", err, logText(h.Logs()))
	}
	return vm, root
}

func logText(logs []abitest.LogEntry) string {
	var b strings.Builder
	for _, l := range logs {
		b.WriteString(l.Level.String() + ": " + l.Message + "\n")
	}
	return b.String()
}

// requestHeaders is what Envoy hands the filter for a case's request: pseudo-headers first.
func requestHeaders(r casetable.Request) []abi.Header {
	hs := []abi.Header{{Name: ":method", Value: r.Method}, {Name: ":authority", Value: r.Authority},
		{Name: ":path", Value: r.Path}, {Name: ":scheme", Value: "https"}}
	for _, h := range r.Headers {
		hs = append(hs, abi.Header{Name: h[0], Value: h[1]})
	}
	return hs
}

// upstreamHeaders is the fake store's answer: 200, text/plain, UpstreamBody, the case's headers.
func upstreamHeaders(c casetable.Case) []abi.Header {
	hs := []abi.Header{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "text/plain"},
		{Name: "content-length", Value: strconv.Itoa(len(casetable.UpstreamBody))}}
	for _, h := range c.Upstream {
		hs = append(hs, abi.Header{Name: h[0], Value: h[1]})
	}
	return hs
}

// runCase drives one case through the plugin the way Envoy would and returns what the client
// gets, plus the stream for further checks.
func runCase(vm *abitest.VM, root uint32, c casetable.Case) (casetable.Response, *abitest.Stream) {
	s := vm.NewStream(root)
	defer s.End()
	s.RequestHeaders(requestHeaders(c.Request), true)
	var resp casetable.Response
	if r := s.Reply(); r != nil {
		resp.Status, resp.Body = int(r.Status), r.Body
	} else {
		s.ResponseHeaders(upstreamHeaders(c), false)
		resp.Status, resp.Body, resp.ReachedUpstream = 200, []byte(casetable.UpstreamBody), true
	}
	for _, h := range s.Headers() {
		if !strings.HasPrefix(h.Name, ":") {
			resp.Headers = append(resp.Headers, casetable.Header{h.Name, h.Value})
		}
	}
	// Envoy's HTTP/1.1 codec frames a headers-only response with an explicit Content-Length: 0
	// (sendLocalReply itself removes Content-Length when the body is empty).
	if resp.Values("content-length") == nil && len(resp.Body) == 0 && !resp.ReachedUpstream {
		resp.Headers = append(resp.Headers, casetable.Header{"content-length", "0"})
	}
	return resp, s
}

func loadTables(t *testing.T) []casetable.Table {
	t.Helper()
	shared, err := casetable.LoadDir(filepath.Join(testenv.RepoRoot(t), "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := casetable.LoadDir(filepath.Join("testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	return append(shared, own...)
}

// TestCaseTable runs the shared case table (and the filter's own) through the plugin natively.
// Besides Case.Check it asserts what only a filter can get wrong: the request goes upstream
// unchanged, a pass-through response is byte-identical, the plugin's own local reply is not
// touched, no second reply is attempted, and exactly one metric counts each request.
func TestCaseTable(t *testing.T) {
	for _, tbl := range loadTables(t) {
		t.Run(filepath.Base(tbl.File), func(t *testing.T) {
			runTable(t, tbl, tbl.Config)
		})
	}
}

// runTable runs a table's cases through a plugin started with config.
func runTable(t *testing.T, tbl casetable.Table, config []byte) {
	vm, root := startVM(t, config)
	for _, c := range tbl.Cases {
		before := vm.Host().Metrics()
		resp, s := runCase(vm, root, c)
		if err := c.Check(resp); err != nil {
			t.Error(err)
		}
		checkStream(t, c, s)
		checkOneMetric(t, c, before, vm.Host().Metrics())
	}
}

func checkStream(t *testing.T, c casetable.Case, s *abitest.Stream) {
	t.Helper()
	if n := s.IgnoredReplies(); n != 0 {
		t.Errorf("%s: %d local replies attempted after the first (Envoy ignores them, or hangs)", c.Name, n)
	}
	if !slices.Equal(s.Request(), lower(requestHeaders(c.Request))) {
		t.Errorf("%s: request headers changed on the way upstream:\n got %q\nwant %q", c.Name, s.Request(), requestHeaders(c.Request))
	}
	if r := s.Reply(); r != nil {
		if slices.ContainsFunc(r.Headers, func(h abi.Header) bool { return h.Name == "content-length" }) {
			t.Errorf("%s: local reply passes content-length; Envoy sets it", c.Name)
		}
		if r.GRPCStatus != abi.NoGRPCStatus {
			t.Errorf("%s: local reply grpc_status %d, want none (-1)", c.Name, r.GRPCStatus)
		}
		want := "s3cors_preflight_allowed"
		if r.Status != 200 {
			want = "s3cors_preflight_denied_"
		}
		if !strings.HasPrefix(r.Details, want) {
			t.Errorf("%s: details %q, want %s…", c.Name, r.Details, want)
		}
	}
	if c.Want.Outcome == casetable.OutcomePass && !slices.Equal(s.Headers(), lower(upstreamHeaders(c))) {
		t.Errorf("%s: pass-through response changed:\n got %q\nwant %q", c.Name, s.Headers(), upstreamHeaders(c))
	}
}

func lower(hs []abi.Header) []abi.Header {
	out := make([]abi.Header, len(hs))
	for i, h := range hs {
		out[i] = abi.Header{Name: strings.ToLower(h.Name), Value: h.Value}
	}
	return out
}

// checkOneMetric asserts that the case moved exactly one counter by one, of the family its
// outcome belongs to.
func checkOneMetric(t *testing.T, c casetable.Case, before, after map[string]int64) {
	t.Helper()
	var moved []string
	for name, v := range after {
		if d := v - before[name]; d != 0 {
			moved = append(moved, name+"+"+strconv.FormatInt(d, 10))
		}
	}
	family := map[string]string{
		casetable.OutcomeReply:   "s3cors.preflight.",
		casetable.OutcomeForward: "s3cors.actual.",
		casetable.OutcomePass:    "s3cors.passthrough.",
	}[c.Want.Outcome]
	if len(moved) != 1 || !strings.HasPrefix(moved[0], family) || !strings.HasSuffix(moved[0], "+1") {
		t.Errorf("%s: metrics moved %q, want one %s* counter by 1", c.Name, moved, family)
	}
}
