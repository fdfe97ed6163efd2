package extprocd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// runHandle is a Daemon serving in the background.
type runHandle struct {
	cancel  context.CancelFunc
	done    chan error
	d       *Daemon
	reloads chan ReloadResult
	logs    *testenv.SyncBuffer
	conn    *grpc.ClientConn
}

// startRun starts a Daemon on loopback listeners with the config at path, serving in the
// background. The test's cleanup cancels it and waits for Serve to return.
func startRun(t *testing.T, path string, tune func(*Options)) *runHandle {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, logs := bufferLogger(slog.LevelInfo)
	h := &runHandle{done: make(chan error, 1), reloads: make(chan ReloadResult, 64), logs: logs}
	opts := Options{ConfigPath: path, Logger: log, Listener: lis, MetricsListener: mlis}
	if tune != nil {
		tune(&opts)
	}
	h.d, err = New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.d.reloader.debounce = 20 * time.Millisecond
	h.d.reloader.onResult = func(res ReloadResult) { h.reloads <- res }
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.conn, err = grpc.NewClient(h.d.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.conn.Close() })
	return h
}

func (h *runHandle) health(t *testing.T, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := h.d.health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var preflightA = casetable.Case{
	Name: "preflight from a.example",
	Request: casetable.Request{Method: "OPTIONS", Authority: "store.local", Path: "/site/x", Headers: []casetable.Header{
		{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "GET"}}},
	Want: casetable.Want{Outcome: casetable.OutcomeReply, Status: 200, Headers: map[string]string{"access-control-allow-origin": "https://a.example"}},
}

// TestRun drives the whole process: serving over gRPC with health SERVING, metrics on HTTP,
// then shutdown with a stream in flight: health turns NOT_SERVING, /readyz 503, the stream is
// allowed to finish, and only then does Run return.
func TestRun(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, configA)
	h := startRun(t, path, nil)
	client := extprocv3.NewExternalProcessorClient(h.conn)

	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", "envoy.service.ext_proc.v3.ExternalProcessor"} {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q over gRPC: %v, %v; want SERVING", svc, resp, err)
		}
	}

	got, err := extproctest.Envoy{AllowModeOverride: true}.Do(t.Context(), client, preflightA)
	if err != nil {
		t.Fatal(err)
	}
	if err := preflightA.Check(got); err != nil {
		t.Error(err)
	}

	base := "http://" + h.d.MetricsAddr().String()
	code, body := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`s3cors_decisions_total{outcome="reply",reason="allowed"} 1`,
		`s3cors_config_info{hash="` + h.d.Policy().Hash + `",source="` + path + `"} 1`,
		`s3cors_config_last_reload_successful 1`,
		`s3cors_extproc_message_duration_seconds_count{phase="request_headers"} 1`,
		`s3cors_extproc_stream_duration_seconds_count 1`,
		`s3cors_config_reload_errors_total{reason="invalid"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d while serving, want 200", code)
	}

	// An actual request whose upstream has not answered yet.
	ctx, cancelStream := context.WithCancel(t.Context())
	defer cancelStream()
	st := openActual(t, ctx, client)

	h.cancel()
	testenv.Eventually(t, "health NOT_SERVING after shutdown began", func() bool {
		return h.health(t, "") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if code, _ := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d during shutdown, want 503", code)
	}
	if s := h.health(t, "envoy.service.ext_proc.v3.ExternalProcessor"); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("ext_proc service health %v during shutdown, want NOT_SERVING", s)
	}
	select {
	case err := <-h.done:
		h.done <- err
		t.Fatal("Run returned with a stream still open")
	default:
	}

	if err := st.Send(respHeaders(":status", "200")); err != nil {
		t.Fatalf("in-flight stream cut at shutdown: %v", err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatalf("in-flight stream cut at shutdown: %v", err)
	}
	if resp.GetResponseHeaders().GetResponse().GetHeaderMutation() == nil {
		t.Errorf("in-flight stream's response not decorated: %v", resp)
	}
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	h.done <- nil
	if !strings.Contains(h.logs.String(), "s3cors ext_proc stopped") {
		t.Errorf("no stop log:\n%s", h.logs)
	}
}

// TestRunDrainTimeout: a stream that never finishes is cut after DrainTimeout.
func TestRunDrainTimeout(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, configA)
	h := startRun(t, path, func(o *Options) { o.DrainTimeout = 50 * time.Millisecond })
	st := openActual(t, t.Context(), extprocv3.NewExternalProcessorClient(h.conn))
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	h.done <- nil
	if _, err := st.Recv(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("stream still open after the drain timeout: %v", err)
	}
	if !strings.Contains(h.logs.String(), "drain timed out") {
		t.Errorf("no drain timeout log:\n%s", h.logs)
	}
}

// TestDaemonReload: Reload re-reads the file at once, while serving, and says what it did;
// the file watch is not needed for it (the file is rewritten in place and Reload called
// straight away, whatever the watch does meanwhile).
func TestDaemonReload(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, configA)
	h := startRun(t, path, nil)
	writeFile(t, path, configB)
	res := h.d.Reload(t.Context(), "test")
	if res.Trigger != "test" || res.Refused != "" || res.Err != nil {
		t.Errorf("Reload = %+v, want a reload triggered by test, not refused", res)
	}
	if got := allowedOrigin(t, h.d.holder); got != "https://b.example" {
		t.Errorf("after Reload the live policy allows %q, want https://b.example", got)
	}
	writeFile(t, path, configBad)
	if res := h.d.Reload(t.Context(), "test"); res.Refused != reloadInvalid || res.Swapped {
		t.Errorf("Reload of a bad file = %+v, want refused as invalid", res)
	}
	if got := allowedOrigin(t, h.d.holder); got != "https://b.example" {
		t.Errorf("after a refused Reload the live policy allows %q, want https://b.example", got)
	}
}

func TestRunStartupErrors(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, configBad)
	good := filepath.Join(dir, "good.json")
	writeFile(t, good, configA)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"invalid config lists every problem", Options{ConfigPath: bad, Listen: "127.0.0.1:0"},
			[]string{bad, `buckets["site"].CORSRules[0].AllowedOrigins[0]`, `buckets["site"].CORSRules[0].AllowedMethods[0]`}},
		{"missing config", Options{ConfigPath: filepath.Join(dir, "nope.yaml"), Listen: "127.0.0.1:0"},
			[]string{"extprocd: reading config", "nope.yaml"}},
		{"no config", Options{}, []string{"extprocd: no configuration file given"}},
		{"address in use", Options{ConfigPath: good, Listen: busy.Addr().String()},
			[]string{`extprocd: listening on "` + busy.Addr().String() + `"`}},
		{"metrics address in use", Options{ConfigPath: good, Listen: "127.0.0.1:0", MetricsListen: busy.Addr().String()},
			[]string{`extprocd: metrics listening on "` + busy.Addr().String() + `"`}},
	} {
		tc.opts.Logger = discardLogger()
		err := Run(t.Context(), tc.opts)
		if err == nil {
			t.Errorf("%s: Run succeeded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

// TestRunStartupConfigLogged: a configuration that does not load at startup is logged as a
// reload refusal is, one record at error with the file, the reason and the problems as a
// list, and returned as a *ConfigLoadError with the same reason, so the CLI does not print it
// a second time.
func TestRunStartupConfigLogged(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, configBad)
	for _, tc := range []struct {
		name, path, reason string
		problems           int // 0: an "error" attribute instead
	}{
		{"invalid", bad, reloadInvalid, 2},
		{"missing", filepath.Join(dir, "nope.json"), reloadMissing, 0},
		{"unreadable", dir, reloadUnreadable, 0}, // a directory cannot be read as a file
	} {
		logs := new(testenv.SyncBuffer)
		log := slog.New(slog.NewJSONHandler(logs, nil))
		err := Run(t.Context(), Options{ConfigPath: tc.path, Listen: "127.0.0.1:0", Logger: log})
		var ce *ConfigLoadError
		if !errors.As(err, &ce) || ce.Reason != tc.reason || ce.Path != tc.path || ce.Err == nil {
			t.Errorf("%s: Run returned %#v, want a *ConfigLoadError with reason %q", tc.name, err, tc.reason)
		}
		lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("%s: %d log records, want one:\n%s", tc.name, len(lines), logs)
		}
		var rec struct {
			Level, Msg, File, Reason, Error string
			Problems                        []string
		}
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, lines[0])
		}
		if rec.Level != "ERROR" || rec.Msg != "configuration refused; not starting" || rec.File != tc.path || rec.Reason != tc.reason {
			t.Errorf("%s: record %+v", tc.name, rec)
		}
		if len(rec.Problems) != tc.problems || (tc.problems == 0) != (rec.Error != "") {
			t.Errorf("%s: record %+v: want %d problems, or an error when 0", tc.name, rec, tc.problems)
		}
	}
}

// TestProblemListText: in text logs a configuration's problems are joined by "; ", not
// printed as Go's "[a b]", where problems containing spaces run together.
func TestProblemListText(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.LogAttrs(t.Context(), slog.LevelError, "refused", appendLoadError(nil, &evaluator.ValidationError{Problems: []evaluator.Problem{{Path: "a", Code: "C", Message: "one two"}, {Path: "b", Code: "C", Message: "three"}}})...)
	if got := buf.String(); !strings.Contains(got, `problems="a: C: one two; b: C: three"`) || strings.Contains(got, "[") {
		t.Errorf("text record %q: want the problems joined by \"; \"", got)
	}
}

// openActual opens a stream on client and sends it an actual request's headers, answered; the
// stream then waits for its upstream's response.
func openActual(t *testing.T, ctx context.Context, client extprocv3.ExternalProcessorClient) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	st, err := client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	actual := casetable.Request{Method: "GET", Authority: "store.local", Path: "/site/x", Headers: []casetable.Header{{"Origin", "https://a.example"}}}
	if err := st.Send(extproctest.RequestHeaders(actual)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	return st
}
