package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// extprocCLIBinary returns the s3cors CLI: S3CORS_CLI when set, else ./cmd/s3cors built into
// the test's temporary directory (through the build cache, so this is cheap after a build).
func extprocCLIBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("S3CORS_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("S3CORS_CLI=%q: %v", p, err)
		}
		return p
	}
	return goBinary(t, "./cmd/s3cors")
}

// goBinary builds the command pkg (a path from the repository root, "./cmd/s3cors") into the
// test's temporary directory, through the build cache.
func goBinary(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// extprocProcess is `s3cors extproc` running as a child process.
type extprocProcess struct {
	cmd         *exec.Cmd
	stderr      *extprocLog
	grpcAddr    string
	metricsAddr string
	exited      chan struct{}
	exitErr     error
}

// extprocLog collects the child's JSON log lines and reports the serving line's addresses.
type extprocLog struct {
	mu      sync.Mutex
	all     bytes.Buffer
	serving chan [2]string
	once    sync.Once
}

func (l *extprocLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.Write(p)
}

func (l *extprocLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

func (l *extprocLog) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = l.Write(append(append([]byte(nil), line...), '\n'))
		var rec struct {
			Msg           string `json:"msg"`
			Listen        string `json:"listen"`
			MetricsListen string `json:"metrics_listen"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "s3cors ext_proc serving" {
			l.once.Do(func() { l.serving <- [2]string{rec.Listen, rec.MetricsListen} })
		}
	}
}

// startExtprocCLI runs `s3cors extproc` on loopback ports of its choosing with config, logging
// at debug level, and waits until it serves; the test's cleanup kills it if it is still running.
func startExtprocCLI(t *testing.T, bin, config string) *extprocProcess {
	t.Helper()
	return startExtprocCLILevel(t, bin, config, "debug")
}

// startExtprocCLILevel is startExtprocCLI logging at the given level (at least info: the
// serving line is how the test learns the addresses).
func startExtprocCLILevel(t testing.TB, bin, config, level string) *extprocProcess {
	t.Helper()
	return startExtprocCLIFrom(t, bin, level, "--config", config)
}

// startExtprocCLIFrom is startExtprocCLILevel with the configuration's flags: --config FILE,
// or --config-from ADDR for a control plane.
func startExtprocCLIFrom(t testing.TB, bin, level string, source ...string) *extprocProcess {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"extproc"}, source...), "--listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", level)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &extprocProcess{cmd: cmd, stderr: &extprocLog{serving: make(chan [2]string, 1)}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() { p.stderr.scan(pipe); close(scanned) }()
	go func() {
		<-scanned
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case addrs := <-p.stderr.serving:
		p.grpcAddr, p.metricsAddr = addrs[0], addrs[1]
	case <-p.exited:
		t.Fatalf("s3cors extproc exited before serving: %v\n%s", p.exitErr, p.stderr)
	case <-time.After(60 * time.Second): // a hang guard
		t.Fatalf("s3cors extproc did not serve\n%s", p.stderr)
	}
	return p
}

func (p *extprocProcess) metrics(t *testing.T) string {
	t.Helper()
	_, b := httpGet(t, "http://"+p.metricsAddr+"/metrics")
	return string(b)
}

// awaitMetric polls /metrics until it contains want.
func (p *extprocProcess) awaitMetric(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for !strings.Contains(p.metrics(t), want) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q\nlog:\n%s", want, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replaceConfig writes data beside path and renames it over path, as a ConfigMap update or an
// editor does, and returns the hash the server will report for it.
func replaceConfig(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestExtprocCLI runs `s3cors extproc` as a user does and drives it as Envoy does: every
// shared case table over gRPC, the configuration switched between tables by rewriting the
// file (alternately picked up by the file watch and by SIGHUP), an invalid file refused with
// the last good configuration kept, health over gRPC, and SIGTERM ending the process with
// status 0.
func TestExtprocCLI(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join(testenv.RepoRoot(t), "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	bin := extprocCLIBinary(t)
	config := filepath.Join(t.TempDir(), "cors.json")
	replaceConfig(t, config, tables[0].Config)
	p := startExtprocCLI(t, bin, config)

	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "envoy.service.ext_proc.v3.ExternalProcessor"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v; want SERVING", resp, err)
	}
	client := extprocv3.NewExternalProcessorClient(conn)

	for i, tb := range tables {
		hash := replaceConfig(t, config, tb.Config)
		if i%2 == 1 {
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		p.awaitMetric(t, `s3cors_config_info{hash="`+hash+`"`)
		for _, c := range tb.Cases {
			got, err := extproctest.Envoy{AllowModeOverride: true}.Do(t.Context(), client, c)
			if err != nil {
				t.Errorf("%s: %s: %v", filepath.Base(tb.File), c.Name, err)
				continue
			}
			if err := c.Check(got); err != nil {
				t.Errorf("%s: %v", filepath.Base(tb.File), err)
			}
		}
	}

	last := tables[len(tables)-1]
	replaceConfig(t, config, []byte(`{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}}}`))
	p.awaitMetric(t, `s3cors_config_reload_errors_total{reason="invalid"} 1`)
	if !strings.Contains(p.stderr.String(), "Unsupported method is PATCH") {
		t.Errorf("the refused configuration's problem is not logged:\n%s", p.stderr)
	}
	c := last.Cases[0]
	if got, err := (extproctest.Envoy{AllowModeOverride: true}).Do(t.Context(), client, c); err != nil {
		t.Errorf("after a refused reload: %v", err)
	} else if err := c.Check(got); err != nil {
		t.Errorf("after a refused reload the last good configuration is not live: %v", err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second): // a hang guard
		t.Fatalf("s3cors extproc did not exit on SIGTERM\n%s", p.stderr)
	}
	if p.exitErr != nil {
		t.Errorf("s3cors extproc exited with %v after SIGTERM, want status 0\n%s", p.exitErr, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "s3cors ext_proc stopped") {
		t.Errorf("no stop line in the log:\n%s", p.stderr)
	}
}

// TestExtprocCLIRefusesInvalidConfig: a configuration that does not load is a startup error,
// logged as one structured record with every problem, and a non-zero exit status.
func TestExtprocCLIRefusesInvalidConfig(t *testing.T) {
	bin := extprocCLIBinary(t)
	config := filepath.Join(t.TempDir(), "cors.yaml")
	replaceConfig(t, config, []byte("buckets:\n  site:\n    CORSRules:\n      - AllowedOrigins: ['https://*.*.example']\n        AllowedMethods: [PATCH]\n"))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "extproc", "--config", config, "--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("s3cors extproc with an invalid config: %v, want a non-zero exit\n%s", err, out)
	}
	var rec struct {
		Msg      string
		Problems []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &rec); err != nil {
		t.Fatalf("output is not one JSON log record: %v\n%s", err, out)
	}
	all := strings.Join(rec.Problems, "\n")
	for _, want := range []string{`buckets["site"].CORSRules[0].AllowedOrigins[0]`, `buckets["site"].CORSRules[0].AllowedMethods[0]`, "PATCH"} {
		if len(rec.Problems) != 2 || !strings.Contains(all, want) {
			t.Errorf("record %q: want two problems, one naming %q:\n%s", rec.Msg, want, out)
		}
	}
}
