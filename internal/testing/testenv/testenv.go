// Package testenv gives tests the artefacts they need: the repository root, the built
// s3cors.wasm module and the host's test guests. Artefacts are (re)built with the Go build
// cache, so a test never runs against a stale module and never skips for want of one; under
// CI=true a prerequisite that cannot be had fails the test.
//
// It also holds what many packages' tests share: the pinned Envoy binaries (Envoys),
// configurations (StressConfig), Eventually for conditions that become true in time, and
// SyncBuffer, a log buffer safe to read while written.
//
// Where it sits: test support (internal/testing), imported only by tests, benchmarks and other
// test support.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing prerequisite must fail.
func InCI() bool { return os.Getenv("CI") == "true" }

// RepoRoot returns the module's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testenv: cannot locate source file")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("testenv: no go.mod at %q: %w", root, err)
	}
	return root, nil
}

var (
	buildMu sync.Mutex
	built   = map[string]result{}
)

type result struct {
	path string
	err  error
}

// Module returns the path of build/s3cors.wasm, built from ./cmd/s3cors-filter first (once per
// test process). S3CORS_WASM names a prebuilt module instead.
func Module(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("S3CORS_WASM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testenv: S3CORS_WASM=%q: %v", p, err)
		}
		return p
	}
	return buildWasm(t, "./cmd/s3cors-filter", filepath.Join("build", "s3cors.wasm"))
}

// ModuleBytes is Module read into memory.
func ModuleBytes(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(Module(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Guest returns the path of a host test guest built from wasmhost/testdata/guests/<name>.
func Guest(t testing.TB, name string) string {
	t.Helper()
	return buildWasm(t, "./wasmhost/testdata/guests/"+name, filepath.Join("build", "guests", name+".wasm"))
}

// GuestBytes is Guest read into memory.
func GuestBytes(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildWasm builds a c-shared wasip1 module of pkg into out (relative to the repo root),
// atomically, so that parallel test processes never read a half-written file.
func buildWasm(t testing.TB, pkg, out string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if r, ok := built[pkg]; ok {
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.path
	}
	root := RepoRoot(t)
	dst := filepath.Join(root, out)
	err := func() error {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".building-*.wasm")
		if err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		defer func() { _ = os.Remove(tmp.Name()) }() // gone already after a successful rename
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", tmp.Name(), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if outp, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("testenv: building %s: %w\n%s", pkg, err, outp)
		}
		return os.Rename(tmp.Name(), dst)
	}()
	built[pkg] = result{dst, err}
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// StopProcess interrupts p, a child process whose exit closes exited, and waits up to grace
// for it to exit before killing it; it returns once the process is gone.
func StopProcess(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
