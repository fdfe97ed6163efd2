package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// presign returns a presigned URL for method target, made by the SDK's signer at time at,
// valid for expires.
func (tp *testPlane) presign(t *testing.T, method, target string, at time.Time, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequest(method, tp.url+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, _, err := s.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, req, unsignedPayload, "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPresigned: a presigned URL works until it expires, then AccessDenied "Request has
// expired"; a tampered one is SignatureDoesNotMatch; an expiry over a week is refused.
func TestPresigned(t *testing.T) {
	tp := newTestPlane(t, testSeed, nil)
	get := func(u string) (int, string) {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req)
	}
	if status, body := get(tp.presign(t, "GET", "/media?cors", time.Now(), time.Minute)); status != 200 || !strings.Contains(body, "<CORSConfiguration") {
		t.Fatalf("fresh presigned GetBucketCors: %d %s", status, body)
	}
	if status, body := get(tp.presign(t, "GET", "/media?cors", time.Now().Add(-2*time.Minute), time.Minute)); status != 403 || !strings.Contains(body, "<Code>AccessDenied</Code><Message>Request has expired</Message>") {
		t.Fatalf("expired presigned URL: %d %s", status, body)
	}
	if n := tp.cp.Metrics().Rejected("AccessDenied"); n != 1 {
		t.Fatalf("expired presigned URL counted %v times as refused, want 1", n)
	}
	u := tp.presign(t, "GET", "/media?cors", time.Now(), time.Minute)
	if status, body := get(strings.Replace(u, "/media?", "/website?", 1)); status != 403 || errorCode(body) != "SignatureDoesNotMatch" {
		t.Fatalf("presigned URL for another bucket: %d %s", status, body)
	}
	if n := tp.cp.Metrics().Rejected("SignatureDoesNotMatch"); n != 1 {
		t.Fatalf("presigned URL replayed to another bucket counted %v times as refused, want 1", n)
	}
	if status, body := get(tp.presign(t, "GET", "/media?cors", time.Now(), 8*24*time.Hour)); status != 400 || errorCode(body) != "AuthorizationQueryParametersError" {
		t.Fatalf("presigned URL valid 8 days: %d %s", status, body)
	}
	// Presigned DELETE changes the configuration like a signed one.
	req, _ := http.NewRequest("DELETE", tp.presign(t, "DELETE", "/media?cors", time.Now(), time.Minute), nil)
	if status, body := do(t, req); status != 204 {
		t.Fatalf("presigned DeleteBucketCors: %d %s", status, body)
	}
	if tp.cp.Get("media") != nil {
		t.Fatal("presigned DeleteBucketCors did not remove the rules")
	}
}
