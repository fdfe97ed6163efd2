package extprocd

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/testing/controlplanetest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// startControlPlane serves a control plane's ECDS (internal/controlplane.XDS) on loopback
// until the test ends, with doc pushed.
func startControlPlane(t *testing.T, doc string) (*controlplane.XDS, string, *controlplane.Metrics) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := controlplane.NewMetrics()
	x := controlplane.NewXDS(ctx, controlplane.Plugin{}, m, nil)
	if err := x.Push([]byte(doc), nil, 1); err != nil {
		t.Fatal(err)
	}
	return x, controlplanetest.Serve(t, x), m
}

// TestConfigFromControlPlane: with ConfigFrom the daemon takes its configuration from a
// control plane's ECDS, as the wasm filter's Envoys do: the first one before it serves, every
// push after while serving; a push that does not load is refused and counted, the last good
// configuration staying live, and the next good one is taken. Reload has no file to read.
func TestConfigFromControlPlane(t *testing.T) {
	noLeaks(t)
	x, addr, cpMetrics := startControlPlane(t, configA)
	log, logs := bufferLogger(slog.LevelInfo)
	d, err := New(t.Context(), Options{ConfigFrom: addr, Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan ReloadResult, 16)
	d.xds.onResult = func(res ReloadResult) { results <- res }
	if got := allowedOrigin(t, d.holder); got != "https://a.example" {
		t.Fatalf("first configuration allows %q, want https://a.example", got)
	}
	if src := d.Policy().Source; src != "xds://"+addr+"/s3cors" {
		t.Errorf("source %q, want xds://%s/s3cors", src, addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	if err := x.Push([]byte(configB), nil, 2); err != nil {
		t.Fatal(err)
	}
	awaitReload(t, results, "configB", func(r ReloadResult) bool { return r.Swapped })
	if got := allowedOrigin(t, d.holder); got != "https://b.example" {
		t.Errorf("after a push the live configuration allows %q, want https://b.example", got)
	}

	if err := x.Push([]byte(configBad), nil, 3); err != nil {
		t.Fatal(err)
	}
	awaitReload(t, results, "configBad refused", func(r ReloadResult) bool { return r.Refused == reloadInvalid })
	if got := allowedOrigin(t, d.holder); got != "https://b.example" {
		t.Errorf("after a bad push the live configuration allows %q, want https://b.example", got)
	}
	if got := testutil.ToFloat64(d.metrics.reloadErrors.WithLabelValues(reloadInvalid)); got != 1 {
		t.Errorf("s3cors_config_reload_errors_total{reason=\"invalid\"} = %v, want 1", got)
	}
	testenv.Eventually(t, "the control plane saw the refusal (a NACK)", func() bool {
		return controlplanetest.Metric(t, cpMetrics.Registry(), "s3cors_controlplane_xds_nacks_total").GetCounter().GetValue() == 1
	})
	if !strings.Contains(logs.String(), "configuration from the control plane refused") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}

	if res := d.Reload(t.Context(), "SIGHUP"); res.Err == nil || res.Swapped {
		t.Errorf("Reload with a control plane = %+v, want an error saying there is no file", res)
	}
}

// TestLoadDocumentImage: a plugin configuration that is a compiled policy image is loaded as
// one, as the wasm filter loads it.
func TestLoadDocumentImage(t *testing.T) {
	cfg, err := evaluator.ParseConfig([]byte(configB))
	if err != nil {
		t.Fatal(err)
	}
	img, err := evaluator.CompileImage(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadDocument("xds://cp/s3cors", img)
	if err != nil {
		t.Fatal(err)
	}
	if got := allowedOrigin(t, extproc.NewPolicyHolder(p)); got != "https://b.example" || p.Source != "xds://cp/s3cors" {
		t.Errorf("image loaded as %q from %q, want https://b.example from xds://cp/s3cors", got, p.Source)
	}
	if _, err := loadDocument("xds://cp/s3cors", img[:len(img)-1]); err == nil {
		t.Error("a truncated image loaded")
	}
}

// TestConfigFromWaitsForControlPlane: New waits for a first configuration that loads; when ctx
// ends first, it says so and leaves nothing running.
func TestConfigFromWaitsForControlPlane(t *testing.T) {
	noLeaks(t)
	_, addr, _ := startControlPlane(t, configBad)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := New(ctx, Options{ConfigFrom: addr, Listen: "127.0.0.1:0", Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "no configuration from the control plane") {
		t.Errorf("New = %v, want no configuration from the control plane", err)
	}
	_, err = New(t.Context(), Options{ConfigFrom: addr, ConfigPath: "x.json", Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "want one") {
		t.Errorf("New with a file and a control plane = %v, want a refusal", err)
	}
}

// TestConfigFromWarnsOfAnUnknownName: a control plane never answers a resource name it does
// not serve, so New waits; it says so in the log instead of waiting in silence.
func TestConfigFromWarnsOfAnUnknownName(t *testing.T) {
	noLeaks(t)
	defer func(d time.Duration) { xdsQuietWarning = d }(xdsQuietWarning)
	xdsQuietWarning = 50 * time.Millisecond
	_, addr, _ := startControlPlane(t, configA)
	log, logs := bufferLogger(slog.LevelInfo)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := New(ctx, Options{ConfigFrom: addr, ConfigName: "not-the-filter", Listen: "127.0.0.1:0", Logger: log})
	if err == nil {
		t.Fatal("New with an unknown --config-name returned a daemon")
	}
	if !strings.Contains(logs.String(), "is --config-name the control plane's --filter-name?") || !strings.Contains(logs.String(), "not-the-filter") {
		t.Errorf("log has no warning naming the configuration:\n%s", logs.String())
	}
}
