package extproc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

const (
	// configA allows https://a.example on bucket "site"; configB allows https://b.example.
	configA = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"]}]}}}`
	configB = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://b.example"], "AllowedMethods": ["GET"]}]}}}`
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "buckets:\n  site:\n    CORSRules:\n      - AllowedOrigins: ['https://*.*.example']\n        AllowedMethods: [PATCH]\n")
	_, err := LoadConfigFile(bad)
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("error %v, want a ValidationError with both problems", err)
	}
	if !strings.HasPrefix(err.Error(), `extproc: config "`+bad+`": `) {
		t.Errorf("error %q does not name the file", err)
	}

	syntax := filepath.Join(dir, "syntax.yaml")
	writeFile(t, syntax, "buckets: [\n")
	_, err = LoadConfigFile(syntax)
	if err == nil || !strings.Contains(err.Error(), "invalid YAML") || errors.Unwrap(err) == nil {
		t.Errorf("error %v, want invalid YAML wrapping the parser's error", err)
	}

	_, err = LoadConfigFile(filepath.Join(dir, "absent.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want one wrapping ErrNotExist", err)
	}
}

func TestLoadedPolicyHash(t *testing.T) {
	a, err := LoadConfig("a.json", []byte(configA))
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of configA's bytes, as `sha256sum` prints it.
	if !strings.HasPrefix(a.Hash, "sha256:") || len(a.Hash) != len("sha256:")+64 {
		t.Errorf("hash %q, want sha256:<64 hex>", a.Hash)
	}
	b, err := LoadConfig("a.json", []byte(configA+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash == b.Hash {
		t.Errorf("different bytes, same hash %q", a.Hash)
	}
}
