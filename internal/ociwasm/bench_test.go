package ociwasm_test

import (
	"testing"

	"github.com/s3cors/s3cors/internal/ociwasm"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// BenchmarkImage: the compat image of the real module, down to its digest (tar, gzip at best
// compression, hashing): the work of `make oci` minus writing files.
func BenchmarkImage(b *testing.B) {
	mod := testenv.ModuleBytes(b)
	b.ReportAllocs()
	var layer int64
	for b.Loop() {
		img, err := ociwasm.Image(mod)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := img.Digest(); err != nil {
			b.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			b.Fatal(err)
		}
		if layer, err = ls[0].Size(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(mod)), "module-bytes")
	b.ReportMetric(float64(layer), "layer-bytes")
}
