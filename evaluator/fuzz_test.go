package evaluator_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// The fuzz targets are seeded from the shared case tables and the invalid-config fixtures
// (plus the corpus under testdata/fuzz), and each asserts invariants, not only "no panic".

func tableSeeds(f *testing.F) []casetable.Table {
	f.Helper()
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		f.Fatal(err)
	}
	return tables
}

// checkRoundTrip asserts that an accepted bucket renders and re-parses to the same rules in
// every form, and that XML -> JSON -> XML is byte-identical.
func checkRoundTrip(t *testing.T, where string, b *evaluator.BucketCORS) {
	if b.Form == evaluator.FormNone {
		return
	}
	x := b.XML()
	fromXML, err := evaluator.ParseBucketCORS(x)
	if err != nil {
		t.Fatalf("%s: rendered XML does not parse: %v\n%s", where, err, x)
	}
	if !reflect.DeepEqual(fromXML.Rules, b.Rules) {
		t.Fatalf("%s: XML round trip changed the rules:\n%+v\n%+v", where, b.Rules, fromXML.Rules)
	}
	fromJSON, err := evaluator.ParseBucketCORS(b.JSON())
	if err != nil {
		t.Fatalf("%s: rendered JSON does not parse: %v\n%s", where, err, b.JSON())
	}
	if !reflect.DeepEqual(fromJSON.Rules, b.Rules) || string(fromJSON.XML()) != string(x) {
		t.Fatalf("%s: JSON round trip changed the rules", where)
	}
	fromConsole, err := evaluator.ParseBucketCORS(b.ConsoleJSON())
	if err != nil || !reflect.DeepEqual(fromConsole.Rules, b.Rules) {
		t.Fatalf("%s: console JSON round trip: %v", where, err)
	}
}

func checkRejection(t *testing.T, err error) {
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("rejection %T %v is not a *ValidationError with problems", err, err)
	}
	for _, p := range ve.Problems {
		if p.Code == "" || p.Message == "" {
			t.Fatalf("problem without code or message: %+v", p)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		f.Add([]byte(tb.Config))
	}
	fixtures, _ := filepath.Glob(filepath.Join("..", "testdata", "invalid", "*.json"))
	for _, fx := range fixtures {
		if data, err := os.ReadFile(fx); err == nil && len(data) < 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := evaluator.ParseConfig(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		for name, b := range cfg.Buckets {
			checkRoundTrip(t, "bucket "+name, b)
		}
		if cfg.Default != nil {
			checkRoundTrip(t, "default", cfg.Default)
		}
		pol, err := evaluator.Compile(cfg)
		if err != nil {
			t.Fatalf("ParseConfig accepted what Compile rejects: %v", err)
		}
		var d evaluator.Decision
		for name := range cfg.Buckets {
			for _, r := range []*evaluator.Request{
				preflight("/"+name+"/k", "https://app.example.com", "GET", "content-type"),
				{Method: "PUT", Authority: name + ".s3.amazonaws.com", Path: "/k", Origin: "x", HasOrigin: true},
			} {
				pol.Evaluate(r, &d)
				checkReply(t, &d, r.Origin)
			}
		}
	})
}

func FuzzParseBucketCORS(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		cfg, err := evaluator.ParseConfig(tb.Config)
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range cfg.Buckets {
			if b.Form != evaluator.FormNone {
				f.Add(b.XML())
				f.Add(b.ConsoleJSON())
			}
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("..", "testdata", "invalid", "*.xml"))
	for _, fx := range fixtures {
		if data, err := os.ReadFile(fx); err == nil && len(data) < 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		b, err := evaluator.ParseBucketCORS(doc)
		if err != nil {
			checkRejection(t, err)
			return
		}
		checkRoundTrip(t, "document", b)
	})
}

// asciiLower is the reference's case folding: header names compare without Unicode rules.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func singleRule(t *testing.T, r evaluator.Rule) *evaluator.Policy {
	pol, err := evaluator.Compile(&evaluator.Config{
		Buckets:    map[string]*evaluator.BucketCORS{"b": {Form: evaluator.FormAWSJSON, Rules: []evaluator.Rule{r}}},
		Addressing: evaluator.Addressing{PathStyle: true},
	})
	if err != nil {
		return nil
	}
	return pol
}

func FuzzOriginPattern(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		for _, c := range tb.Cases {
			if o, ok := c.Request.Get("Origin"); ok {
				f.Add("https://*.example.com", o)
				f.Add(o, o)
			}
		}
	}
	f.Add("ab*ba", "aba")
	f.Add("*", "https://a.example\r\nX: y")
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		pol := singleRule(t, evaluator.Rule{AllowedOrigins: []string{pattern}, AllowedMethods: []string{"GET"}})
		if pol == nil {
			return // not a valid AllowedOrigin
		}
		var d evaluator.Decision
		pol.Evaluate(preflight("/b/k", origin, "GET", ""), &d)
		checkReply(t, &d, origin)
		want := origin != "" && wildMatch(pattern, origin, false) && (pattern == "*" || !strings.ContainsAny(origin, "\r\n\x00"))
		if got := d.Reason == evaluator.ReasonAllowed; got != want {
			t.Fatalf("pattern %q origin %q: allowed %v, want %v (%v)", pattern, origin, got, want, d.Reason)
		}
		if want {
			ao, _ := header(&d, evaluator.HeaderAllowOrigin)
			_, cred := header(&d, evaluator.HeaderAllowCredentials)
			if pattern == "*" && (ao != "*" || cred) || pattern != "*" && (ao != origin || !cred) {
				t.Fatalf("pattern %q origin %q: Allow-Origin %q, credentials %v", pattern, origin, ao, cred)
			}
		}
	})
}

func FuzzRequestHeaders(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		for _, c := range tb.Cases {
			if h, ok := c.Request.Get("Access-Control-Request-Headers"); ok {
				f.Add("x-amz-*,content-type", h)
				f.Add("*", h)
			}
		}
	}
	f.Add("x-amz-*", strings.Repeat(" ,", 512))
	f.Add("*-id,a*", "X-Request-ID, a, A")
	f.Fuzz(func(t *testing.T, allowed, acrh string) {
		var allowedHeaders []string
		if allowed != "" {
			allowedHeaders = strings.Split(allowed, ",")
		}
		pol := singleRule(t, evaluator.Rule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PUT"}, AllowedHeaders: allowedHeaders})
		if pol == nil {
			return
		}
		var d evaluator.Decision
		pol.Evaluate(preflight("/b/k", "https://app.example", "PUT", acrh), &d)
		checkReply(t, &d, "https://app.example")
		var names []string
		for _, n := range strings.Split(acrh, ",") {
			if n = strings.Trim(n, " \t"); n != "" {
				names = append(names, asciiLower(n))
			}
		}
		want := !strings.ContainsAny(acrh, "\r\n\x00")
		for _, n := range names {
			ok := false
			for _, a := range allowedHeaders {
				ok = ok || wildMatch(asciiLower(a), n, false)
			}
			want = want && ok
		}
		if got := d.Reason == evaluator.ReasonAllowed; got != want {
			t.Fatalf("allowed %q, requested %q: allowed %v, want %v", allowedHeaders, acrh, got, want)
		}
		ah, has := header(&d, evaluator.HeaderAllowHeaders)
		if want && (has != (len(names) > 0) || ah != strings.Join(names, ", ")) {
			t.Fatalf("requested %q: Allow-Headers %q (present %v), want %q", acrh, ah, has, strings.Join(names, ", "))
		}
	})
}

func FuzzAddressing(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		for _, c := range tb.Cases {
			f.Add(c.Request.Authority, c.Request.Path)
		}
	}
	f.Add("b.s3.example.com.:80", "/a%2Fb?c")
	f.Add("[::1]:9000", "/b%2F/k")
	pol, err := evaluator.Load([]byte(`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]},
	  "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PUT"]}],
	  "addressing": {"virtualHostSuffixes": ["s3.example.com", "example.com"], "pathStyle": true}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authority, path string) {
		var d evaluator.Decision
		pol.Evaluate(&evaluator.Request{Method: "GET", Authority: authority, Path: path, Origin: "o", HasOrigin: true}, &d)
		if d.Reason == evaluator.ReasonActualAmbiguous {
			if d.Outcome != evaluator.Forward || !d.StripUpstream || d.Ambiguity == evaluator.AmbiguityNone || d.Bucket != "" || len(d.Headers) != 0 {
				t.Fatalf("ambiguous decision carries %+v", d)
			}
			return
		}
		if d.Ambiguity != evaluator.AmbiguityNone {
			t.Fatalf("%q %q: decision %v with ambiguity %v", authority, path, d.Reason, d.Ambiguity)
		}
		if d.Reason == evaluator.ReasonNotBucket {
			if d.Outcome != evaluator.PassThrough || d.Bucket != "" || d.Key != "" || len(d.Headers) != 0 {
				t.Fatalf("not-bucket decision carries %+v", d)
			}
			return
		}
		bucket, key := strings.Clone(d.Bucket), strings.Clone(d.Key)
		if bucket == "" || strings.ContainsAny(bucket, "/\r\n\x00") {
			t.Fatalf("%q %q: bucket %q", authority, path, bucket)
		}
		if !strings.HasPrefix(path, "/") {
			t.Fatalf("%q %q: a target that is not origin-form named bucket %q", authority, path, bucket)
		}
		// The query string never matters.
		if !strings.ContainsAny(path, "?#") {
			pol.Evaluate(&evaluator.Request{Method: "GET", Authority: authority, Path: path + "?x=/y%2F", Origin: "o", HasOrigin: true}, &d)
			if d.Bucket != bucket || d.Key != key {
				t.Fatalf("%q %q: a query string changed bucket/key %q/%q to %q/%q", authority, path, bucket, key, d.Bucket, d.Key)
			}
		}
		// Without percent-encoding, bucket and key are taken verbatim from host or path.
		target, _, _ := strings.Cut(path, "?")
		target, _, _ = strings.Cut(target, "#")
		if !strings.Contains(target, "%") && key != "" && !strings.HasSuffix(target, "/"+key) {
			t.Fatalf("%q %q: key %q is not the end of the path", authority, path, key)
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		for _, c := range tb.Cases {
			o, _ := c.Request.Get("Origin")
			m, _ := c.Request.Get("Access-Control-Request-Method")
			h, _ := c.Request.Get("Access-Control-Request-Headers")
			f.Add(c.Request.Method, c.Request.Path, o, m, h)
		}
	}
	f.Add("OPTIONS", "/site/k", "https://a.example", "</Method>&\xff\x00", "x\r\ny")
	pol, err := evaluator.Load([]byte(`{"buckets": {
	  "site": {"CORSRules": [
	    {"AllowedOrigins": ["https://app.example.com", "https://*.example.org"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["x-amz-*", "content-type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 0},
	    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD", "DELETE"], "AllowedHeaders": ["*"]}]},
	  "website": null, "ordered": null, "patterns": null, "headers": null, "mixed": null},
	  "unlistedBuckets": "not-found"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, origin, acrm, acrh string) {
		r := &evaluator.Request{Method: method, Authority: "s3.local", Path: path,
			Origin: origin, HasOrigin: origin != "", RequestMethod: acrm, HasRequestMethod: acrm != "",
			RequestHeaders: acrh, HasRequestHeaders: acrh != ""}
		var d evaluator.Decision
		pol.Evaluate(r, &d)
		checkReply(t, &d, origin)
		switch d.Outcome {
		case evaluator.Reply:
			if method != "OPTIONS" {
				t.Fatalf("%s answered at the proxy", method)
			}
			if (d.Status == 200) != (d.Rule >= 0) || (d.Status == 200) != (d.Body == nil) {
				t.Fatalf("reply %d with rule %d and body %q", d.Status, d.Rule, d.Body)
			}
		case evaluator.Decorate:
			if method == "OPTIONS" || d.Rule < 0 || len(d.Headers) == 0 {
				t.Fatalf("decorate for %s, rule %d", method, d.Rule)
			}
			if _, ok := header(&d, evaluator.HeaderAllowHeaders); ok {
				t.Fatal("Allow-Headers on an actual response")
			}
		case evaluator.Forward:
			if method == "OPTIONS" || len(d.Headers) != 0 || d.Rule >= 0 {
				t.Fatalf("forward for %s with headers %v", method, d.Headers)
			}
		}
	})
}
