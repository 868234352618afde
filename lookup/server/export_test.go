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

// SlottedConns reports how many of s's connections hold a slot: idle
// ones (waiting for a request) and busy ones (in a request), as the
// limits see them. Tests only.
func SlottedConns(s *Server) (idle, busy int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if c.slotted && !c.isEvicted() {
			if c.idle {
				idle++
			} else {
				busy++
			}
		}
		c.mu.Unlock()
	}
	return idle, busy
}
