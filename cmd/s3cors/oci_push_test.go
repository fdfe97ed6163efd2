package main

import (
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/internal/ociwasm"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestOCIPushToWasmPlugin is the Istio path end to end, against an in-process registry: `oci
// push` prints the pinned url and sha256; the registry serves exactly that image, with the
// module inside; `oci layout` of the same module has the same digest; and `manifest` given the
// printed url writes a WasmPlugin carrying that sha256.
func TestOCIPushToWasmPlugin(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	module := testenv.Module(t)

	r := runCLI(t, "oci", "push", "--wasm", module, u.Host+"/acme/s3cors-wasm:v1")
	if r.code != 0 {
		t.Fatalf("oci push: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`(?m)^WasmPlugin url:\s+(oci://\S+@sha256:([0-9a-f]{64}))\nWasmPlugin sha256:\s+([0-9a-f]{64})$`).FindStringSubmatch(r.stdout)
	if m == nil || m[2] != m[3] {
		t.Fatalf("oci push printed no pinned url and matching sha256:\n%s", r.stdout)
	}
	pinnedURL, sha := m[1], m[3]

	// What istio-agent would pull, by tag and by digest.
	for _, ref := range []string{u.Host + "/acme/s3cors-wasm:v1", strings.TrimPrefix(pinnedURL, "oci://")} {
		pr, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(pr)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d.Hex != sha {
			t.Errorf("%s: the registry serves %s, oci push printed %s", ref, d.Hex, sha)
		}
		if _, variant, err := ociwasm.Module(img); err != nil || variant != ociwasm.VariantCompat {
			t.Errorf("%s: module as Istio extracts it: %q, %v", ref, variant, err)
		}
	}

	layout := runCLI(t, "oci", "layout", "--wasm", module, "--out", filepath.Join(t.TempDir(), "oci"))
	if layout.code != 0 || !strings.Contains(layout.stdout, "manifest digest sha256:"+sha) {
		t.Errorf("oci layout of the same module does not have the pushed digest %s:\n%s%s", sha, layout.stdout, layout.stderr)
	}

	cfg := filepath.Join("testdata", "in", "config.json")
	wp := runCLI(t, "manifest", "--config", cfg, "--target", "istio-wasmplugin", "--image", pinnedURL)
	if wp.code != 0 {
		t.Fatalf("manifest: exit %d\n%s", wp.code, wp.stderr)
	}
	var doc struct {
		Spec struct {
			URL    string `json:"url"`
			SHA256 string `json:"sha256"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(wp.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Spec.URL != pinnedURL || doc.Spec.SHA256 != sha {
		t.Errorf("the WasmPlugin does not pin the pushed image:\n%s", wp.stdout)
	}
}
