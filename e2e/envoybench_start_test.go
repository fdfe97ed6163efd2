package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// BenchmarkRealEnvoyStart is the wasm filter's start in real Envoy at --concurrency 2 (envoy/
// wasm.yaml with testenv.StressConfig(buckets)): the time from starting the process until the
// first preflight is answered (first-preflight-ms; polled every 5 ms), the CPU time Envoy used
// until then (cpu-ms, all threads: what a shared machine cannot inflate the way it does wall
// time) and Envoy's VmRSS then (rss-MiB), medians over the iterations (-benchtime 3x: three
// starts).
func BenchmarkRealEnvoyStart(b *testing.B) {
	module := testenv.Module(b)
	upstream := startBenchPeer(b, goBinary(b, "./internal/benchpeer"), "upstream")
	for _, e := range testenv.Envoys(b) {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("envoy=%s/buckets=%d", e.Version, n), func(b *testing.B) {
				boot, addr := benchStartBootstrap(b, module, upstream.addr, n)
				var first, cpu, rss []float64
				for b.Loop() {
					s := envoyFirstPreflight(b, e.Path, boot, addr)
					first, cpu, rss = append(first, float64(s.wall)/1e6), append(cpu, float64(s.cpu)/1e6), append(rss, float64(s.rssKiB)/1024)
				}
				b.ReportMetric(median(first), "first-preflight-ms")
				b.ReportMetric(median(cpu), "cpu-ms")
				b.ReportMetric(median(rss), "rss-MiB")
			})
		}
	}
}

// benchStartBootstrap is envoy/wasm.yaml with n buckets, its listener on a loopback port
// chosen now (so that preflights can be sent before Envoy can say where it listens), and that
// address.
func benchStartBootstrap(t testing.TB, module, upstream string, n int) ([]byte, string) {
	t.Helper()
	boot := benchUnmarshal(t, realEnvoyBootstrap(t, "wasm.yaml", []casetable.Table{{Config: json.RawMessage(testenv.StressConfig(n))}}, upstream, module, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()
	boot.GetStaticResources().GetListeners()[0].Address = realEnvoyAddress("127.0.0.1", uint32(port))
	return benchMarshal(t, boot), net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// envoyFirstPreflight starts Envoy with the bootstrap at --concurrency 2 and sends an allowed
// preflight to addr every 5 ms, each on a new connection, until one is answered; it returns the
// time from the start to that answer, Envoy's CPU time and VmRSS then, and stops Envoy.
func envoyFirstPreflight(t testing.TB, bin string, boot []byte, addr string) envoyStart {
	t.Helper()
	req := benchRequest("OPTIONS", "/b0/cat.jpg", "Origin", "https://a0.example", "Access-Control-Request-Method", "PUT")
	start := time.Now()
	p := launchRealEnvoy(t, bin, boot, 2)
	defer p.stop()
	var last string
	for {
		bc := &benchConn{addr: addr}
		var resp benchResponse
		err := bc.roundTrip(req, &resp)
		bc.close()
		if err == nil && resp.status == 200 && resp.header["access-control-allow-origin"] == "https://a0.example" {
			break
		}
		last = fmt.Sprintf("%v, status %d, headers %q", err, resp.status, resp.header)
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("envoy exited before answering a preflight: %v", err)
		default:
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("no preflight answered in 2 minutes; last: %s", last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := envoyStart{wall: time.Since(start)}
	var err error
	if s.rssKiB, err = procRSS(p.cmd.Process.Pid); err == nil {
		s.cpu, err = procStatCPU(p.cmd.Process.Pid)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// envoyStart is what envoyFirstPreflight measures.
type envoyStart struct {
	wall, cpu time.Duration
	rssKiB    int
}

// procStatCPU is the user and system time of process pid from /proc/<pid>/stat, threads that
// have exited included (V8 compiles on threads of its own), in clock ticks of 10 ms.
func procStatCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// procRSS is VmRSS of process pid, in KiB.
func procRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var kib int
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kib); err == nil {
			return kib, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
