package extprocd

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

const (
	// configA allows https://a.example on bucket "site"; configB allows https://b.example.
	configA = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"]}]}}}`
	configB = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://b.example"], "AllowedMethods": ["GET"]}]}}}`
	// configC is YAML and allows https://c.example.
	configC = "buckets:\n  site:\n    CORSRules:\n      - AllowedOrigins: [\"https://c.example\"]\n        AllowedMethods: [GET]\n"
	// configBad has two problems; both must be reported.
	configBad = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://*.*.example"], "AllowedMethods": ["PATCH"]}]}}}`
)

// allowedOrigin reports which of a, b and c the live policy allows to GET from bucket "site".
func allowedOrigin(t testing.TB, h *extproc.PolicyHolder) string {
	t.Helper()
	var allowed []string
	for _, o := range []string{"https://a.example", "https://b.example", "https://c.example"} {
		var d evaluator.Decision
		h.Load().Policy.Evaluate(&evaluator.Request{
			Method: "OPTIONS", Authority: "store.local", Path: "/site/x",
			Origin: o, HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true,
		}, &d)
		if d.Reason == evaluator.ReasonAllowed {
			allowed = append(allowed, o)
		}
	}
	return strings.Join(allowed, ",")
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content beside path and renames it over path, as editors and config
// management tools do: the file's inode changes.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newTestReloader(t testing.TB, path string) (*reloader, *testenv.SyncBuffer) {
	t.Helper()
	lp, err := extproc.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	m.configLoaded(lp, false)
	log, buf := bufferLogger(slog.LevelDebug)
	return &reloader{path: path, holder: extproc.NewPolicyHolder(lp), metrics: m, log: log, debounce: 20 * time.Millisecond}, buf
}

func TestReload(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, configA)
	r, logs := newTestReloader(t, path)
	ctx := t.Context()
	m := r.metrics

	step := func(name, wantAllowed string, wantSwapped bool, wantRefused string) {
		t.Helper()
		res := r.reload(ctx, "test")
		if res.Swapped != wantSwapped || res.Refused != wantRefused {
			t.Errorf("%s: reload = %+v, want swapped %v refused %q", name, res, wantSwapped, wantRefused)
		}
		if got := allowedOrigin(t, r.holder); got != wantAllowed {
			t.Errorf("%s: live policy allows %q, want %q", name, got, wantAllowed)
		}
	}

	writeFile(t, path, configB)
	step("good file", "https://b.example", true, "")
	if got := testutil.ToFloat64(m.reloads); got != 1 {
		t.Errorf("s3cors_config_reloads_total = %v, want 1", got)
	}
	liveB := r.holder.Load().Hash
	if got := testutil.ToFloat64(m.configInfo.WithLabelValues(liveB, path)); got != 1 {
		t.Errorf("s3cors_config_info{hash=%q} = %v, want 1", liveB, got)
	}
	if n := testutil.CollectAndCount(m.configInfo); n != 1 {
		t.Errorf("s3cors_config_info has %d series, want only the live one", n)
	}

	writeFile(t, path, configBad)
	step("invalid file", "https://b.example", false, reloadInvalid)
	if got := testutil.ToFloat64(m.reloadErrors.WithLabelValues(reloadInvalid)); got != 1 {
		t.Errorf("reload errors{invalid} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.lastReloadOK); got != 0 {
		t.Errorf("s3cors_config_last_reload_successful = %v after a refused reload, want 0", got)
	}
	for _, want := range []string{"configuration reload refused", `AllowedOrigins[0]`, `AllowedMethods[0]`, "PATCH", "live_hash=" + liveB} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("refusal log lacks %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs.String(), "PATCH"); n != 1 {
		t.Errorf("refusal log names the bad method %d times, want once (problems listed once):\n%s", n, logs)
	}

	writeFile(t, path, "buckets: [unclosed\n")
	step("invalid YAML", "https://b.example", false, reloadInvalid)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	step("deleted file", "https://b.example", false, reloadMissing)
	step("still deleted", "https://b.example", false, reloadMissing)
	if n := strings.Count(logs.String(), "configuration file is gone"); n != 1 {
		t.Errorf("missing file logged %d times, want once per disappearance", n)
	}

	writeFile(t, path, configB)
	step("the live file again", "https://b.example", false, "")
	if got := testutil.ToFloat64(m.lastReloadOK); got != 1 {
		t.Errorf("s3cors_config_last_reload_successful = %v once the live file is back, want 1", got)
	}

	yamlPath := filepath.Join(filepath.Dir(path), "config.yaml")
	writeFile(t, yamlPath, configC)
	r.path = yamlPath
	step("YAML file", "https://c.example", true, "")
}

// awaitReload waits for a reload result that satisfies ok, skipping others (an editor's
// change can take several events, some of which find nothing new).
func awaitReload(t *testing.T, results <-chan ReloadResult, what string, ok func(ReloadResult) bool) ReloadResult {
	t.Helper()
	deadline := time.After(30 * time.Second) // a hang guard, not a performance bound
	for {
		select {
		case res := <-results:
			if ok(res) {
				return res
			}
		case <-deadline:
			t.Fatalf("no reload for %s", what)
		}
	}
}

func swapped(res ReloadResult) bool { return res.Swapped }

func startWatch(t *testing.T, r *reloader) <-chan ReloadResult {
	t.Helper()
	results := make(chan ReloadResult, 64)
	r.onResult = func(res ReloadResult) { results <- res }
	watching := make(chan struct{})
	r.onWatching = func() { close(watching) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	select {
	case <-watching:
	case err := <-done:
		t.Fatalf("watch ended before watching: %v", err)
	}
	return results
}

func TestWatchFile(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, configA)
	r, _ := newTestReloader(t, path)
	results := startWatch(t, r)

	replaceFile(t, path, configB)
	awaitReload(t, results, "rename-replace", func(res ReloadResult) bool { return res.Swapped && allowedOrigin(t, r.holder) == "https://b.example" })

	writeFile(t, path, configA)
	awaitReload(t, results, "in-place write", func(res ReloadResult) bool { return res.Swapped && allowedOrigin(t, r.holder) == "https://a.example" })

	replaceFile(t, path, configBad)
	awaitReload(t, results, "invalid file", func(res ReloadResult) bool { return res.Refused == reloadInvalid })
	if got := allowedOrigin(t, r.holder); got != "https://a.example" {
		t.Errorf("after an invalid file the live policy allows %q, want the last good one", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	awaitReload(t, results, "deletion", func(res ReloadResult) bool { return res.Refused == reloadMissing })
	if got := allowedOrigin(t, r.holder); got != "https://a.example" {
		t.Errorf("after deletion the live policy allows %q, want the last good one", got)
	}

	writeFile(t, path, configB)
	awaitReload(t, results, "re-creation", swapped)
	if got := allowedOrigin(t, r.holder); got != "https://b.example" {
		t.Errorf("after re-creation the live policy allows %q", got)
	}
}

// TestWatchConfigMap replays Kubernetes' atomic writer: the file is a symlink through
// "..data" to a timestamped directory, and an update swaps "..data" to a new directory.
func TestWatchConfigMap(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	generation := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "config.yaml"), content)
	}
	swap := func(name string) {
		t.Helper()
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	generation("..2026_01", configA)
	swap("..2026_01")
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	r, _ := newTestReloader(t, path)
	results := startWatch(t, r)

	next := []struct{ gen, content, want string }{
		{"..2026_02", configB, "https://b.example"},
		{"..2026_03", configC, "https://c.example"},
		{"..2026_04", configA, "https://a.example"},
	}
	prev := "..2026_01"
	for _, n := range next {
		generation(n.gen, n.content)
		swap(n.gen)
		if err := os.RemoveAll(filepath.Join(dir, prev)); err != nil {
			t.Fatal(err)
		}
		prev = n.gen
		awaitReload(t, results, "ConfigMap update to "+n.gen, func(res ReloadResult) bool {
			return res.Swapped && allowedOrigin(t, r.holder) == n.want
		})
	}
}
