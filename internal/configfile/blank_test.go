package configfile_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
)

// TestJSONBlank: a blank file, in either syntax, reads as no document, which the evaluator
// refuses with its own "empty" problem, not JSON's "unexpected end of input" or YAML's null;
// a YAML file that says null is still null.
func TestJSONBlank(t *testing.T) {
	_, empty := evaluator.ParseConfig(nil)
	var want *evaluator.ValidationError
	if !errors.As(empty, &want) || len(want.Problems) != 1 {
		t.Fatalf("ParseConfig(nil) = %v, want one problem", empty)
	}
	for _, tc := range []struct{ name, data string }{
		{"config.json", ""},
		{"config.json", " \n\t\r\n"},
		{"config.json", "\ufeff"},
		{"config.yaml", ""},
		{"config.yaml", "\n\n"},
		{"config.yaml", " \n\t\n"}, // a tab YAML refuses as indentation
		{"config.yaml", "\ufeff"},
		{"config.yaml", "# buckets: {}\n  # nothing else\n"},
		{"config.yml", "\ufeff# a comment\n"},
		{"config.yaml", "---\n"},
		{"config.yaml", "--- # a comment\n"},
		{"config", "# no extension: read as YAML\n"},
		{"config", ""},
	} {
		doc, err := configfile.JSON(tc.name, []byte(tc.data))
		if err != nil || len(bytes.TrimSpace(doc)) != 0 {
			t.Errorf("JSON(%q, %q) = %q, %v; want blank input, not a document", tc.name, tc.data, doc, err)
		}
		_, err = evaluator.ParseConfig(doc)
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0] != want.Problems[0] {
			t.Errorf("ParseConfig(JSON(%q, %q)) = %v, want the one problem %q", tc.name, tc.data, err, want.Problems[0])
		}
	}
	for _, data := range []string{"null\n", "~\n", "--- null\n", "# a comment\nnull\n"} {
		doc, err := configfile.JSON("config.yaml", []byte(data))
		if err != nil || string(doc) != "null" {
			t.Errorf("JSON(%q) = %q, %v; want null", data, doc, err)
		}
		_, err = evaluator.ParseConfig(doc)
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Message != "the configuration must be a JSON object, not null" {
			t.Errorf("ParseConfig(JSON(%q)) = %v, want a JSON object asked for", data, err)
		}
	}
}
