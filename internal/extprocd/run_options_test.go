package extprocd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunOptionChecks: a negative DrainTimeout or ShutdownDelay is refused before anything
// starts, naming the field and the value; zero DrainTimeout is the documented default.
func TestRunOptionChecks(t *testing.T) {
	noLeaks(t)
	good := filepath.Join(t.TempDir(), "good.json")
	writeFile(t, good, configA)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{DrainTimeout: -time.Second}, "extprocd: Options.DrainTimeout -1s: want a positive duration"},
		{Options{ShutdownDelay: -time.Millisecond}, "extprocd: Options.ShutdownDelay -1ms: want a duration of 0 or more"},
	} {
		tc.opts.ConfigPath, tc.opts.Listen, tc.opts.Logger = good, "127.0.0.1:0", discardLogger()
		// Cancelled already: without the check Run would start, stop at once and return nil.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := Run(ctx, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run = %v, want an error with %q", err, tc.want)
		}
	}
}
