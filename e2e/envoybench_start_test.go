package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/casetable"
	"github.com/s3cors/s3cors/internal/testenv"
)

// BenchmarkRealEnvoyStart is the wasm filter's start in real Envoy at --concurrency 2 (envoy/
// wasm.yaml with filterStressConfig(buckets)): the time from starting the process until the
// first preflight is answered (first-preflight-ms; polled every 5 ms) and Envoy's VmRSS then
// (rss-MiB), medians over the iterations (-benchtime 3x: three starts).
func BenchmarkRealEnvoyStart(b *testing.B) {
	module := testenv.Module(b)
	upstream := startBenchPeer(b, goBinary(b, "./internal/benchpeer"), "upstream")
	for _, e := range testenv.Envoys(b) {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("envoy=%s/buckets=%d", e.Version, n), func(b *testing.B) {
				boot, addr := benchStartBootstrap(b, module, upstream.addr, n)
				var first, rss []float64
				for b.Loop() {
					d, kib := envoyFirstPreflight(b, e.Path, boot, addr)
					first, rss = append(first, float64(d)/1e6), append(rss, float64(kib)/1024)
				}
				b.ReportMetric(median(first), "first-preflight-ms")
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
	boot := benchUnmarshal(t, realEnvoyBootstrap(t, "wasm.yaml", []casetable.Table{{Config: json.RawMessage(filterStressConfig(n))}}, upstream, module, nil))
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
// time from the start to that answer and Envoy's VmRSS in KiB then, and stops Envoy.
func envoyFirstPreflight(t testing.TB, bin string, boot []byte, addr string) (time.Duration, int) {
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
	d := time.Since(start)
	rss, err := procRSS(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return d, rss
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
