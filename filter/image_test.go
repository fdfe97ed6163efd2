package filter_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestImageCaseTable runs the case tables through the plugin configured with each table's
// policy image, raw (a BytesValue) and wrapped in JSON (Istio's pluginConfig).
func TestImageCaseTable(t *testing.T) {
	for _, tbl := range loadTables(t) {
		img := testenv.PolicyImage(t, tbl.Config)
		for form, config := range map[string][]byte{"raw": img, "wrapped": evaluator.WrapImage(img)} {
			t.Run(filepath.Base(tbl.File)+"/"+form, func(t *testing.T) { runTable(t, tbl, config) })
		}
	}
}

// TestBadImagesAreRefused: a malformed image is refused with the evaluator's reason at
// critical level, and the configuration the root had keeps serving.
func TestBadImagesAreRefused(t *testing.T) {
	img := testenv.PolicyImage(t, []byte(siteConfig))
	flipped := bytes.Clone(img)
	flipped[len(flipped)/2] ^= 4
	version := bytes.Clone(img)
	version[8] = 7
	huge := make([]byte, 200<<20)
	copy(huge, img)
	for _, c := range []struct {
		name   string
		config []byte
		want   string
	}{
		{"truncated", img[:len(img)-1], "evaluator: image: truncated"},
		{"bit flipped", flipped, "evaluator: image: checksum mismatch"},
		{"version", version, "evaluator: image: format version 7"},
		{"200 MB", huge, "filter: the policy image is 209715200 bytes, over the 67108864-byte limit"},
		{"wrapped garbage", []byte(`{"s3corsImage": "not base64!"}`), "not standard base64"},
		{"wrapped JSON", evaluator.WrapImage([]byte(siteConfig)), "looks like a configuration document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := abitest.NewHost()
			vm := abitest.NewVM(h, filter.New(h))
			root, err := vm.StartPlugin(img)
			if err != nil {
				t.Fatal(err)
			}
			if vm.Configure(root, c.config) {
				t.Fatal("the plugin accepted a bad image")
			}
			if logs := logText(h.Logs()); !strings.Contains(logs, "critical: s3cors: plugin configuration rejected") || !strings.Contains(logs, c.want) {
				t.Errorf("logs lack %q:\n%s", c.want, logs)
			}
			if got := statusOf(t, vm, root, preflight("/site/k", "https://app.example", "PUT")); got != 200 {
				t.Errorf("after the refusal an allowed preflight got %d, want the kept policy's 200", got)
			}
		})
	}
}

// TestLargeImageIsKeptWithoutCopy: an image over abi.LargeData is kept as the host handed it
// over (the test host poisons every smaller buffer after the callback) and serves its buckets.
func TestLargeImageIsKeptWithoutCopy(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"buckets": {`)
	for i := 0; i < 15000; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"bucket-%d": [{"AllowedOrigins": ["https://app-%d.example"], "AllowedMethods": ["GET", "PUT"], "ExposeHeaders": ["ETag"]}]`, i, i)
	}
	b.WriteString(`}}`)
	img := testenv.PolicyImage(t, []byte(b.String()))
	if len(img) <= abi.LargeData {
		t.Fatalf("image of %d bytes, want one over abi.LargeData", len(img))
	}
	vm, root := startVM(t, img)
	for _, i := range []int{0, 7777, 14999} {
		path, origin := fmt.Sprintf("/bucket-%d/k", i), fmt.Sprintf("https://app-%d.example", i)
		if got := statusOf(t, vm, root, preflight(path, origin, "PUT")); got != 200 {
			t.Errorf("%s from %s: %d, want 200", path, origin, got)
		}
		if got := statusOf(t, vm, root, preflight(path, "https://app-1.example", "PUT")); got != 403 && i != 1 {
			t.Errorf("%s from another origin: %d, want 403", path, got)
		}
	}
}
