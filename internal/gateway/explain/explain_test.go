package explain

import (
	"errors"
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
