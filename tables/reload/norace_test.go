//go:build !race

package reload

// raceEnabled reports whether the tests run with the race detector.
const raceEnabled = false
