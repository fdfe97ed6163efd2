package evaluator_test

import (
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

const allocConfig = `{
  "buckets": {
    "site": {"CORSRules": [
      {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000},
      {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}
    ]}
  },
  "default": {"CORSRules": [{"AllowedOrigins": ["https://*.corp.example"], "AllowedMethods": ["GET"]}]},
  "addressing": {"virtualHostSuffixes": ["s3.example.test"], "pathStyle": true}
}`

// TestEvaluateDoesNotAllocate pins the hot paths at zero allocations per request once the
// Decision has warmed up.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	pol, err := evaluator.Load([]byte(allocConfig))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  evaluator.Request
		want evaluator.Reason
	}{
		{"allowed preflight", evaluator.Request{Method: "OPTIONS", Authority: "s3.example.test", Path: "/site/a/b.txt",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true}, evaluator.ReasonAllowed},
		{"allowed preflight with requested headers", evaluator.Request{Method: "OPTIONS", Authority: "s3.example.test", Path: "/site/a/b.txt",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true,
			RequestHeaders: "Content-Type, X-Amz-Date,x-amz-acl", HasRequestHeaders: true}, evaluator.ReasonAllowed},
		{"allowed preflight, virtual-hosted, upper-case host, encoded key", evaluator.Request{Method: "OPTIONS", Authority: "SITE.s3.example.test:443", Path: "/a%20b.txt?x=1",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true}, evaluator.ReasonAllowed},
		{"allowed preflight, default rules of an unlisted bucket", evaluator.Request{Method: "OPTIONS", Authority: "Other.s3.example.test", Path: "/k",
			Origin: "https://a.corp.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true}, evaluator.ReasonAllowed},
		{"actual request", evaluator.Request{Method: "GET", Authority: "s3.example.test", Path: "/site/a/b.txt",
			Origin: "https://app.example.com", HasOrigin: true}, evaluator.ReasonAllowed},
		{"actual request, wildcard rule", evaluator.Request{Method: "GET", Authority: "s3.example.test", Path: "/site/a/b.txt",
			Origin: "https://elsewhere.test", HasOrigin: true}, evaluator.ReasonAllowed},
		{"actual request without Origin", evaluator.Request{Method: "GET", Authority: "s3.example.test", Path: "/site/a/b.txt"}, evaluator.ReasonActualNoOrigin},
		{"denied preflight", evaluator.Request{Method: "OPTIONS", Authority: "s3.example.test", Path: "/site/a/b.txt",
			Origin: "https://evil.test", HasOrigin: true, RequestMethod: "DELETE", HasRequestMethod: true}, evaluator.ReasonNotAllowed},
		{"preflight without Origin", evaluator.Request{Method: "OPTIONS", Authority: "s3.example.test", Path: "/site/a/b.txt"}, evaluator.ReasonNoOrigin},
		{"not a bucket", evaluator.Request{Method: "GET", Authority: "s3.example.test", Path: "/"}, evaluator.ReasonNotBucket},
		{"allowed preflight with Forwarded", evaluator.Request{Method: "OPTIONS", Authority: "site.s3.example.test", Path: "/a/b.txt",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true,
			Forwarded: `for=192.0.2.1;host="SITE.s3.example.test:443";proto=https, for="[2001:db8::1]";host=site.s3.example.test`, HasForwarded: true}, evaluator.ReasonAllowed},
		{"preflight with an ambiguous Forwarded", evaluator.Request{Method: "OPTIONS", Authority: "site.s3.example.test", Path: "/a/b.txt",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true,
			Forwarded: `for="x;host=other.s3.example.test"`, HasForwarded: true}, evaluator.ReasonAmbiguous},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d evaluator.Decision
			pol.Evaluate(&c.req, &d)
			if d.Reason != c.want {
				t.Fatalf("reason %v, want %v", d.Reason, c.want)
			}
			if n := testing.AllocsPerRun(200, func() { pol.Evaluate(&c.req, &d) }); n != 0 {
				t.Errorf("%v allocations per Evaluate, want 0", n)
			}
			// The response plan is a view of the Decision: building it, iterating it and
			// sorting an upstream's headers with it allocate nothing.
			upstream := []string{"Content-Type", "Access-Control-Allow-Origin", "Vary", "ETag"}
			edits := 0
			if n := testing.AllocsPerRun(200, func() {
				pl := d.Response()
				for _, h := range pl.Set {
					edits += len(h.Name) + len(h.Value)
				}
				for _, name := range upstream {
					edits += int(pl.Edit(name))
				}
			}); n != 0 || edits < 0 {
				t.Errorf("%v allocations per response plan, want 0", n)
			}
		})
	}
}
