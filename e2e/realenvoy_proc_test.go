package e2e_test

// A real Envoy process the lifecycle, failure and stress tests can watch from outside: its
// exit, its admin interface (stats, listeners), its RSS, and listeners delivered over LDS from
// a watched file, so that a configuration can be pushed to it while it serves.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// envoyProc is a running (or exited) Envoy started by launchEnvoy.
type envoyProc struct {
	pid     int
	logPath string
	admin   string        // host:port of the admin interface, once known
	exited  chan struct{} // closed when the process has exited
	exitErr error         // valid after exited is closed
}

// launchEnvoy starts bin with the bootstrap and returns without waiting for it; the process is
// stopped when the test ends and its log shown if the test failed. workers is Envoy's
// --concurrency: one VM per worker.
func launchEnvoy(t *testing.T, bin string, bootstrap []byte, workers int) *envoyProc {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "envoy.json")
	adminPath := filepath.Join(dir, "admin-address")
	p := &envoyProc{logPath: filepath.Join(dir, "envoy.log"), exited: make(chan struct{})}
	if err := os.WriteFile(cfgPath, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfgPath, "--admin-address-path", adminPath,
		"--concurrency", strconv.Itoa(workers), "--disable-hot-restart", "--log-level", "warn", "--component-log-level", "wasm:info",
		// Access log lines are read back by tests: flush them every 100 ms, not every 10 s.
		"--file-flush-interval-msec", "100")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	go func() { p.exitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		logf.Close()
		if t.Failed() {
			log := p.log()
			if len(log) > 64<<10 { // the access log of a long run
				log = "...\n" + log[len(log)-64<<10:]
			}
			t.Logf("envoy log:\n%s", log)
		}
	})
	// The admin address file is written once the admin interface listens, before any
	// listener: poll it alongside the process.
	deadline := time.Now().Add(2 * time.Minute)
	for p.admin == "" && time.Now().Before(deadline) {
		if b, err := os.ReadFile(adminPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
			p.admin = string(bytes.TrimSpace(b))
			break
		}
		select {
		case <-p.exited:
			return p
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

// log returns what Envoy has written so far.
func (p *envoyProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// waitLive waits until /ready says LIVE; it fails the test when Envoy exits first or does not
// get there within two minutes (startup compiles the module in V8 once per VM).
func (p *envoyProc) waitLive(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-p.exited:
			t.Fatalf("envoy exited during startup: %v\n%s", p.exitErr, p.log())
		default:
		}
		if p.admin != "" {
			if resp, err := http.Get("http://" + p.admin + "/ready"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "LIVE" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy not LIVE after 2 minutes (admin %q)", p.admin)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits up to two minutes for Envoy to exit on its own and reports whether it did.
func (p *envoyProc) waitExit() bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(2 * time.Minute):
		return false
	}
}

// adminGet fetches an admin path.
func (p *envoyProc) adminGet(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		t.Fatalf("envoy admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("envoy admin %s: %d %v\n%s", path, resp.StatusCode, err, b)
	}
	return b
}

var statLineRe = regexp.MustCompile(`^([^:\s]+): (-?[0-9]+)$`)

// stats returns Envoy's counters and gauges by name (/stats, text form; histograms are left
// out).
func (p *envoyProc) stats(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(p.adminGet(t, "/stats")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := statLineRe.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			out[m[1]] = n
		}
	}
	return out
}

// listeners returns the address of each active listener by name.
func (p *envoyProc) listeners(t *testing.T) map[string]string {
	t.Helper()
	body := p.adminGet(t, "/listeners?format=json")
	var ls adminv3.Listeners
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &ls); err != nil {
		t.Fatalf("envoy /listeners: %v\n%s", err, body)
	}
	out := map[string]string{}
	for _, st := range ls.GetListenerStatuses() {
		sa := st.GetLocalAddress().GetSocketAddress()
		out[st.GetName()] = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}
	return out
}

// rssKiB is Envoy's resident set size (VmRSS in /proc/<pid>/status), in KiB.
func (p *envoyProc) rssKiB() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.pid)
}

// wasmBootstrap is envoy/wasm.yaml's bootstrap with one listener "s3-0" carrying the plugin
// configuration config, the module at module and the store at upstream, as TestRealEnvoy
// derives it.
func wasmBootstrap(t *testing.T, config []byte, module, upstream string) *bootstrapv3.Bootstrap {
	t.Helper()
	js := realEnvoyBootstrap(t, "wasm.yaml", []casetable.Table{{Name: "lifecycle", Config: config}}, upstream, module, nil)
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func marshalBootstrap(t *testing.T, b *bootstrapv3.Bootstrap) []byte {
	t.Helper()
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// freePort returns a loopback port nothing listens on right now. A listener delivered over LDS
// keeps its address across updates, so it gets a fixed port rather than an ephemeral one.
func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

// toLDS moves b's static listeners to an LDS file in a watched directory (Envoy's
// path_config_source with watched_directory, which reloads the file when it is moved into
// place) and writes the listeners there; the returned function replaces the file atomically
// (write a temporary file in the directory, rename it over the old one) with new listeners.
func toLDS(t *testing.T, b *bootstrapv3.Bootstrap) func(t *testing.T, ls ...*listenerv3.Listener) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lds.json")
	push := func(t *testing.T, ls ...*listenerv3.Listener) {
		t.Helper()
		resp := &discoveryv3.DiscoveryResponse{VersionInfo: strconv.FormatInt(time.Now().UnixNano(), 10)}
		for _, l := range ls {
			a, err := anypb.New(l)
			if err != nil {
				t.Fatal(err)
			}
			resp.Resources = append(resp.Resources, a)
		}
		js, err := protojson.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := os.CreateTemp(dir, ".lds-*.json")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmp.Write(js); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			t.Fatal(err)
		}
	}
	push(t, b.GetStaticResources().GetListeners()...)
	b.StaticResources.Listeners = nil
	// Envoy wants a node identity for any xDS source, a file too.
	b.Node = &corev3.Node{Id: "s3cors-e2e", Cluster: "s3cors-e2e"}
	b.DynamicResources = &bootstrapv3.Bootstrap_DynamicResources{LdsConfig: &corev3.ConfigSource{
		ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{
			Path: path, WatchedDirectory: &corev3.WatchedDirectory{Path: dir}}},
	}}
	return push
}

// withPluginConfig returns a copy of l (a listener of wasmBootstrap) whose wasm filter carries
// the plugin configuration config.
func withPluginConfig(t *testing.T, l *listenerv3.Listener, config []byte) *listenerv3.Listener {
	t.Helper()
	return withWasm(t, l, func(w *httpwasmv3.Wasm) {
		w.Config.Configuration = realEnvoyAny(t, wrapperspb.String(string(config)))
	})
}

// withWasm returns a copy of l whose first HTTP filter, the wasm filter, edit has changed.
func withWasm(t *testing.T, l *listenerv3.Listener, edit func(*httpwasmv3.Wasm)) *listenerv3.Listener {
	t.Helper()
	return withFirstHTTPFilter(t, l, &httpwasmv3.Wasm{}, edit)
}

// withFirstHTTPFilter returns a copy of l whose first HTTP filter, unpacked into m, edit has
// changed.
func withFirstHTTPFilter[M proto.Message](t *testing.T, l *listenerv3.Listener, m M, edit func(M)) *listenerv3.Listener {
	t.Helper()
	l = proto.Clone(l).(*listenerv3.Listener)
	hcm := realEnvoyHCM(t, l)
	f := hcm.GetHttpFilters()[0]
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatalf("listener %s: first HTTP filter: %v", l.GetName(), err)
	}
	edit(m)
	f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, m)}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, hcm)}
	return l
}

// accessLogDetails returns %RESPONSE_CODE_DETAILS% of the request to path from Envoy's access
// log (envoy/wasm.yaml's JSON lines on standard output), waiting up to ten seconds for the
// line to be flushed.
func (p *envoyProc) accessLogDetails(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(p.log(), "\n") {
			var entry struct {
				Path    string `json:"path"`
				Details string `json:"response_code_details"`
			}
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &entry) == nil && entry.Path == path {
				return entry.Details
			}
		}
		if time.Now().After(deadline) {
			return "(no access log line)"
		}
		time.Sleep(100 * time.Millisecond)
	}
}
