package manifest_test

import (
	"errors"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/manifest"
)

// TestBlankConfiguration: a configuration with nothing in it (blanks, a byte-order mark, YAML
// comments) is refused with the evaluator's "empty" problem, as every other surface refuses
// it, not as invalid JSON or a null document.
func TestBlankConfiguration(t *testing.T) {
	_, empty := evaluator.ParseConfig(nil)
	var want *evaluator.ValidationError
	if !errors.As(empty, &want) || len(want.Problems) != 1 {
		t.Fatalf("ParseConfig(nil) = %v, want one problem", empty)
	}
	for _, tc := range []struct{ source, cfg string }{
		{"", ""},
		{"cors.json", " \n"},
		{"cors.json", "\ufeff"},
		{"", "\ufeff\n"},
		{"cors.yaml", "# buckets: {}\n"},
		{"cors.yml", "--- # nothing after the marker\n"},
	} {
		_, err := manifest.Generate(manifest.EnvoyWasm, []byte(tc.cfg), manifest.Options{Source: tc.source})
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0] != want.Problems[0] {
			t.Errorf("Generate(%q from %q) = %v, want the one problem %q", tc.cfg, tc.source, err, want.Problems[0])
		}
	}
}
