package controlplane

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3cors/s3cors/evaluator"
)

// TestSDKRoundTrip drives the three operations with aws-sdk-go-v2's S3 client (its own
// signing, its own checksum headers) and checks what each does to the served document.
func TestSDKRoundTrip(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	ctx := context.Background()
	c := tp.client(adminKey, adminSecret)

	got, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("website")})
	if err != nil {
		t.Fatalf("GetBucketCors of a seed bucket: %v", err)
	}
	if o := got.CORSRules[0].AllowedOrigins; len(o) != 1 || o[0] != "https://seed.example" {
		t.Fatalf("seed rules: %v", o)
	}
	_, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("fonts")})
	if code := apiCode(err); code != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCors of a bucket without CORS: %q", code)
	}

	rules := &types.CORSConfiguration{CORSRules: []types.CORSRule{{
		ID:             aws.String("from-the-sdk"),
		AllowedOrigins: []string{"https://app.example"},
		AllowedMethods: []string{"GET", "PUT"},
		AllowedHeaders: []string{"x-amz-meta-*"},
		ExposeHeaders:  []string{"ETag"},
		MaxAgeSeconds:  aws.Int32(600),
	}}}
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("fonts"), CORSConfiguration: rules}); err != nil {
		t.Fatalf("PutBucketCors: %v", err)
	}
	got, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("fonts")})
	if err != nil {
		t.Fatalf("GetBucketCors after put: %v", err)
	}
	r := got.CORSRules[0]
	if aws.ToString(r.ID) != "from-the-sdk" || r.AllowedOrigins[0] != "https://app.example" || len(r.AllowedMethods) != 2 || aws.ToInt32(r.MaxAgeSeconds) != 600 || r.ExposeHeaders[0] != "ETag" {
		t.Fatalf("GetBucketCors after put: %+v", r)
	}
	doc, _ := tp.cp.Document()
	pol, err := evaluator.Load(doc)
	if err != nil {
		t.Fatalf("served document: %v\n%s", err, doc)
	}
	if pol.Config().Buckets["fonts"].Rules[0].AllowedOrigins[0] != "https://app.example" {
		t.Fatalf("served document lacks the new rules:\n%s", doc)
	}

	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("fonts")}); err != nil {
		t.Fatalf("DeleteBucketCors: %v", err)
	}
	_, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("fonts")})
	if code := apiCode(err); code != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCors after delete: %q", code)
	}
	doc, _ = tp.cp.Document()
	if !strings.Contains(string(doc), `"fonts": null`) {
		t.Fatalf("a deleted bucket is not served as null (exists, no CORS):\n%s", doc)
	}
	// New pushed the seed, then one document per change.
	if len(tp.docs) != 3 {
		t.Fatalf("%d documents pushed, want 3", len(tp.docs))
	}

	_, err = c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("nope"), CORSConfiguration: rules})
	if code := apiCode(err); code != "NoSuchBucket" {
		t.Fatalf("PutBucketCors of an unknown bucket: %q", code)
	}
}

// TestRefusedChangesNothing: wrong secrets, unknown keys, keys without the bucket, skewed
// clocks and unsigned requests are refused with S3's codes, counted, and change nothing.
func TestRefusedChangesNothing(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	ctx := context.Background()
	rules := &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}}}
	put := func(c *s3.Client, bucket string) error {
		_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: rules})
		return err
	}
	before, v0 := tp.cp.Document()
	for _, tc := range []struct {
		name, code string
		err        error
	}{
		{"wrong secret", "SignatureDoesNotMatch", put(tp.client(adminKey, "not-the-secret"), "website")},
		{"unknown key", "InvalidAccessKeyId", put(tp.client("AKIANOBODY", adminSecret), "website")},
		{"key without the bucket", "AccessDenied", put(tp.client(siteKey, siteSecret), "media")},
	} {
		if got := apiCode(tc.err); got != tc.code {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.code)
		}
	}
	body := []byte(rulesXML)
	for _, tc := range []struct {
		name, code string
		req        *http.Request
	}{
		{"skewed 16 minutes", "RequestTimeTooSkewed", tp.signedRequest(t, "PUT", "/website?cors", body, true, "", time.Now().Add(-16*time.Minute))},
		{"unsigned", "AccessDenied", func() *http.Request {
			r, _ := http.NewRequest("PUT", tp.url+"/website?cors", strings.NewReader(rulesXML))
			return r
		}()},
		{"body changed after signing", "XAmzContentSHA256Mismatch", func() *http.Request {
			r := tp.signedRequest(t, "PUT", "/website?cors", body, true, "", time.Now())
			// Same length, so the signed Content-Length still holds.
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(rulesXML, "https://api.", "https://bad.", 1)))
			return r
		}()},
		{"replayed to another bucket", "SignatureDoesNotMatch", func() *http.Request {
			r := tp.signedRequest(t, "PUT", "/website?cors", body, true, "", time.Now())
			r.URL.Path = "/media"
			return r
		}()},
	} {
		status, got := do(t, tc.req)
		if errorCode(got) != tc.code || status < 400 {
			t.Errorf("%s: %d %s, want %s", tc.name, status, got, tc.code)
		}
	}
	after, v1 := tp.cp.Document()
	if string(before) != string(after) || v0 != v1 {
		t.Fatalf("a refused request changed the configuration (version %d -> %d)", v0, v1)
	}
	if n := tp.cp.Metrics().Rejected(""); n != 6 {
		t.Fatalf("rejected counter %v, want 6 (XAmzContentSHA256Mismatch is a bad request, not a refusal)", n)
	}
	// The site key may manage its own bucket.
	if err := put(tp.client(siteKey, siteSecret), "website"); err != nil {
		t.Fatalf("site key on its bucket: %v", err)
	}
}

// TestPutBucketCorsBadInput: S3's codes for the body and its digests.
func TestPutBucketCorsBadInput(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	rule := `<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`
	many := "<CORSConfiguration>" + strings.Repeat(rule, 101) + "</CORSConfiguration>"
	huge := "<CORSConfiguration>" + strings.Repeat(" ", MaxBody) + rule + "</CORSConfiguration>"
	for _, tc := range []struct {
		name    string
		body    string
		md5     bool
		header  [2]string
		status  int
		code    string
		message string
	}{
		{"no digest", rulesXML, false, [2]string{}, 400, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"},
		{"wrong Content-MD5", rulesXML, false, [2]string{"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="}, 400, "BadDigest", "The Content-MD5 you specified did not match what we received."},
		{"invalid Content-MD5", rulesXML, false, [2]string{"Content-MD5", "not base64"}, 400, "InvalidDigest", "The Content-MD5 you specified was invalid."},
		{"wrong crc32", rulesXML, false, [2]string{"X-Amz-Checksum-Crc32", "AAAAAA=="}, 400, "BadDigest", "The CRC32 you specified did not match the calculated checksum."},
		{"101 rules", many, true, [2]string{}, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema"},
		{"not XML", `{"CORSRules": []}`, true, [2]string{}, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema"},
		{"broken XML", "<CORSConfiguration><CORSRule>", true, [2]string{}, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema"},
		{"bad method", strings.Replace(rulesXML, "<AllowedMethod>PUT", "<AllowedMethod>PATCH", 1), true, [2]string{}, 400, "InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"},
		{"over 64 KB", huge, true, [2]string{}, 400, "MaxMessageLengthExceeded", "Your request was too big."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tp.signedRequest(t, "PUT", "/website?cors", []byte(tc.body), tc.md5, "UNSIGNED-PAYLOAD", time.Now())
			if tc.header[0] != "" {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			status, body := do(t, req)
			want := fmt.Sprintf("<Code>%s</Code><Message>%s</Message>", tc.code, tc.message)
			if status != tc.status || !strings.Contains(body, want) {
				t.Fatalf("%d %s\nwant %d %s", status, body, tc.status, want)
			}
		})
	}
	if _, v := tp.cp.Document(); v != 0 {
		t.Fatalf("bad input changed the configuration: version %d", v)
	}
}

// TestVirtualHosted: "<bucket>.<suffix>" hosts name the bucket; the wire answers are S3's.
func TestVirtualHosted(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	req := tp.signedRequest(t, "GET", "/?cors", nil, false, "", time.Now())
	req.Host = "media.s3.test"
	// Signed for the URL's host: re-sign for the virtual host.
	req = resign(t, req)
	status, body := do(t, req)
	if status != 200 || !strings.Contains(body, "<AllowedOrigin>*</AllowedOrigin>") || !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Fatalf("%d %s", status, body)
	}
	req = resign(t, func() *http.Request {
		r := tp.signedRequest(t, "DELETE", "/?cors", nil, false, "", time.Now())
		r.Host = "media.s3.test"
		return r
	}())
	if status, body := do(t, req); status != 204 || body != "" {
		t.Fatalf("DeleteBucketCors: %d %q", status, body)
	}
	req = resign(t, func() *http.Request {
		r := tp.signedRequest(t, "GET", "/?cors", nil, false, "", time.Now())
		r.Host = "media.s3.test"
		return r
	}())
	status, body = do(t, req)
	if status != 404 || errorCode(body) != "NoSuchCORSConfiguration" || !strings.Contains(body, "<BucketName>media</BucketName>") {
		t.Fatalf("GetBucketCors after delete: %d %s", status, body)
	}
}

func resign(t *testing.T, r *http.Request) *http.Request {
	t.Helper()
	r.Header.Del("Authorization")
	r.Header.Del("X-Amz-Date")
	return signAt(t, r, time.Now())
}

// TestConcurrentPuts: puts racing on one bucket leave one of them whole, on disk and served.
func TestConcurrentPuts(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	c := tp.client(adminKey, adminSecret)
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rules := &types.CORSConfiguration{CORSRules: []types.CORSRule{{
				ID: aws.String(fmt.Sprint("writer-", i)), AllowedOrigins: []string{fmt.Sprintf("https://w%d.example", i)}, AllowedMethods: []string{"GET"},
			}}}
			if _, err := c.PutBucketCors(context.Background(), &s3.PutBucketCorsInput{Bucket: aws.String("website"), CORSConfiguration: rules}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := tp.cp.Get("website")
	id := *got.Rules[0].ID
	var i int
	if _, err := fmt.Sscanf(id, "writer-%d", &i); err != nil || got.Rules[0].AllowedOrigins[0] != fmt.Sprintf("https://w%d.example", i) {
		t.Fatalf("torn configuration: %+v", got.Rules)
	}
	st, err := tp.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != n || !strings.Contains(st.Buckets["website"].CORS, id) {
		t.Fatalf("stored state: version %d, %s (served %s)", st.Version, st.Buckets["website"].CORS, id)
	}
}

// endless is a body that never ends, counting what was read from it.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	e.read += len(p)
	return len(p), nil
}

// TestPutBucketCorsEndlessBody: a body of unknown length (chunked) is read no further than
// the 64 KB limit and refused as S3 refuses one over it; nothing changes.
func TestPutBucketCorsEndlessBody(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	body := &endless{}
	req := tp.signedRequest(t, "PUT", "/website?cors", nil, false, unsignedPayload, time.Now())
	req.Body, req.ContentLength = io.NopCloser(body), -1
	req.Header.Set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")
	w := httptest.NewRecorder()
	tp.cp.ServeHTTP(w, req)
	if w.Code != 400 || errorCode(w.Body.String()) != "MaxMessageLengthExceeded" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if body.read > MaxBody+1 {
		t.Fatalf("read %d bytes of an endless body, limit %d", body.read, MaxBody)
	}
	if _, v := tp.cp.Document(); v != 0 {
		t.Fatalf("an endless body changed the configuration: version %d", v)
	}
}

// TestNotImplemented: what the control plane does not take gets S3's own NotImplemented (501),
// as S3 answers a header implying functionality it lacks, and changes nothing: an aws-chunked
// (STREAMING-*) payload, and any request that is not a bucket's cors subresource.
func TestNotImplemented(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	before, v0 := tp.cp.Document()
	body := []byte(rulesXML)
	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"aws-chunked payload", tp.signedRequest(t, "PUT", "/website?cors", body, true, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", time.Now())},
		{"an object's cors", tp.signedRequest(t, "PUT", "/website/key?cors", body, true, "", time.Now())},
		{"no cors subresource", tp.signedRequest(t, "GET", "/website", nil, false, "", time.Now())},
	} {
		status, got := do(t, tc.req)
		if status != http.StatusNotImplemented || errorCode(got) != "NotImplemented" ||
			!strings.Contains(got, "A header you provided implies functionality that is not implemented") {
			t.Errorf("%s: %d %s, want 501 NotImplemented", tc.name, status, got)
		}
	}
	if after, v1 := tp.cp.Document(); string(before) != string(after) || v0 != v1 {
		t.Fatalf("a refused request changed the configuration (version %d -> %d)", v0, v1)
	}
}
