package logcut_test

import (
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/logcut"
)

func TestCut(t *testing.T) {
	short := strings.Repeat("a", logcut.Max)
	if got, cut := logcut.Cut(short); got != short || cut {
		t.Errorf("a value of Max bytes: %d bytes, cut %v; want it whole", len(got), cut)
	}
	long := strings.Repeat("a", logcut.Max+1)
	if got, cut := logcut.Cut(long); got != short || !cut {
		t.Errorf("a value one byte over: %d bytes, cut %v; want Max bytes, cut", len(got), cut)
	}
	// "€" is three bytes: the one straddling Max is dropped whole.
	euro := "x" + strings.Repeat("€", logcut.Max)
	got, cut := logcut.Cut(euro)
	if !cut || len(got) != 1+3*((logcut.Max-1)/3) || !strings.HasSuffix(got, "€") {
		t.Errorf("a value cut inside a character: %d bytes ending %q, want whole characters", len(got), got[len(got)-3:])
	}
	if got := string(logcut.AppendMark([]byte(`"a"`), 1000)); got != `"a"... (cut, 1000 bytes)` {
		t.Errorf("AppendMark: %s", got)
	}
}
