package e2e_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// The hostile corpus: requests no browser sends, built in code because their bytes (CR, LF,
// NUL, invalid UTF-8) cannot be written in a JSON case table. Each runs through the evaluator,
// the wasm filter in wasmhost (through its Stream API, under Go's HTTP stack, which would refuse
// the bytes) and the ext_proc server (over gRPC, raw_value bytes), against
// testdata/hostile/requests.json. Every surface must give the evaluator's answer, and every
// answer must keep the invariants of checkHostileInvariants.

// hostileRequest is a request as a proxy receives it: pseudo-headers apart, headers in order,
// repeats kept, any bytes.
type hostileRequest struct {
	method, authority, path string
	headers                 []casetable.Header
}

// first returns the first value of the named header in the header map Envoy builds for r
// (wasmhost.RequestHeaderMap: a repeated Origin, Access-Control-Request-Method or -Headers is
// folded into one line), as Envoy's get_header_map_value and the ext_proc server read it.
func (r hostileRequest) first(name string) (string, bool) {
	return r.headerMap().Get(name)
}

// headerMap is r's headers as Envoy's codec hands them to the filters, without pseudo-headers.
func (r hostileRequest) headerMap() wasmhost.Headers {
	hs := make(wasmhost.Headers, len(r.headers))
	for i, h := range r.headers {
		hs[i] = [2]string(h)
	}
	return wasmhost.RequestHeaderMap(hs)
}

// evaluatorRequest is what every surface hands the evaluator for r.
func (r hostileRequest) evaluatorRequest() *evaluator.Request {
	q := &evaluator.Request{Method: r.method, Authority: r.authority, Path: r.path}
	q.Origin, q.HasOrigin = r.first("origin")
	q.RequestMethod, q.HasRequestMethod = r.first("access-control-request-method")
	q.RequestHeaders, q.HasRequestHeaders = r.first("access-control-request-headers")
	return q
}

// size is the request's size in bytes, the unit work must stay proportional to.
func (r hostileRequest) size() int {
	n := len(r.method) + len(r.authority) + len(r.path)
	for _, h := range r.headers {
		n += len(h[0]) + len(h[1])
	}
	return n
}

// Allow-Origin expectations.
const (
	acaoNone = ""     // no Access-Control-Allow-Origin
	acaoAny  = "*"    // "*"
	acaoEcho = "echo" // the request's (first) Origin, byte for byte
)

// hostileWant is what the client must get.
type hostileWant struct {
	reply  bool // answered at the proxy; otherwise the request reaches the upstream
	status int  // of a reply
	acao   string
	// allowHeaders, when set, is the exact Access-Control-Allow-Headers of a reply.
	allowHeaders *string
	// untouched: the upstream's answer reaches the client as it was sent (not an S3 request).
	untouched bool
}

type hostileCase struct {
	name string
	req  hostileRequest
	want hostileWant
}

// hostileUpstream is what the fake store answers every forwarded request with: its own
// Access-Control-Allow-Origin (as MinIO adds) must be stripped on every bucket s3cors
// answers for, and its Vary merged.
var hostileUpstream = []casetable.Header{
	{"content-type", "text/plain"},
	{"access-control-allow-origin", "https://upstream.invalid"},
	{"vary", "Accept-Encoding"},
}

const (
	appOrigin  = "https://app.example.com"
	evilOrigin = "https://evil.test"
)

func hostilePtr[T any](v T) *T { return &v }

// manyNames is "prefix00000, prefix00001, ..." with n names, sep between them.
func manyNames(prefix string, n int, sep string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(sep)
		}
		fmt.Fprintf(&b, "%s%05d", prefix, i)
	}
	return b.String()
}

func preflightTo(authority, path string, headers ...string) hostileRequest {
	r := hostileRequest{method: "OPTIONS", authority: authority, path: path}
	for i := 0; i+1 < len(headers); i += 2 {
		r.headers = append(r.headers, casetable.Header{headers[i], headers[i+1]})
	}
	return r
}

func sitePreflight(headers ...string) hostileRequest {
	return preflightTo("s3.example.test", "/site/k", headers...)
}

func actualRequest(method, path string, headers ...string) hostileRequest {
	r := preflightTo("s3.example.test", path, headers...)
	r.method = method
	return r
}

// The usual expectations.
var (
	wantAllowed    = hostileWant{reply: true, status: 200, acao: acaoEcho}
	wantAllowedAny = hostileWant{reply: true, status: 200, acao: acaoAny}
	wantDenied     = hostileWant{reply: true, status: 403}
	wantBadRequest = hostileWant{reply: true, status: 400}
	wantPassed     = hostileWant{untouched: true}
	wantForwarded  = hostileWant{}
	wantDecorated  = hostileWant{acao: acaoEcho}
)

// hostileCases is the corpus. Names say what is hostile and what must happen.
func hostileCases() []hostileCase {
	k8 := strings.Repeat("a", 8<<10)
	names10k := manyNames("x-amz-meta-", 10000, ",")
	names10kLower := manyNames("x-amz-meta-", 10000, ", ")
	return []hostileCase{
		// Origin values.
		{"origin exact (baseline)", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"origin CR LF header injection", sitePreflight("origin", appOrigin+"\r\nSet-Cookie: a=b", "access-control-request-method", "PUT"), wantDenied},
		{"origin CR LF on an any-origin rule answers *", preflightTo("s3.example.test", "/open/k", "origin", appOrigin+"\r\nSet-Cookie: a=b", "access-control-request-method", "PUT"), wantAllowedAny},
		{"origin LF at the end", sitePreflight("origin", "https://x.example.com\n", "access-control-request-method", "PUT"), wantDenied},
		{"origin CR inside a wildcard match", sitePreflight("origin", "https://x\r.example.com", "access-control-request-method", "PUT"), wantDenied},
		{"origin LF inside a wildcard match", sitePreflight("origin", "https://x\n.example.com", "access-control-request-method", "PUT"), wantDenied},
		{"origin NUL inside a wildcard match", sitePreflight("origin", "https://x\x00.example.com", "access-control-request-method", "PUT"), wantDenied},
		{"origin NUL truncating an exact match", sitePreflight("origin", appOrigin+"\x00.evil.test", "access-control-request-method", "PUT"), wantDenied},
		{"origin invalid UTF-8 matching the wildcard is echoed byte for byte", sitePreflight("origin", "https://\xff\xfe.example.com", "access-control-request-method", "PUT"), wantAllowed},
		{"origin invalid UTF-8 not matching", sitePreflight("origin", "https://\xff\xfe.evil.test", "access-control-request-method", "PUT"), wantDenied},
		{"origin 8 KB matching the wildcard", sitePreflight("origin", "https://"+k8+".example.com", "access-control-request-method", "PUT"), wantAllowed},
		{"origin 8 KB not matching", sitePreflight("origin", "https://"+k8, "access-control-request-method", "PUT"), wantDenied},
		{"origin null", sitePreflight("origin", "null", "access-control-request-method", "PUT"), wantDenied},
		{"origin null on an any-origin rule", preflightTo("s3.example.test", "/open/k", "origin", "null", "access-control-request-method", "PUT"), wantAllowedAny},
		{"origin upper-case scheme and host", sitePreflight("origin", "HTTPS://APP.EXAMPLE.COM", "access-control-request-method", "PUT"), wantDenied},
		{"origin mixed-case scheme", sitePreflight("origin", "Https://app.example.com", "access-control-request-method", "PUT"), wantDenied},
		{"origin empty is no origin", sitePreflight("origin", "", "access-control-request-method", "PUT"), wantBadRequest},
		{"origin trailing space", sitePreflight("origin", appOrigin+" ", "access-control-request-method", "PUT"), wantDenied},
		{"origin trailing tab", sitePreflight("origin", appOrigin+"\t", "access-control-request-method", "PUT"), wantDenied},
		{"origin pattern spanning a path", sitePreflight("origin", "https://evil.test/.example.com", "access-control-request-method", "PUT"), wantAllowed},
		// Envoy folds a repeated Origin into one line, "a,b", which a wildcard spans like any
		// other byte: echoed as it came, and no browser sends, or accepts, such an origin.
		{"origin duplicated, first denied: folded, the wildcard spans the comma", sitePreflight("origin", evilOrigin, "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"origin duplicated, first allowed: folded, no rule matches", sitePreflight("origin", appOrigin, "origin", evilOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"origin header name in upper case", sitePreflight("ORIGIN", appOrigin, "Access-Control-Request-Method", "PUT"), wantAllowed},

		// Access-Control-Request-Headers.
		{"ACRH 10,000 allowed names", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", names10k),
			hostileWant{reply: true, status: 200, acao: acaoEcho, allowHeaders: &names10kLower}},
		{"ACRH 10,000 names, the last not allowed", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", names10k+",x-evil"), wantDenied},
		{"ACRH 10,000 names on an any-header rule", preflightTo("s3.example.test", "/open/k", "origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", names10k),
			hostileWant{reply: true, status: 200, acao: acaoAny, allowHeaders: &names10kLower}},
		{"ACRH empty", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", ""), wantAllowed},
		{"ACRH only separators and blanks", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", ",,, ,\t, ,"), wantAllowed},
		{"ACRH 10,000 empty items", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", strings.Repeat(",", 10000)), wantAllowed},
		{"ACRH semicolon is no separator", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-amz-date;content-type"),
			hostileWant{reply: true, status: 200, acao: acaoEcho, allowHeaders: hostilePtr("x-amz-date;content-type")}},
		{"ACRH space is no separator", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "content-type content-length"), wantDenied},
		{"ACRH upper case is lower-cased in the echo", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "X-AMZ-DATE,\tContent-Type"),
			hostileWant{reply: true, status: 200, acao: acaoEcho, allowHeaders: hostilePtr("x-amz-date, content-type")}},
		{"ACRH CR LF injection", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-amz-date\r\nSet-Cookie: a=b"), wantDenied},
		{"ACRH CR LF injection on an any-header rule", preflightTo("s3.example.test", "/open/k", "origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-a\r\nSet-Cookie: a=b"), wantDenied},
		{"ACRH NUL", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-amz-date\x00"), wantDenied},
		{"ACRH one 64 KB name", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-amz-"+strings.Repeat("b", 64<<10)), wantAllowed},
		{"ACRH duplicated, first not allowed", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-evil", "access-control-request-headers", "content-type"), wantDenied},

		// Access-Control-Request-Method.
		{"ACRM lower case", sitePreflight("origin", appOrigin, "access-control-request-method", "put"), wantDenied},
		{"ACRM CR LF", sitePreflight("origin", appOrigin, "access-control-request-method", "PUT\r\nX-Evil: 1"), wantDenied},
		{"ACRM empty", sitePreflight("origin", appOrigin, "access-control-request-method", ""), wantBadRequest},
		{"ACRM 8 KB", sitePreflight("origin", appOrigin, "access-control-request-method", k8), wantDenied},
		{"ACRM XML markup", sitePreflight("origin", appOrigin, "access-control-request-method", "</Method><Code>Evil</Code>"), wantDenied},
		{"ACRM invalid UTF-8 and control bytes", preflightTo("s3.example.test", "/private/k", "origin", appOrigin, "access-control-request-method", "G\xffE\x01T\x7f"), wantDenied},

		// Host / :authority.
		{"host virtual-hosted with a port", preflightTo("site.s3.example.test:8443", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host upper case", preflightTo("SITE.S3.EXAMPLE.TEST", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host trailing dot", preflightTo("site.s3.example.test.", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host trailing dot and port", preflightTo("site.s3.example.test.:9000", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host IPv4 literal, path style", preflightTo("127.0.0.1:9000", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host IPv6 literal, path style", preflightTo("[::1]:9000", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host broken IPv6 literal: ambiguous", preflightTo("[::1", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host with user info is no bucket host", preflightTo("evil@site.s3.example.test", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host empty, path style", preflightTo("", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host empty bucket label: ambiguous", preflightTo(".s3.example.test", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host is the service endpoint", preflightTo("s3.example.test", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"host names the bucket without CORS", preflightTo("private.s3.example.test", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host names a bucket whose name extends another's", preflightTo("site-assets.s3.example.test", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host 8 KB label", preflightTo(k8+".s3.example.test", "/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"host suffix look-alike", preflightTo("site.s3.example.test.evil.test", "/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},

		// Paths.
		{"path dot-dot is ambiguous", preflightTo("s3.example.test", "/site/../open/k", "origin", evilOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path dot-dot into another bucket: ambiguous", preflightTo("s3.example.test", "/open/../site/k", "origin", evilOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path encoded slash in the bucket segment: ambiguous", preflightTo("s3.example.test", "/site%2Fopen/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path encoded slash in the key", preflightTo("s3.example.test", "/site/a%2Fb", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"path encoded dot segments in the key: ambiguous", preflightTo("s3.example.test", "/site/a%2F..%2F..%2Fopen", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path double slash first: ambiguous", preflightTo("s3.example.test", "//site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path double slash in the key", preflightTo("s3.example.test", "/site//k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"path bucket name is a prefix of a listed one", preflightTo("s3.example.test", "/sit/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path listed bucket extends another's name", preflightTo("s3.example.test", "/site-assets/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path bad percent-encoding in the bucket: ambiguous", preflightTo("s3.example.test", "/site%/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path bad percent-encoding in the key: ambiguous", preflightTo("s3.example.test", "/site/k%G0", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path percent-encoded bucket name", preflightTo("s3.example.test", "/%73ite/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"path encoded NUL in the bucket: ambiguous", preflightTo("s3.example.test", "/site%00/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path upper-case bucket is another bucket", preflightTo("s3.example.test", "/SITE/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path asterisk form", preflightTo("s3.example.test", "*", "origin", appOrigin, "access-control-request-method", "PUT"), wantPassed},
		{"path absolute form: ambiguous", preflightTo("s3.example.test", "http://evil.test/site/k", "origin", appOrigin, "access-control-request-method", "PUT"), wantDenied},
		{"path query naming another bucket", preflightTo("s3.example.test", "/site?x=/open/", "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"path 8 KB key", preflightTo("s3.example.test", "/site/"+k8, "origin", appOrigin, "access-control-request-method", "PUT"), wantAllowed},
		{"path empty", preflightTo("s3.example.test", "", "origin", appOrigin, "access-control-request-method", "PUT"), wantPassed},

		// Actual requests.
		{"GET origin CR LF: upstream, no CORS", actualRequest("GET", "/site/k", "origin", appOrigin+"\r\nSet-Cookie: a=b"), wantForwarded},
		{"GET origin CR LF on an any-origin rule: *", actualRequest("GET", "/open/k", "origin", appOrigin+"\r\nSet-Cookie: a=b"), hostileWant{acao: acaoAny}},
		{"GET origin 8 KB matching", actualRequest("GET", "/site/k", "origin", "https://"+k8+".example.com"), wantDecorated},
		{"GET origin duplicated, first denied: folded, the wildcard spans the comma", actualRequest("GET", "/site/k", "origin", evilOrigin, "origin", appOrigin), wantDecorated},
		{"GET origin duplicated, first allowed: folded, no rule matches", actualRequest("GET", "/site/k", "origin", appOrigin, "origin", evilOrigin), wantForwarded},
		{"GET no origin", actualRequest("GET", "/site/k"), wantForwarded},
		{"GET 10,000 requested names allowed", actualRequest("GET", "/site/k", "origin", appOrigin, "access-control-request-headers", names10k), wantDecorated},
		{"GET requested names with CR LF", actualRequest("GET", "/site/k", "origin", appOrigin, "access-control-request-headers", "x-amz-a\r\nb"), wantForwarded},
		{"GET ACRM CR LF", actualRequest("GET", "/site/k", "origin", appOrigin, "access-control-request-method", "GET\r\n"), wantForwarded},
		{"PUT encoded slash in the bucket: ambiguous, upstream CORS stripped", actualRequest("PUT", "/site%2Fopen/k", "origin", appOrigin), wantForwarded},
		{"GET bucket without CORS", actualRequest("GET", "/private/k", "origin", appOrigin), wantForwarded},
		{"DELETE method outside the rule", actualRequest("DELETE", "/site/k", "origin", appOrigin), wantForwarded},
		{"PATCH unknown method", actualRequest("PATCH", "/site/k", "origin", appOrigin), wantForwarded},
	}
}

// hostileConfig is testdata/hostile/requests.json, the configuration the corpus runs against.
func hostileConfig(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "hostile", "requests.json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// hostilePolicy is hostileConfig and the evaluator's policy for it, the reference the
// surfaces' answers are compared with.
func hostilePolicy(t testing.TB) ([]byte, *evaluator.Policy) {
	t.Helper()
	cfg := hostileConfig(t)
	pol, err := evaluator.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, pol
}

// evaluatorView is what a client sees when a proxy applies the evaluator's decision for r,
// with the fake upstream answering hostileUpstream.
func evaluatorView(pol *evaluator.Policy, r hostileRequest, d *evaluator.Decision) casetable.Response {
	pol.Evaluate(r.evaluatorRequest(), d)
	switch d.Outcome {
	case evaluator.Reply:
		got := casetable.Response{Status: d.Status, Body: append([]byte(nil), d.Body...)}
		for _, h := range d.Headers {
			got.Headers = append(got.Headers, casetable.Header{strings.ToLower(h.Name), h.Value})
		}
		return got
	case evaluator.PassThrough:
		return upstreamView(hostileUpstream)
	}
	var hs []casetable.Header
	var vary []string
	for _, h := range hostileUpstream {
		if d.StripUpstream && evaluator.IsCORSHeader(h[0]) {
			continue
		}
		if h[0] == "vary" && d.Outcome == evaluator.Decorate {
			vary = append(vary, h[1])
			continue
		}
		hs = append(hs, h)
	}
	if d.Outcome == evaluator.Decorate {
		for _, h := range d.Headers {
			v := h.Value
			if h.Name == evaluator.HeaderVary {
				v = evaluator.MergeVary(vary)
			}
			hs = append(hs, casetable.Header{strings.ToLower(h.Name), v})
		}
	}
	return casetable.Response{Status: 200, Headers: hs, Body: []byte(casetable.UpstreamBody), ReachedUpstream: true}
}

func upstreamView(hs []casetable.Header) casetable.Response {
	return casetable.Response{Status: 200, Headers: append([]casetable.Header(nil), hs...), Body: []byte(casetable.UpstreamBody), ReachedUpstream: true}
}

// checkHostileInvariants asserts what must hold of any answer to any request, whatever the
// configuration: nothing an attacker sent is reflected unless it was validated, and nothing
// emitted can split or truncate a header.
func checkHostileInvariants(r hostileRequest, got casetable.Response) error {
	var errs []string
	for _, h := range got.Headers {
		if strings.ContainsAny(h[0], "\r\n\x00") || strings.ContainsAny(h[1], "\r\n\x00") {
			errs = append(errs, fmt.Sprintf("header %q carries CR, LF or NUL: %q", h[0], clipValue(h[1])))
		}
	}
	acao := got.Values("access-control-allow-origin")
	if !got.ReachedUpstream || len(acao) > 0 && acao[0] != "https://upstream.invalid" {
		origin, hasOrigin := r.first("origin")
		switch {
		case len(acao) > 1:
			errs = append(errs, fmt.Sprintf("%d Access-Control-Allow-Origin headers %q", len(acao), clipValues(acao)))
		case len(acao) == 1 && acao[0] != "*":
			if !hasOrigin || acao[0] != origin {
				errs = append(errs, fmt.Sprintf("Access-Control-Allow-Origin %q is neither * nor the request's first Origin %q", clipValue(acao[0]), clipValue(origin)))
			}
			if c := got.Values("access-control-allow-credentials"); len(c) != 1 || c[0] != "true" {
				errs = append(errs, fmt.Sprintf("echoed origin without Access-Control-Allow-Credentials: true (got %q)", c))
			}
		case len(acao) == 1 && len(got.Values("access-control-allow-credentials")) > 0:
			errs = append(errs, "Access-Control-Allow-Origin * with Access-Control-Allow-Credentials")
		}
	}
	if !got.ReachedUpstream && len(got.Body) > 0 {
		if err := xml.Unmarshal(got.Body, new(struct{ Code string })); err != nil {
			errs = append(errs, fmt.Sprintf("reply body is not well-formed XML: %v", err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n  "))
}

// checkWant compares an answer with the case's expectation.
// checkHostileAnswer checks what a surface (the wasm filter, ext_proc) answered a hostile case,
// or the error it gave: the invariants every answer keeps, the case's own expectations, and
// agreement with the evaluator.
func checkHostileAnswer(t *testing.T, surface string, pol *evaluator.Policy, d *evaluator.Decision, c hostileCase, got casetable.Response, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	if err := checkHostileInvariants(c.req, got); err != nil {
		t.Errorf("%s: invariant broken:\n  %v", c.name, err)
	}
	if err := checkWant(c, got); err != nil {
		t.Errorf("%s:\n  %v", c.name, err)
	}
	if want, have := answerKey(evaluatorView(pol, c.req, d)), answerKey(got); have != want {
		t.Errorf("%s: %s differs from the evaluator:\n--- %s\n%s\n--- evaluator\n%s", c.name, surface, surface, have, want)
	}
}

func checkWant(c hostileCase, got casetable.Response) error {
	var errs []string
	w := c.want
	switch {
	case w.reply && got.ReachedUpstream:
		errs = append(errs, "reached the upstream; want a reply at the proxy")
	case w.reply && got.Status != w.status:
		errs = append(errs, fmt.Sprintf("status %d, want %d", got.Status, w.status))
	case !w.reply && !got.ReachedUpstream:
		errs = append(errs, fmt.Sprintf("answered at the proxy with %d; want the upstream's answer", got.Status))
	}
	if w.untouched {
		if !sameUpstreamHeaders(got.Headers, hostileUpstream) {
			errs = append(errs, fmt.Sprintf("upstream headers changed on a request s3cors must not touch: %q", got.Headers))
		}
	} else {
		acao := got.Values("access-control-allow-origin")
		origin, _ := c.req.first("origin")
		switch w.acao {
		case acaoNone:
			if len(acao) > 0 {
				errs = append(errs, fmt.Sprintf("Access-Control-Allow-Origin %q, want none", clipValues(acao)))
			}
		case acaoAny:
			if len(acao) != 1 || acao[0] != "*" {
				errs = append(errs, fmt.Sprintf("Access-Control-Allow-Origin %q, want *", clipValues(acao)))
			}
		case acaoEcho:
			if len(acao) != 1 || acao[0] != origin {
				errs = append(errs, fmt.Sprintf("Access-Control-Allow-Origin %q, want the origin %q", clipValues(acao), clipValue(origin)))
			}
		}
	}
	if w.allowHeaders != nil {
		if ah := got.Values("access-control-allow-headers"); len(ah) != 1 || ah[0] != *w.allowHeaders {
			errs = append(errs, fmt.Sprintf("Access-Control-Allow-Headers %q, want %q", clipValues(ah), clipValue(*w.allowHeaders)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n  "))
}

// answerKey is an answer reduced to what every surface must agree on: reply or upstream, the
// status, every header but the per-reply ids and those the proxy owns (content-length,
// connection), values of repeated headers joined, and the body with its ids masked.
func answerKey(got casetable.Response) string {
	var b strings.Builder
	if got.ReachedUpstream {
		b.WriteString("upstream ")
	} else {
		b.WriteString("reply ")
	}
	b.WriteString(strconv.Itoa(got.Status))
	byName := map[string][]string{}
	for _, h := range got.Headers {
		name := strings.ToLower(h[0])
		switch name {
		case "content-length", "connection", "x-amz-request-id", "x-amz-id-2", "date", "server", "transfer-encoding":
			continue
		}
		byName[name] = append(byName[name], h[1])
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\n%s: %s", n, clipValue(strings.Join(byName[n], ", ")))
	}
	body := string(got.Body)
	if i, j := strings.Index(body, "<RequestId>"), strings.Index(body, "</HostId>"); i >= 0 && j > i {
		body = body[:i] + "<ids/>" + body[j+len("</HostId>"):]
	}
	fmt.Fprintf(&b, "\n\n%s", clipValue(body))
	return b.String()
}

func sameUpstreamHeaders(a, b []casetable.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i][0], b[i][0]) || a[i][1] != b[i][1] {
			return false
		}
	}
	return true
}

// clipValue shortens a long value for a failure message, keeping its length visible.
func clipValue(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:100] + "…(" + strconv.Itoa(len(s)) + " bytes)…" + s[len(s)-60:]
}

func clipValues(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = clipValue(v)
	}
	return out
}

// TestHostileEvaluator runs the corpus through the evaluator, the oracle of the other surfaces.
func TestHostileEvaluator(t *testing.T) {
	pol, err := evaluator.Load(hostileConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	var d evaluator.Decision
	for _, c := range hostileCases() {
		got := evaluatorView(pol, c.req, &d)
		if err := checkHostileInvariants(c.req, got); err != nil {
			t.Errorf("%s: invariant broken:\n  %v", c.name, err)
		}
		if err := checkWant(c, got); err != nil {
			t.Errorf("%s:\n  %v", c.name, err)
		}
	}
}
