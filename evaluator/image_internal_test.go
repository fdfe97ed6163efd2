package evaluator

import (
	"strings"
	"testing"
)

// classifySlow is classify without its fast path: every check, as checkRules runs them.
func classifySlow(v string) stringClass {
	c := stringClass{size: uint32(min(xmlTextSize(v), maxDocBytes+1))}
	if _, bad := xmlTextFault(v); bad {
		return c
	}
	for k, check := range memberChecks {
		if _, bad := check(v); !bad {
			c.kinds |= 1 << k
		}
	}
	return c
}

func FuzzClassify(f *testing.F) {
	for _, v := range []string{"", "GET", "PUT ", "https://*.example", "*", "a*b*c", "x-amz-*", "ETag", "a b",
		"<&>", "caf\u00e9", "\xff", "a\rb", "\x7f", strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("\u00e9", 200)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := classify(v), classifySlow(v); got != want {
			t.Fatalf("classify(%q) = %+v, checkRules's checks give %+v", v, got, want)
		}
	})
}
