package e2e_test

// wasmhost against real Envoy: the same requests through both, the answers compared.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// TestRealEnvoyDifferential sends every case of every table, and the requests of
// realEnvoyExtras, through each pinned real Envoy with envoy/wasm.yaml and through wasmhost's
// HTTP handler with the profile of that release, over HTTP/1.1 and (for realEnvoyH2)
// HTTP/2 with prior knowledge, and wants the same answer from both: status, every header
// line (names, values and repeats, in any order) and body, after normalising only what
// differs from one answer to the next (diffNormalise). realEnvoyExtras also pin what Envoy
// itself does around local replies (RATIONALE.md, "What real Envoy showed").
func TestRealEnvoyDifferential(t *testing.T) {
	tables := realEnvoyTables(t)
	extras := realEnvoyExtraTables()
	tables = append(tables, extras...)
	store := startRealEnvoyStore(t, tables)
	modulePath := testenv.Module(t)
	module := testenv.ModuleBytes(t)
	cache := wazero.NewCompilationCache()
	t.Cleanup(func() { _ = cache.Close(context.Background()) })

	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			profile := wasmhost.Envoy133
			if e.Minor() >= 39 {
				profile = wasmhost.Envoy139
			}
			envoy := startRealEnvoy(t, e.Path, realEnvoyBootstrap(t, "wasm.yaml", tables, store.addr, modulePath, nil))
			host := startWasmhostListeners(t, tables, store, module, cache, profile)
			run := "diff-" + e.Version
			for ti, tb := range tables {
				name := fmt.Sprintf("s3-%d", ti)
				for ci, c := range tb.Cases {
					t.Run(realEnvoyName(tb.Name)+"/"+realEnvoyName(c.Name), func(t *testing.T) {
						id := fmt.Sprintf("%d/%d", ti, ci)
						got := diffExchange(t, envoy.listeners[name], run+"-envoy/"+id, c.Request)
						got.ReachedUpstream = store.reached(run + "-envoy/" + id)
						want := diffExchange(t, host.listeners[name], run+"-wasmhost/"+id, c.Request)
						want.ReachedUpstream = store.reached(run + "-wasmhost/" + id)
						if g, w := diffNormalise(got), diffNormalise(want); g != w {
							t.Errorf("%s %s%s: Envoy %s and wasmhost (%s) differ:\n--- envoy\n%s\n--- wasmhost\n%s",
								c.Request.Method, c.Request.Authority, c.Request.Path, e.Version, profile, g, w)
						}
						// What the store received: the same, but for the case id and the two
						// headers Envoy's connection manager adds to every request, which
						// wasmhost leaves out by design (its Handler doc).
						gotReq := diffStoreRequest(store.request(run + "-envoy/" + id))
						wantReq := diffStoreRequest(store.request(run + "-wasmhost/" + id))
						if gotReq != wantReq {
							t.Errorf("the store received from Envoy %s and from wasmhost:\n--- envoy\n%s\n--- wasmhost\n%s", e.Version, gotReq, wantReq)
						}
						if check := realEnvoyExtraChecks[c.Name]; check != nil && ti >= len(tables)-len(extras) {
							check(t, got)
						}
					})
				}
			}
			t.Run("h2c", func(t *testing.T) {
				realEnvoyH2(t, run, envoy, host, tables, store)
			})
		})
	}
}

// startWasmhostListeners serves each table through wasmhost's HTTP handler (the plugin with
// that table's configuration, the profile given) in front of the fake store, each on its own
// loopback port that speaks HTTP/1.1 and HTTP/2 with prior knowledge, as Envoy's listeners
// (codec_type AUTO) do.
func startWasmhostListeners(t *testing.T, tables []casetable.Table, store *realEnvoyStore, module []byte, cache wazero.CompilationCache, profile wasmhost.Profile) *realEnvoy {
	t.Helper()
	env := &realEnvoy{listeners: map[string]string{}}
	for i, tb := range tables {
		h, err := wasmhost.New(context.Background(), wasmhost.Options{Module: module, PluginConfig: tb.Config, CompilationCache: cache, Profile: profile, EnvoyHeaders: true})
		if err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		srv := httptest.NewUnstartedServer(h.Handler(http.HandlerFunc(store.serve)))
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		t.Cleanup(srv.Close)
		env.listeners[fmt.Sprintf("s3-%d", i)] = strings.TrimPrefix(srv.URL, "http://")
	}
	return env
}

// diffExchange sends r with the store's case id over a new HTTP/1.1 connection and returns
// the answer with its header lines as they were on the wire.
func diffExchange(t *testing.T, addr, id string, r casetable.Request) casetable.Response {
	t.Helper()
	r.Headers = append(append([]casetable.Header(nil), r.Headers...), casetable.Header{realEnvoyCaseHeader, id})
	status, headers, body, err := casetable.Exchange(addr, r)
	if err != nil {
		t.Fatal(err)
	}
	return casetable.Response{Status: status, Headers: headers, Body: body}
}

var (
	diffRequestIDRe = regexp.MustCompile(`<RequestId>[0-9A-Z]{16}</RequestId>`)
	diffHostIDRe    = regexp.MustCompile(`<HostId>[A-Za-z0-9+/=]{56,120}</HostId>`)
)

// diffNormalise writes a response as text to compare: the status, whether the store saw the
// request, the header lines sorted (lower-case names), and the body. Only values that differ
// between two answers to one request are replaced: S3's request ids (the filter makes a new
// one per reply, in x-amz-request-id, x-amz-id-2 and the XML body), the date and the store's
// time to answer (x-envoy-upstream-service-time, in milliseconds).
func diffNormalise(r casetable.Response) string {
	lines := make([]string, 0, len(r.Headers))
	for _, h := range r.Headers {
		name, value := strings.ToLower(h[0]), h[1]
		switch {
		case name == "date":
			if _, err := http.ParseTime(value); err == nil {
				value = "<date>"
			}
		case name == "x-envoy-upstream-service-time":
			if _, err := strconv.ParseUint(value, 10, 32); err == nil {
				value = "<ms>"
			}
		case name == "x-amz-request-id" && casetable.IsRequestID(value):
			value = "<request-id>"
		case name == "x-amz-id-2" && casetable.IsHostID(value):
			value = "<host-id>"
		}
		lines = append(lines, name+": "+value)
	}
	sort.Strings(lines)
	body := diffRequestIDRe.ReplaceAllString(string(r.Body), "<RequestId><request-id></RequestId>")
	body = diffHostIDRe.ReplaceAllString(body, "<HostId><host-id></HostId>")
	return fmt.Sprintf("%d reached-store=%t\n%s\n\n%s", r.Status, r.ReachedUpstream, strings.Join(lines, "\n"), body)
}

var diffEnvoyRequestHeaderRe = regexp.MustCompile(`(?m)^(x-forwarded-proto: http|x-request-id: [0-9a-f-]{36}|content-length: 0|` + realEnvoyCaseHeader + `: .*)\n?`)

// diffStoreRequest is storeRequest's text without the case id; without Envoy's own
// x-forwarded-proto and generated x-request-id; and without "content-length: 0", which exists
// only because an HTTP/1 codec writes a bodiless request to the store (Envoy's does for
// OPTIONS, PUT, POST and PATCH, not for GET), while wasmhost's in-process store gets the
// request with no codec between.
func diffStoreRequest(s string) string {
	return diffEnvoyRequestHeaderRe.ReplaceAllString(s, "")
}

// realEnvoyH2 sends a preflight and a decorated GET over HTTP/2 with prior knowledge (h2c) to
// Envoy's listener and to wasmhost's, and wants the same answers.
func realEnvoyH2(t *testing.T, run string, envoy, host *realEnvoy, tables []casetable.Table, store *realEnvoyStore) {
	ti := len(tables) - 1 // the last extra table
	name := fmt.Sprintf("s3-%d", ti)
	tr := &http.Transport{DisableCompression: true, Proxy: nil, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for ci, c := range tables[ti].Cases {
		if !strings.HasPrefix(c.Name, "h2:") {
			continue
		}
		t.Run(realEnvoyName(c.Name), func(t *testing.T) {
			id := fmt.Sprintf("%d/%d", ti, ci)
			got := realEnvoyDoH2(t, client, envoy.listeners[name], run+"-h2-envoy/"+id, c.Request)
			got.ReachedUpstream = store.reached(run + "-h2-envoy/" + id)
			want := realEnvoyDoH2(t, client, host.listeners[name], run+"-h2-wasmhost/"+id, c.Request)
			want.ReachedUpstream = store.reached(run + "-h2-wasmhost/" + id)
			if g, w := diffNormalise(got), diffNormalise(want); g != w {
				t.Errorf("HTTP/2 %s %s: Envoy and wasmhost differ:\n--- envoy\n%s\n--- wasmhost\n%s", c.Request.Method, c.Request.Path, g, w)
			}
			if err := c.Check(got); err != nil {
				t.Errorf("Envoy over HTTP/2: %v", err)
			}
		})
	}
}

func realEnvoyDoH2(t *testing.T, client *http.Client, addr, id string, r casetable.Request) casetable.Response {
	t.Helper()
	got, proto, err := realEnvoyDoProto(client, addr, id, r)
	if err != nil {
		t.Fatal(err)
	}
	if proto != 2 {
		t.Fatalf("%s answered over HTTP/%d, want HTTP/2", addr, proto)
	}
	return got
}

// realEnvoyExtraConfig is the configuration of the extra tables: GET and HEAD from one origin
// on bucket "site", with the store's own CORS headers kept or stripped.
const realEnvoyExtraConfig = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://app.example.com"],
 "AllowedMethods": ["GET", "HEAD"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]}, "private": null},
 "unlistedBuckets": "not-found", "upstreamCORSHeaders": %q}`

// realEnvoyExtraTables are requests beyond the case tables that settle what Envoy does around
// local replies; their assertions are realEnvoyExtraChecks, by case name.
func realEnvoyExtraTables() []casetable.Table {
	const app = "https://app.example.com"
	origin := casetable.Header{"Origin", app}
	get := func(name string, headers []casetable.Header, upstream ...casetable.Header) casetable.Case {
		return casetable.Case{Name: name, Request: casetable.Request{Method: "GET", Authority: "s3.local.test", Path: "/site/k", Headers: headers}, Upstream: upstream}
	}
	vary := func(v string) casetable.Header { return casetable.Header{"Vary", v} }
	acao := func(v string) casetable.Header { return casetable.Header{"Access-Control-Allow-Origin", v} }
	var tables []casetable.Table
	for _, mode := range []string{"keep", "strip"} {
		cases := []casetable.Case{
			{Name: "preflight allowed", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{origin, {"Access-Control-Request-Method", "GET"}}}},
			{Name: "preflight denied", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}}}},
			{Name: "preflight without Origin", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{{"Access-Control-Request-Method", "GET"}}}},
			{Name: "unlisted bucket", Request: casetable.Request{Method: "GET", Authority: "s3.local.test", Path: "/nosuch/k",
				Headers: []casetable.Header{origin}}},
			{Name: "preflight on an unlisted bucket", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/nosuch/k",
				Headers: []casetable.Header{origin, {"Access-Control-Request-Method", "GET"}}}},
			{Name: "repeated Origin, the first empty", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{{"Origin", ""}, origin, {"Access-Control-Request-Method", "GET"}}}},
			{Name: "repeated Origin", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{origin, origin, {"Access-Control-Request-Method", "GET"}}}},
			{Name: "HEAD on an unlisted bucket", Request: casetable.Request{Method: "HEAD", Authority: "s3.local.test", Path: "/nosuch/k",
				Headers: []casetable.Header{origin}}},
			{Name: "HEAD actual", Request: casetable.Request{Method: "HEAD", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{origin}}},
			{Name: "HEAD preflight-like", Request: casetable.Request{Method: "HEAD", Authority: "s3.local.test", Path: "/site/k",
				Headers: []casetable.Header{origin, {"Access-Control-Request-Method", "GET"}}}},
			get("decorated GET", []casetable.Header{origin}),
			get("undecorated GET", nil),
			get("upstream duplicate Vary, decorated", []casetable.Header{origin}, vary("Accept-Encoding"), vary("Origin")),
			get("upstream duplicate Vary, undecorated", nil, vary("Accept-Encoding"), vary("Origin")),
			get("upstream duplicate Access-Control, decorated", []casetable.Header{origin}, acao("*"), acao("https://other.example"),
				casetable.Header{"Access-Control-Expose-Headers", "x-a"}, casetable.Header{"Access-Control-Expose-Headers", "x-b"}),
			get("upstream duplicate Access-Control, undecorated", nil, acao("*"), acao("https://other.example")),
			get("upstream 304, decorated", []casetable.Header{origin, {"If-None-Match", `"abc"`}},
				casetable.Header{":status", "304"}, casetable.Header{"ETag", `"abc"`}),
			get("upstream streams its body, decorated", []casetable.Header{origin}, casetable.Header{":stream", "1"}),
			{Name: "every header twice", Request: casetable.Request{Method: "GET", Authority: "s3.local.test", Path: "/nosuch/k",
				Headers: twice(realEnvoyRepeatedRequestHeaders)}, Upstream: twice(realEnvoyRepeatedResponseHeaders)},
			get("upstream 304, undecorated", []casetable.Header{{"If-None-Match", `"abc"`}},
				casetable.Header{":status", "304"}, casetable.Header{"ETag", `"abc"`}),
		}
		if mode == "strip" {
			cases = append(cases,
				casetable.Case{Name: "h2: preflight", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
					Headers: []casetable.Header{origin, {"Access-Control-Request-Method", "GET"}}},
					Want: casetable.Want{Outcome: casetable.OutcomeReply, Status: 200, Headers: map[string]string{
						"access-control-allow-origin": app, "access-control-allow-methods": "GET, HEAD", "access-control-max-age": "60"}}},
				casetable.Case{Name: "h2: preflight without Origin", Request: casetable.Request{Method: "OPTIONS", Authority: "s3.local.test", Path: "/site/k",
					Headers: []casetable.Header{{"Access-Control-Request-Method", "GET"}}},
					Want: casetable.Want{Outcome: casetable.OutcomeReply, Status: 400, Headers: map[string]string{"content-type": "application/xml"},
						Absent: []string{"connection", "access-control-allow-origin"}}},
				casetable.Case{Name: "h2: decorated GET", Request: casetable.Request{Method: "GET", Authority: "s3.local.test", Path: "/site/k",
					Headers: []casetable.Header{origin}}, Upstream: []casetable.Header{acao("*")},
					Want: casetable.Want{Outcome: casetable.OutcomeForward, Headers: map[string]string{
						"access-control-allow-origin": app, "access-control-expose-headers": "ETag"}}},
			)
		}
		tables = append(tables, casetable.Table{File: "extras-" + mode, Name: "extras, upstream headers " + mode,
			Config: []byte(fmt.Sprintf(realEnvoyExtraConfig, mode)), Cases: cases})
	}
	return tables
}

// realEnvoyRepeatedRequestHeaders and realEnvoyRepeatedResponseHeaders are sent twice each
// ("every header twice"), so that the differential holds wasmhost's set of O(1) headers, which
// Envoy folds into one line, to Envoy's in both directions: the O(1) ones first (among them
// the custom ones of the CORS, cache and compressor filters), then names that keep their
// repeats. Hop-by-hop headers, framing and those Envoy sets itself are left out.
var (
	realEnvoyRepeatedRequestHeaders = strings.Fields(`origin access-control-request-method
		access-control-request-headers access-control-request-private-network user-agent referer
		x-forwarded-host accept-encoding authorization cache-control if-none-match if-match
		if-modified-since if-unmodified-since if-range via accept pragma x-client-trace-id
		grpc-timeout x-envoy-original-path x-envoy-decorator-operation proxy-status content-type
		range cookie accept-language x-amz-date x-amz-content-sha256 x-amz-security-token
		x-b3-traceid traceparent x-ot-span-context x-amz-meta-a x-other`)
	realEnvoyRepeatedResponseHeaders = strings.Fields(`access-control-allow-credentials
		access-control-allow-headers access-control-allow-methods access-control-allow-origin
		access-control-expose-headers access-control-max-age access-control-allow-private-network
		vary etag cache-control last-modified content-encoding location via age expires
		grpc-status grpc-message proxy-status x-request-id x-envoy-degraded x-envoy-ratelimited
		x-envoy-upstream-canary x-envoy-immediate-health-check-fail
		x-envoy-upstream-healthchecked-cluster x-envoy-decorator-operation x-envoy-attempt-count
		set-cookie x-amz-request-id x-amz-id-2 accept-ranges content-range www-authenticate
		content-disposition content-language strict-transport-security link pragma retry-after
		timing-allow-origin x-amz-version-id x-amz-meta-a x-other`)
)

// twice is each name with the value "a", then each with "b".
func twice(names []string) []casetable.Header {
	var hs []casetable.Header
	for _, v := range []string{"a", "b"} {
		for _, n := range names {
			hs = append(hs, casetable.Header{n, v})
		}
	}
	return hs
}

// realEnvoyExtraChecks are the facts about real Envoy that realEnvoyExtraTables settle, by case
// name; each runs on Envoy's answer, and the differential holds wasmhost to the same.
// RATIONALE.md ("What real Envoy showed") and docs/deploy.md rely on them.
var realEnvoyExtraChecks = map[string]func(*testing.T, casetable.Response){
	// A local reply: Envoy's server and date, no x-envoy-upstream-service-time; no body, so
	// no content-type and, over HTTP/1, "content-length: 0".
	"preflight allowed": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"content-length": "0", "server": "envoy",
			"access-control-allow-origin": "https://app.example.com"},
			"content-type", "connection", "x-envoy-upstream-service-time")
		wantDate(t, r)
	},
	// S3's XML error with its own content-type; content-length from the body; the
	// connection stays open.
	"preflight denied": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 403, map[string]string{"content-type": "application/xml",
			"content-length": strconv.Itoa(len(r.Body)), "server": "envoy"},
			"connection", "x-envoy-upstream-service-time")
	},
	// A 400 local reply over HTTP/1: Envoy closes the connection and says so.
	"preflight without Origin": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 400, map[string]string{"connection": "close", "content-type": "application/xml",
			"content-length": strconv.Itoa(len(r.Body)), "server": "envoy"}, "x-envoy-upstream-service-time")
	},
	// Proxied: the store's content-length and content-type, Envoy's server (the store sent
	// none) and x-envoy-upstream-service-time.
	"decorated GET": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"content-length": "13", "content-type": "text/plain", "server": "envoy",
			"access-control-allow-origin": "https://app.example.com"})
		if len(r.Values("x-envoy-upstream-service-time")) != 1 {
			t.Errorf("x-envoy-upstream-service-time %q, want one", r.Values("x-envoy-upstream-service-time"))
		}
		wantDate(t, r)
	},
	// HEAD is an actual request, decorated, with the store's content-length and no body.
	"HEAD actual": wantHead,
	// A HEAD with Access-Control-Request-Method is no preflight: forwarded and decorated.
	"HEAD preflight-like": wantHead,
	// Envoy folds repeated Vary lines into one, after a comma (an O(1) header).
	"upstream duplicate Vary, undecorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"vary": "Accept-Encoding,Origin"})
	},
	"upstream duplicate Vary, decorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"vary": "Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method"})
	},
	// Repeated Access-Control-* lines are folded too: kept, they reach the client as one line.
	"upstream duplicate Access-Control, undecorated": func(t *testing.T, r casetable.Response) {
		if vs := r.Values("access-control-allow-origin"); len(vs) > 1 || len(vs) == 1 && vs[0] != "*,https://other.example" {
			t.Errorf("access-control-allow-origin %q, want none (strip) or one folded line (keep)", vs)
		}
	},
	"upstream duplicate Access-Control, decorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"access-control-allow-origin": "https://app.example.com",
			"access-control-expose-headers": "ETag"})
	},
	// The store's 304 is decorated like a 200; Envoy adds no content-length to it.
	"upstream 304, decorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 304, map[string]string{"access-control-allow-origin": "https://app.example.com", "etag": `"abc"`},
			"content-length", "content-type")
	},
	// A store that streams (chunked) reaches an HTTP/1 client chunked, decorated.
	"upstream streams its body, decorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 200, map[string]string{"transfer-encoding": "chunked", "access-control-allow-origin": "https://app.example.com"},
			"content-length")
		if string(r.Body) != casetable.UpstreamBody {
			t.Errorf("body %q, want %q", r.Body, casetable.UpstreamBody)
		}
	},
	// Envoy folds a repeated O(1) header; Set-Cookie and the like keep their repeats.
	"every header twice": func(t *testing.T, r casetable.Response) {
		for name, want := range map[string][]string{"vary": {"a,b"}, "etag": {"a,b"}, "set-cookie": {"a", "b"}, "x-amz-meta-a": {"a", "b"}} {
			if got := r.Values(name); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	},
	"upstream 304, undecorated": func(t *testing.T, r casetable.Response) {
		wantHeaders(t, r, 304, map[string]string{"etag": `"abc"`}, "access-control-allow-origin", "content-length")
	},
}

func wantHead(t *testing.T, r casetable.Response) {
	wantHeaders(t, r, 200, map[string]string{"content-length": "13", "access-control-allow-origin": "https://app.example.com"})
	if len(r.Body) != 0 || !r.ReachedUpstream {
		t.Errorf("HEAD: body %q, reached the store %v; want no body, forwarded", r.Body, r.ReachedUpstream)
	}
}

// wantHeaders checks the status, that each header in want is there exactly once with its
// value, and that each of absent is not there.
func wantHeaders(t *testing.T, r casetable.Response, status int, want map[string]string, absent ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d", r.Status, status)
	}
	for name, v := range want {
		if vs := r.Values(name); len(vs) != 1 || vs[0] != v {
			t.Errorf("%s: %q, want one line %q", name, vs, v)
		}
	}
	for _, name := range absent {
		if vs := r.Values(name); len(vs) > 0 {
			t.Errorf("%s: %q, want none", name, vs)
		}
	}
}

func wantDate(t *testing.T, r casetable.Response) {
	t.Helper()
	if vs := r.Values("date"); len(vs) != 1 {
		t.Errorf("date %q, want one", vs)
	} else if _, err := http.ParseTime(vs[0]); err != nil {
		t.Errorf("date %q: %v", vs[0], err)
	}
}
