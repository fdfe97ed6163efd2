//go:build race

package httpcors_test

// raceEnabled: under the race detector sync.Pool drops a quarter of what it is given, so
// counts of allocations per request do not hold.
const raceEnabled = true
