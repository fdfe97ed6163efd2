//go:build race

package extproc

// raceEnabled: the race detector is on, and allocation counts do not hold.
const raceEnabled = true
