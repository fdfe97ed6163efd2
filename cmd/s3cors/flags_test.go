package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestManifestRefusesExplicitZeros: an option given as zero or empty is an error naming the
// flag and the value, never the default written silently.
func TestManifestRefusesExplicitZeros(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	for _, tc := range []struct {
		target string
		flag   []string
		want   string
	}{
		{"istio-extproc", []string{"--replicas", "0"}, "--replicas 0: want 1 to 100"},
		{"envoy-wasm", []string{"--listen-port", "0"}, "--listen-port 0: want a TCP port"},
		{"envoy-wasm", []string{"--admin-port", "0"}, "--admin-port 0: want a TCP port"},
		{"envoy-extproc", []string{"--message-timeout", "0"}, `--message-timeout "0s": want whole milliseconds`},
		{"istio-wasmplugin", []string{"--image", ""}, `--image "": want the OCI image of the module (` + "`s3cors oci push`" + ` prints it), e.g. ghcr.io/acme/s3cors-wasm:v1.2.0`},
		{"istio-extproc", []string{"--image="}, `--image "": want the container image of the s3cors binary, e.g. ghcr.io/acme/s3cors:v1.2.0`},
		{"envoy-wasm", []string{"--upstream", ""}, `--upstream "": want host:port`},
		{"envoy-extproc", []string{"--extproc", ""}, `--extproc "": want host:port`},
		{"envoy-wasm", []string{"--wasm-path", ""}, `--wasm-path "": want an absolute file path`},
		{"istio-extproc", []string{"--namespace", ""}, `--namespace "": want a Kubernetes namespace name`},
		{"istio-wasmplugin", []string{"--gateway-namespace", ""}, `--gateway-namespace "": want a Kubernetes namespace name`},
		{"istio-wasmplugin", []string{"--fail-strategy", ""}, `--fail-strategy "": want FAIL_CLOSE or FAIL_RELOAD`},
		{"istio-wasmplugin", []string{"--gateway-selector", ""}, `--gateway-selector "": want key=value`},
		{"envoy-wasm", []string{"-o", ""}, `--out "": want a file path; use - for standard output`},
		{"istio-wasmplugin", []string{"--gateway-name", ""}, `--gateway-name "": want the name of a Kubernetes Gateway`},
	} {
		args := append([]string{"manifest", "--config", cfg, "--target", tc.target}, tc.flag...)
		r := runCLI(t, args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("s3cors %s: exit %d, %d bytes out, stderr %q; want exit 1, nothing out and %q",
				strings.Join(args, " "), r.code, len(r.stdout), r.stderr, tc.want)
		}
	}
	// Every such problem is reported at once.
	r := runCLI(t, "manifest", "--config", cfg, "--target", "envoy-wasm", "--listen-port", "0", "--upstream", "")
	if r.code != 1 || !strings.Contains(r.stderr, "--listen-port 0") || !strings.Contains(r.stderr, `--upstream ""`) {
		t.Errorf("two zero options: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestManifestApplicabilityFirst: an option the target does not read is refused as such,
// whatever its value, zero included; every message names the option in one style, --flag.
func TestManifestApplicabilityFirst(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	for _, tc := range []struct {
		target string
		flag   []string
		want   string
	}{
		{"envoy-wasm", []string{"--replicas", "0"}, "--replicas 0: only the istio-extproc target deploys a server"},
		{"envoy-wasm", []string{"--replicas", "3"}, "--replicas 3: only the istio-extproc target deploys a server"},
		{"envoy-wasm", []string{"--image", ""}, `--image "": only the istio-* targets pull images`},
		{"istio-extproc", []string{"--listen-port", "0"}, "--listen-port 0: only the envoy-* targets use it"},
		{"istio-extproc", []string{"--upstream-tls=false"}, "--upstream-tls=false: only the envoy-* targets use it"},
		{"istio-extproc", []string{"--upstream-tls"}, "--upstream-tls: only the envoy-* targets use it"},
		{"istio-extproc", []string{"--gateway-name", ""}, `--gateway-name "": only the istio-wasmplugin target attaches`},
		{"envoy-extproc", []string{"--wasm-path", ""}, `--wasm-path "": only the envoy-wasm and *-controlplane targets`},
		{"istio-wasmplugin", []string{"--namespace", "x"}, `--namespace "x": only the istio-extproc and istio-controlplane targets`},
		{"envoy-wasm", []string{"--message-timeout", "0"}, `--message-timeout "0s": only the ext_proc targets use it`},
		{"envoy-extproc", []string{"--fail-strategy", "FAIL_OPEN"}, `--fail-strategy "FAIL_OPEN": only the istio-wasmplugin target has one`},
		{"envoy-wasm", []string{"--gateway-selector", "a=b"}, `--gateway-selector "a=b": only the istio-* targets use it`},
	} {
		args := append([]string{"manifest", "--config", cfg, "--target", tc.target}, tc.flag...)
		r := runCLI(t, args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, ": want") {
			t.Errorf("s3cors %s: exit %d, %d bytes out, stderr %q; want exit 1, nothing out and only %q",
				strings.Join(args, " "), r.code, len(r.stdout), r.stderr, tc.want)
		}
	}
	// Several problems at once: each line names its option as --flag.
	r := runCLI(t, "manifest", "--config", cfg, "--target", "istio-extproc", "--replicas", "0", "--upstream", "minio",
		"--image", "Not An Image", "--namespace", "UPPER", "--gateway-selector", "bad key!=v", "--message-timeout", "1500us")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 1 || len(lines) != 6 || !strings.HasPrefix(lines[0], "s3cors: manifest: bad options for istio-extproc: --") {
		t.Fatalf("several bad options: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "--") {
			t.Errorf("line %q does not start with the option's flag", l)
		}
	}
}

// TestManifestRequiredFlags: a missing required flag says so, rather than reading as an empty
// value.
func TestManifestRequiredFlags(t *testing.T) {
	r := runCLI(t, "manifest", "--config", filepath.Join("testdata", "in", "config.json"))
	if r.code != 2 || !strings.Contains(r.stderr, "--target is required (one of envoy-wasm, envoy-extproc, istio-wasmplugin, istio-extproc, envoy-controlplane, istio-controlplane)") {
		t.Errorf("manifest without --target: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "manifest", "--target", "envoy-wasm")
	if r.code != 2 || !strings.Contains(r.stderr, "--config is required") {
		t.Errorf("manifest without --config: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestManifestHeaderRegenerates runs the command a generated file's header names, as a shell
// would split it, and expects the same file: every option given is in it, quoted where a
// shell needs it.
func TestManifestHeaderRegenerates(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "in", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "my cors's config.json") // a space and a quote
	writeFile(t, cfg, string(orig))
	for _, args := range [][]string{
		{"--target", "envoy-wasm", "--upstream", "[::1]:9000", "--upstream-tls", "--listen-port", "8443", "--admin-port", "9902", "--wasm-path", "/opt/s3cors.wasm"},
		{"--target", "envoy-extproc", "--upstream", "minio:9000", "--extproc", "[::1]:50051", "--message-timeout", "1500ms"},
		{"--target", "istio-wasmplugin", "--image", "ghcr.io/acme/s3cors-wasm:v1", "--fail-strategy", "FAIL_CLOSE", "--gateway-namespace", "edge",
			"--gateway-selector", "app=gw", "--gateway-selector", "istio=ingressgateway"},
		{"--target", "istio-extproc", "--image", "ghcr.io/acme/s3cors:v1", "--namespace", "cors", "--replicas", "2", "--message-timeout", "300ms"},
	} {
		first := runCLI(t, append([]string{"manifest", "--config", cfg}, args...)...)
		if first.code != 0 {
			t.Fatalf("manifest %v: exit %d\n%s", args, first.code, first.stderr)
		}
		m := regexp.MustCompile("(?m)^# Generated by `s3cors (manifest [^`]*)`").FindStringSubmatch(first.stdout)
		if m == nil {
			t.Fatalf("manifest %v: no regeneration command in the header:\n%s", args, first.stdout)
		}
		words, err := shellWords(m[1])
		if err != nil {
			t.Fatalf("header command %s: %v", m[1], err)
		}
		again := runCLI(t, words...)
		if again.code != 0 || again.stdout != first.stdout {
			t.Errorf("header command %s (from %v) does not reproduce the file: exit %d\n%s", m[1], args, again.code, again.stderr)
		}
	}
}

// shellWords splits a command line as a POSIX shell does, for the quoting shell.Quote writes:
// plain words and single-quoted parts.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte("\"`$[]*?;&|<>()", c) >= 0:
			return nil, fmt.Errorf("unquoted shell syntax %q at byte %d", c, i)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated single quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestManifestPlaceholderImageWarns: an Istio manifest without --image names a placeholder
// Istio cannot pull; the file is still written, with a warning naming --image.
func TestManifestPlaceholderImageWarns(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	for _, target := range []string{"istio-wasmplugin", "istio-extproc"} {
		r := runCLI(t, "manifest", "--config", cfg, "--target", target)
		if r.code != 0 || !strings.Contains(r.stdout, "registry.example.com") || !strings.Contains(r.stderr, "warning: no --image given") {
			t.Errorf("%s without --image: exit %d, stderr %q", target, r.code, r.stderr)
		}
		// The WasmPlugin's module is pulled by the gateway's Istio agent, the server's
		// container image by Kubernetes.
		puller := map[string]string{"istio-wasmplugin": "which the gateway's Istio agent cannot pull", "istio-extproc": "which Kubernetes cannot pull for the server's pods"}[target]
		if !strings.Contains(r.stderr, puller) {
			t.Errorf("%s without --image: warning %q does not say %q", target, r.stderr, puller)
		}
		r = runCLI(t, "manifest", "--config", cfg, "--target", target, "--image", "ghcr.io/acme/s3cors:v1")
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%s with --image: exit %d, stderr %q", target, r.code, r.stderr)
		}
	}
	if r := runCLI(t, "manifest", "--config", cfg, "--target", "envoy-wasm"); r.code != 0 || r.stderr != "" {
		t.Errorf("envoy-wasm: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestExtprocDurations: a drain timeout that is not positive, or a negative shutdown delay,
// is refused before anything starts (--listen is not an address, so starting would fail
// with a different error and exit code).
func TestExtprocDurations(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.yaml")
	for _, tc := range []struct {
		flag []string
		want string
	}{
		{[]string{"--drain-timeout", "0"}, "s3cors: extproc: --drain-timeout 0s: want a positive duration"},
		{[]string{"--drain-timeout", "-1s"}, "s3cors: extproc: --drain-timeout -1s: want a positive duration"},
		{[]string{"--shutdown-delay", "-5s"}, "s3cors: extproc: --shutdown-delay -5s: want a duration of 0 or more"},
		{[]string{"--log-level", "loud"}, `s3cors: extproc: --log-level "loud": want debug, info, warn or error`},
		{[]string{"--log-format", "xml"}, `s3cors: extproc: --log-format "xml": want text or json`},
	} {
		args := append([]string{"extproc", "--config", cfg, "--listen", "256.0.0.1:1", "--metrics-listen", ""}, tc.flag...)
		r := runCLI(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("s3cors %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(args, " "), r.code, r.stderr, tc.want)
		}
	}
}

// TestExplainRefusesImpossibleRequests: explain names the flag of a missing or impossible
// part of the request instead of evaluating another request, every message prefixed
// "explain:". The checks themselves are explain.Request's, which the gateway's endpoint runs
// too; here they are reported by flag name.
func TestExplainRefusesImpossibleRequests(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bucket", "website"}, "s3cors: explain: --method is required"},
		{[]string{"--method", "GET"}, "s3cors: explain: --url or --bucket is required"},
		{[]string{"--bucket", "website", "--method", ""}, `s3cors: explain: --method "": want an HTTP method`},
		{[]string{"--bucket", "website", "--method", "GE T"}, `s3cors: explain: --method "GE T": not an HTTP method token`},
		{[]string{"--bucket", "web/site", "--method", "GET"}, `s3cors: explain: --bucket "web/site": a bucket name cannot contain "/"`},
		{[]string{"--bucket", "web?site", "--method", "GET"}, `s3cors: explain: --bucket "web?site": a bucket name cannot contain`},
		{[]string{"--bucket", "web	site", "--method", "GET"}, `s3cors: explain: --bucket "web\tsite": a bucket name cannot contain`},
		{[]string{"--bucket", "", "--method", "GET"}, `s3cors: explain: --bucket "": want a bucket name`},
		{[]string{"--url", "", "--method", "GET"}, `s3cors: explain: --url "": want an http:// or https:// URL`},
		{[]string{"--bucket", "website", "--method", "GET", "--origin", "http://a\nb"}, `s3cors: explain: --origin "http://a\nb": a header value cannot contain control characters`},
		{[]string{"--bucket", "website", "--method", "OPTIONS", "--origin", "http://a", "--request-method", "PUT\r"}, `s3cors: explain: --request-method "PUT\r"`},
		{[]string{"--bucket", "website", "--method", "OPTIONS", "--origin", "http://a", "--request-method", "PUT", "--request-headers", "a\x00"}, `s3cors: explain: --request-headers "a\x00"`},
		{[]string{"--url", "ftp://website.s3.localhost/a.txt", "--method", "GET"}, `s3cors: explain: --url "ftp://website.s3.localhost/a.txt": want an http:// or https:// URL`},
		{[]string{"--url", "website.s3.localhost/a.txt", "--method", "GET"}, `s3cors: explain: --url "website.s3.localhost/a.txt": want an http:// or https:// URL`},
		{[]string{"--url", "http://a/\x7f", "--method", "GET"}, `s3cors: explain: --url "http://a/\x7f": net/url: invalid control character in URL`},
		{[]string{"--url", "http:///a.txt", "--method", "GET"}, `s3cors: explain: --url "http:///a.txt": no host`},
	} {
		args := append([]string{"explain", "--config", cfg}, tc.args...)
		r := runCLI(t, args...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "explain:") != 1 {
			t.Errorf("s3cors %q: exit %d, stdout %q, stderr %q; want exit 2 and %q once", args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// A tab is a legal character of a header value.
	if r := runCLI(t, "explain", "--config", cfg, "--bucket", "website", "--method", "GET", "--origin", "http://a\tb"); r.code != 0 {
		t.Errorf("origin with a tab: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestExplainLowerCaseOptions: "options" is an actual request (methods are case-sensitive)
// and is explained as one, with a note in the report that the preflight method is OPTIONS:
// at the end of the text, in the JSON document's notes.
func TestExplainLowerCaseOptions(t *testing.T) {
	cfg := filepath.Join("testdata", "in", "config.json")
	base := []string{"explain", "--config", cfg, "--bucket", "website", "--key", "a.txt", "--origin", "https://www.example.com"}
	const note = `method "options" is not a preflight: methods are case-sensitive, and a preflight is OPTIONS (upper case)`
	r := runCLI(t, append(base, "--method", "options")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "options /") || !strings.HasSuffix(r.stdout, "\n\nnote: "+note+"\n") || r.stderr != "" {
		t.Errorf("--method options: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, append(base, "--method", "options", "--format", "json")...)
	var doc struct {
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || r.stderr != "" || len(doc.Notes) != 1 || doc.Notes[0] != note {
		t.Errorf("--method options --format json: exit %d, notes %q (%v), stderr %q", r.code, doc.Notes, err, r.stderr)
	}
	for _, format := range []string{"text", "json"} {
		r = runCLI(t, append(base, "--method", "OPTIONS", "--request-method", "GET", "--format", format)...)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "note:") || strings.Contains(r.stdout, "not a preflight") {
			t.Errorf("--method OPTIONS --format %s: exit %d, a note where none is due\n%s%s", format, r.code, r.stdout, r.stderr)
		}
	}
}

// TestServeEnvoyProfile: an unknown profile's error names the flag; a release that maps to a
// profile's line is logged with the profile used. The configuration is invalid so that serve
// stops right after reading its flags.
func TestServeEnvoyProfile(t *testing.T) {
	bad := filepath.Join("testdata", "in", "bad-method.json")
	// The value is named once, whichever way it is wrong.
	for _, p := range []string{"x", "envoy-1.20"} {
		r := runCLI(t, "serve", "--config", bad, "--envoy-profile", p)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "s3cors: serve: --envoy-profile: ") || strings.Count(r.stderr, strconv.Quote(p)) != 1 {
			t.Errorf("--envoy-profile %s: exit %d, stderr %q", p, r.code, r.stderr)
		}
	}
	r := runCLI(t, "serve", "--config", bad, "--workers", "0")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "s3cors: serve: --workers 0: ") {
		t.Errorf("--workers 0: exit %d, stderr %q", r.code, r.stderr)
	}
	// The upstream is read after the configuration and the module (any readable file: it is
	// compiled only later), before anything listens.
	good := filepath.Join("testdata", "in", "config.json")
	r = runCLI(t, "serve", "--config", good, "--wasm", good, "--upstream", "http://a b")
	if r.code != 2 || !strings.HasPrefix(r.stderr, `s3cors: serve: --upstream "http://a b": `) || strings.Count(r.stderr, "a b") != 1 {
		t.Errorf("--upstream with a space: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "serve", "--config", bad, "--envoy-profile", "envoy-1.36")
	if r.code != 1 || !strings.Contains(r.stderr, `msg="envoy profile resolved" requested=envoy-1.36 profile=envoy-1.33`) {
		t.Errorf("--envoy-profile envoy-1.36: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "serve", "--config", bad, "--envoy-profile", "envoy-1.39")
	if r.code != 1 || strings.Contains(r.stderr, "envoy profile resolved") {
		t.Errorf("--envoy-profile envoy-1.39: exit %d, stderr %q", r.code, r.stderr)
	}
	h := runCLI(t, "serve", "--help")
	if !strings.Contains(h.stdout, "envoy-1.34 to envoy-1.38 select envoy-1.33") {
		t.Errorf("serve --help does not say how Envoy releases map to profiles:\n%s", h.stdout)
	}
}

// TestVersionFlag: s3cors --version prints what s3cors version prints.
func TestVersionFlag(t *testing.T) {
	want := runCLI(t, "version")
	r := runCLI(t, "--version")
	if r.code != 0 || r.stdout != want.stdout || !strings.HasPrefix(r.stdout, "s3cors ") {
		t.Errorf("--version: exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want.stdout)
	}
}

// TestConvertUnreadableFile: a file that cannot be read is a failure (exit 1) naming the
// file once, with or without --bucket, not a usage error.
func TestConvertUnreadableFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent.json")
	for _, args := range [][]string{
		{"convert", missing, "--bucket", "website", "--to", "xml"},
		{"convert", missing, "--to", "json"},
	} {
		r := runCLI(t, args...)
		want := fmt.Sprintf("s3cors: convert: reading %q: ", missing)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, missing) != 1 || strings.Contains(r.stderr, "--help") {
			t.Errorf("s3cors %q: exit %d, stderr %q; want exit 1 and %q with the cause", args, r.code, r.stderr, want)
		}
	}
}

// TestExplainRefusesQueryBeforeConfig: a query no client could send is the command line's
// fault, named as such even when the configuration cannot be read.
func TestExplainRefusesQueryBeforeConfig(t *testing.T) {
	r := runCLI(t, "explain", "--config", filepath.Join(t.TempDir(), "missing.json"), "--bucket", "a/b", "--method", "GET")
	if r.code != exitUsage || !strings.Contains(r.stderr, `explain: --bucket "a/b": a bucket name cannot contain "/"`) {
		t.Errorf("exit %d, want %d and the --bucket problem:\n%s", r.code, exitUsage, r.stderr)
	}
}

// TestIstioExtprocDeploymentArgs: the arguments the generated Deployment gives the server are
// flags s3cors extproc accepts, with values it accepts (a renamed or retyped flag would
// otherwise surface as a crash-looping pod).
func TestIstioExtprocDeploymentArgs(t *testing.T) {
	r := runCLI(t, "manifest", "--config", filepath.Join("testdata", "in", "config.json"), "--target", "istio-extproc",
		"--image", "registry.example.com/s3cors:v1")
	if r.code != 0 {
		t.Fatalf("manifest: exit %d\n%s", r.code, r.stderr)
	}
	var args []string
	for _, doc := range strings.Split(r.stdout, "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		if d.Kind == "Deployment" && len(d.Spec.Template.Spec.Containers) == 1 {
			args = d.Spec.Template.Spec.Containers[0].Args
		}
	}
	if len(args) < 2 || args[0] != "extproc" {
		t.Fatalf("Deployment args %q, want extproc and its flags", args)
	}
	cmd := newExtprocCmd()
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("s3cors extproc refuses the Deployment's args %q: %v", args[1:], err)
	}
	if got := cmd.Flags().Arg(0); got != "" {
		t.Errorf("Deployment args leave a positional argument %q", got)
	}
	if v, _ := cmd.Flags().GetString("log-format"); v != "json" {
		t.Errorf("--log-format %q, want json", v)
	}
	// In a pod Envoy connects to the pod IP: the loopback defaults would refuse it, so the
	// Deployment names every interface explicitly.
	for _, name := range []string{"listen", "metrics-listen"} {
		if !cmd.Flags().Changed(name) {
			t.Errorf("Deployment args do not set --%s (its default is loopback)", name)
		} else if v, _ := cmd.Flags().GetString(name); !strings.HasPrefix(v, ":") {
			t.Errorf("Deployment --%s %q, want every interface (:port)", name, v)
		}
	}
}

// TestListenDefaultsAreLoopback: every listener a command opens without being told where is
// on loopback; exposing one is an explicit choice.
func TestListenDefaultsAreLoopback(t *testing.T) {
	for _, c := range []struct {
		cmd   *cobra.Command
		flags []string
	}{
		{newExtprocCmd(), []string{"listen", "metrics-listen"}},
		{newServeCmd(), []string{"listen", "debug-listen"}},
	} {
		for _, name := range c.flags {
			def := c.cmd.Flags().Lookup(name).DefValue
			host, _, err := net.SplitHostPort(def)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				t.Errorf("%s --%s defaults to %q, want a loopback address", c.cmd.Name(), name, def)
			}
		}
	}
	if !strings.Contains(newServeCmd().Example, "--listen 127.0.0.1:") || strings.Contains(newServeCmd().Example, "--listen :") {
		t.Errorf("serve --help's examples should listen on loopback:\n%s", newServeCmd().Example)
	}
}
