package extproc_test

import (
	"errors"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// TestLoadConfigBlank: a blank file, in either syntax, is refused with the evaluator's own
// "empty" problem; a YAML file that says null is still null.
func TestLoadConfigBlank(t *testing.T) {
	_, empty := evaluator.ParseConfig(nil)
	var want *evaluator.ValidationError
	if !errors.As(empty, &want) || len(want.Problems) != 1 {
		t.Fatalf("ParseConfig(nil) = %v, want one problem", empty)
	}
	// configfile.TestJSONBlank has every form of blank; one of each syntax shows LoadConfig
	// reads through it.
	for _, tc := range []struct{ name, data string }{
		{"config.json", " \n\t\r\n"},
		{"config.yaml", "# buckets: {}\n  # nothing else\n"},
		{"config", ""},
	} {
		_, err := extproc.LoadConfig(tc.name, []byte(tc.data))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0] != want.Problems[0] {
			t.Errorf("LoadConfig(%q, %q) = %v, want the one problem %q", tc.name, tc.data, err, want.Problems[0])
		}
	}
	for _, data := range []string{"null\n", "~\n"} {
		_, err := extproc.LoadConfig("config.yaml", []byte(data))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Message != "the configuration must be a JSON object, not null" {
			t.Errorf("LoadConfig(%q) = %v, want a JSON object asked for", data, err)
		}
	}
}
