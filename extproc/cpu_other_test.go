//go:build !unix

package extproc

import "time"

// processCPU is not measured here; benchmarks then omit their CPU metrics.
func processCPU() time.Duration { return 0 }
