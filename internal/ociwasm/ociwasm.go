// Package ociwasm packages the s3cors proxy-wasm module as an OCI image that Istio's Wasm image
// fetcher (and Envoy Gateway, which shares its rules) accepts, writes it as an OCI image layout,
// pushes it to a registry, and reads a module back out of an image the way Istio does.
//
// The image is the single-layer "compat" variant of the solo.io Wasm image specification:
//
//   - manifest: application/vnd.oci.image.manifest.v1+json, annotated
//     module.wasm.image/variant=compat;
//   - config: application/vnd.oci.image.config.v1+json, a minimal image config
//     (architecture "wasm", os "wasip1");
//   - one layer: application/vnd.oci.image.layer.v1.tar+gzip, a tar holding the module as
//     plugin.wasm at its root.
//
// The image is reproducible: the same module gives the same digest (with the same Go
// toolchain), so a WasmPlugin's sha256 can be computed before or after a push.
//
// Istio checks a WasmPlugin's sha256 against the digest of the image manifest, not of the
// module (pkg/wasm/cache.go in istio/istio); Pushed.SHA256 is that value.
//
// Where it sits: under internal/, imports only go-containerregistry and the standard library;
// cmd/s3cors's oci command uses it.
package ociwasm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// VariantAnnotation is the manifest annotation naming the Wasm image variant.
	VariantAnnotation = "module.wasm.image/variant"
	// PluginFile is the name the compat variant gives the module inside its layer.
	PluginFile = "plugin.wasm"
	// WasmContentLayer is the layer media type of the two-layer "oci" variant, which holds the
	// raw module. We never write it; Module reads it, as Istio does.
	WasmContentLayer types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"

	// Architecture and OS recorded in the image config: the module's GOARCH and GOOS.
	Architecture = "wasm"
	OS           = "wasip1"
)

// epoch is the creation time recorded in the image: the Unix epoch, as reproducible image
// builders (ko, SOURCE_DATE_EPOCH=0) record it, so the digest depends only on the module.
var epoch = v1.Time{Time: time.Unix(0, 0).UTC()}

// wasmMagic opens every WebAssembly binary; Istio refuses a fetched module without it.
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Image builds the compat image of a Wasm module. It refuses bytes that are not a WebAssembly
// binary, as Istio would after pulling them.
func Image(module []byte) (v1.Image, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], wasmMagic) {
		return nil, errors.New("ociwasm: module is not a WebAssembly binary (no \\0asm header)")
	}
	gz, err := pluginTarGz(module)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("ociwasm: layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      epoch,
		Architecture: Architecture,
		OS:           OS,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("ociwasm: config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: epoch, CreatedBy: "s3cors oci layout", Comment: "proxy-wasm module as " + PluginFile},
	})
	if err != nil {
		return nil, fmt.Errorf("ociwasm: append layer: %w", err)
	}
	annotated, ok := mutate.Annotations(img, map[string]string{VariantAnnotation: string(VariantCompat)}).(v1.Image)
	if !ok {
		return nil, errors.New("ociwasm: annotating the manifest did not yield an image")
	}
	return annotated, nil
}

// pluginTarGz returns a gzip-compressed tar holding module as PluginFile. Every header field
// that could vary between builds (times, owners, gzip name) is fixed, so the digest depends
// only on the module.
func pluginTarGz(module []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("ociwasm: gzip: %w", err)
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     PluginFile,
		Mode:     0o644,
		Size:     int64(len(module)),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("ociwasm: tar header: %w", err)
	}
	if _, err := tw.Write(module); err != nil {
		return nil, fmt.Errorf("ociwasm: tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("ociwasm: tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("ociwasm: gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteLayout writes img as an OCI image layout in dir (an index.json naming one image, the
// oci-layout marker and the blobs). dir is replaced as a whole, so it never holds stale
// blobs; to keep a user's files safe, an existing dir must be empty or an OCI image layout.
func WriteLayout(dir string, img v1.Image) error {
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("ociwasm: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("ociwasm: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("ociwasm: writing layout in %q: %w", dir, err)
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("ociwasm: writing layout in %q: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("ociwasm: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("ociwasm: replacing %q: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("ociwasm: replacing %q: %w", dir, err)
	}
	return nil
}

// checkReplaceable refuses to replace a directory that holds anything but an OCI layout.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ociwasm: output %q: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("ociwasm: output %q exists and is not an OCI image layout; refusing to replace it", dir)
	}
	return nil
}

// ReadLayout returns the one image of the OCI image layout in dir.
func ReadLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("ociwasm: reading layout %q: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("ociwasm: reading layout %q: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("ociwasm: layout %q holds %d manifests, want exactly 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("ociwasm: reading layout %q: %w", dir, err)
	}
	return img, nil
}

// PushOptions tune Push. The zero value pushes over HTTPS (plain HTTP for localhost and
// loopback registries, as go-containerregistry decides) with the credentials of the docker
// config (~/.docker/config.json, DOCKER_CONFIG).
type PushOptions struct {
	// Insecure allows plain HTTP (and unverified TLS) to any registry. Default false.
	Insecure bool
	// Keychain resolves credentials. Default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport is the HTTP transport. Default remote.DefaultTransport.
	Transport http.RoundTripper
}

// Pushed says where an image went.
type Pushed struct {
	// Digest is the manifest digest, e.g. sha256:4f2c….
	Digest v1.Hash
	// Reference pins the pushed image by digest: registry/repository@sha256:….
	Reference string
	// SHA256 is the hex digest a WasmPlugin's sha256 field wants (the manifest digest).
	SHA256 string
	// URL is the WasmPlugin url pinned by digest: oci://registry/repository@sha256:….
	URL string
}

// Push writes img to the registry reference ref (e.g. ghcr.io/acme/s3cors-wasm:v1.2.0).
func Push(ctx context.Context, img v1.Image, ref string, opts PushOptions) (Pushed, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return Pushed{}, fmt.Errorf("ociwasm: image reference %q: %w", ref, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	if err := remote.Write(r, img, ropts...); err != nil {
		return Pushed{}, fmt.Errorf("ociwasm: pushing %q: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return Pushed{}, fmt.Errorf("ociwasm: digest: %w", err)
	}
	pinned := r.Context().Digest(d.String()).String()
	return Pushed{Digest: d, Reference: pinned, SHA256: d.Hex, URL: "oci://" + pinned}, nil
}

// Variant names the Wasm image shape Module recognised.
type Variant string

const (
	// VariantDocker: a Docker manifest whose last layer is a rootfs tar.gzip holding plugin.wasm.
	VariantDocker Variant = "docker"
	// VariantCompat: an OCI manifest whose last layer is a tar+gzip holding plugin.wasm; what
	// Image writes. It is also the value of VariantAnnotation.
	VariantCompat Variant = "compat"
	// VariantOCI: two layers, one of them the raw module (WasmContentLayer).
	VariantOCI Variant = "oci"
)

// Module extracts the Wasm module from img the way Istio's image fetcher does
// (pkg/wasm/imagefetcher.go): a Docker manifest must have a Docker rootfs layer last; otherwise
// the compat variant (last layer OCI tar+gzip) is tried, then the two-layer "oci" variant. In
// the tar variants the first entry whose base name is plugin.wasm is the module. It does not
// check the variant annotation or the layer count of the compat variant, since Istio does not;
// Verify does.
func Module(img v1.Image) ([]byte, Variant, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, "", fmt.Errorf("ociwasm: manifest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, "", fmt.Errorf("ociwasm: layers: %w", err)
	}
	var b []byte
	var v Variant
	if m.MediaType == types.DockerManifestSchema2 {
		b, err = lastLayerPlugin(layers, types.DockerLayer)
		v = VariantDocker
	} else {
		var errCompat, errOCI error
		if b, errCompat = lastLayerPlugin(layers, types.OCILayer); errCompat == nil {
			v = VariantCompat
		} else if b, errOCI = rawWasmLayer(layers); errOCI == nil {
			v = VariantOCI
		} else {
			err = fmt.Errorf("not the compat variant (%w) nor the oci variant (%w)", errCompat, errOCI)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("ociwasm: no module in image: %w", err)
	}
	if len(b) < 8 || !bytes.Equal(b[:4], wasmMagic) {
		return nil, "", fmt.Errorf("ociwasm: the %s image's module is not a WebAssembly binary", v)
	}
	return b, v, nil
}

func lastLayerPlugin(layers []v1.Layer, want types.MediaType) ([]byte, error) {
	if len(layers) == 0 {
		return nil, errors.New("image has no layers")
	}
	l := layers[len(layers)-1]
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != want {
		return nil, fmt.Errorf("last layer has media type %q, want %q", mt, want)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("layer is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no %s in the layer", PluginFile)
		}
		if err != nil {
			return nil, fmt.Errorf("layer tar: %w", err)
		}
		if path.Base(h.Name) == PluginFile {
			return io.ReadAll(tr)
		}
	}
}

func rawWasmLayer(layers []v1.Layer) ([]byte, error) {
	if len(layers) != 2 {
		return nil, fmt.Errorf("image has %d layers, want 2", len(layers))
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		if mt != WasmContentLayer {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer func() { _ = rc.Close() }()
		return io.ReadAll(rc)
	}
	return nil, fmt.Errorf("no layer of media type %q", WasmContentLayer)
}

// Verify checks that img is exactly the compat image this package writes: OCI manifest and
// config media types, the variant annotation, one tar+gzip layer whose only entry is a regular
// file plugin.wasm holding a WebAssembly binary, and a config whose diff_ids name that layer.
// It returns every deviation at once.
func Verify(img v1.Image) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("ociwasm: manifest: %w", err)
	}
	if m.MediaType != types.OCIManifestSchema1 {
		bad("manifest media type %q, want %q", m.MediaType, types.OCIManifestSchema1)
	}
	if got := m.Annotations[VariantAnnotation]; got != string(VariantCompat) {
		bad("manifest annotation %s=%q, want %q", VariantAnnotation, got, VariantCompat)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		bad("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		bad("config: %v", err)
	} else if cf.Architecture != Architecture || cf.OS != OS {
		bad("config platform %s/%s, want %s/%s", cf.OS, cf.Architecture, OS, Architecture)
	}
	if len(m.Layers) != 1 {
		bad("%d layers, want exactly 1", len(m.Layers))
	} else if m.Layers[0].MediaType != types.OCILayer {
		bad("layer media type %q, want %q", m.Layers[0].MediaType, types.OCILayer)
	}
	layers, err := img.Layers()
	if err == nil && len(layers) == 1 {
		if err := verifyLayer(layers[0]); err != nil {
			bad("layer: %w", err)
		}
		if cf != nil {
			diff, err := layers[0].DiffID()
			if err != nil {
				bad("layer diff id: %w", err)
			} else if len(cf.RootFS.DiffIDs) != 1 || cf.RootFS.DiffIDs[0] != diff {
				bad("config rootfs diff_ids %v, want [%v]", cf.RootFS.DiffIDs, diff)
			}
		}
	} else if err != nil {
		bad("layers: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("ociwasm: not a compat Wasm image: %w", errors.Join(errs...))
	}
	return nil
}

func verifyLayer(l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return fmt.Errorf("not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		n++
		if h.Name != PluginFile || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("entry %q (type %q), want only the regular file %q", h.Name, h.Typeflag, PluginFile)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if len(b) < 8 || !bytes.Equal(b[:4], wasmMagic) {
			return fmt.Errorf("%s is not a WebAssembly binary", PluginFile)
		}
	}
	if n != 1 {
		return fmt.Errorf("%d entries, want exactly %s", n, PluginFile)
	}
	return nil
}
