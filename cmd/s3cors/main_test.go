package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// result is one in-process run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

var (
	requestIDRe = regexp.MustCompile(`(x-amz-request-id: |<RequestId>|"x-amz-request-id",\s*")[0-9A-Z]{16}`)
	hostIDRe    = regexp.MustCompile(`(x-amz-id-2: |<HostId>|"x-amz-id-2",\s*")[A-Za-z0-9+/=]{56,120}`)
)

// normalise replaces S3's random request and host ids, which differ on every run.
func normalise(s string) string {
	s = requestIDRe.ReplaceAllString(s, "${1}<request-id>")
	return hostIDRe.ReplaceAllString(s, "${1}<host-id>")
}

// golden compares a run with testdata/golden/<name>.golden, or rewrites it under -update.
func golden(t *testing.T, name string, args []string, r result) {
	t.Helper()
	got := fmt.Sprintf("$ s3cors %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s", strings.Join(args, " "), r.code, normalise(r.stdout), normalise(r.stderr))
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make generate to create it; %s)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run make generate if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

type goldenCase struct {
	name     string
	args     []string
	wantCode int
}

func runGolden(t *testing.T, cases []goldenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			if r.code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			golden(t, tc.name, tc.args, r)
		})
	}
}

func TestValidate(t *testing.T) {
	in := func(name string) string { return filepath.Join("testdata", "in", name) }
	runGolden(t, []goldenCase{
		{"validate-config", []string{"validate", in("config.json")}, 0},
		{"validate-yaml", []string{"validate", in("config.yaml")}, 0},
		{"validate-vary-always", []string{"validate", in("vary-always.json")}, 0},
		{"validate-bucket-forms", []string{"validate", in("cors.xml"), in("cors-aws.json"), in("cors-console.json")}, 0},
		{"validate-demo", []string{"validate", "../../testdata/demo/config.json"}, 0},
		{"validate-bad-method", []string{"validate", in("bad-method.json")}, 1},
		{"validate-bad-wildcards", []string{"validate", in("bad-wildcards.json")}, 1},
		{"validate-bad-no-rules", []string{"validate", in("bad-no-rules.json")}, 1},
		{"validate-bad-unknown-key", []string{"validate", in("bad-unknown-key.json")}, 1},
		{"validate-bad-syntax", []string{"validate", in("bad-syntax.json")}, 1},
		{"validate-bad-xml", []string{"validate", in("bad-cors.xml")}, 1},
		{"validate-bad-yaml", []string{"validate", in("bad.yaml")}, 1},
		{"validate-bad-yaml-syntax", []string{"validate", in("bad-syntax.yaml")}, 1},
		{"validate-written-xml", []string{"validate", in("cors-written.xml")}, 0},
		{"validate-mixed-json", []string{"validate", "--format", "json", in("config.json"), in("bad-method.json"), in("bad-cors.xml")}, 1},
		{"validate-valid-json", []string{"validate", "--format=json", in("cors-console.json")}, 0},
		{"validate-kind-forced", []string{"validate", "--kind", "config", in("cors-aws.json")}, 1},
		{"validate-missing-file", []string{"validate", in("config.json"), in("does-not-exist.json")}, 2},
		{"validate-no-args", []string{"validate"}, 2},
		{"validate-bad-format", []string{"validate", "--format", "yaml", in("config.json")}, 2},
	})
}

func TestExplain(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	runGolden(t, []goldenCase{
		{"explain-preflight-allowed", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "uploads/cat.jpg",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "PUT", "--request-headers", "x-amz-meta-author, Content-Type"}, 0},
		{"explain-preflight-wildcard-origin", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt",
			"--method", "OPTIONS", "--origin", "https://shop.partner.example", "--request-method", "GET"}, 0},
		{"explain-denied-origin", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt",
			"--method", "OPTIONS", "--origin", "https://evil.example", "--request-method", "PUT"}, 0},
		{"explain-denied-method", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "DELETE"}, 0},
		{"explain-denied-header", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "PUT", "--request-headers", "x-amz-meta-author,x-custom"}, 0},
		{"explain-not-enabled", []string{"explain", "--config", cfg, "--bucket", "private",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "GET"}, 0},
		{"explain-no-origin", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt",
			"--method", "OPTIONS", "--request-method", "GET"}, 0},
		{"explain-url-path-style", []string{"explain", "--config", cfg, "--url", "http://127.0.0.1:8080/fonts/pixel.ttf?v=2",
			"--method", "GET", "--origin", "https://anyone.example"}, 0},
		{"explain-url-virtual-hosted", []string{"explain", "--config", cfg, "--url", "http://website.s3.localhost:8080/index.html",
			"--method", "GET", "--origin", "https://evil.example"}, 0},
		{"explain-url-unlisted", []string{"explain", "--config", cfg, "--url", "http://other.s3.localhost/x",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "GET"}, 0},
		{"explain-not-a-bucket", []string{"explain", "--config", cfg, "--url", "http://127.0.0.1:8080/",
			"--method", "GET"}, 0},
		{"explain-json", []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt", "--format", "json",
			"--method", "OPTIONS", "--origin", "https://www.example.com", "--request-method", "PUT", "--request-headers", "x-custom"}, 0},
		{"explain-vary-always", []string{"explain", "--config", filepath.Join("testdata", "in", "vary-always.json"), "--bucket", "photos", "--key", "cat.jpg", "--method", "GET"}, 0},
		{"explain-vary-always-allowed", []string{"explain", "--config", filepath.Join("testdata", "in", "vary-always.json"), "--bucket", "photos", "--key", "cat.jpg", "--method", "GET", "--origin", "https://www.example.com"}, 0},
		{"explain-no-method", []string{"explain", "--config", cfg, "--bucket", "website"}, 2},
		{"explain-url-and-bucket", []string{"explain", "--config", cfg, "--bucket", "website", "--url", "http://x/y", "--method", "GET"}, 2},
		{"explain-bad-config", []string{"explain", "--config", filepath.Join("testdata", "in", "bad-method.json"), "--bucket", "website", "--method", "GET"}, 1},
	})
}

func TestConvert(t *testing.T) {
	in := func(name string) string { return filepath.Join("testdata", "in", name) }
	runGolden(t, []goldenCase{
		{"convert-xml-to-json", []string{"convert", in("cors.xml"), "--to", "json"}, 0},
		{"convert-xml-to-console", []string{"convert", in("cors.xml"), "--to", "console"}, 0},
		{"convert-aws-to-xml", []string{"convert", in("cors-aws.json"), "--to", "xml"}, 0},
		{"convert-console-to-json", []string{"convert", in("cors-console.json"), "--to", "json"}, 0},
		{"convert-config-bucket", []string{"convert", in("config.json"), "--bucket", "website", "--to", "xml"}, 0},
		{"convert-invalid", []string{"convert", in("bad-cors.xml"), "--to", "json"}, 1},
		{"convert-bad-target", []string{"convert", in("cors.xml"), "--to", "yaml"}, 2},
	})
}

// TestConvertRoundTrip converts S3 XML to each JSON form and back: the XML must come back
// byte for byte, as GetBucketCors would render it.
func TestConvertRoundTrip(t *testing.T) {
	for _, src := range []string{"cors.xml", "cors-aws.json", "cors-console.json"} {
		t.Run(src, func(t *testing.T) {
			xml1 := runCLI(t, "convert", filepath.Join("testdata", "in", src), "--to", "xml")
			if xml1.code != 0 {
				t.Fatalf("to xml: exit %d: %s", xml1.code, xml1.stderr)
			}
			for _, form := range []string{"json", "console", "xml"} {
				dir := t.TempDir()
				x := filepath.Join(dir, "a.xml")
				writeFile(t, x, xml1.stdout)
				mid := runCLI(t, "convert", x, "--to", form)
				if mid.code != 0 {
					t.Fatalf("xml to %s: exit %d: %s", form, mid.code, mid.stderr)
				}
				m := filepath.Join(dir, "mid")
				writeFile(t, m, mid.stdout)
				back := runCLI(t, "convert", m, "--to", "xml")
				if back.code != 0 || back.stdout != xml1.stdout {
					t.Errorf("xml -> %s -> xml changed the document (exit %d):\n%s\nwant\n%s", form, back.code, back.stdout, xml1.stdout)
				}
			}
		})
	}
	// The canonical XML fixture is already in GetBucketCors form: converting it is the identity.
	orig, err := os.ReadFile(filepath.Join("testdata", "in", "cors.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "convert", filepath.Join("testdata", "in", "cors.xml"), "--to", "xml"); r.stdout != string(orig) {
		t.Errorf("cors.xml -> xml is not the identity:\n%s\nwant\n%s", r.stdout, orig)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"validate", "--no-such-flag", "x"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"serve"}, 2, "--config is required"},
		{[]string{"serve", "--config", "testdata/in/config.json", "--failure-policy", "sometimes"}, 2, `--failure-policy "sometimes"`},
		{[]string{"serve", "--config", "testdata/in/config.json", "--envoy-profile", "envoy-1.20"}, 2, "envoy-1.20"},
		{[]string{"serve", "--config", "testdata/in/config.json", "--workers", "0"}, 2, "--workers 0"},
		{[]string{"convert", "a", "b", "--to", "xml"}, 2, "want one FILE"},
		{[]string{"extproc"}, 2, "--config is required"},
		{[]string{"manifest", "--config", "testdata/in/config.json", "--target", "nginx"}, 2, `--target "nginx"`},
		{[]string{"oci", "layout"}, 2, "--out is required"},
	} {
		r := runCLI(t, tc.args...)
		if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("s3cors %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.wantCode, tc.wantErr)
		}
		if tc.wantCode == 2 && !strings.Contains(r.stderr, "--help") {
			t.Errorf("s3cors %s: a usage error should point at --help; stderr %q", strings.Join(tc.args, " "), r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	r := runCLI(t, "--help")
	for _, sub := range []string{"serve", "extproc", "validate", "explain", "convert", "manifest", "oci", "version"} {
		if !strings.Contains(r.stdout, sub) {
			t.Errorf("--help does not list %q:\n%s", sub, r.stdout)
		}
		h := runCLI(t, sub, "--help")
		if h.code != 0 || !strings.Contains(h.stdout, "Usage:") {
			t.Errorf("%s --help: exit %d\n%s%s", sub, h.code, h.stdout, h.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "s3cors ") || !strings.Contains(r.stdout, "embedded s3cors.wasm") {
		t.Errorf("version: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestManifest(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	for _, tc := range []struct {
		target string
		extra  []string
		want   string // the configuration's buckets are in the file, except for envoy-extproc
	}{
		{"envoy-wasm", []string{"--upstream", "minio.storage:9000"}, "website"},
		{"envoy-extproc", []string{"--upstream", "minio.storage:9000"}, "ext_proc"},
		{"istio-wasmplugin", nil, "website"},
		{"istio-extproc", nil, "website"},
	} {
		r := runCLI(t, append([]string{"manifest", "--config", cfg, "--target", tc.target}, tc.extra...)...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("manifest --target %s: exit %d, stdout without %q\n%s", tc.target, r.code, tc.want, r.stderr)
		}
	}
	// Options a target does not use are refused, not ignored.
	if r := runCLI(t, "manifest", "--config", cfg, "--target", "istio-wasmplugin", "--upstream", "x:1"); r.code != 1 || !strings.Contains(r.stderr, "upstream") {
		t.Errorf("--upstream with istio-wasmplugin: exit %d\n%s", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "envoy.yaml")
	if r := runCLI(t, "manifest", "--config", cfg, "--target", "envoy-wasm", "-o", out); r.code != 0 || r.stdout != "" {
		t.Errorf("manifest -o: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	} else if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte("s3cors")) {
		t.Errorf("manifest -o wrote %d bytes: %v", len(b), err)
	}
	r := runCLI(t, "manifest", "--config", filepath.Join("testdata", "in", "bad-wildcards.json"), "--target", "envoy-wasm")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "can not have more than one wildcard") || !strings.Contains(r.stderr, "ExposeHeader") {
		t.Errorf("manifest of an invalid configuration: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	// A bad value, refused as manifest.Generate refuses the others: exit 1, the command named.
	if r := runCLI(t, "manifest", "--config", cfg, "--target", "istio-wasmplugin", "--gateway-selector", "novalue"); r.code != 1 ||
		!strings.Contains(r.stderr, `manifest: --gateway-selector "novalue": want key=value`) {
		t.Errorf("bad --gateway-selector: exit %d\n%s", r.code, r.stderr)
	}
}

func TestOCILayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	r := runCLI(t, "oci", "layout", "--wasm", testenv.Module(t), "--out", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "manifest digest sha256:") {
		t.Fatalf("oci layout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Errorf("no OCI layout written: %v", err)
	}
	// Reproducible: the same module gives the same digest.
	again := runCLI(t, "oci", "layout", "--wasm", testenv.Module(t), "--out", filepath.Join(t.TempDir(), "oci"))
	if again.stdout[strings.Index(again.stdout, "\n"):] != r.stdout[strings.Index(r.stdout, "\n"):] {
		t.Errorf("two layouts of one module differ:\n%s\n%s", r.stdout, again.stdout)
	}
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	writeFile(t, notWasm, "not a module")
	if r := runCLI(t, "oci", "layout", "--wasm", notWasm, "--out", filepath.Join(t.TempDir(), "o")); r.code != 1 {
		t.Errorf("oci layout of a non-module: exit %d", r.code)
	}
}
