//go:build !unix

package e2e_test

import "time"

// processCPU is not measured here: benchmarks report 0 CPU time per operation.
func processCPU() time.Duration { return 0 }
