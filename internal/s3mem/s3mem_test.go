package s3mem

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newStore() *Store {
	return New(Options{
		Buckets:             []string{"website", "fonts"},
		VirtualHostSuffixes: []string{"s3.localhost"},
		PathStyle:           true,
		MaxObjectSize:       1024,
		Now:                 func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	})
}

// result is a recorded response, read in full.
type result struct {
	StatusCode int
	Header     http.Header
	body       string
}

func do(t *testing.T, h http.Handler, method, host, target string, body string, hdr map[string]string) *result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return &result{rec.Code, rec.Header(), rec.Body.String()}
}

func readAll(t *testing.T, r *result) string {
	t.Helper()
	return r.body
}

func TestPutGetHeadDelete(t *testing.T) {
	s := newStore()
	res := do(t, s, "PUT", "127.0.0.1:8080", "/website/docs/a.txt", "hello", map[string]string{
		"Content-Type":      "text/plain; charset=utf-8",
		"X-Amz-Meta-Author": "Ada",
		"Cache-Control":     "max-age=60",
	})
	if res.StatusCode != 200 {
		t.Fatalf("PUT status %d: %s", res.StatusCode, readAll(t, res))
	}
	wantETag := `"5d41402abc4b2a76b9719d911017c592"`
	if got := res.Header.Get("ETag"); got != wantETag {
		t.Errorf("PUT ETag %q, want %q", got, wantETag)
	}

	res = do(t, s, "GET", "127.0.0.1:8080", "/website/docs/a.txt", "", nil)
	if body := readAll(t, res); res.StatusCode != 200 || body != "hello" {
		t.Fatalf("GET = %d %q, want 200 %q", res.StatusCode, body, "hello")
	}
	for name, want := range map[string]string{
		"Content-Type":      "text/plain; charset=utf-8",
		"ETag":              wantETag,
		"X-Amz-Meta-Author": "Ada",
		"Cache-Control":     "max-age=60",
		"Content-Length":    "5",
		"Last-Modified":     "Sun, 01 Mar 2026 12:00:00 GMT",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("GET %s = %q, want %q", name, got, want)
		}
	}
	if !IsRequestIDShape(res.Header.Get("x-amz-request-id")) {
		t.Errorf("x-amz-request-id %q has not S3's shape", res.Header.Get("x-amz-request-id"))
	}

	res = do(t, s, "HEAD", "127.0.0.1:8080", "/website/docs/a.txt", "", nil)
	if body := readAll(t, res); res.StatusCode != 200 || body != "" || res.Header.Get("ETag") != wantETag {
		t.Errorf("HEAD = %d %q ETag %q", res.StatusCode, body, res.Header.Get("ETag"))
	}

	res = do(t, s, "GET", "127.0.0.1:8080", "/website/docs/a.txt", "", map[string]string{"If-None-Match": wantETag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET status %d, want 304", res.StatusCode)
	}
	res = do(t, s, "GET", "127.0.0.1:8080", "/website/docs/a.txt", "", map[string]string{"Range": "bytes=1-2"})
	if body := readAll(t, res); res.StatusCode != http.StatusPartialContent || body != "el" {
		t.Errorf("range GET = %d %q, want 206 %q", res.StatusCode, body, "el")
	}

	res = do(t, s, "DELETE", "127.0.0.1:8080", "/website/docs/a.txt", "", nil)
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE status %d, want 204", res.StatusCode)
	}
	if _, ok := s.Get("website", "docs/a.txt"); ok {
		t.Error("object still stored after DELETE")
	}
	res = do(t, s, "DELETE", "127.0.0.1:8080", "/website/docs/a.txt", "", nil)
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE of a missing key: status %d, want 204 as S3", res.StatusCode)
	}
}

// IsRequestIDShape mirrors casetable.IsRequestID without importing it.
func IsRequestIDShape(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

func TestDefaultContentType(t *testing.T) {
	s := newStore()
	req := httptest.NewRequest("PUT", "/website/raw", strings.NewReader("x"))
	req.Header.Del("Content-Type")
	s.ServeHTTP(httptest.NewRecorder(), req)
	obj, ok := s.Get("website", "raw")
	if !ok || obj.ContentType != "binary/octet-stream" {
		t.Fatalf("stored %v %q, want binary/octet-stream as S3", ok, obj.ContentType)
	}
}

func TestAddressing(t *testing.T) {
	s := newStore()
	if err := s.Put("fonts", "demo.ttf", []byte("font"), "font/ttf", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, target string }{
		{"fonts.s3.localhost:8080", "/demo.ttf"},
		{"FONTS.S3.LOCALHOST.", "/demo.ttf"},
		{"127.0.0.1:8080", "/fonts/demo.ttf"},
		{"s3.localhost:8080", "/fonts/demo.ttf"}, // the bare suffix is the path-style endpoint
	} {
		res := do(t, s, "GET", tc.host, tc.target, "", nil)
		if body := readAll(t, res); res.StatusCode != 200 || body != "font" {
			t.Errorf("GET %s%s = %d %q, want 200 %q", tc.host, tc.target, res.StatusCode, body, "font")
		}
	}

	vhOnly := New(Options{Buckets: []string{"fonts"}, VirtualHostSuffixes: []string{"s3.localhost"}})
	if err := vhOnly.Put("fonts", "demo.ttf", []byte("font"), "font/ttf", nil); err != nil {
		t.Fatal(err)
	}
	res := do(t, vhOnly, "GET", "127.0.0.1", "/fonts/demo.ttf", "", nil)
	if body := readAll(t, res); body == "font" {
		t.Error("path-style request served the object with PathStyle off")
	}
}

type s3Error struct {
	Code       string
	Message    string
	Key        string
	BucketName string
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

func decodeError(t *testing.T, res *result) s3Error {
	t.Helper()
	body := readAll(t, res)
	if !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error>") {
		t.Errorf("error body does not start like S3's: %q", body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("error Content-Type %q, want application/xml", ct)
	}
	var e s3Error
	if err := xml.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.RequestID != res.Header.Get("x-amz-request-id") {
		t.Errorf("RequestId %q differs from header %q", e.RequestID, res.Header.Get("x-amz-request-id"))
	}
	return e
}

func TestErrors(t *testing.T) {
	s := newStore()
	res := do(t, s, "GET", "localhost", "/website/missing.txt", "", nil)
	if e := decodeError(t, res); res.StatusCode != 404 || e.Code != "NoSuchKey" || e.Key != "missing.txt" || e.Message != "The specified key does not exist." {
		t.Errorf("missing key: %d %+v", res.StatusCode, e)
	}
	res = do(t, s, "GET", "nope.s3.localhost", "/x", "", nil)
	if e := decodeError(t, res); res.StatusCode != 404 || e.Code != "NoSuchBucket" || e.BucketName != "nope" {
		t.Errorf("missing bucket: %d %+v", res.StatusCode, e)
	}
	res = do(t, s, "PUT", "localhost", "/website/big", strings.Repeat("x", 1025), nil)
	if e := decodeError(t, res); res.StatusCode != 400 || e.Code != "EntityTooLarge" {
		t.Errorf("too large: %d %+v", res.StatusCode, e)
	}
	if _, ok := s.Get("website", "big"); ok {
		t.Error("too large object was stored")
	}
	res = do(t, s, "PUT", "localhost", "/website/md5", "abc", map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))})
	if e := decodeError(t, res); res.StatusCode != 400 || e.Code != "BadDigest" {
		t.Errorf("bad Content-MD5: %d %+v", res.StatusCode, e)
	}
	sum := md5.Sum([]byte("abc"))
	res = do(t, s, "PUT", "localhost", "/website/md5", "abc", map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(sum[:])})
	if res.StatusCode != 200 {
		t.Errorf("good Content-MD5: status %d", res.StatusCode)
	}
	res = do(t, s, "GET", "localhost", "/website/md5?acl", "", nil)
	if e := decodeError(t, res); res.StatusCode != 501 || e.Code != "NotImplemented" {
		t.Errorf("?acl: %d %+v", res.StatusCode, e)
	}
	res = do(t, s, "POST", "localhost", "/website/md5", "", nil)
	if e := decodeError(t, res); res.StatusCode != 405 || e.Code != "MethodNotAllowed" {
		t.Errorf("POST: %d %+v", res.StatusCode, e)
	}
	res = do(t, s, "HEAD", "localhost", "/website/missing", "", nil)
	if body := readAll(t, res); res.StatusCode != 404 || body != "" {
		t.Errorf("HEAD of a missing key = %d %q, want 404 and no body", res.StatusCode, body)
	}
	if err := s.Put("nope", "k", nil, "", nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Put into a missing bucket: %v", err)
	}
}

func TestList(t *testing.T) {
	s := newStore()
	for _, k := range []string{"b/2", "a/1", "b/1"} {
		if err := s.Put("website", k, []byte(k), "", nil); err != nil {
			t.Fatal(err)
		}
	}
	res := do(t, s, "GET", "localhost", "/website?list-type=2&prefix=b/", "", nil)
	var got struct {
		Name     string
		KeyCount int
		Contents []struct{ Key string }
	}
	if err := xml.Unmarshal([]byte(readAll(t, res)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "website" || got.KeyCount != 2 || len(got.Contents) != 2 || got.Contents[0].Key != "b/1" || got.Contents[1].Key != "b/2" {
		t.Errorf("list = %+v", got)
	}
	res = do(t, s, "GET", "localhost", "/", "", nil)
	if body := readAll(t, res); !strings.Contains(body, "<Name>fonts</Name>") || !strings.Contains(body, "<Name>website</Name>") {
		t.Errorf("ListBuckets body %q", body)
	}
}

func TestStats(t *testing.T) {
	s := newStore()
	do(t, s, "GET", "localhost", "/website/x", "", nil)
	do(t, s, "OPTIONS", "localhost", "/website/x", "", nil)
	do(t, s, "GET", "localhost", "/website/y", "", nil)
	st := s.Stats()
	if st.Requests != 3 || st.ByMethod["GET"] != 2 || st.ByMethod["OPTIONS"] != 1 {
		t.Errorf("stats %+v", st)
	}
}
