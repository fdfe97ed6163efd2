package evaluator_test

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/cputime"
)

func benchEvaluate(b *testing.B, pol *evaluator.Policy, r *evaluator.Request, want evaluator.Reason) {
	var d evaluator.Decision
	pol.Evaluate(r, &d)
	if d.Reason != want {
		b.Fatalf("reason %v, want %v", d.Reason, want)
	}
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		pol.Evaluate(r, &d)
	}
	cputime.Report(b, start)
}

// BenchmarkEvaluate measures the evaluator alone on the request shapes of the middleware
// comparison (shape=), against the single-rule configuration of httpcors' benchmark.
func BenchmarkEvaluate(b *testing.B) {
	pol := mustLoad(b, `{"buckets": {"site": {"CORSRules": [{
	  "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
	  "AllowedHeaders": ["content-type", "x-amz-date"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]}}}`)
	const origin = "https://app.example.com"
	for _, s := range []struct {
		name string
		req  *evaluator.Request
		want evaluator.Reason
	}{
		{"preflight", preflight("/site/photos/cat.jpg", origin, "PUT", ""), evaluator.ReasonAllowed},
		{"preflight-headers", preflight("/site/photos/cat.jpg", origin, "PUT", "content-type,x-amz-date"), evaluator.ReasonAllowed},
		{"actual", &evaluator.Request{Method: "GET", Authority: "s3.local", Path: "/site/photos/cat.jpg", Origin: origin, HasOrigin: true}, evaluator.ReasonAllowed},
		{"denied-origin", preflight("/site/photos/cat.jpg", "https://evil.example.net", "PUT", ""), evaluator.ReasonNotAllowed},
		{"hostile-acrh", preflight("/site/photos/cat.jpg", origin, "PUT", strings.Repeat(" ,", 512)), evaluator.ReasonAllowed},
	} {
		b.Run("shape="+s.name, func(b *testing.B) { benchEvaluate(b, pol, s.req, s.want) })
	}
}

// BenchmarkRules measures a bucket of 1, 10 and 100 rules where only the last one matches:
// origin=exact rules list distinct origins (the index finds the rule directly),
// origin=wildcard rules hold one-"*" patterns (each is tried in turn).
func BenchmarkRules(b *testing.B) {
	for _, kind := range []string{"exact", "wildcard"} {
		for _, n := range []int{1, 10, 100} {
			rules := make([]evaluator.Rule, n)
			for i := range rules {
				o := "https://app" + strconv.Itoa(i) + ".example.com"
				if kind == "wildcard" {
					o = "https://*.app" + strconv.Itoa(i) + ".example.com"
				}
				rules[i] = evaluator.Rule{AllowedOrigins: []string{o}, AllowedMethods: []string{"GET", "PUT"},
					AllowedHeaders: []string{"content-type", "x-amz-*"}, ExposeHeaders: []string{"ETag"}}
			}
			pol, err := evaluator.Compile(&evaluator.Config{
				Buckets:    map[string]*evaluator.BucketCORS{"site": {Form: evaluator.FormAWSJSON, Rules: rules}},
				Addressing: evaluator.Addressing{PathStyle: true},
			})
			if err != nil {
				b.Fatal(err)
			}
			origin := "https://app" + strconv.Itoa(n-1) + ".example.com"
			if kind == "wildcard" {
				origin = "https://cdn.app" + strconv.Itoa(n-1) + ".example.com"
			}
			b.Run("origin="+kind+"/rules="+strconv.Itoa(n)+"/shape=preflight-headers", func(b *testing.B) {
				benchEvaluate(b, pol, preflight("/site/k", origin, "PUT", "content-type,x-amz-date"), evaluator.ReasonAllowed)
			})
			b.Run("origin="+kind+"/rules="+strconv.Itoa(n)+"/shape=actual", func(b *testing.B) {
				benchEvaluate(b, pol, &evaluator.Request{Method: "GET", Authority: "s3.local", Path: "/site/k", Origin: origin, HasOrigin: true}, evaluator.ReasonAllowed)
			})
		}
	}
}

// BenchmarkBuckets measures bucket lookup with 1, 1,000 and 100,000 buckets (path style and
// virtual-hosted), the requested bucket being the last one listed.
func BenchmarkBuckets(b *testing.B) {
	rule := []evaluator.Rule{{AllowedOrigins: []string{"https://app.example.com"}, AllowedMethods: []string{"GET"}}}
	for _, n := range []int{1, 1000, 100000} {
		cfg := &evaluator.Config{
			Buckets:    make(map[string]*evaluator.BucketCORS, n),
			Addressing: evaluator.Addressing{PathStyle: true, VirtualHostSuffixes: []string{"s3.example.com"}},
		}
		for i := 0; i < n; i++ {
			name := "bucket-" + strconv.Itoa(i)
			cfg.Buckets[name] = &evaluator.BucketCORS{Form: evaluator.FormAWSJSON, Rules: rule}
			cfg.BucketOrder = append(cfg.BucketOrder, name)
		}
		pol, err := evaluator.Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		last := "bucket-" + strconv.Itoa(n-1)
		b.Run("buckets="+strconv.Itoa(n)+"/style=path", func(b *testing.B) {
			benchEvaluate(b, pol, preflight("/"+last+"/k", "https://app.example.com", "GET", ""), evaluator.ReasonAllowed)
		})
		b.Run("buckets="+strconv.Itoa(n)+"/style=virtual", func(b *testing.B) {
			r := preflight("/k", "https://app.example.com", "GET", "")
			r.Authority = last + ".s3.example.com"
			benchEvaluate(b, pol, r, evaluator.ReasonAllowed)
		})
	}
}

// BenchmarkLoad measures parsing, validating and compiling a configuration of 1,000 and
// 10,000 buckets with the same one rule each, and of 10,000 buckets whose one rule each lists
// its own origin (rules=distinct, the shape of BenchmarkHostileConfigSize in e2e, where no
// two buckets share compiled rules). live-B is the heap still in use after Load and a GC:
// what the policy keeps.
func BenchmarkLoad(b *testing.B) {
	for _, s := range []struct {
		name     string
		n        int
		distinct bool
	}{{"buckets=1000", 1000, false}, {"buckets=10000", 10000, false}, {"rules=distinct/buckets=10000", 10000, true}} {
		var sb strings.Builder
		sb.WriteString(`{"buckets": {`)
		for i := 0; i < s.n; i++ {
			if i > 0 {
				sb.WriteString(",")
			}
			origin := "https://app.example.com"
			if s.distinct {
				origin = "https://app-" + strconv.Itoa(i) + ".example.com"
			}
			sb.WriteString(`"bucket-` + strconv.Itoa(i) + `": {"CORSRules": [{"AllowedOrigins": ["` + origin + `", "https://*.example.org"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 3000}]}`)
		}
		sb.WriteString(`}}`)
		doc := []byte(sb.String())
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := evaluator.Load(doc); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			pol, err := evaluator.Load(doc)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(pol)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "live-B")
		})
	}
}

// BenchmarkMergeVary merges S3's Vary into an upstream Vary of n distinct names: linear in n
// (a set of folded names past the first few), where comparing each name with all before it
// took 474 ms for 10,000.
func BenchmarkMergeVary(b *testing.B) {
	for _, n := range []int{1, 10, 10000} {
		names := make([]string, n)
		for i := range names {
			names[i] = "X-Header-" + strconv.Itoa(i)
		}
		up := []string{strings.Join(names, ", ")}
		b.Run("names="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				evaluator.MergeVary(up)
			}
			cputime.Report(b, start)
		})
	}
}
