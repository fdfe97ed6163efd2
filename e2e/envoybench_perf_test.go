package e2e_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// perfProfile samples Envoy with `perf record -e cpu-clock` (software clock: no hardware
// counters needed) during one block of n requests of each shape for each configuration named,
// and returns a markdown table of where Envoy's CPU time per request in the rounds went (their
// median split in the profile's shares), by the object that
// ran: Envoy's own binary, the kernel, code outside any file (V8's generated code: the wasm
// module, and its trampolines) and shared libraries. Profiles stay in build/perf/.
// BenchmarkRealEnvoyCORS runs it after its rounds when S3CORS_BENCH_PERF lists
// configurations ("native,wasm-noop,wasm"), so that a missed target comes with its breakdown.
func (h *benchHarness) perfProfile(t testing.TB, names []string, n int) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "build", "perf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| Envoy CPU µs/request by object | shape | total | envoy binary | kernel | generated code | libraries |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, name := range names {
		ci := h.index(name)
		if ci < 0 {
			t.Fatalf("S3CORS_BENCH_PERF: no configuration %q", name)
		}
		for si, shape := range benchShapes {
			data := filepath.Join(dir, name+"-"+shape.name+".data")
			rec := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-p", strconv.Itoa(h.envoy.pid), "-o", data)
			if err := rec.Start(); err != nil {
				t.Fatalf("perf record: %v", err)
			}
			time.Sleep(time.Second) // attached by then; an idle Envoy gives no samples
			_, err := h.block(ci, si, n)
			_ = rec.Process.Signal(os.Interrupt)
			_ = rec.Wait() // ends by the signal; perf report says whether the profile is whole
			if err != nil {
				t.Fatal(err)
			}
			share, err := perfShares(data)
			if err != nil {
				// perf may attach late on a starved machine: a row without shares.
				fmt.Fprintf(&b, "| %s | %s | %v |||||\n", h.configs[ci].title, shape.name, err)
				continue
			}
			// Sampling slows Envoy down: the shares apply to the rounds' CPU per request.
			cpu := h.stat(ci, si, func(s, _ benchSample) float64 { return us(s.envoy) })
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", h.configs[ci].title, shape.name, cpu,
				cpu*share["envoy"], cpu*share["kernel"], cpu*share["generated"], cpu*share["libraries"])
		}
	}
	return b.String()
}

// perfShares reads a profile's samples by object (perf report --sort dso) into the shares of
// "envoy", "kernel", "generated" (no object file) and "libraries".
func perfShares(data string) (map[string]float64, error) {
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "-q", "--sort", "dso").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report %s: %w", data, err)
	}
	if !strings.Contains(string(out), "%") {
		return nil, fmt.Errorf("perf report %s: no samples", data)
	}
	share := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		dso := strings.Join(f[1:], " ")
		switch {
		case dso == "envoy":
			share["envoy"] += pct / 100
		case strings.Contains(dso, "kernel"):
			share["kernel"] += pct / 100
		case strings.Contains(dso, ".so"):
			share["libraries"] += pct / 100
		default: // [unknown], //anon, [JIT] tid ...: V8's generated code
			share["generated"] += pct / 100
		}
	}
	return share, sc.Err()
}
