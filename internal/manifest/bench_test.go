package manifest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// BenchmarkGenerate: one manifest from the demo configuration, including validation, the
// YAML rendering and its read-back checks (the cost of `s3cors manifest` minus process start).
func BenchmarkGenerate(b *testing.B) {
	cfg, err := os.ReadFile(filepath.Join(testenv.RepoRoot(b), demoSource))
	if err != nil {
		b.Fatal(err)
	}
	for _, target := range manifest.Targets() {
		b.Run("target="+string(target), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				out, err := manifest.Generate(target, cfg, demoOptions(target))
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.ReportMetric(float64(n), "bytes/manifest")
		})
	}
}
