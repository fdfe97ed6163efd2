package filter_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestPrometheusNamesAsEnvoyEmitsThem: every document that names the filter's metrics in
// Prometheus form uses what Envoy's /stats/prometheus really emits for a Wasm custom stat: the
// wasmcustom namespace stripped and no envoy_ prefix (Envoy PR 17357), so
// s3cors.preflight.allowed is s3cors_preflight_allowed. An alert written against
// envoy_wasmcustom_s3cors_* would never fire.
func TestPrometheusNamesAsEnvoyEmitsThem(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, f := range []string{"RATIONALE.md", "docs/deploy.md", "filter/metrics.go"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, wrong := range []string{"envoy_wasmcustom", "wasmcustom_"} {
			if i := strings.Index(string(data), wrong); i >= 0 {
				t.Errorf("%s names a Prometheus series with %q, which Envoy does not emit: %q", f, wrong, line(string(data), i))
			}
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(filter.MetricNames[0], ".", "_"); !strings.Contains(string(doc), "`"+want+"`") {
		t.Errorf("docs/deploy.md does not give the Prometheus name `%s` of %s", want, filter.MetricNames[0])
	}
}

// line returns the line of s around offset i.
func line(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}
