package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Envoy is one real Envoy binary the tests run against.
type Envoy struct {
	// Version is the release, as in tools/envoy/releases.txt ("1.40.0").
	Version string
	// Path is the binary: build/envoy/<Version>/envoy, or S3CORS_ENVOY.
	Path string
}

// Minor is the release's minor number (40 for 1.40.0), or 0 when the version does not parse.
func (e Envoy) Minor() int {
	var major, minor int
	if _, err := fmt.Sscanf(e.Version, "%d.%d", &major, &minor); err != nil || major != 1 {
		return 0
	}
	return minor
}

var (
	envoyOnce sync.Once
	envoys    []Envoy
	envoyErr  error
)

// Envoys returns the real Envoy binaries to test against: every release pinned in
// tools/envoy/releases.txt, fetched into build/envoy/ by tools/envoy/fetch when not there yet
// (the same step as `make envoy`), oldest first. S3CORS_ENVOY names one binary instead. A
// binary that cannot be had fails the test: real Envoy is never optional.
func Envoys(t testing.TB) []Envoy {
	t.Helper()
	envoyOnce.Do(func() { envoys, envoyErr = findEnvoys() })
	if envoyErr != nil {
		t.Fatal(envoyErr)
	}
	return envoys
}

var envoyVersionRe = regexp.MustCompile(`version: [0-9a-f]+/([0-9]+\.[0-9]+\.[0-9]+)`)

func findEnvoys() ([]Envoy, error) {
	if p := os.Getenv("S3CORS_ENVOY"); p != "" {
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("testenv: S3CORS_ENVOY=%q: %w\n%s", p, err, out)
		}
		m := envoyVersionRe.FindSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("testenv: S3CORS_ENVOY=%q: no version in %q", p, bytes.TrimSpace(out))
		}
		return []Envoy{{Version: string(m[1]), Path: p}}, nil
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	pins, err := os.Open(filepath.Join(root, "tools", "envoy", "releases.txt"))
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	defer func() { _ = pins.Close() }()
	var out []Envoy
	var missing []string
	sc := bufio.NewScanner(pins)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		e := Envoy{Version: f[0], Path: filepath.Join(root, "build", "envoy", f[0], "envoy")}
		if _, err := os.Stat(e.Path); err != nil {
			missing = append(missing, e.Version)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("testenv: tools/envoy/releases.txt: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("testenv: tools/envoy/releases.txt pins no Envoy release")
	}
	if len(missing) > 0 {
		cmd := exec.Command(filepath.Join(root, "tools", "envoy", "fetch"), missing...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("testenv: fetching Envoy %s (make envoy): %w\n%s", strings.Join(missing, ", "), err, b)
		}
	}
	return out, nil
}
