package ociwasm_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/s3cors/s3cors/internal/ociwasm"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// emptyModule is the smallest valid WebAssembly module: magic and version, no sections.
var emptyModule = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// moduleWith returns a valid module that differs from emptyModule by a custom section, so
// tests can tell two modules apart.
func moduleWith(tag string) []byte {
	b := append([]byte(nil), emptyModule...)
	payload := append([]byte{byte(len(tag))}, tag...)
	return append(append(b, 0x00, byte(len(payload))), payload...)
}

func TestImageIsCompatVariant(t *testing.T) {
	mod := moduleWith("s3cors")
	img, err := ociwasm.Image(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociwasm.Verify(img); err != nil {
		t.Fatal(err)
	}

	// The raw manifest, as a registry and Istio see it.
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Config        v1.Descriptor     `json:"config"`
		Layers        []v1.Descriptor   `json:"layers"`
		Annotations   map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest schemaVersion %d mediaType %q", m.SchemaVersion, m.MediaType)
	}
	if m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("config media type %q", m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("layers %+v, want one application/vnd.oci.image.layer.v1.tar+gzip", m.Layers)
	}
	if m.Annotations["module.wasm.image/variant"] != "compat" {
		t.Errorf("annotations %v, want module.wasm.image/variant=compat", m.Annotations)
	}

	got, variant, err := ociwasm.Module(img)
	if err != nil {
		t.Fatal(err)
	}
	if variant != ociwasm.VariantCompat || !bytes.Equal(got, mod) {
		t.Errorf("Module() = %d bytes, variant %q; want the %d-byte module, compat", len(got), variant, len(mod))
	}
}

func TestImageIsReproducible(t *testing.T) {
	a1, _ := ociwasm.Image(moduleWith("a"))
	a2, _ := ociwasm.Image(moduleWith("a"))
	b, _ := ociwasm.Image(moduleWith("b"))
	d1, err := a1.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := a2.Digest()
	db, _ := b.Digest()
	if d1 != d2 {
		t.Errorf("same module, different digests %v and %v", d1, d2)
	}
	if d1 == db {
		t.Errorf("different modules, same digest %v", d1)
	}
}

func TestImageRefusesNonWasm(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("#!/bin/sh\necho hi\n"), emptyModule[:4]} {
		if _, err := ociwasm.Image(in); err == nil || !strings.Contains(err.Error(), "not a WebAssembly binary") {
			t.Errorf("Image(%q) error = %v, want a not-WebAssembly error", in, err)
		}
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oci")
	mod := moduleWith("layout")
	img, err := ociwasm.Image(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociwasm.WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	// Writing again replaces the layout rather than accumulating images.
	if err := ociwasm.WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	marker, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(marker), `"imageLayoutVersion"`) {
		t.Errorf("oci-layout = %s", marker)
	}
	var index v1.IndexManifest
	rawIndex, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rawIndex, &index); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != want || index.Manifests[0].MediaType != types.OCIManifestSchema1 {
		t.Fatalf("index.json manifests %+v, want exactly %v", index.Manifests, want)
	}
	back, err := ociwasm.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := back.Digest(); d != want {
		t.Errorf("read back digest %v, want %v", d, want)
	}
	if err := ociwasm.Verify(back); err != nil {
		t.Error(err)
	}
	got, _, err := ociwasm.Module(back)
	if err != nil || !bytes.Equal(got, mod) {
		t.Errorf("module from layout: %d bytes, err %v", len(got), err)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want 3 (manifest, config, layer): %v", len(blobs), blobs)
	}
}

func TestWriteLayoutKeepsForeignDirectories(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "precious.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, _ := ociwasm.Image(emptyModule)
	err := ociwasm.WriteLayout(dir, img)
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("WriteLayout over a foreign directory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("foreign file gone: %v", err)
	}
}

// TestPushAndFetchLikeIstio pushes to an in-process registry and fetches the image back the
// way Istio's agent does (pkg/wasm/imagefetcher.go): remote.Get, the manifest digest compared
// with the WasmPlugin's sha256, then the module extracted.
func TestPushAndFetchLikeIstio(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	mod := moduleWith("pushed")
	img, err := ociwasm.Image(mod)
	if err != nil {
		t.Fatal(err)
	}
	ref := u.Host + "/s3cors/s3cors-wasm:v1"
	pushed, err := ociwasm.Push(context.Background(), img, ref, ociwasm.PushOptions{Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if pushed.Digest != want || pushed.SHA256 != want.Hex {
		t.Errorf("pushed %+v, want digest %v", pushed, want)
	}
	if pushed.Reference != u.Host+"/s3cors/s3cors-wasm@"+want.String() || pushed.URL != "oci://"+pushed.Reference {
		t.Errorf("pushed reference %q url %q", pushed.Reference, pushed.URL)
	}

	for _, r := range []string{ref, pushed.Reference} {
		pr, err := name.ParseReference(r)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(pr)
		if err != nil {
			t.Fatal(err)
		}
		fetched, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := fetched.Digest()
		if d.Hex != pushed.SHA256 {
			t.Errorf("%s: Istio would compare manifest digest %s with sha256 %s", r, d.Hex, pushed.SHA256)
		}
		got, variant, err := ociwasm.Module(fetched)
		if err != nil {
			t.Fatal(err)
		}
		if variant != ociwasm.VariantCompat || !bytes.Equal(got, mod) {
			t.Errorf("%s: fetched %d bytes as %q", r, len(got), variant)
		}
		if err := ociwasm.Verify(fetched); err != nil {
			t.Error(err)
		}
	}
}

func TestPushBadReference(t *testing.T) {
	img, _ := ociwasm.Image(emptyModule)
	_, err := ociwasm.Push(context.Background(), img, "Not A Reference!", ociwasm.PushOptions{})
	if err == nil || !strings.Contains(err.Error(), `image reference "Not A Reference!"`) {
		t.Errorf("Push with a bad reference: %v", err)
	}
}

func tarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for n, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func layerOf(t *testing.T, gz []byte, mt types.MediaType) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestModuleReadsEveryIstioShape feeds Module the other two shapes Istio accepts, and shapes
// it refuses; Verify must reject everything that is not exactly our compat image.
func TestModuleReadsEveryIstioShape(t *testing.T) {
	mod := moduleWith("shape")

	docker, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layerOf(t, tarGz(t, map[string][]byte{"etc/x": []byte("x"), "opt/plugin.wasm": mod}), types.DockerLayer),
	})
	if err != nil {
		t.Fatal(err)
	}

	ociBase := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	twoLayer, err := mutate.Append(ociBase,
		mutate.Addendum{Layer: static.NewLayer([]byte(`{"type":"envoy_proxy"}`), "application/vnd.module.wasm.config.v1+json")},
		mutate.Addendum{Layer: static.NewLayer(mod, ociwasm.WasmContentLayer)},
	)
	if err != nil {
		t.Fatal(err)
	}

	noPlugin, _ := mutate.Append(ociBase, mutate.Addendum{Layer: layerOf(t, tarGz(t, map[string][]byte{"module.wasm": mod}), types.OCILayer)})
	notWasm, _ := mutate.Append(ociBase, mutate.Addendum{Layer: layerOf(t, tarGz(t, map[string][]byte{"plugin.wasm": []byte("not wasm at all")}), types.OCILayer)})

	for _, tc := range []struct {
		name    string
		img     v1.Image
		variant ociwasm.Variant
		err     string
	}{
		{"docker", docker, ociwasm.VariantDocker, ""},
		{"oci two-layer", twoLayer, ociwasm.VariantOCI, ""},
		{"compat without plugin.wasm", noPlugin, "", "no plugin.wasm in the layer"},
		{"compat with a non-wasm plugin.wasm", notWasm, "", "not a WebAssembly binary"},
		{"empty", ociBase, "", "image has no layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, variant, err := ociwasm.Module(tc.img)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Module() error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if variant != tc.variant || !bytes.Equal(got, mod) {
				t.Errorf("Module() = %d bytes as %q, want the module as %q", len(got), variant, tc.variant)
			}
			if err := ociwasm.Verify(tc.img); err == nil {
				t.Errorf("Verify accepted the %s shape; only our compat image passes", tc.name)
			}
		})
	}
}

// TestRealModule packages the module `make build` writes, as `make oci` does.
func TestRealModule(t *testing.T) {
	mod := testenv.ModuleBytes(t)
	dir := filepath.Join(t.TempDir(), "oci")
	img, err := ociwasm.Image(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociwasm.WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	back, err := ociwasm.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociwasm.Verify(back); err != nil {
		t.Fatal(err)
	}
	got, _, err := ociwasm.Module(back)
	if err != nil || !bytes.Equal(got, mod) {
		t.Fatalf("module from layout: %d bytes (want %d), err %v", len(got), len(mod), err)
	}
}
