package e2e_test

// Fail-safe bucket attribution against a real S3-compatible server: versitygw (built from the
// Go module proxy by testenv) with virtual-hosted suffix s3.local and buckets alpha and beta,
// behind `s3cors serve --upstream`, and behind real Envoy with the wasm filter and with the
// ext_proc server. Bucket alpha allows https://a.example; beta has no CORS. versitygw is run
// as a store that lets any origin read (--cors-allow-origin "*", as community MinIO's global
// CORS does), so a request s3cors steps aside from is readable cross-origin.
//
// For every hostile variant the invariant is: the bucket the store served equals the bucket
// whose rules s3cors applied, or s3cors granted nothing (no Access-Control-Allow-Origin). The
// store's bucket is read from its access log (by x-amz-request-id) and checked against the
// body (every object's body is "<bucket>:<key>"); the rules s3cors applied are told apart by
// their ExposeHeaders and MaxAgeSeconds, which differ per rule set.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

const (
	attrOrigin = "https://a.example"
	attrSuffix = "s3.local"
	// attrPathHost is the Host of path-style requests: the service endpoint, the suffix itself.
	attrPathHost = attrSuffix
)

// attrRules is one rule set of the configurations; its ExposeHeaders and MaxAgeSeconds name it
// on a response.
func attrRules(name, origin string, maxAge int) string {
	return fmt.Sprintf(`{"CORSRules": [{"ID": %[1]q, "AllowedOrigins": [%[2]q],
	  "AllowedMethods": ["GET", "PUT", "HEAD", "POST", "DELETE"], "AllowedHeaders": ["*"],
	  "ExposeHeaders": ["x-amz-meta-rules-%[1]s"], "MaxAgeSeconds": %[3]d}]}`, name, origin, maxAge)
}

const (
	attrAlphaMaxAge   = "1111"
	attrDefaultMaxAge = "2222"
)

// attrTables are the two configurations: "listed" (alpha listed, beta unlisted, so "not
// enabled") and "default" (alpha listed, beta listed without CORS, a default rule set for
// every other bucket).
func attrTables() []casetable.Table {
	return []casetable.Table{
		{Name: "listed", Config: attrListedConfig(attrOrigin)},
		{Name: "default", Config: []byte(fmt.Sprintf(`{"buckets": {"alpha": %s, "beta": null}, "default": %s, %s}`,
			attrRules("alpha", attrOrigin, 1111), attrRules("default", attrOrigin, 2222), attrAddressing))},
	}
}

var attrAddressing = fmt.Sprintf(`"addressing": {"virtualHostSuffixes": [%q], "pathStyle": true}`, attrSuffix)

// attrListedConfig lists alpha only, its rules allowing origin.
func attrListedConfig(origin string) []byte {
	return []byte(fmt.Sprintf(`{"buckets": {"alpha": %s}, %s}`, attrRules("alpha", origin, 1111), attrAddressing))
}

// attrRulesOf is the rule set a configuration applies to a bucket that exists in the store.
func attrRulesOf(table, bucket string) string {
	switch {
	case bucket == "alpha":
		return "alpha"
	case bucket == "beta":
		return ""
	case table == "default":
		return "default"
	}
	return ""
}

// attrKeys are the objects of both buckets, each with the body "<bucket>:<key>".
var attrKeys = []string{"k", "secret.txt", "alpha/k", "beta/k", "beta/secret.txt"}

// attrStore starts versitygw with alpha and beta, both readable without credentials.
func attrStore(t *testing.T) *testenv.VersitygwServer {
	t.Helper()
	s := testenv.StartVersitygw(t, testenv.VersitygwOptions{VirtualDomain: attrSuffix, CORSAllowOrigin: "*"})
	for _, b := range []string{"alpha", "beta"} {
		s.CreatePublicBucket(t, b)
		for _, k := range attrKeys {
			s.PutObject(t, b, k, []byte(b+":"+k))
		}
	}
	return s
}

// attrVariant is one request shape: its Host header lines (in order), target and extra headers,
// all sent byte for byte.
type attrVariant struct {
	Name    string
	Hosts   []string
	Target  string
	Headers [][2]string
	// Want, for a legitimate request, is the rule set that must be granted ("alpha"), or
	// "none" when nothing may be; "" for a hostile variant, where only the invariant holds.
	Want string
	// H2 sends the request as HTTP/2 without TLS (prior knowledge): Hosts[0] is :authority,
	// the others are host header fields. Only Envoy's listeners speak it.
	H2 bool
}

func attrVariants() []attrVariant {
	vs := []attrVariant{
		{Name: "control: alpha virtual-hosted", Hosts: []string{"alpha." + attrSuffix}, Target: "/k", Want: "alpha"},
		{Name: "control: alpha path-style", Hosts: []string{attrPathHost}, Target: "/alpha/k", Want: "alpha"},
		{Name: "control: beta virtual-hosted", Hosts: []string{"beta." + attrSuffix}, Target: "/secret.txt", Want: "none"},
		{Name: "control: beta path-style", Hosts: []string{attrPathHost}, Target: "/beta/secret.txt", Want: "none"},
	}
	// The suffix inside the host but not at its end: versitygw finds it anywhere.
	for _, h := range []string{"beta.s3.local.evil.example", "beta.s3.localhost", "beta.s3.local-x", "beta.s3.local..", "beta.s3.local.x.s3.local"} {
		for _, p := range []string{"/alpha/k", "/secret.txt"} {
			vs = append(vs, attrVariant{Name: "suffix inside", Hosts: []string{h}, Target: p})
		}
	}
	host := func(name, h, target string) attrVariant {
		return attrVariant{Name: name, Hosts: []string{h}, Target: target}
	}
	vs = append(vs,
		// An encoded "/" or "\" in the first segment.
		host("encoded slash", attrPathHost, "/beta%2Fsecret.txt"),
		host("encoded slash", attrPathHost, "/beta%2F"),
		host("encoded slash", attrPathHost, "/beta%2fsecret.txt"),
		host("encoded backslash", attrPathHost, "/beta%5Csecret.txt"),
		host("encoded slash", attrPathHost, "/alpha%2F..%2Fbeta%2Fsecret.txt"),
		// Host case.
		host("host case", "ALPHA.S3.LOCAL", "/k"),
		host("host case", "Beta.S3.Local", "/alpha/k"),
		host("host case", "BETA.S3.LOCAL.EVIL.EXAMPLE", "/alpha/k"),
		// Ports.
		host("port", "alpha.s3.local:80", "/k"),
		host("port", "beta.s3.local:443", "/alpha/k"),
		host("port", "beta.s3.local:", "/alpha/k"),
		host("port", "beta.s3.local:x", "/alpha/k"),
		host("port", "beta.s3.local.:80", "/alpha/k"),
		host("port", "s3.local:8080", "/beta/secret.txt"),
		// IP literals.
		host("ip literal", "127.0.0.1", "/alpha/k"),
		host("ip literal", "127.0.0.1:9000", "/beta/secret.txt"),
		host("ip literal", "[::1]:9000", "/alpha/k"),
		host("ip literal", "beta.s3.local.127.0.0.1", "/alpha/k"),
		// Trailing dots.
		host("trailing dot", "beta.s3.local.", "/alpha/k"),
		host("trailing dots", "alpha.s3.local..", "/beta/secret.txt"),
		// Duplicate Host.
		attrVariant{Name: "duplicate host", Hosts: []string{"alpha.s3.local", "beta.s3.local"}, Target: "/k"},
		attrVariant{Name: "duplicate host", Hosts: []string{"beta.s3.local", "alpha.s3.local"}, Target: "/k"},
		attrVariant{Name: "duplicate host", Hosts: []string{attrPathHost, "beta.s3.local"}, Target: "/alpha/k"},
		// Absolute-form targets that disagree with Host.
		host("absolute form", "beta.s3.local", "http://alpha.s3.local/k"),
		host("absolute form", "alpha.s3.local", "http://beta.s3.local/k"),
		host("absolute form", attrPathHost, "http://beta.s3.local/alpha/k"),
		host("absolute form", "beta.s3.local", "http://s3.local/alpha/k"),
		// An empty first segment.
		host("double slash", attrPathHost, "//beta/secret.txt"),
		host("double slash", attrPathHost, "//alpha/k"),
		host("double slash", "beta.s3.local", "//alpha/k"),
		// Dot segments.
		host("dot segments", attrPathHost, "/alpha/%2e%2e/beta/secret.txt"),
		host("dot segments", attrPathHost, "/alpha/../beta/secret.txt"),
		host("dot segments", attrPathHost, "/alpha/%2E%2E/beta/secret.txt"),
		host("dot segments", "alpha.s3.local", "/../beta/secret.txt"),
		// Path parameters.
		host("path params", attrPathHost, "/alpha;x/k"),
		host("path params", attrPathHost, "/alpha/..;/beta/secret.txt"),
		// Bytes a proxy might re-encode on the way.
		host("raw bytes", attrPathHost, "/alpha/k|x"),
		host("raw bytes", attrPathHost, "/alpha/k#x"),
		host("raw bytes", attrPathHost, "/beta%2Fk|"),
		// Bytes no host name or key in a request line holds.
		host("control byte", attrPathHost, "/alpha/k\x01"),
		host("non-ASCII path", attrPathHost, "/alpha/k\xc3\xa9"),
		host("non-ASCII host", "b\xc3\xa9ta.s3.local", "/alpha/k"),
		host("user-info host", "beta@alpha.s3.local", "/k"),
		host("percent-encoded host", "beta%2es3.local", "/alpha/k"),
		// X-Forwarded-Host.
		attrVariant{Name: "x-forwarded-host", Hosts: []string{attrPathHost}, Target: "/alpha/k", Headers: [][2]string{{"X-Forwarded-Host", "beta.s3.local"}}},
		attrVariant{Name: "x-forwarded-host", Hosts: []string{"alpha.s3.local"}, Target: "/k", Headers: [][2]string{{"X-Forwarded-Host", "beta.s3.local"}}},
		// Forwarded (RFC 7239): a host= naming another bucket, in a later line (Envoy keeps the
		// lines apart), or malformed, gets nothing; one naming the same bucket is granted.
		attrVariant{Name: "forwarded", Hosts: []string{"alpha.s3.local"}, Target: "/k", Want: "alpha",
			Headers: [][2]string{{"Forwarded", `for=192.0.2.1;host="alpha.s3.local:80";proto=http`}}},
		attrVariant{Name: "forwarded", Hosts: []string{attrPathHost}, Target: "/alpha/k", Want: "none",
			Headers: [][2]string{{"Forwarded", "for=192.0.2.1;host=beta.s3.local;proto=http"}}},
		attrVariant{Name: "forwarded", Hosts: []string{"alpha.s3.local"}, Target: "/k", Want: "none",
			Headers: [][2]string{{"Forwarded", "host=alpha.s3.local"}, {"Forwarded", "for=192.0.2.1;Host=beta.s3.local"}}},
		attrVariant{Name: "forwarded", Hosts: []string{"alpha.s3.local"}, Target: "/k", Want: "none",
			Headers: [][2]string{{"Forwarded", `for="192.0.2.1;host=beta.s3.local"`}}},
	)
	return vs
}

// attrH2Variants are HTTP/2 requests whose :authority and host header field disagree.
func attrH2Variants() []attrVariant {
	return []attrVariant{
		{Name: "h2 control", H2: true, Hosts: []string{"alpha.s3.local"}, Target: "/k", Want: "alpha"},
		{Name: "h2 authority vs host", H2: true, Hosts: []string{"alpha.s3.local", "beta.s3.local"}, Target: "/k"},
		{Name: "h2 authority vs host", H2: true, Hosts: []string{"beta.s3.local", "alpha.s3.local"}, Target: "/k"},
		{Name: "h2 authority vs host", H2: true, Hosts: []string{attrPathHost, "beta.s3.local"}, Target: "/alpha/k"},
		{Name: "h2 authority vs host", H2: true, Hosts: []string{"beta.s3.local.evil.example", attrPathHost}, Target: "/alpha/k"},
		{Name: "h2 two hosts", H2: true, Hosts: []string{"alpha.s3.local", "alpha.s3.local", "beta.s3.local"}, Target: "/k"},
	}
}

func (v attrVariant) String() string {
	var b strings.Builder
	b.WriteString(v.Name + ": ")
	for i, h := range v.Hosts {
		switch {
		case v.H2 && i == 0:
			b.WriteString(":authority " + h)
		case v.H2:
			b.WriteString(" + host " + h)
		case i > 0:
			b.WriteString(" + Host " + h)
		default:
			b.WriteString("Host " + h)
		}
	}
	b.WriteString(" " + v.Target)
	for _, h := range v.Headers {
		b.WriteString(" " + h[0] + ": " + h[1])
	}
	return b.String()
}

// attrSend sends v over HTTP/1.1 exactly as written (casetable.Exchange): Hosts[0] as the
// Host line, any others as further Host lines.
func attrSend(addr, method string, v attrVariant, preflight bool) attrResponse {
	r := casetable.Request{Method: method, Authority: v.Hosts[0], Path: v.Target}
	for _, h := range v.Hosts[1:] {
		r.Headers = append(r.Headers, casetable.Header{"Host", h})
	}
	r.Headers = append(r.Headers, casetable.Header{"Origin", attrOrigin})
	if preflight {
		r.Headers = append(r.Headers, casetable.Header{"Access-Control-Request-Method", "GET"})
	}
	for _, h := range v.Headers {
		r.Headers = append(r.Headers, casetable.Header(h))
	}
	r.Headers = append(r.Headers, casetable.Header{"User-Agent", "s3cors-e2e"}, casetable.Header{"Connection", "close"})
	status, headers, body, err := casetable.Exchange(addr, r)
	if err != nil {
		return attrResponse{Err: err}
	}
	h := http.Header{}
	for _, kv := range headers {
		h.Add(kv[0], kv[1])
	}
	return attrResponseOf(status, h, body, preflight)
}

// attrResponse is what came back for one request.
type attrResponse struct {
	Status    int
	GrantedBy string // "" (no Access-Control-Allow-Origin), "alpha", "default", or "store" (the store's own)
	RequestID string
	Body      string
	Server    string
	Err       error
	served    testenv.Served
	reached   bool // the store's access log has the request
}

func attrResponseOf(status int, h http.Header, body []byte, preflight bool) attrResponse {
	r := attrResponse{Status: status, RequestID: h.Get("X-Amz-Request-Id"), Body: string(body), Server: h.Get("Server")}
	if h.Get("Access-Control-Allow-Origin") != "" {
		r.GrantedBy = "store"
		switch {
		case preflight && h.Get("Access-Control-Max-Age") == attrAlphaMaxAge:
			r.GrantedBy = "alpha"
		case preflight && h.Get("Access-Control-Max-Age") == attrDefaultMaxAge:
			r.GrantedBy = "default"
		case strings.Contains(h.Get("Access-Control-Expose-Headers"), "x-amz-meta-rules-alpha"):
			r.GrantedBy = "alpha"
		case strings.Contains(h.Get("Access-Control-Expose-Headers"), "x-amz-meta-rules-default"):
			r.GrantedBy = "default"
		}
	}
	return r
}

// attrSendH2 sends v as one HTTP/2 request over a new cleartext connection (prior knowledge),
// with the header fields exactly as v names them: net/http's client would not send a host
// field beside :authority.
func attrSendH2(addr, method string, v attrVariant, preflight bool) attrResponse {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return attrResponse{Err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return attrResponse{Err: err}
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := [][2]string{{":method", method}, {":scheme", "http"}, {":authority", v.Hosts[0]}, {":path", v.Target}}
	for _, h := range v.Hosts[1:] {
		fields = append(fields, [2]string{"host", h})
	}
	fields = append(fields, [2]string{"origin", attrOrigin}, [2]string{"user-agent", "s3cors-e2e"})
	if preflight {
		fields = append(fields, [2]string{"access-control-request-method", "GET"})
	}
	for _, h := range v.Headers {
		fields = append(fields, [2]string{strings.ToLower(h[0]), h[1]})
	}
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return attrResponse{Err: err}
		}
	}
	if err := fr.WriteSettings(); err != nil {
		return attrResponse{Err: err}
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return attrResponse{Err: err}
	}
	status, h, body := 0, http.Header{}, []byte(nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return attrResponse{Err: fmt.Errorf("http/2: %w", err)}
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					fmt.Sscan(hf.Value, &status)
				} else {
					h.Add(hf.Name, hf.Value)
				}
			}
			if f.StreamEnded() {
				return attrResponseOf(status, h, body, preflight)
			}
		case *http2.DataFrame:
			if f.StreamID != 1 {
				continue
			}
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return attrResponseOf(status, h, body, preflight)
			}
		case *http2.RSTStreamFrame:
			return attrResponse{Err: fmt.Errorf("http/2: stream reset: %v", f.ErrCode)}
		case *http2.GoAwayFrame:
			return attrResponse{Err: fmt.Errorf("http/2: GOAWAY %v %q", f.ErrCode, f.DebugData())}
		}
	}
}

// attrOutcome is one variant through one surface with one configuration.
type attrOutcome struct {
	Variant   attrVariant
	Eval      string // the evaluator's attribution of the raw request: bucket (reason)
	Preflight attrResponse
	Get       attrResponse
	Store     string // the bucket the store served ("" when none)
	StoreKey  string
	Problems  []string
}

// attrEval is the evaluator's own attribution of the raw request, for the table: the bucket
// (or "-") and the reason of a GET with Origin and the variant's X-Forwarded-Host and
// Forwarded.
func attrEval(t *testing.T, pol *evaluator.Policy, v attrVariant) string {
	t.Helper()
	var d evaluator.Decision
	r := evaluator.Request{Method: http.MethodGet, Authority: v.Hosts[0], Path: v.Target, Origin: attrOrigin, HasOrigin: true}
	var extra casetable.Request
	for _, h := range v.Headers {
		extra.Headers = append(extra.Headers, casetable.Header(h))
	}
	r.ForwardedHost, r.HasForwardedHost = extra.Joined("X-Forwarded-Host")
	r.Forwarded, r.HasForwarded = extra.Joined("Forwarded")
	pol.Evaluate(&r, &d)
	b := d.Bucket
	if b == "" {
		b = "-"
	}
	return b + " (" + d.Reason.String() + ")"
}

// attrRun sends every variant, as a preflight and as a GET, to addr, then checks each against
// the store's access log.
//
// verbatim says the surface must forward an origin-form target byte for byte (serve; Envoy's
// path handling is its connection manager's, chosen in the manifest).
func attrRun(t *testing.T, addr string, tb casetable.Table, store *testenv.VersitygwServer, verbatim bool, variants []attrVariant) []attrOutcome {
	t.Helper()
	pol, err := evaluator.Load(tb.Config)
	if err != nil {
		t.Fatal(err)
	}
	var out []attrOutcome
	for _, v := range variants {
		o := attrOutcome{Variant: v, Eval: attrEval(t, pol, v)}
		if v.H2 {
			o.Preflight = attrSendH2(addr, http.MethodOptions, v, true)
			o.Get = attrSendH2(addr, http.MethodGet, v, false)
		} else {
			o.Preflight = attrSend(addr, http.MethodOptions, v, true)
			o.Get = attrSend(addr, http.MethodGet, v, false)
		}
		out = append(out, o)
	}
	// versitygw writes its access log line before it answers; one look after the run sees all.
	log := store.ServedLog(t)
	for i := range out {
		o := &out[i]
		for _, r := range []*attrResponse{&o.Preflight, &o.Get} {
			r.served, r.reached = log[r.RequestID]
		}
		o.check(tb.Name)
		if verbatim && o.Get.reached && strings.HasPrefix(o.Variant.Target, "/") && o.Get.served.URI != o.Variant.Target {
			o.Problems = append(o.Problems, fmt.Sprintf("the store received the target %q, not the client's %q", o.Get.served.URI, o.Variant.Target))
		}
	}
	return out
}

// check applies the invariant, and a legitimate request's expectation, to o.
func (o *attrOutcome) check(table string) {
	// The store's bucket is what it served for the GET; a preflight the store answered itself
	// counts for the preflight.
	if o.Get.reached {
		o.Store, o.StoreKey = o.Get.served.Bucket, o.Get.served.Key
		// An object's body names its bucket (the key the store logs may differ: its backend
		// cleans "/" runs).
		if b, _, ok := strings.Cut(o.Get.Body, ":"); ok && o.Get.Status == http.StatusOK && (b == "alpha" || b == "beta") && b != o.Store {
			o.Problems = append(o.Problems, fmt.Sprintf("the store logged bucket %q but sent the body %q", o.Store, o.Get.Body))
		}
	} else if o.Preflight.reached {
		o.Store, o.StoreKey = o.Preflight.served.Bucket, o.Preflight.served.Key
	}
	if o.Get.RequestID != "" && !o.Get.reached && o.Get.Status/100 == 2 {
		// s3cors never answers a GET itself: an id means the store served it, and the table
		// would be blind to the bucket. (versitygw logs no line for an error it raises before
		// routing, such as a Host with a bad port.)
		o.Problems = append(o.Problems, fmt.Sprintf("GET answered with x-amz-request-id %q, which the store's access log does not have", o.Get.RequestID))
	}
	for _, r := range []struct {
		name string
		resp attrResponse
	}{{"preflight", o.Preflight}, {"GET", o.Get}} {
		if r.resp.Err != nil {
			// No answer (the proxy closed the connection): nothing granted. A control that
			// gets none fails below.
			continue
		}
		store := o.Store
		if r.resp.reached {
			store = r.resp.served.Bucket
		}
		if r.resp.GrantedBy == "" || (store != "alpha" && store != "beta") {
			// Nothing granted, or no bucket of the store served: nothing of a bucket to read.
			continue
		}
		if want := attrRulesOf(table, store); r.resp.GrantedBy != want {
			o.Problems = append(o.Problems, fmt.Sprintf("%s: the store served bucket %q, CORS granted by %s rules (want %s)",
				r.name, store, r.resp.GrantedBy, orNone(want)))
		}
	}
	switch o.Variant.Want {
	case "alpha":
		if o.Preflight.Status != http.StatusOK || o.Preflight.GrantedBy != "alpha" || o.Get.Status != http.StatusOK || o.Get.GrantedBy != "alpha" || o.Store != "alpha" {
			o.Problems = append(o.Problems, fmt.Sprintf("a legitimate request for alpha: preflight %d %s, GET %d %s from store bucket %q; want 200 with alpha's rules from alpha",
				o.Preflight.Status, orNone(o.Preflight.GrantedBy), o.Get.Status, orNone(o.Get.GrantedBy), o.Store))
		}
	case "none":
		if o.Preflight.Status != http.StatusForbidden || o.Preflight.GrantedBy != "" || o.Get.GrantedBy != "" {
			o.Problems = append(o.Problems, fmt.Sprintf("a request that must get no CORS: preflight %d %s, GET %s; want 403 and nothing granted",
				o.Preflight.Status, orNone(o.Preflight.GrantedBy), orNone(o.Get.GrantedBy)))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// attrReport logs the table and reports every problem.
func attrReport(t *testing.T, surface string, tb casetable.Table, outs []attrOutcome) {
	t.Helper()
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "variant\tevaluator (raw request)\tstore served\tpreflight\tGET\tnote\tverdict\n")
	for _, o := range outs {
		store := "-"
		if o.Store != "" {
			store = o.Store + " " + orDash(o.StoreKey)
		}
		verdict := "ok"
		if len(o.Problems) > 0 {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Variant, o.Eval, store, o.Preflight.cell(), o.Get.cell(), o.note(), verdict)
	}
	tw.Flush()
	t.Logf("%s, configuration %q (Origin %s; granted = Access-Control-Allow-Origin sent, by whose rules):\n%s", surface, tb.Name, attrOrigin, buf.String())
	for _, o := range outs {
		for _, p := range o.Problems {
			t.Errorf("%s, %s: %s: %s", surface, tb.Name, o.Variant, p)
		}
	}
}

func (r attrResponse) cell() string {
	if r.Err != nil {
		return "error"
	}
	s := fmt.Sprint(r.Status)
	if r.GrantedBy != "" {
		return s + " granted(" + r.GrantedBy + ")"
	}
	return s
}

// note says what happened on the way: the target as the store received it when it differs,
// or a reply from Envoy itself.
func (o attrOutcome) note() string {
	var notes []string
	if o.Get.reached && o.Get.served.URI != o.Variant.Target {
		notes = append(notes, "store got "+o.Get.served.URI)
	}
	for _, r := range []struct {
		name string
		resp attrResponse
	}{{"OPTIONS", o.Preflight}, {"GET", o.Get}} {
		if r.resp.Err != nil {
			notes = append(notes, fmt.Sprintf("%s: no answer (%v)", r.name, r.resp.Err))
		} else if !r.resp.reached && r.resp.RequestID == "" {
			who := "proxy"
			if r.resp.Server == "envoy" {
				who = "envoy"
			}
			notes = append(notes, fmt.Sprintf("%s: %s %d", r.name, who, r.resp.Status))
		}
	}
	return strings.Join(notes, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TestAttribution runs the variants through `s3cors serve --upstream` (the built CLI, its own
// process) and through each real Envoy release with the wasm filter and the ext_proc server,
// for both configurations, against one versitygw.
func TestAttribution(t *testing.T) {
	store := attrStore(t)
	tables := attrTables()
	bin := extprocCLIBinary(t)
	module := testenv.Module(t)

	t.Run("serve", func(t *testing.T) {
		for _, tb := range tables {
			t.Run(tb.Name, func(t *testing.T) {
				addr := startServeCLI(t, bin, module, tb.Config, "http://"+store.Addr)
				attrReport(t, "serve", tb, attrRun(t, addr, tb, store, true, attrVariants()))
				attrNoDisclosure(t, addr)
			})
		}
	})
	for _, e := range testenv.Envoys(t) {
		t.Run("envoy-"+e.Version, func(t *testing.T) {
			t.Run("wasm", func(t *testing.T) {
				attrThroughEnvoy(t, e, "wasm", manifest.EnvoyWasm, tables, store, module, nil, nil)
			})
			// Users may choose Envoy's own path handling; the invariant must hold under it too.
			for _, po := range attrPathOptions() {
				t.Run("wasm/"+po.name, func(t *testing.T) {
					attrThroughEnvoy(t, e, "wasm, "+po.name, manifest.EnvoyWasm, tables, store, module, nil, po.set)
				})
			}
			t.Run("extproc", func(t *testing.T) {
				var servers []string
				for i, tb := range tables {
					servers = append(servers, startRealEnvoyExtProc(t, i, tb))
				}
				attrThroughEnvoy(t, e, "ext_proc", manifest.EnvoyExtProc, tables, store, "", servers, nil)
			})
		})
	}
}

// attrThroughEnvoy runs the table through Envoy e with the bootstrap `s3cors manifest`
// generates for target, as deployed: its host routing included (the case-table harness opens
// every host; here Envoy's 404 for a host the configuration does not name is part of the
// defence), with edit (when not nil) applied to each connection manager.
func attrThroughEnvoy(t *testing.T, e testenv.Envoy, surface string, target manifest.Target, tables []casetable.Table,
	store *testenv.VersitygwServer, module string, servers []string, edit func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	file := "s3cors manifest --target " + string(target)
	b := realEnvoyParse(t, file, attrManifest(t, target, tables))
	env := startRealEnvoy(t, e.Path, realEnvoyBootstrapOf(t, file, b, tables, store.Addr, module, servers, edit))
	for i, tb := range tables {
		attrReport(t, "envoy "+e.Version+" "+surface, tb, attrRun(t, env.listeners[fmt.Sprintf("s3-%d", i)], tb, store, false, append(attrVariants(), attrH2Variants()...)))
	}
}

// attrManifest is the Envoy file `s3cors manifest` generates for the configurations (they
// share their addressing, so one file serves both; the harness puts each configuration on a
// listener of its own).
func attrManifest(t *testing.T, target manifest.Target, tables []casetable.Table) []byte {
	t.Helper()
	out, err := manifest.Generate(target, tables[0].Config, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startServeCLI runs `s3cors serve` (the built CLI) with config in front of upstream on a
// loopback port and returns its address; it is stopped when the test ends.
func startServeCLI(t *testing.T, bin, module string, config []byte, upstream string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cors.json")
	if err := os.WriteFile(path, config, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", path, "--listen", "127.0.0.1:0", "--upstream", upstream,
		"--wasm", module, "--log-format", "json", "--log-level", "debug")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logBuf bytes.Buffer
	serving := make(chan string, 1)
	exited := make(chan struct{})
	var exitErr error
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logBuf.Write(sc.Bytes())
			logBuf.WriteByte('\n')
			mu.Unlock()
			var rec struct{ Msg, Gateway string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				select {
				case serving <- strings.TrimPrefix(rec.Gateway, "http://"):
				default:
				}
			}
		}
		exitErr = cmd.Wait()
		close(exited)
	}()
	logged := func() string { mu.Lock(); defer mu.Unlock(); return logBuf.String() }
	t.Cleanup(func() {
		testenv.StopProcess(cmd.Process, exited, 20*time.Second)
		if t.Failed() {
			t.Logf("s3cors serve log:\n%s", logged())
		}
	})
	select {
	case addr := <-serving:
		return addr
	case <-exited:
		t.Fatalf("s3cors serve exited before serving: %v\n%s", exitErr, logged())
	case <-time.After(2 * time.Minute): // a hang guard: the module compiles first
		t.Fatalf("s3cors serve did not serve\n%s", logged())
	}
	return ""
}

// attrNoDisclosure: the S3 listener does not answer the gateway's debug endpoints, which
// would show any bucket's rules to anyone (S3's GetBucketCors needs authorization).
func attrNoDisclosure(t *testing.T, addr string) {
	t.Helper()
	for _, host := range []string{attrPathHost, "127.0.0.1"} {
		v := attrVariant{Hosts: []string{host}, Target: "/debug/s3cors/explain?method=GET&url=http%3A%2F%2Fs3.local%2Falpha%2Fk&origin=https%3A%2F%2Fa.example"}
		r := attrSend(addr, http.MethodGet, v, false)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if strings.Contains(r.Body, "x-amz-meta-rules-alpha") {
			t.Errorf("GET %s (Host %s) on the S3 listener: %d, the body shows alpha's rules:\n%s", v.Target, host, r.Status, cut(r.Body, 400))
		}
	}
}

// attrPathOptions are the connection manager's path handling choices other than the
// manifest's, each applied to every listener.
func attrPathOptions() []struct {
	name string
	set  func(*hcmv3.HttpConnectionManager)
} {
	return []struct {
		name string
		set  func(*hcmv3.HttpConnectionManager)
	}{
		{"normalize_path+merge_slashes+UNESCAPE_AND_FORWARD", func(h *hcmv3.HttpConnectionManager) {
			h.NormalizePath = wrapperspb.Bool(true)
			h.MergeSlashes = true
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD
		}},
		{"REJECT_REQUEST", func(h *hcmv3.HttpConnectionManager) {
			h.NormalizePath = wrapperspb.Bool(false)
			h.MergeSlashes = false
			h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_REJECT_REQUEST
		}},
	}
}
