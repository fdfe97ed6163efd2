//go:build unix

package httpcors_test

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the user and system CPU time of the whole process. On a shared machine
// wall-clock ns/op includes time spent waiting for a core; run with -cpu 1 and the
// "cpu-ns/op" metric counts only work done (the benchmark and its GC).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	if d := processCPU() - start; d > 0 && b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
