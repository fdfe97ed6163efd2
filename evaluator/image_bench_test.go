package evaluator_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/cputime"
)

// imageBenchConfig is n buckets of three rules each, every bucket with an origin of its own
// (n distinct rule sets), as testenv.StressConfig.
func imageBenchConfig(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"buckets": {`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `"b%d": {"CORSRules": [{"ID": "upload", "AllowedOrigins": ["https://a%d.example"], "AllowedMethods": ["PUT", "POST", "DELETE"], "AllowedHeaders": ["x-amz-*", "content-type", "content-md5"], "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 3000}, {"AllowedOrigins": ["https://*.app.example"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}, {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`, i, i)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// BenchmarkLoadImage is the configure cost of a policy from its image (form=image) next to
// the same configuration from JSON (form=json), with the image and JSON sizes.
func BenchmarkLoadImage(b *testing.B) {
	for _, n := range []int{1, 10000, 100000} {
		doc := imageBenchConfig(n)
		img, _ := imageOf(b, doc)
		b.Run("buckets="+strconv.Itoa(n)+"/form=image", func(b *testing.B) {
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				if _, err := evaluator.LoadImage(img); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
			b.ReportMetric(float64(len(img))/(1<<10), "image-KiB")
			b.ReportMetric(float64(len(doc))/(1<<10), "json-KiB")
		})
		if n > 10000 {
			continue // 100,000 buckets from JSON take seconds an iteration
		}
		b.Run("buckets="+strconv.Itoa(n)+"/form=json", func(b *testing.B) {
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				if _, err := evaluator.Load(doc); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
		})
	}
}

// BenchmarkImageEvaluate is one allowed preflight from an image policy of 1 to 100,000
// buckets, next to the JSON policy of 1 and 10,000. spread=1 asks the same bucket each time;
// spread=1000 cycles through 1,000 buckets (their rule sets stay compiled); spread=all cycles
// through every bucket, so that with more rule sets than the cache holds, each request
// compiles its bucket's rule set again (the worst case, not the usual one).
func BenchmarkImageEvaluate(b *testing.B) {
	for _, n := range []int{1, 10000, 100000} {
		doc := imageBenchConfig(n)
		_, img := imageOf(b, doc)
		pols := map[string]*evaluator.Policy{"image": img}
		if n <= 10000 {
			pols["json"] = mustLoad(b, string(doc))
		}
		for _, form := range []string{"json", "image"} {
			pol := pols[form]
			if pol == nil {
				continue
			}
			spreads := []int{1, 1000, n}
			if n <= 1000 {
				spreads = spreads[:1]
			}
			for _, spread := range spreads {
				name := strconv.Itoa(spread)
				if spread == n && n > 1000 {
					name = "all"
				}
				reqs := make([]*evaluator.Request, spread)
				for i := range reqs {
					reqs[i] = preflight("/b"+strconv.Itoa(i)+"/photos/cat.jpg", "https://a"+strconv.Itoa(i)+".example", "PUT", "content-type, x-amz-meta-owner")
				}
				b.Run("buckets="+strconv.Itoa(n)+"/form="+form+"/spread="+name, func(b *testing.B) {
					var d evaluator.Decision
					for _, r := range reqs {
						pol.Evaluate(r, &d)
						if d.Reason != evaluator.ReasonAllowed {
							b.Fatalf("%s: %v", r.Path, d.Reason)
						}
					}
					b.ReportAllocs()
					start := cputime.Process()
					i := 0
					for b.Loop() {
						pol.Evaluate(reqs[i], &d)
						if i++; i == len(reqs) {
							i = 0
						}
					}
					cputime.Report(b, start)
				})
			}
		}
	}
}

// BenchmarkImageLoadPhases splits LoadImage of 10,000 distinct buckets into its checks.
func BenchmarkImageLoadPhases(b *testing.B) {
	img, _ := imageOf(b, imageBenchConfig(10000))
	b.Run("phase=crc", func(b *testing.B) {
		for b.Loop() {
			crc32.Checksum(img, crc32.MakeTable(crc32.Castagnoli))
		}
	})
	b.Run("phase=sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(img)
		}
	})
	b.Run("phase=all", func(b *testing.B) {
		for b.Loop() {
			if _, err := evaluator.LoadImage(img); err != nil {
				b.Fatal(err)
			}
		}
	})
}
