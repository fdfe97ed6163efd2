package extproc

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/s3cors/s3cors/internal/testing/cputime"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// benchChildEnv, set in a child process of the test binary, makes TestMain serve one of the
// benchmarks' servers ("s3cors" or "floor") instead of running tests; see serveBenchChild.
const benchChildEnv = "S3CORS_EXTPROC_BENCH_SERVER"

// benchChildProfileEnv names a directory where each child server of BenchmarkPreflightSplit
// writes a CPU profile of its run (s3cors.cpu.pprof, floor.cpu.pprof), to see where a server's
// time goes with no client in its process.
const benchChildProfileEnv = "S3CORS_EXTPROC_BENCH_PROFILE_DIR"

// serveBenchChild serves the server named role on a loopback port, as the benchmarks do in
// process, and prints the address. Then, for each line "cpu" read from stdin, it prints the
// process's CPU time so far in nanoseconds; it stops at the end of stdin. It returns the exit
// code.
func serveBenchChild(role string) int {
	var srv extprocv3.ExternalProcessorServer
	switch role {
	case "s3cors":
		lp, err := LoadConfig("bench.json", []byte(benchConfig))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		srv = NewServer(NewPolicyHolder(lp), ServerOptions{Logger: discardLogger()})
	case "floor":
		srv = floorServer{}
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown server %q\n", benchChildEnv, role)
		return 2
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	gs := grpc.NewServer(benchGRPCOptions...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	if dir := os.Getenv(benchChildProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, role+".cpu.pprof"))
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	fmt.Println(lis.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			r, w := syscallCounts()
			fmt.Println(cputime.Process().Nanoseconds(), r, w)
		}
	}
	return 0
}

// syscallCounts returns the process's read and write system calls so far (syscr and syscw in
// /proc/self/io), or zeros where that file does not exist.
func syscallCounts() (reads, writes int64) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(data)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseInt(value, 10, 64)
		switch name {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// benchChild is a server running in a child process (serveBenchChild).
type benchChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	addr   string
}

func startBenchChild(b *testing.B, role string) *benchChild {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchChildEnv+"="+role)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting the %s server: %v", role, err)
	}
	c := &benchChild{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	b.Cleanup(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Wait()
	})
	if c.addr, err = c.line(); err != nil {
		b.Fatalf("the %s server did not start: %v", role, err)
	}
	return c
}

func (c *benchChild) line() (string, error) {
	s, err := c.stdout.ReadString('\n')
	return strings.TrimSpace(s), err
}

// childUsage is what a child server has used so far.
type childUsage struct {
	cpu           time.Duration
	reads, writes int64 // system calls
}

func (u childUsage) sub(v childUsage) childUsage {
	return childUsage{cpu: u.cpu - v.cpu, reads: u.reads - v.reads, writes: u.writes - v.writes}
}

// usage returns what the child has used so far.
func (c *benchChild) usage(b *testing.B) childUsage {
	b.Helper()
	if _, err := io.WriteString(c.stdin, "cpu\n"); err != nil {
		b.Fatal(err)
	}
	s, err := c.line()
	if err != nil {
		b.Fatal(err)
	}
	var u childUsage
	var ns int64
	if _, err := fmt.Sscan(s, &ns, &u.reads, &u.writes); err != nil {
		b.Fatalf("child usage %q: %v", s, err)
	}
	u.cpu = time.Duration(ns)
	return u
}

// BenchmarkPreflightSplit is a second measurement beside BenchmarkPreflight's paired
// sequential run, not a replacement for it: the same preflight, the same alternating blocks of
// 32 streams, but each server runs in a child process of its own, so the CPU time splits into
// the server's (the child's getrusage) and the client's (this process's). The client is
// grpc-go playing Envoy and decodes every answer in full, work that Envoy's C++ does in
// production; this is where that cost shows. Reported per preflight, for s3cors and the
// floor: server-cpu-µs, client-cpu-µs, their total, and the throughput (req/s) with
// pct-of-floor as in BenchmarkPreflight.
func BenchmarkPreflightSplit(b *testing.B) {
	msg := extproctest.RequestHeaders(benchPreflight)
	children := [2]*benchChild{startBenchChild(b, "s3cors"), startBenchChild(b, "floor")}
	var clients [2]extprocv3.ExternalProcessorClient
	for k, c := range children {
		clients[k] = extproctest.Dial(b, c.addr)
	}
	var before, after [2]childUsage
	r := benchStreamsAround(b, 1, func(k int) extprocv3.ExternalProcessorClient { return clients[k] }, msg, func(start bool) {
		for k, c := range children {
			if start {
				before[k] = c.usage(b)
			} else {
				after[k] = c.usage(b)
			}
		}
	})
	names := [2]string{"s3cors-", "floor-"}
	var rate, total [2]float64
	for k := range 2 {
		n := float64(len(r.lat[k]))
		if n == 0 {
			return
		}
		used := after[k].sub(before[k])
		rate[k] = reportLatency(b, r.lat[k], names[k], r.inFlight)
		server := float64(used.cpu.Nanoseconds()) / 1e3 / n
		client := r.cpuPerStream(k)
		b.ReportMetric(server, names[k]+"server-cpu-µs")
		b.ReportMetric(client, names[k]+"client-cpu-µs")
		if used.writes > 0 {
			b.ReportMetric(float64(used.reads)/n, names[k]+"server-reads")
			b.ReportMetric(float64(used.writes)/n, names[k]+"server-writes")
		}
		total[k] = server + client
	}
	b.ReportMetric(100*rate[0]/rate[1], "pct-of-floor")
	b.ReportMetric(100*total[1]/total[0], "cpu-pct-of-floor")
}
