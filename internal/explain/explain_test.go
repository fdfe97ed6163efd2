package explain

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

const testConfig = `{
  "buckets": {
    "site": {"CORSRules": [
      {"ID": "uploads", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["x-amz-meta-*"]},
      {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}
    ]},
    "bare": null
  },
  "addressing": {"virtualHostSuffixes": ["s3.example"], "pathStyle": true}
}`

func load(t *testing.T, doc string) *evaluator.Policy {
	t.Helper()
	pol, err := evaluator.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func str(s string) *string { return &s }

func TestAddress(t *testing.T) {
	pol := load(t, testConfig)
	for _, tc := range []struct{ bucket, key, auth, path string }{
		{"site", "a b/c.txt", "s3.example", "/site/a%20b/c.txt"},
		{"site", "", "s3.example", "/site"},
	} {
		auth, path := Address(pol.Config(), tc.bucket, tc.key)
		if auth != tc.auth || path != tc.path {
			t.Errorf("Address(%q, %q) = %q %q, want %q %q", tc.bucket, tc.key, auth, path, tc.auth, tc.path)
		}
	}
	vh := load(t, `{"buckets": {}, "addressing": {"virtualHostSuffixes": ["s3.example"], "pathStyle": false}}`)
	if auth, path := Address(vh.Config(), "site", "k"); auth != "site.s3.example" || path != "/k" {
		t.Errorf("virtual-hosted Address = %q %q", auth, path)
	}
}

func TestRequestErrors(t *testing.T) {
	cfg := load(t, testConfig).Config()
	for _, q := range []Query{
		{URL: "http://x/y"},
		{Method: "GE T", URL: "http://x/y"},
		{Method: "GET"},
		{Method: "GET", URL: "/no/host"},
		{Method: "GET", URL: "http://x/y", Bucket: "site"},
	} {
		if _, err := Request(cfg, q); !errors.Is(err, ErrQuery) {
			t.Errorf("Request(%+v) = %v, want an ErrQuery", q, err)
		}
	}
}

func TestRun(t *testing.T) {
	pol := load(t, testConfig)
	cfg := pol.Config()
	for _, tc := range []struct {
		name    string
		q       Query
		allowed bool
		outcome string
		rule    int
		summary string
	}{
		{"preflight allowed", Query{Method: "OPTIONS", Bucket: "site", Key: "k", Origin: str("https://app.example"), RequestMethod: str("PUT"), RequestHeaders: str("x-amz-meta-a")},
			true, "reply", 0, `preflight allowed by rule #0 "uploads"`},
		{"header fails", Query{Method: "OPTIONS", Bucket: "site", Key: "k", Origin: str("https://app.example"), RequestMethod: str("PUT"), RequestHeaders: str("x-other")},
			false, "reply", -1, `rule #0 "uploads": header "x-other" is not in AllowedHeaders; rule #1: method "PUT" is not in AllowedMethods`},
		{"falls through to *", Query{Method: "GET", URL: "http://site.s3.example/k", Origin: str("https://app.example")},
			true, "decorate", 1, "allowed by rule #1"},
		{"no cors", Query{Method: "OPTIONS", Bucket: "bare", Origin: str("https://app.example"), RequestMethod: str("GET")},
			false, "reply", -1, `bucket "bare" has no CORS configuration`},
		{"not a bucket", Query{Method: "GET", URL: "http://other.host/"},
			false, "pass", -1, "not an S3 bucket request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Request(cfg, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			rep := Run(pol, r)
			if rep.Allowed != tc.allowed || rep.Outcome != tc.outcome || rep.Rule != tc.rule || !strings.Contains(rep.Summary, tc.summary) {
				t.Errorf("got allowed=%v outcome=%s rule=%d summary %q; want %v %s %d containing %q", rep.Allowed, rep.Outcome, rep.Rule, rep.Summary, tc.allowed, tc.outcome, tc.rule, tc.summary)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), rep.Summary) {
				t.Errorf("WriteText: %v\n%s", err, b.String())
			}
		})
	}
}

// TestRequestRefusesImpossibleQueries: a query no client could send, or one that would be
// read back as another request, is a *QueryError naming the field and the value, so the CLI
// and the gateway's endpoint refuse the same queries.
func TestRequestRefusesImpossibleQueries(t *testing.T) {
	cfg := load(t, testConfig).Config()
	for _, tc := range []struct {
		q            Query
		field, value string
		reason       string
	}{
		{Query{URL: "http://x/y"}, "method", "", "a method is required"},
		{Query{Method: "GE T", URL: "http://x/y"}, "method", "GE T", "not an HTTP method token"},
		{Query{Method: "GET", Bucket: "web/site"}, "bucket", "web/site", `cannot contain "/"`},
		{Query{Method: "GET", Bucket: "site?x"}, "bucket", "site?x", `cannot contain`},
		{Query{Method: "GET", Bucket: "site#x"}, "bucket", "site#x", `cannot contain`},
		{Query{Method: "GET", Bucket: "si\tte"}, "bucket", "si\tte", "control characters"},
		{Query{Method: "GET", Bucket: "site\x7f"}, "bucket", "site\x7f", "control characters"},
		{Query{Method: "GET", URL: "ftp://site.s3.example/k"}, "url", "ftp://site.s3.example/k", "want an http:// or https:// URL"},
		{Query{Method: "GET", URL: "/no/host"}, "url", "/no/host", "want an http:// or https:// URL"},
		{Query{Method: "GET", URL: "http:///k"}, "url", "http:///k", "no host"},
		{Query{Method: "GET", URL: "http://a/\n"}, "url", "http://a/\n", "invalid control character"},
		{Query{Method: "GET", Bucket: "site", Origin: str("https://a\r\nX-Evil: 1")}, "origin", "https://a\r\nX-Evil: 1", "control characters"},
		{Query{Method: "OPTIONS", Bucket: "site", Origin: str("https://a"), RequestMethod: str("PUT\x00")}, "request-method", "PUT\x00", "control characters"},
		{Query{Method: "OPTIONS", Bucket: "site", Origin: str("https://a"), RequestMethod: str("PUT"), RequestHeaders: str("a\x1fb")}, "request-headers", "a\x1fb", "control characters"},
		{Query{Method: "GET", URL: "http://x/y", Bucket: "site"}, "", "", "not both"},
		{Query{Method: "GET"}, "", "", "a URL or a bucket is required"},
	} {
		_, err := Request(cfg, tc.q)
		var qerr *QueryError
		if !errors.As(err, &qerr) || !errors.Is(err, ErrQuery) {
			t.Errorf("Request(%+v) = %v, want a *QueryError matching ErrQuery", tc.q, err)
			continue
		}
		if qerr.Field != tc.field || qerr.Value != tc.value || !strings.Contains(qerr.Err.Error(), tc.reason) {
			t.Errorf("Request(%+v): field %q value %q reason %q; want %q %q and %q", tc.q, qerr.Field, qerr.Value, qerr.Err, tc.field, tc.value, tc.reason)
		}
		if !strings.HasPrefix(err.Error(), "explain: invalid query: ") || (tc.field != "" && !strings.Contains(err.Error(), tc.field+" "+strconv.Quote(tc.value)+": ")) {
			t.Errorf("Request(%+v): message %q does not name the field and the value", tc.q, err)
		}
	}
	// A tab is a legal character of a header value.
	if _, err := Request(cfg, Query{Method: "GET", Bucket: "site", Origin: str("https://a\tb")}); err != nil {
		t.Errorf("origin with a tab: %v", err)
	}
}

// TestLowerCaseOptionsNote: "options" is explained as the actual request it is, and the
// report itself says that a preflight is OPTIONS, in its JSON and its text.
func TestLowerCaseOptionsNote(t *testing.T) {
	pol := load(t, testConfig)
	const note = `method "options" is not a preflight: methods are case-sensitive, and a preflight is OPTIONS (upper case)`
	for _, tc := range []struct {
		method string
		notes  []string
	}{
		{"options", []string{note}},
		{"OPTIONS", []string{}},
		{"GET", []string{}},
	} {
		r, err := Request(pol.Config(), Query{Method: tc.method, Bucket: "site", Origin: str("https://app.example"), RequestMethod: str("GET")})
		if err != nil {
			t.Fatal(err)
		}
		rep := Run(pol, r)
		if !slices.Equal(rep.Notes, tc.notes) || rep.Notes == nil {
			t.Errorf("%s: notes %#v, want %#v", tc.method, rep.Notes, tc.notes)
		}
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(tc.notes)
		if !strings.Contains(string(js), `"notes":`+string(want)) {
			t.Errorf("%s: JSON %s lacks notes %s", tc.method, js, want)
		}
		var b strings.Builder
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "\nnote: "+note+"\n"); got != (len(tc.notes) > 0) {
			t.Errorf("%s: text has the note: %v\n%s", tc.method, got, b.String())
		}
	}
}
