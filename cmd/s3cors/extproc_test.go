package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/testing/controlplanetest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestExtprocStartupConfigLogged: a configuration that does not load at startup (a broken
// ConfigMap when the pod restarts) is reported through the logger, as one record in the
// chosen format with the problems as a list, as a reload refusal is; nothing else is printed,
// so a JSON log pipeline parses every line; the exit code is 1.
func TestExtprocStartupConfigLogged(t *testing.T) {
	for _, tc := range []struct {
		name, file, reason string
		problems           []string // substrings, one per problem, in order; nil: an "error" instead
	}{
		{"invalid", "bad-wildcards.json", "invalid", []string{`AllowedOrigins[0]`, `AllowedHeaders[0]`, `ExposeHeaders[0]`}},
		{"syntax", "bad-syntax.json", "invalid", []string{"invalid JSON at line 1"}},
		{"missing", "no-such-file.json", "missing", nil},
	} {
		r := runCLI(t, "extproc", "--config", filepath.Join("testdata", "in", tc.file),
			"--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json")
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", tc.name, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("%s: stderr has %d lines, want one JSON record:\n%s", tc.name, len(lines), r.stderr)
		}
		var rec struct {
			Level, Msg, File, Reason, Error string
			Problems                        []string
		}
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatalf("%s: stderr is not a JSON record: %v\n%s", tc.name, err, r.stderr)
		}
		if rec.Level != "ERROR" || rec.Msg != "configuration refused; not starting" || !strings.HasSuffix(rec.File, tc.file) || rec.Reason != tc.reason {
			t.Errorf("%s: record %+v: want level ERROR, msg %q, file %q, reason %q", tc.name, rec, "configuration refused; not starting", tc.file, tc.reason)
		}
		if tc.problems == nil {
			if rec.Error == "" || len(rec.Problems) != 0 {
				t.Errorf("%s: record %+v: want an error and no problems", tc.name, rec)
			}
			continue
		}
		if len(rec.Problems) != len(tc.problems) {
			t.Fatalf("%s: problems %q, want %d", tc.name, rec.Problems, len(tc.problems))
		}
		for i, w := range tc.problems {
			if !strings.Contains(rec.Problems[i], w) || strings.Contains(rec.Problems[i], "\n") {
				t.Errorf("%s: problem %d = %q, want one line with %q", tc.name, i, rec.Problems[i], w)
			}
		}
	}
}

// TestExtprocSIGHUP: the command turns SIGHUP into a reload of the configuration file (the
// daemon installs no signal handler of its own).
func TestExtprocSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cors.json")
	writeFile(t, path, `{"buckets": {"site": null}}`)
	stdout, stderr := new(testenv.SyncBuffer), new(testenv.SyncBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(ctx, []string{"extproc", "--config", path,
			"--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json", "--log-level", "debug"}, stdout, stderr)
	}()
	waitFor(t, stderr, regexp.MustCompile(`"msg":"s3cors ext_proc serving"`), exited)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Reloaded or, the file being the same, found unchanged: either way by the signal.
	waitFor(t, stderr, regexp.MustCompile(`"msg":"configuration file unchanged".*"trigger":"SIGHUP"`), exited)
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("extproc exited %d:\n%s", code, stderr.String())
	}
}

// TestExtprocConfigFrom: --config-from takes the configuration from a control plane's ECDS
// (here internal/controlplane's, on loopback): the command serves once it has one, named by
// where it came from; --config and --config-from together are a usage error.
func TestExtprocConfigFrom(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := controlplane.NewXDS(ctx, controlplane.Plugin{}, nil, nil)
	if err := x.Push([]byte(`{"buckets": {"site": null}}`), nil, 1); err != nil {
		t.Fatal(err)
	}
	addr := controlplanetest.Serve(t, x)

	stdout, stderr := new(testenv.SyncBuffer), new(testenv.SyncBuffer)
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(ctx, []string{"extproc", "--config-from", addr,
			"--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json"}, stdout, stderr)
	}()
	waitFor(t, stderr, regexp.MustCompile(`"msg":"s3cors ext_proc serving".*"config":"xds://`+regexp.QuoteMeta(addr)+`/s3cors"`), exited)
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("extproc exited %d:\n%s", code, stderr.String())
	}

	r := runCLI(t, "extproc", "--config", "x.json", "--config-from", addr)
	if r.code != 2 || !strings.Contains(r.stderr, "give one") {
		t.Errorf("--config with --config-from: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
}
