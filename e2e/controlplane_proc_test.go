package e2e_test

// The built `s3cors controlplane` as a process, for the tests that kill it (SIGKILL) and the
// propagation benchmark that reads its log.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// planeProc is a running `s3cors controlplane`.
type planeProc struct {
	cmd                 *exec.Cmd
	api, xds, metrics   string
	logPath             string
	exited              chan error
	configPath, dir     string
	extraArgs, extraEnv []string
}

// planeFiles writes the seed and the credentials (cpKey, every bucket) into dir.
func planeFiles(t testing.TB, dir string, seed []byte) (config, creds string) {
	t.Helper()
	config, creds = filepath.Join(dir, "seed.json"), filepath.Join(dir, "keys.json")
	if err := os.WriteFile(config, seed, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := `{"keys": [{"accessKeyId": "` + cpKey + `", "secretAccessKey": "` + cpSecret + `", "buckets": ["*"]}]}`
	if err := os.WriteFile(creds, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, creds
}

// launchPlane starts the CLI's control plane on fixed loopback ports (a restart keeps them,
// as Envoy's cluster names them) with the seed, its state per args (e.g. --state FILE), debug
// logs in JSON, and waits until /healthz answers. The test's cleanup kills it.
func launchPlane(t *testing.T, seed []byte, args, env []string) *planeProc {
	t.Helper()
	dir := t.TempDir()
	config, creds := planeFiles(t, dir, seed)
	p := &planeProc{
		api:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		xds:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		metrics: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		dir:     dir, configPath: config,
		extraArgs: append([]string{"--credentials", creds}, args...), extraEnv: env,
	}
	p.start(t)
	return p
}

// start runs the process (again, after kill) on the same addresses.
func (p *planeProc) start(t *testing.T) {
	t.Helper()
	p.logPath = filepath.Join(p.dir, fmt.Sprintf("controlplane-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"controlplane", "--config", p.configPath, "--listen", p.api, "--xds-listen", p.xds,
		"--metrics-listen", p.metrics, "--module", testenv.Module(t), "--log-level", "debug", "--log-format", "json"}, p.extraArgs...)
	p.cmd = exec.Command(realEnvoyCLI(t), args...)
	p.cmd.Env = append(os.Environ(), p.extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	p.exited = exited
	go func() { exited <- p.cmd.Wait(); logf.Close() }()
	cmd := p.cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			if len(b) > 32<<10 {
				b = b[len(b)-32<<10:]
			}
			t.Logf("control plane log (%s):\n%s", p.logPath, b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(p.logPath)
			t.Fatalf("control plane exited at start: %v\n%s", err, b)
		default:
		}
		if resp, err := http.Get("http://" + p.metrics + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("control plane not healthy after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL, as a crash or an OOM kill would, and waits for the process to be gone.
func (p *planeProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-p.exited
	p.exited <- err
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != -1 || !strings.Contains(ee.Error(), "killed") {
		t.Fatalf("control plane did not die of SIGKILL: %v", err)
	}
}

// logRecords returns the JSON log records of the current process whose msg is msg.
func (p *planeProc) logRecords(t testing.TB, msg string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// metric returns the value of an unlabelled counter or gauge from /metrics (-1 when absent).
func (p *planeProc) metric(t testing.TB, name string) float64 {
	t.Helper()
	_, body := httpGet(t, "http://"+p.metrics+"/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
