package server

import "time"

// SetStallAfter changes how long a request may stall before its
// connection may be closed to make room, until the returned func restores
// it. Tests only; not concurrent with a running server.
func SetStallAfter(d time.Duration) (restore func()) {
	old := stallAfter
	stallAfter = d
	return func() { stallAfter = old }
}
