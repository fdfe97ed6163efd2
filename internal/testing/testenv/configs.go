package testenv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

// StressConfig is an s3cors configuration with n buckets "b0" … "b<n-1>", three rules
// each (exact origin with header patterns, partial wildcard, any origin), in the three forms: the
// configuration the stress, start-up and policy-image tests and benchmarks share.
func StressConfig(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"buckets": {`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `"b%d": `, i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `{"CORSRules": [{"ID": "upload", "AllowedOrigins": ["https://a%d.example"], "AllowedMethods": ["PUT", "POST", "DELETE"], "AllowedHeaders": ["x-amz-*", "content-type", "content-md5"], "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 3000}, {"AllowedOrigins": ["https://*.app.example"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}, {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`, i)
		case 1:
			fmt.Fprintf(&b, `[{"AllowedOrigins": ["https://a%d.example"], "AllowedMethods": ["PUT", "POST", "DELETE"], "AllowedHeaders": ["x-amz-*", "content-type", "content-md5"], "ExposeHeaders": ["ETag"]}, {"AllowedOrigins": ["https://*.app.example"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}, {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]`, i)
		default:
			fmt.Fprintf(&b, `"<CORSConfiguration><CORSRule><AllowedOrigin>https://a%d.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader><AllowedHeader>content-md5</AllowedHeader><ExposeHeader>ETag</ExposeHeader></CORSRule><CORSRule><AllowedOrigin>https://*.app.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader></CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"`, i)
		}
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// PolicyImage compiles the s3cors configuration doc into a policy image, failing the test if
// doc is not a valid configuration.
func PolicyImage(t testing.TB, doc []byte) []byte {
	t.Helper()
	cfg, err := evaluator.ParseConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	img, err := evaluator.CompileImage(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
