package evaluator_test

import (
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

func mustLoad(t testing.TB, cfg string) *evaluator.Policy {
	t.Helper()
	pol, err := evaluator.Load([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func preflight(path, origin, acrm, acrh string) *evaluator.Request {
	r := &evaluator.Request{Method: "OPTIONS", Authority: "s3.local", Path: path, Origin: origin, HasOrigin: true}
	if acrm != "" {
		r.RequestMethod, r.HasRequestMethod = acrm, true
	}
	if acrh != "" {
		r.RequestHeaders, r.HasRequestHeaders = acrh, true
	}
	return r
}

func header(d *evaluator.Decision, name string) (string, bool) {
	for _, h := range d.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// checkReply asserts what must hold of every reply: header values a proxy can send, and an
// error body that is well-formed XML whose ids equal the headers.
func checkReply(t testing.TB, d *evaluator.Decision, origin string) {
	t.Helper()
	for _, h := range d.Headers {
		if strings.ContainsAny(h.Value, "\r\n\x00") {
			t.Fatalf("header %s carries CR, LF or NUL: %q", h.Name, h.Value)
		}
	}
	if v, ok := header(d, evaluator.HeaderAllowOrigin); ok && v != "*" && v != origin {
		t.Fatalf("Allow-Origin %q is neither * nor the request origin %q", v, origin)
	}
	if d.Outcome != evaluator.Reply || d.Body == nil {
		return
	}
	var e struct {
		Code, Message, Method, RequestId, HostId string
	}
	if err := xml.Unmarshal(d.Body, &e); err != nil {
		t.Fatalf("error body is not well-formed XML: %v\n%s", err, d.Body)
	}
	if id, _ := header(d, evaluator.HeaderRequestID); id != e.RequestId || !casetable.IsRequestID(id) {
		t.Fatalf("x-amz-request-id %q, body RequestId %q", id, e.RequestId)
	}
	if id, _ := header(d, evaluator.HeaderID2); id != e.HostId || !casetable.IsHostID(id) {
		t.Fatalf("x-amz-id-2 %q, body HostId %q", id, e.HostId)
	}
}

func TestHostileRequestValues(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {
	  "exact": [{"AllowedOrigins": ["https://a.example\r\nSet-Cookie: x=1", "https://a.example"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"]}],
	  "any": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"]}],
	  "nocors": null}}`)
	var d evaluator.Decision
	for _, c := range []struct {
		name   string
		req    *evaluator.Request
		reason evaluator.Reason
	}{
		{"CR LF origin never matches an exact rule", preflight("/exact/k", "https://a.example\r\nSet-Cookie: x=1", "GET", ""), evaluator.ReasonNotAllowed},
		{"NUL origin never matches an exact rule", preflight("/exact/k", "https://a.example\x00", "GET", ""), evaluator.ReasonNotAllowed},
		{"CR LF origin matches * and is answered *", preflight("/any/k", "https://a.example\r\nX: y", "GET", ""), evaluator.ReasonAllowed},
		{"CR LF in requested headers matches nothing, even *", preflight("/any/k", "https://a.example", "GET", "x-a\r\nSet-Cookie: y"), evaluator.ReasonNotAllowed},
		{"markup in the method is escaped", preflight("/nocors/k", "https://a.example", "</Method><Code>x</Code>", ""), evaluator.ReasonNotEnabled},
		{"invalid UTF-8 and control bytes in the method", preflight("/exact/k", "https://a.example", "G\xffE\x01T\x7f&'\"", ""), evaluator.ReasonNotAllowed},
		{"a 1 KB hostile Access-Control-Request-Headers", preflight("/any/k", "https://a.example", "GET", strings.Repeat(", \t,", 256)), evaluator.ReasonAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pol.Evaluate(c.req, &d)
			if d.Reason != c.reason {
				t.Fatalf("reason %v, want %v", d.Reason, c.reason)
			}
			checkReply(t, &d, c.req.Origin)
		})
	}
	pol.Evaluate(preflight("/any/k", "https://a.example\r\nX: y", "GET", ""), &d)
	if v, _ := header(&d, evaluator.HeaderAllowOrigin); v != "*" {
		t.Errorf("Allow-Origin %q for a CR LF origin, want *", v)
	}
}

func TestRequestIDs(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {"b": null}}`)
	seen := map[string]bool{}
	var d evaluator.Decision
	for i := 0; i < 1000; i++ {
		pol.Evaluate(preflight("/b/k", "o", "GET", ""), &d)
		checkReply(t, &d, "o")
		id, _ := header(&d, evaluator.HeaderRequestID)
		id = strings.Clone(id) // it points into d, which the next Evaluate overwrites
		if seen[id] {
			t.Fatalf("request id %q repeated after %d replies", id, i)
		}
		seen[id] = true
		if h, _ := header(&d, evaluator.HeaderID2); len(h) != 76 {
			t.Fatalf("x-amz-id-2 %q is %d characters, want 76", h, len(h))
		}
	}
	if !regexp.MustCompile(`^[0-9A-F]{16}$`).MatchString(func() string { id, _ := header(&d, evaluator.HeaderRequestID); return id }()) {
		t.Error("request id is not 16 upper-case hex digits")
	}
}

func TestAddressing(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {"b": null, "my.bucket": null},
	  "addressing": {"virtualHostSuffixes": ["s3.example.com", "s3.eu.example.com"], "pathStyle": true}}`)
	for _, c := range []struct {
		authority, path string
		bucket, key     string // bucket "-": not a bucket request; "~": ambiguous (attribution.go)
	}{
		{"s3.example.com", "/b/k", "b", "k"},
		{"s3.example.com", "/b", "b", ""},
		{"s3.example.com", "/b/", "b", ""},
		{"s3.example.com", "/b//k/", "b", "/k/"},
		{"s3.example.com", "/b/a%2Fb%20c+d", "b", "a/b c+d"},
		{"s3.example.com", "/%62/k", "b", "k"},
		{"s3.example.com", "/b/k?list-type=2&prefix=a/b", "b", "k"},
		{"s3.example.com", "/b?cors", "b", ""},
		{"s3.example.com", "/b%2Fk", "~", ""},
		{"s3.example.com", "/b/%zz", "~", ""},
		{"s3.example.com", "/b/%4", "~", ""},
		{"s3.example.com", "/%00/k", "~", ""},
		{"s3.example.com", "/", "-", ""},
		{"s3.example.com", "", "-", ""},
		{"s3.example.com", "*", "-", ""},
		{"s3.example.com", "http://b.s3.example.com/k", "~", ""},
		{"s3.example.com", "//k", "~", ""},
		{"s3.example.com", "/?x", "-", ""},
		{"b.s3.example.com", "/k", "b", "k"},
		{"b.s3.example.com", "/", "b", ""},
		{"b.s3.example.com", "/%6B", "b", "k"},
		{"b.s3.example.com", "/b/k", "b", "b/k"},
		{"B.S3.EXAMPLE.COM:80", "/k", "b", "k"},
		{"b.s3.example.com.", "/k", "b", "k"},
		{"b.s3.example.com.:8080", "/k", "b", "k"},
		{"my.bucket.s3.eu.example.com", "/k", "my.bucket", "k"},
		{"x.y.s3.example.com", "/", "x.y", ""},
		{".s3.example.com", "/b/k", "~", ""},
		{"s3.example.com.", "/b/k", "b", "k"},
		{"bs3.example.com", "/b/k", "b", "k"},
		{"[::1]:9000", "/b/k", "b", "k"},
		{"[::1]", "/b/k", "b", "k"},
		{"user@b.s3.example.com", "/b/k", "~", ""},
		{"", "/b/k", "b", "k"},
	} {
		var d evaluator.Decision
		pol.Evaluate(&evaluator.Request{Method: "GET", Authority: c.authority, Path: c.path}, &d)
		if c.bucket == "~" {
			if d.Outcome != evaluator.Forward || d.Reason != evaluator.ReasonActualAmbiguous || !d.StripUpstream || d.Bucket != "" {
				t.Errorf("%s %q: %v %v bucket %q, want ambiguous", c.authority, c.path, d.Outcome, d.Reason, d.Bucket)
			}
			continue
		}
		if c.bucket == "-" {
			if d.Outcome != evaluator.PassThrough || d.Reason != evaluator.ReasonNotBucket || d.Bucket != "" {
				t.Errorf("%s %q: %v %v bucket %q, want a pass-through", c.authority, c.path, d.Outcome, d.Reason, d.Bucket)
			}
			continue
		}
		if d.Reason == evaluator.ReasonNotBucket || d.Bucket != c.bucket || d.Key != c.key {
			t.Errorf("%s %q: %v bucket %q key %q, want %q %q", c.authority, c.path, d.Reason, d.Bucket, d.Key, c.bucket, c.key)
		}
	}
}

// reference is the S3 rule scan written as plainly as possible (§2.3-2.5), to check the
// indexed Policy against.
func reference(rules []evaluator.Rule, origin, method string, names []string) int {
	for i, r := range rules {
		okOrigin := false
		for _, o := range r.AllowedOrigins {
			if wildMatch(o, origin, false) {
				okOrigin = true
			}
		}
		okMethod := false
		for _, m := range r.AllowedMethods {
			okMethod = okMethod || m == method
		}
		okHeaders := true
		for _, n := range names {
			found := false
			for _, h := range r.AllowedHeaders {
				found = found || wildMatch(h, n, true)
			}
			okHeaders = okHeaders && found
		}
		if okOrigin && okMethod && okHeaders {
			return i
		}
	}
	return -1
}

func wildMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	pre, suf, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	return len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf)
}

// TestIndexAgreesWithPlainScan compares the compiled index (exact-origin map, wildcard and
// method sets) with the plain scan on random buckets of up to 100 rules.
func TestIndexAgreesWithPlainScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Suffixes of 64 bytes and more take another path in the wildcard index.
	long := "." + strings.Repeat("l", 70) + ".example"
	origins := []string{"https://a.example", "https://b.example", "http://a.example", "https://x.a.example", "https://y.x.a.example",
		"https://.example", "http://b.example:8080", "null", "a", "", ".example", "x..example", "https://x" + long, "https://y.x" + long}
	patterns := []string{"*", "https://*.example", "https://*", "*.example", "http*", "https://a.example", "https://b.example", "null", "",
		"https://*.a.example", "*.x.a.example", "http://*.example", "*..example", "https://*a.example", "https://*.example:8080", "*.",
		"https://*" + long, "https://*.x" + long, "*" + long[1:]}
	methods := []string{"GET", "PUT", "HEAD", "POST", "DELETE"}
	headers := []string{"*", "x-amz-*", "content-type", "Authorization", "*-id", "x-a"}
	reqHeaders := []string{"x-amz-date", "Content-Type", "authorization", "x-request-id", "x-a", "x-b"}
	pick := func(from []string, max int) []string {
		n := rng.IntN(max + 1)
		out := make([]string, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, from[rng.IntN(len(from))])
		}
		return out
	}
	for round := 0; round < 200; round++ {
		n := 1 + rng.IntN(100)
		rules := make([]evaluator.Rule, n)
		for i := range rules {
			rules[i] = evaluator.Rule{
				AllowedOrigins: append(pick(patterns, 3), fmt.Sprintf("https://o%d.example", rng.IntN(20))),
				AllowedMethods: append(pick(methods, 2), methods[rng.IntN(5)]),
				AllowedHeaders: pick(headers, 2),
			}
		}
		pol, err := evaluator.Compile(&evaluator.Config{
			Buckets:    map[string]*evaluator.BucketCORS{"b": {Form: evaluator.FormAWSJSON, Rules: rules}},
			Addressing: evaluator.Addressing{PathStyle: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		var d evaluator.Decision
		for q := 0; q < 50; q++ {
			origin := origins[rng.IntN(len(origins))]
			if rng.IntN(3) == 0 {
				origin = fmt.Sprintf("https://o%d.example", rng.IntN(20))
			}
			if origin == "" {
				origin = "o"
			}
			method := methods[rng.IntN(5)]
			names := pick(reqHeaders, 3)
			pol.Evaluate(preflight("/b/k", origin, method, strings.Join(names, ",")), &d)
			if want := reference(rules, origin, method, names); d.Rule != want {
				t.Fatalf("round %d: origin %q method %s headers %q: rule %d, plain scan says %d\nrules: %+v", round, origin, method, names, d.Rule, want, rules)
			}
			checkReply(t, &d, origin)
		}
	}
}

func TestExplain(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {"site": {"CORSRules": [
	  {"ID": "gets", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET"]},
	  {"ID": "puts", "AllowedOrigins": ["https://*.example"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["content-type"]},
	  {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]}},
	  "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`)
	e := pol.Explain(preflight("/site/k", "https://app.example", "PUT", "Content-Type, X-Amz-Date"))
	if e.Source != "bucket" || e.Decision.Outcome != evaluator.Reply || e.Decision.Rule != 2 || e.Decision.Bucket != "site" || e.Decision.Key != "k" {
		t.Fatalf("explanation %+v", e)
	}
	want := []evaluator.RuleTrace{
		{Index: 0, ID: "gets", OriginMatched: true, FailedHeader: "content-type"},
		{Index: 1, ID: "puts", OriginMatched: true, MethodMatched: true, FailedHeader: "x-amz-date"},
		{Index: 2, OriginMatched: true, MethodMatched: true, HeadersMatched: true, Matched: true},
	}
	if fmt.Sprint(e.Rules) != fmt.Sprint(want) {
		t.Errorf("traces\n%+v\nwant\n%+v", e.Rules, want)
	}
	// The explanation owns its memory: another evaluation does not change it.
	ao, _ := header(&e.Decision, evaluator.HeaderAllowHeaders)
	var d evaluator.Decision
	pol.Evaluate(preflight("/site/k", "https://app.example", "PUT", "a, b, c, d, e, f"), &d)
	if ao2, _ := header(&e.Decision, evaluator.HeaderAllowHeaders); ao2 != ao || ao != "content-type, x-amz-date" {
		t.Errorf("Allow-Headers %q then %q", ao, ao2)
	}
	// Its accessors agree with its headers.
	rid, _ := header(&e.Decision, evaluator.HeaderRequestID)
	hid, _ := header(&e.Decision, evaluator.HeaderID2)
	if e.Decision.RequestID() != rid || e.Decision.HostID() != hid || e.Decision.AllowHeaders() != ao || rid == "" || hid == "" {
		t.Errorf("accessors %q %q %q, headers %q %q %q", e.Decision.RequestID(), e.Decision.HostID(), e.Decision.AllowHeaders(), rid, hid, ao)
	}
	if e := pol.Explain(preflight("/site/k", "https://app.example", "DELETE", "")); e.Decision.RequestID() == "" || e.Decision.HostID() == "" {
		t.Errorf("an explained error reply has no ids: %q %q", e.Decision.RequestID(), e.Decision.HostID())
	}
	if e := pol.Explain(preflight("/other/k", "https://x", "GET", "")); e.Source != "default" || e.Decision.Rule != 0 || len(e.Rules) != 1 {
		t.Errorf("default explanation %+v", e)
	}
	if e := pol.Explain(preflight("/", "https://x", "GET", "")); e.Source != "" || e.Decision.Reason != evaluator.ReasonNotBucket || e.Rules != nil {
		t.Errorf("not-bucket explanation %+v", e)
	}
}

func TestMergeVary(t *testing.T) {
	const s3 = evaluator.VaryValue
	for _, c := range []struct {
		upstream []string
		want     string
	}{
		{nil, s3},
		{[]string{""}, s3},
		{[]string{" , "}, s3},
		{[]string{"Accept-Encoding"}, "Accept-Encoding, " + s3},
		{[]string{"accept-encoding, ORIGIN"}, "accept-encoding, ORIGIN, Access-Control-Request-Headers, Access-Control-Request-Method"},
		{[]string{"Accept-Encoding", "Accept-Encoding,Origin"}, "Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method"},
		{[]string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
		{[]string{"Accept", "*"}, "*"},
	} {
		if got := evaluator.MergeVary(c.upstream); got != c.want {
			t.Errorf("MergeVary(%q) = %q, want %q", c.upstream, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { evaluator.MergeVary(nil) }); n != 0 {
		t.Errorf("MergeVary(nil) allocates %v times", n)
	}
}

func TestIsCORSHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Access-Control-Allow-Origin": true, "access-control-expose-headers": true, "ACCESS-CONTROL-MAX-AGE": true,
		"Access-Control-": true, "Access-Control": false, "Vary": false, "X-Access-Control-Allow-Origin": false, "": false,
	} {
		if got := evaluator.IsCORSHeader(name); got != want {
			t.Errorf("IsCORSHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestConcurrentEvaluate shares one Policy between goroutines, each with its own Decision
// (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	pol := mustLoad(t, allocConfig)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d evaluator.Decision
			for i := 0; i < 500; i++ {
				pol.Evaluate(preflight("/site/k", "https://app.example.com", "PUT", "content-type"), &d)
				if d.Reason != evaluator.ReasonAllowed {
					t.Errorf("reason %v", d.Reason)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestHeadIsDecorated covers the HEAD request the shared tables cannot carry (a HEAD
// response has no body to compare).
func TestHeadIsDecorated(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {"site": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "HEAD"], "ExposeHeaders": ["ETag"]}]}}`)
	var d evaluator.Decision
	pol.Evaluate(&evaluator.Request{Method: "HEAD", Authority: "s3.local", Path: "/site/k", Origin: "https://app.example", HasOrigin: true}, &d)
	want := []evaluator.Header{
		{Name: evaluator.HeaderAllowOrigin, Value: "https://app.example"},
		{Name: evaluator.HeaderAllowMethods, Value: "GET, HEAD"},
		{Name: evaluator.HeaderExposeHeaders, Value: "ETag"},
		{Name: evaluator.HeaderAllowCredentials, Value: "true"},
		{Name: evaluator.HeaderVary, Value: evaluator.VaryValue},
	}
	if d.Outcome != evaluator.Decorate || fmt.Sprint(d.Headers) != fmt.Sprint(want) || !d.StripUpstream {
		t.Errorf("HEAD: %v %v strip=%v", d.Outcome, d.Headers, d.StripUpstream)
	}
}

// TestMergeVaryManyNames: past the names compared one by one MergeVary keeps a set of folded
// names; the answer is the same as comparing each name with all before it (mergeVaryScan),
// case folding beyond ASCII included.
func TestMergeVaryManyNames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"origin", "ORIGIN", "Accept", "k", "K", "\u212a", "s", "\u017f", "x-a", "X-A", "*", "", " ", "é", "É"}
	for round := range 300 {
		var vs []string
		for range 1 + rng.IntN(4) {
			var parts []string
			for range rng.IntN(40) {
				// Half the names are fresh, so that many rounds pass the names
				// compared one by one; "*" (which ends the merge) is rare.
				p := "N" + strconv.Itoa(rng.IntN(40))
				switch q := pieces[rng.IntN(len(pieces))]; {
				case q == "*" && rng.IntN(10) != 0:
				case rng.IntN(2) == 0:
					p = q
				}
				parts = append(parts, p)
			}
			vs = append(vs, strings.Join(parts, ","))
		}
		if got, want := evaluator.MergeVary(vs), mergeVaryScan(vs); got != want {
			t.Fatalf("round %d: MergeVary(%q)\n = %q\nwant %q", round, vs, got, want)
		}
	}
	many := make([]string, 5000)
	for i := range many {
		many[i] = "x-h" + strconv.Itoa(i%2500)
	}
	got := evaluator.MergeVary([]string{strings.Join(many, ", ")})
	if n := strings.Count(got, ", ") + 1; n != 2500+3 {
		t.Errorf("%d names, want 2503", n)
	}
}

// mergeVaryScan is MergeVary as it was first written, comparing each name with every name
// before it: the reference for TestMergeVaryManyNames.
func mergeVaryScan(upstream []string) string {
	var names []string
	has := func(n string) bool {
		for _, x := range names {
			if strings.EqualFold(x, n) {
				return true
			}
		}
		return false
	}
	for _, v := range upstream {
		for _, n := range strings.Split(v, ",") {
			n = strings.Trim(n, " \t")
			if n == "" {
				continue
			}
			if n == "*" {
				return "*"
			}
			if !has(n) {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return evaluator.VaryValue
	}
	for _, n := range []string{"Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method"} {
		if !has(n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
