package controlplane

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3cors/s3cors/evaluator"
)

// The test keys: admin may manage every bucket, site only "website".
const (
	adminKey    = "AKIAADMINEXAMPLE0001"
	adminSecret = "admin/secret/K7MDENG/bPxRfiCYEXAMPLEKEY"
	siteKey     = "AKIASITEEXAMPLE00002"
	siteSecret  = "site/secret/wJalrXUtnFEMI/K7MDENGbPxRfi"
)

const testCredentials = `{"keys": [
 {"accessKeyId": "` + adminKey + `", "secretAccessKey": "` + adminSecret + `", "buckets": ["*"]},
 {"accessKeyId": "` + siteKey + `", "secretAccessKey": "` + siteSecret + `", "buckets": ["website"]}
]}`

const testSeed = `{
  "buckets": {
    "website": {"CORSRules": [{"AllowedOrigins": ["https://seed.example"], "AllowedMethods": ["GET"]}]},
    "fonts": null,
    "media": "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
  },
  "unlistedBuckets": "not-found",
  "addressing": {"virtualHostSuffixes": ["s3.test"], "pathStyle": true}
}`

const rulesXML = `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule><ID>api</ID><AllowedOrigin>https://api.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><MaxAgeSeconds>300</MaxAgeSeconds></CORSRule></CORSConfiguration>`

type testPlane struct {
	cp    *ControlPlane
	url   string
	store *FileStore
	docs  []string
	now   time.Time
}

func newTestPlane(t *testing.T, seed string, store *FileStore) *testPlane {
	t.Helper()
	if store == nil {
		store = &FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	}
	creds, err := ParseCredentials([]byte(testCredentials))
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPlane{store: store}
	cp, err := New(Options{
		Seed: []byte(seed), Store: store, Keys: creds,
		Now: func() time.Time {
			if tp.now.IsZero() {
				return time.Now()
			}
			return tp.now
		},
		Push: func(doc []byte, _ *evaluator.Config, _ uint64) { tp.docs = append(tp.docs, string(doc)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.cp = cp
	srv := httptest.NewServer(cp)
	t.Cleanup(srv.Close)
	tp.url = srv.URL
	return tp
}

// client is an aws-sdk-go-v2 S3 client for the control plane, path style.
func (tp *testPlane) client(key, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:     aws.String(tp.url),
		UsePathStyle:     true,
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// apiCode is the S3 error code of an SDK error, or "" for none.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

// signedRequest builds a request to the control plane signed by the SDK's v4 signer with
// the admin key, Content-MD5 set when md5 is true, the payload hash given (UNSIGNED-PAYLOAD
// or the body's), at time at.
func (tp *testPlane) signedRequest(t *testing.T, method, target string, body []byte, withMD5 bool, payload string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, tp.url+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if withMD5 {
		sum := md5.Sum(body)
		req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", payload)
	return signAt(t, req, at)
}

// signAt signs r with the admin key at time at, for the payload hash in its
// X-Amz-Content-Sha256 header.
func signAt(t *testing.T, r *http.Request, at time.Time) *http.Request {
	t.Helper()
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}
	if err := s.SignHTTP(context.Background(), creds, r, r.Header.Get("X-Amz-Content-Sha256"), "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return r
}

// do sends a request and returns the status and body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// errorCode is the <Code> of an S3 error body.
func errorCode(body string) string {
	_, rest, ok := strings.Cut(body, "<Code>")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}
