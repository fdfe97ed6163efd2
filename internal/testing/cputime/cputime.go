// Package cputime measures the CPU time a process has used, for benchmarks on shared machines:
// wall-clock ns/op there includes time spent waiting for a core, CPU time per operation does
// not. Benchmarks report it as "cpu-ns/op" beside Go's own ns/op.
//
// Where it sits: test support (internal/testing), imported only by benchmarks.
package cputime

import (
	"testing"
	"time"
)

// Report adds the CPU time used since start, per iteration, to b as "cpu-ns/op". Run with
// -cpu 1 for the figure to count only the benchmark's own work (and its GC).
func Report(b *testing.B, start time.Duration) {
	if d := Process() - start; d > 0 && b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
