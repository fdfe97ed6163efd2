package wasmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// profilesUnderTest are the profiles every table-driven test runs under.
var profilesUnderTest = []Profile{Envoy133, Envoy139}

var (
	cacheOnce sync.Once
	testCache wazero.CompilationCache
)

// compilationCache is shared by every Host of the test process, and kept on disk under
// build/ so that repeated runs skip the compiler (a Go guest takes about a second to compile).
func compilationCache(t testing.TB) wazero.CompilationCache {
	t.Helper()
	cacheOnce.Do(func() {
		dir := filepath.Join(testenv.RepoRoot(t), "build", "wazero-cache")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
				testCache = c
				return
			}
		}
		testCache = wazero.NewCompilationCache()
	})
	return testCache
}

// newHost starts a host on a test guest and closes it with the test.
func newHost(t testing.TB, guest string, opts Options) *Host {
	t.Helper()
	h, err := tryHost(t, guest, opts)
	if err != nil {
		t.Fatalf("New(%s, %s): %v", guest, opts.Profile, err)
	}
	return h
}

func tryHost(t testing.TB, guest string, opts Options) (*Host, error) {
	t.Helper()
	opts.Module = testenv.GuestBytes(t, guest)
	opts.CompilationCache = compilationCache(t)
	h, err := New(context.Background(), opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h, nil
}

// loadErr unwraps a *LoadError.
func loadErr(t testing.TB, err error) *LoadError {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v is not a *LoadError", err)
	}
	return le
}

// messages returns the recorded messages, optionally only those of one VM.
func messages(h *Host, vm string) []string {
	var out []string
	for _, e := range h.Logs() {
		if vm == "" || e.VM == vm {
			out = append(out, e.Message)
		}
	}
	return out
}

// lastLine returns the last message starting with prefix, failing the test if there is none.
func lastLine(t testing.TB, h *Host, prefix string) string {
	t.Helper()
	ms := messages(h, "")
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.HasPrefix(ms[i], prefix) {
			return ms[i]
		}
	}
	t.Fatalf("no log line starts with %q; logs:\n%s", prefix, strings.Join(ms, "\n"))
	return ""
}

// hasLine reports whether some message contains substr.
func hasLine(h *Host, substr string) bool {
	for _, m := range messages(h, "") {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// countLines counts the messages starting with prefix.
func countLines(h *Host, prefix string) int {
	n := 0
	for _, m := range messages(h, "") {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// req builds request headers for a GET with the probe scenario.
func req(scenario string, extra ...[2]string) Headers {
	h := Headers{{":method", "GET"}, {":path", "/p"}, {":authority", "example.com"}, {":scheme", "http"}}
	if scenario != "" {
		h = append(h, [2]string{"x-probe", scenario})
	}
	return append(h, extra...)
}

func equalHeaders(a, b Headers) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
