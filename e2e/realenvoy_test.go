package e2e_test

// The shared case tables through real Envoy releases, with the deployment files users copy:
// envoy/wasm.yaml (the module built from this tree) and envoy/extproc.yaml (the ext_proc
// server). Part of every `go test ./e2e/`; the releases are pinned in tools/envoy/releases.txt.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/tetratelabs/wazero"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// realEnvoyCaseHeader tells the fake store which case a forwarded request belongs to, so it
// can answer with that case's upstream headers and count the visit.
const realEnvoyCaseHeader = "x-s3cors-e2e-case"

// TestRealEnvoy runs every case table through each pinned real Envoy release (testenv.Envoys:
// build/envoy/<version>/envoy, fetched by `make envoy`, or S3CORS_ENVOY), once with the wasm
// filter and once with the ext_proc server, using the deployment files users copy. The
// ext_proc servers are the built CLI, one process per table, started as docs/deploy.md says.
func TestRealEnvoy(t *testing.T) {
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			out, err := exec.Command(e.Path, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", e.Path, err, out)
			}
			t.Logf("envoy: %s", bytes.TrimSpace(out))
			bin := e.Path

			tables := realEnvoyTables(t)
			store := startRealEnvoyStore(t, tables)

			t.Run("wasm", func(t *testing.T) {
				boot := realEnvoyBootstrap(t, "wasm.yaml", tables, store.addr, testenv.Module(t), nil)
				env := startRealEnvoy(t, bin, boot)
				runTablesThroughEnvoy(t, "wasm", env, tables, store, nil)
			})
			t.Run("extproc", func(t *testing.T) {
				var servers []string
				for i, tb := range tables {
					servers = append(servers, startRealEnvoyExtProc(t, i, tb))
				}
				boot := realEnvoyBootstrap(t, "extproc.yaml", tables, store.addr, "", servers)
				env := startRealEnvoy(t, bin, boot)
				runTablesThroughEnvoy(t, "extproc", env, tables, store, nil)
			})
		})
	}
}

// TestRealEnvoyHarnessDriver runs the harness's client, fake store and checks through the
// Envoy-faithful wasm host instead of Envoy, so the driver is known to be right before it meets
// a real Envoy.
func TestRealEnvoyHarnessDriver(t *testing.T) {
	tables := realEnvoyTables(t)
	store := startRealEnvoyStore(t, tables)
	module := testenv.ModuleBytes(t)
	cache := wazero.NewCompilationCache()
	t.Cleanup(func() { _ = cache.Close(context.Background()) })
	env := &realEnvoy{listeners: map[string]string{}}
	for i, tb := range tables {
		h, err := wasmhost.New(context.Background(), wasmhost.Options{Module: module, PluginConfig: tb.Config, CompilationCache: cache})
		if err != nil {
			t.Fatalf("%s: %v", tb.File, err)
		}
		t.Cleanup(func() { _ = h.Close(context.Background()) })
		srv := httptest.NewServer(h.Handler(http.HandlerFunc(store.serve)))
		t.Cleanup(srv.Close)
		env.listeners[fmt.Sprintf("s3-%d", i)] = strings.TrimPrefix(srv.URL, "http://")
	}
	runTablesThroughEnvoy(t, "wasmhost", env, tables, store, nil)
}

// TestRealEnvoyHarnessBootstraps checks, without Envoy, that the bootstraps TestRealEnvoy
// derives from envoy/*.yaml are valid, so `make e2e-envoy` fails only for what Envoy does.
func TestRealEnvoyHarnessBootstraps(t *testing.T) {
	tables := realEnvoyTables(t)
	servers := make([]string, len(tables))
	for i := range servers {
		servers[i] = fmt.Sprintf("127.0.0.1:%d", 20000+i)
	}
	for _, tc := range []struct {
		file    string
		module  string
		servers []string
	}{{"wasm.yaml", "/tmp/s3cors.wasm", nil}, {"extproc.yaml", "", servers}} {
		js := realEnvoyBootstrap(t, tc.file, tables, "127.0.0.1:9000", tc.module, tc.servers)
		var b bootstrapv3.Bootstrap
		if err := protojson.Unmarshal(js, &b); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if err := b.ValidateAll(); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
		if got := len(b.GetStaticResources().GetListeners()); got != len(tables) {
			t.Errorf("%s: %d listeners, want one per table (%d)", tc.file, got, len(tables))
		}
		for i, l := range b.GetStaticResources().GetListeners() {
			hcm := realEnvoyHCM(t, l)
			first := hcm.GetHttpFilters()[0].GetTypedConfig()
			if tc.module != "" {
				var w httpwasmv3.Wasm
				if err := first.UnmarshalTo(&w); err != nil {
					t.Fatal(err)
				}
				var sv wrapperspb.StringValue
				if err := w.GetConfig().GetConfiguration().UnmarshalTo(&sv); err != nil {
					t.Fatal(err)
				}
				if sv.GetValue() != string(tables[i].Config) || w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename() != tc.module {
					t.Errorf("listener %d: plugin configuration or module not substituted", i)
				}
			} else {
				var ep extprocfilterv3.ExternalProcessor
				if err := first.UnmarshalTo(&ep); err != nil {
					t.Fatal(err)
				}
				name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
				if addr := realEnvoyClusterAddr(t, &b, name); addr != servers[i] {
					t.Errorf("listener %d calls %s at %s, want %s", i, name, addr, servers[i])
				}
			}
		}
		if addr := realEnvoyClusterAddr(t, &b, "s3"); addr != "127.0.0.1:9000" {
			t.Errorf("%s: store at %s", tc.file, addr)
		}
	}
}

func realEnvoyTables(t *testing.T) []casetable.Table {
	t.Helper()
	tables, err := casetable.LoadDir(filepath.Join(testenv.RepoRoot(t), "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// realEnvoyManifest is envoy/<file> as users deploy it.
func realEnvoyManifest(t testing.TB, file string) *bootstrapv3.Bootstrap {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "envoy", file))
	if err != nil {
		t.Fatal(err)
	}
	return realEnvoyParse(t, "envoy/"+file, data)
}

// realEnvoyParse reads the Envoy YAML data (a file of envoy/, or one `s3cors manifest`
// generated for another configuration), named file in errors.
func realEnvoyParse(t testing.TB, file string, data []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &b
}

// realEnvoyBootstrap turns envoy/<file> into a bootstrap for the test: one listener per case
// table, each on an ephemeral loopback port and carrying that table's configuration (wasm:
// inline, with its own VM; ext_proc: its own server, servers[i]); the store at upstream; the
// module at module; the admin interface on an ephemeral loopback port. Every host is routed
// to the store (realEnvoyOpenHosts). It returns JSON.
func realEnvoyBootstrap(t testing.TB, file string, tables []casetable.Table, upstream, module string, servers []string) []byte {
	t.Helper()
	return realEnvoyBootstrapOf(t, "envoy/"+file, realEnvoyManifest(t, file), tables, upstream, module, servers, realEnvoyOpenHosts)
}

// realEnvoyBootstrapOf is realEnvoyBootstrap for the bootstrap b, named file in errors, with
// edit (when not nil) applied to each listener's connection manager instead of opening its
// hosts.
func realEnvoyBootstrapOf(t testing.TB, file string, b *bootstrapv3.Bootstrap, tables []casetable.Table, upstream, module string, servers []string, edit func(*hcmv3.HttpConnectionManager)) []byte {
	t.Helper()
	sr := b.GetStaticResources()
	if len(sr.GetListeners()) != 1 {
		t.Fatalf("%s: %d listeners, want 1", file, len(sr.GetListeners()))
	}
	tmpl := sr.GetListeners()[0]
	var extprocTmpl *clusterv3.Cluster
	var clusters []*clusterv3.Cluster
	for _, c := range sr.GetClusters() {
		switch c.GetName() {
		case "s3":
			realEnvoySetEndpoint(t, c, upstream)
			clusters = append(clusters, c)
		case "s3cors_extproc":
			extprocTmpl = c
		default:
			clusters = append(clusters, c)
		}
	}
	var listeners []*listenerv3.Listener
	for i, tb := range tables {
		l := proto.Clone(tmpl).(*listenerv3.Listener)
		l.Name = fmt.Sprintf("s3-%d", i)
		l.Address = realEnvoyAddress("127.0.0.1", 0)
		hcm := realEnvoyHCM(t, l)
		hcm.StatPrefix = fmt.Sprintf("s3_%d", i)
		if edit != nil {
			edit(hcm)
		}
		f := hcm.GetHttpFilters()[0]
		switch {
		case module != "":
			var w httpwasmv3.Wasm
			if err := f.GetTypedConfig().UnmarshalTo(&w); err != nil {
				t.Fatalf("%s: first HTTP filter: %v", file, err)
			}
			// A policy image travels as bytes (BytesValue), as an Envoy user sends it.
			pc := proto.Message(wrapperspb.String(string(tb.Config)))
			if evaluator.IsImage(tb.Config) {
				pc = wrapperspb.Bytes(tb.Config)
			}
			cfg, err := anypb.New(pc)
			if err != nil {
				t.Fatal(err)
			}
			w.Config.Configuration = cfg
			// Each table its own VM: one configuration per VM, as in production.
			vm := w.GetConfig().GetVmConfig()
			vm.VmId = fmt.Sprintf("s3cors-%d", i)
			vm.GetCode().GetLocal().Specifier = &corev3.DataSource_Filename{Filename: module}
			f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, &w)}
		default:
			if extprocTmpl == nil || i >= len(servers) {
				t.Fatalf("%s: no s3cors_extproc cluster, or no server for table %d", file, i)
			}
			var ep extprocfilterv3.ExternalProcessor
			if err := f.GetTypedConfig().UnmarshalTo(&ep); err != nil {
				t.Fatalf("%s: first HTTP filter: %v", file, err)
			}
			c := proto.Clone(extprocTmpl).(*clusterv3.Cluster)
			c.Name = fmt.Sprintf("s3cors_extproc_%d", i)
			c.LoadAssignment.ClusterName = c.Name
			realEnvoySetEndpoint(t, c, servers[i])
			clusters = append(clusters, c)
			ep.GetGrpcService().GetEnvoyGrpc().ClusterName = c.Name
			f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: realEnvoyAny(t, &ep)}
		}
		l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, hcm)}
		listeners = append(listeners, l)
	}
	sr.Listeners, sr.Clusters = listeners, clusters
	b.Admin.Address = realEnvoyAddress("127.0.0.1", 0)
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func realEnvoyAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

func realEnvoyAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func realEnvoyHCM(t testing.TB, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	t.Helper()
	var hcm hcmv3.HttpConnectionManager
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatalf("listener %s: %v", l.GetName(), err)
	}
	return &hcm
}

func realEnvoySetEndpoint(t testing.TB, c *clusterv3.Cluster, hostport string) {
	t.Helper()
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	c.TransportSocket = nil // the fake store speaks plain HTTP
	c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().Address = realEnvoyAddress(h, uint32(port))
}

func realEnvoyClusterAddr(t testing.TB, b *bootstrapv3.Bootstrap, name string) string {
	t.Helper()
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
		}
	}
	t.Fatalf("no cluster %q", name)
	return ""
}

// realEnvoyStore is the fake S3 store: 200, casetable.UpstreamBody, text/plain and the case's
// upstream headers, counting the requests of each case. An upstream header ":status" sets the
// status instead (304: no body and no Content-Type); ":stream" sends the body in two flushed
// parts without a Content-Length (chunked over HTTP/1).
type realEnvoyStore struct {
	addr   string
	tables []casetable.Table
	mu     sync.Mutex
	hits   map[string]int
	seen   map[string]string // the last request of each case, as text (storeRequest)
}

func startRealEnvoyStore(t *testing.T, tables []casetable.Table) *realEnvoyStore {
	t.Helper()
	s := &realEnvoyStore{tables: tables, hits: map[string]int{}, seen: map[string]string{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *realEnvoyStore) serve(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(realEnvoyCaseHeader) // run/table/case
	s.mu.Lock()
	s.hits[id]++
	s.seen[id] = storeRequest(r)
	s.mu.Unlock()
	var ti, ci int
	parts := strings.Split(id, "/")
	if len(parts) == 3 {
		ti, _ = strconv.Atoi(parts[1])
		ci, _ = strconv.Atoi(parts[2])
	}
	status, stream := http.StatusOK, false
	if len(parts) == 3 && ti < len(s.tables) && ci < len(s.tables[ti].Cases) {
		for _, h := range s.tables[ti].Cases[ci].Upstream {
			switch h[0] {
			case ":status": // the store's status instead of 200
				status, _ = strconv.Atoi(h[1])
			case ":stream": // no content-length; the body flushed in two parts
				stream = true
			default:
				w.Header().Add(h[0], h[1])
			}
		}
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status) // no body, no Content-Type
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if stream {
		w.WriteHeader(status)
		half := len(casetable.UpstreamBody) / 2
		_, _ = io.WriteString(w, casetable.UpstreamBody[:half])
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, casetable.UpstreamBody[half:])
		return
	}
	// Said, as S3 does, so that the store's framing is the same in process (wasmhost) and
	// behind a TCP connection (Envoy), where net/http would compute it.
	w.Header().Set("Content-Length", strconv.Itoa(len(casetable.UpstreamBody)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, casetable.UpstreamBody)
}

// storeRequest writes what the store received as text: request line, Host, and the header
// lines sorted, repeats kept.
func storeRequest(r *http.Request) string {
	lines := []string{r.Method + " " + r.RequestURI + " host=" + r.Host}
	for k, vs := range r.Header {
		for _, v := range vs {
			lines = append(lines, strings.ToLower(k)+": "+v)
		}
	}
	sort.Strings(lines[1:])
	return strings.Join(lines, "\n")
}

// request returns what the store received for the case id, or "".
func (s *realEnvoyStore) request(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

func (s *realEnvoyStore) reached(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[id] > 0
}

// startRealEnvoyExtProc runs the s3cors CLI (realEnvoyCLI) as docs/deploy.md tells a user to
// (`s3cors extproc --config FILE --listen 127.0.0.1:PORT --metrics-listen ...`, on ports it
// picks) for one table's configuration, and returns its gRPC address. When the test ends the
// process gets SIGTERM, as from a supervisor, and must exit with status 0.
func startRealEnvoyExtProc(t *testing.T, i int, tb casetable.Table) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("table-%d.json", i))
	if err := os.WriteFile(path, tb.Config, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startExtprocCLI(t, realEnvoyCLI(t), path)
	t.Cleanup(func() { // runs before startExtprocCLI's kill
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.exitErr != nil {
				t.Errorf("s3cors extproc for table %d: %v\n%s", i, p.exitErr, p.stderr)
			}
		case <-time.After(30 * time.Second): // a hang guard
			t.Errorf("s3cors extproc for table %d ignored SIGTERM\n%s", i, p.stderr)
		}
	})
	return p.grpcAddr
}

var realEnvoyCLIBuild struct {
	once sync.Once
	path string
	err  error
}

// realEnvoyCLI returns the s3cors CLI the ext_proc servers run: S3CORS_CLI when set, else
// ./cmd/s3cors built once per test process into build/e2e/s3cors (atomically, as testenv
// builds the module, so that parallel test processes never run a half-written file).
func realEnvoyCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("S3CORS_CLI"); p != "" {
		return extprocCLIBinary(t)
	}
	b := &realEnvoyCLIBuild
	b.once.Do(func() {
		root := testenv.RepoRoot(t)
		dir := filepath.Join(root, "build", "e2e")
		if b.err = os.MkdirAll(dir, 0o755); b.err != nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf(".building-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/s3cors")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building the CLI: %w\n%s", err, out)
			return
		}
		b.path = filepath.Join(dir, "s3cors")
		b.err = os.Rename(tmp, b.path)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// realEnvoy is a running Envoy: its process id, admin address and listeners by name.
type realEnvoy struct {
	pid       int
	admin     string
	listeners map[string]string
}

// startRealEnvoy starts bin with the bootstrap at --concurrency 2, waits until it is LIVE, and
// stops it when the test ends; its log is shown when the test fails.
func startRealEnvoy(t testing.TB, bin string, bootstrap []byte) *realEnvoy {
	t.Helper()
	return launchRealEnvoy(t, bin, bootstrap, 2).awaitLive(t)
}

// envoyProcess is an Envoy process as launched, before it is known to serve.
type envoyProcess struct {
	cmd       *exec.Cmd
	exited    chan error
	adminPath string
	logPath   string
	stopOnce  sync.Once
}

// launchRealEnvoy starts bin with the bootstrap and the given number of worker threads and
// returns at once; the test's cleanup stops it (if stop has not) and shows its log when the
// test failed.
func launchRealEnvoy(t testing.TB, bin string, bootstrap []byte, concurrency int) *envoyProcess {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "envoy.json")
	p := &envoyProcess{adminPath: filepath.Join(dir, "admin-address"), logPath: filepath.Join(dir, "envoy.log"), exited: make(chan error, 1)}
	if err := os.WriteFile(cfgPath, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-c", cfgPath, "--admin-address-path", p.adminPath,
		"--concurrency", strconv.Itoa(concurrency), "--disable-hot-restart", "--log-level", "warn", "--component-log-level", "wasm:info")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("envoy log:\n%s", b)
		}
	})
	return p
}

// stop interrupts Envoy and waits for it to exit (killing it after 20 seconds).
func (p *envoyProcess) stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-p.exited:
			p.exited <- err
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			p.exited <- <-p.exited
		}
	})
}

// awaitLive waits until Envoy is LIVE and reads its listeners' addresses.
func (p *envoyProcess) awaitLive(t testing.TB) *realEnvoy {
	t.Helper()
	// Startup compiles the module in V8 once per VM; allow a generous bound.
	deadline := time.Now().Add(2 * time.Minute)
	var admin string
	for {
		select {
		case err := <-p.exited:
			p.exited <- err
			b, _ := os.ReadFile(p.logPath)
			t.Fatalf("envoy exited during startup: %v\n%s", err, b)
		default:
		}
		if admin == "" {
			if b, err := os.ReadFile(p.adminPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
				admin = string(bytes.TrimSpace(b))
			}
		}
		if admin != "" {
			if resp, err := http.Get("http://" + admin + "/ready"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "LIVE" {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("envoy not LIVE after 2 minutes (admin %q)", admin)
		}
		time.Sleep(100 * time.Millisecond)
	}

	_, body := httpGet(t, "http://"+admin+"/listeners?format=json")
	var ls adminv3.Listeners
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &ls); err != nil {
		t.Fatalf("envoy /listeners: %v\n%s", err, body)
	}
	env := &realEnvoy{pid: p.cmd.Process.Pid, admin: admin, listeners: map[string]string{}}
	for _, st := range ls.GetListenerStatuses() {
		sa := st.GetLocalAddress().GetSocketAddress()
		env.listeners[st.GetName()] = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}
	return env
}

// runTablesThroughEnvoy sends every case of every table to that table's listener and checks
// what comes back with the case table's own rules, after adjust (when not nil) has changed
// what the case expects. run keeps the store's counts of different runs apart.
func runTablesThroughEnvoy(t *testing.T, run string, env *realEnvoy, tables []casetable.Table, store *realEnvoyStore, adjust func(casetable.Case) casetable.Case) {
	t.Helper()
	for ti, tb := range tables {
		addr, ok := env.listeners[fmt.Sprintf("s3-%d", ti)]
		if !ok {
			t.Fatalf("envoy has no listener s3-%d: %v", ti, env.listeners)
		}
		for ci, c := range tb.Cases {
			id := fmt.Sprintf("%s/%d/%d", run, ti, ci)
			t.Run(realEnvoyName(tb.Name)+"/"+realEnvoyName(c.Name), func(t *testing.T) {
				got, err := realEnvoyDo(addr, id, c.Request)
				if err != nil {
					t.Fatal(err)
				}
				got.ReachedUpstream = store.reached(id)
				if adjust != nil {
					c = adjust(c)
				}
				if err := c.Check(got); err != nil {
					t.Errorf("%s: %s %s%s: %v", filepath.Base(tb.File), c.Request.Method, c.Request.Authority, c.Request.Path, err)
				}
			})
		}
	}
}

var realEnvoyNameRe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func realEnvoyName(s string) string { return realEnvoyNameRe.ReplaceAllString(s, "_") }

// realEnvoyDo sends a case's request over HTTP/1.1 exactly as written (casetable.Exchange):
// Go's client would turn a target starting with "//" into absolute-form and refuse others.
func realEnvoyDo(addr, id string, r casetable.Request) (casetable.Response, error) {
	r.Headers = append(slices.Clone(r.Headers), casetable.Header{realEnvoyCaseHeader, id})
	status, headers, body, err := casetable.Exchange(addr, r)
	if err != nil {
		return casetable.Response{}, err
	}
	return casetable.Response{Status: status, Headers: headers, Body: body}, nil
}

// realEnvoyDoProto sends a case's request through client (HTTP/1.1 or h2c) and also returns the
// major HTTP version of the answer. The path goes on the wire as the case writes it, as far as
// Go's client allows (realEnvoyDo has no such limit, over HTTP/1.1).
func realEnvoyDoProto(client *http.Client, addr, id string, r casetable.Request) (casetable.Response, int, error) {
	req := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Scheme: "http", Host: addr, Opaque: r.Path},
		Host:       r.Authority,
		Header:     http.Header{},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	for _, h := range r.Headers {
		req.Header.Add(h[0], h[1])
	}
	req.Header.Set(realEnvoyCaseHeader, id)
	resp, err := client.Do(req)
	if err != nil {
		return casetable.Response{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		return casetable.Response{}, 0, err
	}
	got := casetable.Response{Status: resp.StatusCode, Body: body}
	for k, vs := range resp.Header {
		for _, v := range vs {
			got.Headers = append(got.Headers, casetable.Header{k, v})
		}
	}
	if resp.Close && resp.ProtoAtLeast(1, 1) {
		// net/http moves an HTTP/1.1 "Connection: close" out of the header into resp.Close.
		got.Headers = append(got.Headers, casetable.Header{"Connection", "close"})
	}
	return got, resp.ProtoMajor, nil
}
