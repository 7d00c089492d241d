//go:build race

package eval

// raceEnabled reports whether the race detector is on (it slows the fits
// of the real-data tests about tenfold).
const raceEnabled = true
