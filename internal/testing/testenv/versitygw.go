package testenv

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A real S3-compatible server for end-to-end tests: versitygw (github.com/versity/versitygw),
// built from the Go module proxy at a pinned release into build/versitygw. It is not a
// dependency of this module: its build pulls in some eighty modules (cloud SDKs, LDAP, Kafka),
// so it is built with `go install module@version` outside this module's go.mod.

const (
	// VersitygwModule is the module the server is built from.
	VersitygwModule = "github.com/versity/versitygw"
	// VersitygwVersion is the pinned release.
	VersitygwVersion = "v1.8.0"
)

var (
	vgwOnce sync.Once
	vgwPath string
	vgwErr  error
)

// Versitygw returns the path of build/versitygw at VersitygwVersion, building it first (once
// per test process) when it is missing or another version. S3CORS_VERSITYGW names a prebuilt
// binary instead. A server that cannot be had fails the test: the tests that need it prove
// what a real store does, and a skip would prove nothing.
func Versitygw(t testing.TB) string {
	t.Helper()
	vgwOnce.Do(func() { vgwPath, vgwErr = findVersitygw() })
	if vgwErr != nil {
		t.Fatal(vgwErr)
	}
	return vgwPath
}

func findVersitygw() (string, error) {
	if p := os.Getenv("S3CORS_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testenv: S3CORS_VERSITYGW=%q: %w", p, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(root, "build", "versitygw")
	if versitygwVersionOf(dst) == VersitygwVersion {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	gobin, err := os.MkdirTemp(filepath.Dir(dst), ".building-versitygw-*")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	defer func() { _ = os.RemoveAll(gobin) }()
	pkg := VersitygwModule + "/cmd/versitygw@" + VersitygwVersion
	cmd := exec.Command("go", "install", "-trimpath", pkg)
	cmd.Dir = gobin // outside this module: its go.mod has no say
	// GOFLAGS=-mod=mod (the Makefile's) is refused by `go install module@version`.
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: building versitygw (go install %s; needs the Go module proxy, or set S3CORS_VERSITYGW): %w\n%s", pkg, err, out)
	}
	// Rename into place: parallel test processes never run a half-written binary.
	if err := os.Rename(filepath.Join(gobin, "versitygw"), dst); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if v := versitygwVersionOf(dst); v != VersitygwVersion {
		return "", fmt.Errorf("testenv: built %s reports module version %q, want %s", dst, v, VersitygwVersion)
	}
	return dst, nil
}

// versitygwVersionOf is the versitygw module version recorded in the binary at path ("" when
// there is none or it is not versitygw). The binary's own --version says "git" when built from
// the module proxy, so the Go build information is what tells releases apart.
func versitygwVersionOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil || info.Main.Path != VersitygwModule {
		return ""
	}
	return info.Main.Version
}

// VersitygwOptions configures one versitygw server.
type VersitygwOptions struct {
	// VirtualDomain enables virtual-hosted addressing: "<bucket>.<VirtualDomain>".
	VirtualDomain string
	// CORSAllowOrigin is versitygw's --cors-allow-origin: the Access-Control-Allow-Origin it
	// adds to every response of a bucket without CORS of its own ("*" makes it a store that
	// lets any origin read, as community MinIO's global CORS does).
	CORSAllowOrigin string
}

// VersitygwServer is a running versitygw: posix backend in a temporary directory, listening
// on loopback only, root credentials, an access log of every request it served.
type VersitygwServer struct {
	Addr           string // 127.0.0.1:port
	Access, Secret string // the root user's credentials
	accessLog      string
}

// StartVersitygw starts versitygw and stops it when the test ends; its output is shown when
// the test fails.
func StartVersitygw(t testing.TB, o VersitygwOptions) *VersitygwServer {
	t.Helper()
	bin := Versitygw(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &VersitygwServer{Access: "s3cors-test-root", Secret: "s3cors-test-secret-0123456789", accessLog: filepath.Join(dir, "access.log")}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = addr
		if lastErr = s.start(t, bin, data, filepath.Join(dir, fmt.Sprintf("server-%d.log", attempt)), o); lastErr == nil {
			return s
		}
	}
	t.Fatalf("testenv: versitygw did not start: %v", lastErr)
	return nil
}

func (s *VersitygwServer) start(t testing.TB, bin, data, logPath string, o VersitygwOptions) error {
	// Every listener versitygw has is named: the S3 port (its default is :7070, every
	// interface); admin, WebUI, website, pprof and metrics stay off, as they are unless asked.
	args := []string{"--port", s.Addr, "--access", s.Access, "--secret", s.Secret, "--region", "us-east-1",
		"--access-log", s.accessLog, "--quiet"}
	if o.VirtualDomain != "" {
		args = append(args, "--virtual-domain", o.VirtualDomain)
	}
	if o.CORSAllowOrigin != "" {
		args = append(args, "--cors-allow-origin", o.CORSAllowOrigin)
	}
	args = append(args, "posix", data)
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	// Its flags all read VGW_* and a few other variables: only ours count.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		StopProcess(cmd.Process, exited, 10*time.Second)
		_ = logf.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			_ = logf.Close()
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("exited: %w\n%s", exitErr, b)
		default:
		}
		if resp, err := http.Get("http://" + s.Addr + "/"); err == nil {
			_ = resp.Body.Close()
			if resp.Header.Get("Server") == "VERSITYGW" {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("not serving on %s after 30s", s.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("versitygw output:\n%s", b)
		}
	})
	return nil
}

func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// Do sends a request signed as the root user (AWS Signature Version 4, path style) for
// bucket and key (key "" for the bucket itself), with query (already canonical, e.g.
// "policy=") and body, and returns the answer's body; it fails the test unless the answer is 2xx.
func (s *VersitygwServer) Do(t testing.TB, method, bucket, key, query string, body []byte) []byte {
	t.Helper()
	path := "/" + bucket
	if key != "" {
		path += "/" + key
	}
	u := "http://" + s.Addr + path
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	s.sign(req, path, query, body, time.Now().UTC())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("versitygw %s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("versitygw %s %s: %s\n%s", method, u, resp.Status, b)
	}
	return b
}

// sign adds SigV4 headers for region us-east-1, service s3. path and query are used as the
// canonical URI and query: the callers' names need no escaping.
func (s *VersitygwServer) sign(req *http.Request, path, query string, body []byte, now time.Time) {
	const region, service = "us-east-1", "s3"
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	date := now.Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", date)
	req.Header.Set("X-Amz-Content-Sha256", payload)
	headers := map[string]string{"host": req.URL.Host, "x-amz-date": date, "x-amz-content-sha256": payload}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canon strings.Builder
	for _, k := range names {
		canon.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	creq := strings.Join([]string{req.Method, path, query, canon.String(), signed, payload}, "\n")
	scope := now.Format("20060102") + "/" + region + "/" + service + "/aws4_request"
	h := sha256.Sum256([]byte(creq))
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	key := []byte("AWS4" + s.Secret)
	for _, part := range []string{now.Format("20060102"), region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		s.Access, scope, signed, hex.EncodeToString(hmacSHA256(key, toSign))))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// CreatePublicBucket creates bucket and lets anyone read and list it (a bucket policy for
// principal "*"), so that unsigned requests, as a browser sends them, are served.
func (s *VersitygwServer) CreatePublicBucket(t testing.TB, bucket string) {
	t.Helper()
	s.Do(t, http.MethodPut, bucket, "", "", nil)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",`+
		`"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]}]}`, bucket)
	s.Do(t, http.MethodPut, bucket, "", "policy=", []byte(policy))
}

// PutObject stores body under bucket/key.
func (s *VersitygwServer) PutObject(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	s.Do(t, http.MethodPut, bucket, key, "", body)
}

// Served is one line of versitygw's access log: what it did for one request.
type Served struct {
	Bucket    string // "" when the request named none
	Operation string // e.g. s3_GetObject, s3_ListObjects
	Key       string // "" when none
	URI       string // the request target as versitygw received it
	Status    int
}

// ServedLog returns the access log so far, by x-amz-request-id.
func (s *VersitygwServer) ServedLog(t testing.TB) map[string]Served {
	t.Helper()
	b, err := os.ReadFile(s.accessLog)
	if err != nil {
		t.Fatalf("testenv: versitygw access log: %v", err)
	}
	out := map[string]Served{}
	for _, line := range strings.Split(string(b), "\n") {
		// owner bucket [time zone] ip requester request-id operation key uri status ...: no
		// field before the status has a space (the URI is a request target).
		f := strings.Fields(line)
		if len(f) < 11 || !strings.HasPrefix(f[2], "[") {
			continue
		}
		r := Served{Bucket: dash(f[1]), Operation: dash(f[7]), Key: dash(f[8]), URI: f[9]}
		r.Status, _ = strconv.Atoi(f[10])
		out[f[6]] = r
	}
	return out
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}
