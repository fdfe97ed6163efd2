//go:build race

package e2e_test

// raceEnabled: the race detector instruments every allocation, so byte bounds do not apply.
const raceEnabled = true
