//go:build !race

package webhook

// raceEnabled: the race detector changes what allocates.
const raceEnabled = false
