package shell_test

import (
	"testing"

	"github.com/s3cors/s3cors/internal/shell"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"testdata/demo/config.json": "testdata/demo/config.json",
		"":                          "''",
		"my configs/cors.json":      "'my configs/cors.json'",
		"$HOME/cors.json":           "'$HOME/cors.json'",
		"it's.json":                 `'it'\''s.json'`,
		"a;rm -rf b":                "'a;rm -rf b'",
		"été.json":                  "'été.json'",
	} {
		if got := shell.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
