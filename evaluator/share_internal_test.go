package evaluator

import "testing"

// Buckets with equal rules share one compiled configuration, yet every decision names the
// bucket asked for.
func TestEqualRulesShareCompiledCORS(t *testing.T) {
	pol, err := Load([]byte(`{"buckets": {
	  "photos": {"CORSRules": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}]},
	  "videos": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 60}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := pol.buckets["photos"], pol.buckets["videos"]
	if a.compiledCORS != b.compiledCORS {
		t.Fatal("photos and videos have equal rules but separate compiled rules")
	}
	for _, name := range []string{"photos", "videos"} {
		var d Decision
		pol.Evaluate(&Request{Method: "OPTIONS", Authority: "s3.local", Path: "/" + name + "/k",
			Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true}, &d)
		if d.Reason != ReasonAllowed || d.Bucket != name {
			t.Errorf("preflight to %q: reason %v, bucket %q", name, d.Reason, d.Bucket)
		}
		if e := pol.Explain(&Request{Method: "GET", Authority: "s3.local", Path: "/" + name + "/k",
			Origin: "https://app.example.com", HasOrigin: true}); e.Decision.Bucket != name || e.Source != "bucket" {
			t.Errorf("explain %q: bucket %q, source %q", name, e.Decision.Bucket, e.Source)
		}
	}
	if got := pol.FixedHeaderSets(); got != 1 {
		t.Errorf("FixedHeaderSets() = %d, want 1", got)
	}
}

// Rule lists that differ in any member, or only in order, are compiled separately.
func TestDifferentRulesDoNotShare(t *testing.T) {
	const base = `"AllowedOrigins": ["https://a.example.com", "https://b.example.com"], "AllowedMethods": ["GET"]`
	variants := map[string]string{
		"base":     `[{` + base + `}]`,
		"id":       `[{"ID": "x", ` + base + `}]`,
		"empty-id": `[{"ID": "", ` + base + `}]`,
		"origins":  `[{"AllowedOrigins": ["https://b.example.com", "https://a.example.com"], "AllowedMethods": ["GET"]}]`,
		"methods":  `[{"AllowedOrigins": ["https://a.example.com", "https://b.example.com"], "AllowedMethods": ["GET", "PUT"]}]`,
		"headers":  `[{` + base + `, "AllowedHeaders": ["x-a"]}]`,
		"expose":   `[{` + base + `, "ExposeHeaders": ["ETag"]}]`,
		"maxage":   `[{` + base + `, "MaxAgeSeconds": 0}]`,
		"maxage1":  `[{` + base + `, "MaxAgeSeconds": 1}]`,
		"tworules": `[{` + base + `}, {` + base + `}]`,
		// the same strings split differently between members must not collide
		"split": `[{"AllowedOrigins": ["https://a.example.com"], "AllowedMethods": ["GET"], "AllowedHeaders": ["https://b.example.com"]}]`,
		"none":  `null`,
	}
	doc := `{"buckets": {`
	first := true
	for name, rules := range variants {
		if !first {
			doc += ","
		}
		first = false
		doc += `"` + name + `": ` + rules
	}
	pol, err := Load([]byte(doc + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[*compiledCORS]string{}
	for name := range variants {
		c := pol.buckets[name].compiledCORS
		if other, ok := seen[c]; ok {
			t.Errorf("buckets %q and %q have different rules but share compiled rules", name, other)
		}
		seen[c] = name
	}
}
