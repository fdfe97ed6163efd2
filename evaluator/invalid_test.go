package evaluator_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

var update = flag.Bool("update", false, "rewrite the golden .err files of testdata/invalid")

// TestInvalidConfigs parses each fixture of testdata/invalid and compares the error with its
// golden .err file: *.json are s3cors configurations (ParseConfig), *.xml and *.bucket.json
// bare bucket documents (ParseBucketCORS). Regenerate with make generate.
func TestInvalidConfigs(t *testing.T) {
	dir := filepath.Join("..", "testdata", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".err") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f, ".xml") || strings.HasSuffix(f, ".bucket.json") {
				_, err = evaluator.ParseBucketCORS(data)
			} else {
				_, err = evaluator.ParseConfig(data)
			}
			if err == nil {
				t.Fatal("accepted; want an error")
			}
			var ve *evaluator.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %T %v is not a *ValidationError with problems", err, err)
			}
			for _, p := range ve.Problems {
				if p.Code == "" || p.Message == "" {
					t.Errorf("problem without code or message: %+v", p)
				}
			}
			golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".err"
			if strings.HasSuffix(f, ".bucket.json") {
				golden = strings.TrimSuffix(f, ".json") + ".err"
			}
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run make generate to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
	if n == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
}
