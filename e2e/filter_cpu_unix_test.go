//go:build unix

package e2e_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used. Benchmarks report it per
// operation next to wall time, which is meaningless on a machine shared with other work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
