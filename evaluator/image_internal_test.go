package evaluator

import (
	"strings"
	"testing"
)

func FuzzClassify(f *testing.F) {
	for _, v := range []string{"", "GET", "PUT ", "https://*.example", "*", "a*b*c", "x-amz-*", "ETag", "a b",
		"<&>", "caf\u00e9", "\xff", "a\rb", "\x7f", strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("\u00e9", 200)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := classify(v), classifyByChecks(v); got != want {
			t.Fatalf("classify(%q) = %+v, checkRules's checks give %+v", v, got, want)
		}
	})
}
