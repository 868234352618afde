package server

import (
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// stallAfter is how long a connection may be in the middle of one request
// before it counts as stalled, a candidate to be closed to make room.
// Postfix writes a request at once and reads the reply at once.
var stallAfter = time.Second

// admitRetry is how often a connection waiting for a slot looks again for
// one to close: busy connections become stalled ones with time.
const admitRetry = 250 * time.Millisecond

// newConn wraps an accepted connection, with its peer's uid on a unix
// socket.
func (s *Server) newConn(nc net.Conn, l *listener) *conn {
	c := &conn{nc: nc, l: l, remote: remoteName(nc), gone: make(chan struct{}), since: time.Now()}
	if uc, ok := nc.(*net.UnixConn); ok {
		if uid, ok := peerUID(uc); ok {
			c.uid, c.hasUID = uid, true
			c.privileged = s.privUIDs[uid]
			c.remote = "unix:uid=" + strconv.FormatUint(uint64(uid), 10)
		}
	}
	return c
}

// peerUID returns the uid of the process at the other end of a unix
// socket, as the kernel recorded it at connect (SO_PEERCRED).
func peerUID(uc *net.UnixConn) (uint32, bool) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return cred.Uid, true
}

// limited reports whether c counts against the per-uid limit.
func (c *conn) limited() bool { return c.hasUID && !c.privileged }

// isEvicted reports whether c was closed to make room.
func (c *conn) isEvicted() bool { return c.evicted.Load() }

// register enters a newly accepted connection, which then waits for a slot
// in admit. For an unprivileged uid at its limit it first closes that
// uid's longest-idle connection; it returns false (and c is to be closed)
// when there is none, when too many connections wait already, or when
// Shutdown has started.
func (s *Server) register(c *conn) bool {
	var victim *conn
	reason := ""
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return false
	case s.waiting >= s.maxConns() && !c.privileged:
		// Postfix's own clients are never turned away: under a flood of
		// connections this count can reach the limit for a moment.
		reason = "too many connections waiting for a slot"
	case c.limited() && s.perUID[c.uid] >= s.maxConnsPerUID():
		victim = s.pickVictim(time.Now(), func(v *conn) bool { return v.limited() && v.uid == c.uid })
		if victim == nil {
			reason = "its uid holds its share of connections, all busy"
		} else {
			s.evictLocked(victim)
		}
	}
	if reason != "" {
		logIt := time.Since(s.lastRefuse) >= time.Minute
		if logIt {
			s.lastRefuse = time.Now()
		}
		s.mu.Unlock()
		if o := s.Observer; o != nil {
			o.ConnRejected()
		}
		if logIt {
			s.logger().Warn("connection refused: "+reason+" (logged at most once a minute)",
				"addr", c.l.name, "remote", c.remote, "max_conns", s.maxConns(), "max_conns_per_uid", s.maxConnsPerUID())
		}
		return false
	}
	s.conns[c] = struct{}{}
	if c.limited() {
		s.perUID[c.uid]++
	}
	s.waiting++
	c.waitCounted = true
	s.wg.Add(1)
	s.mu.Unlock()
	if victim != nil {
		s.closeEvicted(victim, c, &s.lastPerUID,
			"uid holds its share of connections; closed its longest-idle one to admit a new one")
	}
	return true
}

// admit waits until c holds a connection slot, closing another
// connection to make room when the limit is reached (see the package
// documentation). It returns false when c is to be closed instead:
// Shutdown started, or c itself was closed to make room.
func (s *Server) admit(c *conn) bool {
	got := func() bool {
		s.mu.Lock()
		c.slotted = true
		s.uncountWaiting(c)
		s.mu.Unlock()
		if o := s.Observer; o != nil {
			o.ConnOpened()
		}
		return !c.isEvicted() && !s.closing()
	}
	for {
		select {
		case s.slots <- struct{}{}:
			return got()
		default:
		}
		if c.isEvicted() || s.closing() {
			return false
		}
		s.mu.Lock()
		victim := s.pickVictim(time.Now(), func(v *conn) bool {
			return v.slotted && (c.privileged || !v.privileged)
		})
		logIt := false
		if victim != nil {
			s.evictLocked(victim)
		} else if time.Since(s.lastLimit) >= time.Minute {
			s.lastLimit, logIt = time.Now(), true
		}
		s.mu.Unlock()
		if victim != nil {
			s.closeEvicted(victim, c, &s.lastLimit,
				"connection limit reached; closed the longest-idle connection to admit a new one")
		} else if logIt {
			s.logger().Warn("connection limit reached and no connection idle; new connections wait (logged at most once a minute)",
				"max_conns", s.maxConns(), "addr", c.l.name, "remote", c.remote)
		}
		t := time.NewTimer(admitRetry)
		select {
		case s.slots <- struct{}{}:
			t.Stop()
			return got()
		case <-s.done:
			t.Stop()
			return false
		case <-c.gone:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// pickVictim returns the connection to close to make room among those
// that match, or nil: unprivileged before privileged, then the one idle
// (or waiting, or stalled) the longest. Idle connections qualify, and so
// do unprivileged ones stalled in a request or still waiting for a slot.
// Called with s.mu held.
func (s *Server) pickVictim(now time.Time, match func(*conn) bool) *conn {
	var best *conn
	var bestSince time.Time
	for v := range s.conns {
		if v.isEvicted() || !match(v) {
			continue
		}
		v.mu.Lock()
		idle, since := v.idle && v.slotted, v.since
		v.mu.Unlock()
		if !idle && (v.privileged || (v.slotted && now.Sub(since) < stallAfter)) {
			continue
		}
		if best == nil || (best.privileged && !v.privileged) ||
			(best.privileged == v.privileged && since.Before(bestSince)) {
			best, bestSince = v, since
		}
	}
	return best
}

// evictLocked marks v as closed to make room; it no longer counts against
// its uid. Called with s.mu held; closeEvicted closes it afterwards.
func (s *Server) evictLocked(v *conn) {
	v.evicted.Store(true)
	if v.limited() {
		s.decUID(v.uid)
	}
	// A connection closed while it waited no longer waits, though its
	// goroutine may take a while to notice under a flood: it must not fill
	// the count of waiting connections that refuses newcomers.
	s.uncountWaiting(v)
}

// uncountWaiting takes c out of the count of connections waiting for a
// slot, once. Called with s.mu held.
func (s *Server) uncountWaiting(c *conn) {
	if c.waitCounted {
		c.waitCounted = false
		s.waiting--
	}
}

// closeEvicted closes v, which evictLocked marked, for newcomer c, and
// logs msg at most once a minute (last is the time it was last logged,
// guarded by s.mu).
func (s *Server) closeEvicted(v, c *conn, last *time.Time, msg string) {
	close(v.gone)
	v.nc.Close()
	if o := s.Observer; o != nil {
		o.ConnEvicted()
	}
	s.mu.Lock()
	logIt := time.Since(*last) >= time.Minute
	if logIt {
		*last = time.Now()
	}
	s.mu.Unlock()
	if logIt {
		s.logger().Warn(msg+" (logged at most once a minute)", "closed", v.remote, "for", c.remote,
			"addr", c.l.name, "max_conns", s.maxConns(), "max_conns_per_uid", s.maxConnsPerUID())
	}
}

// decUID forgets one connection of uid. Called with s.mu held.
func (s *Server) decUID(uid uint32) {
	if n := s.perUID[uid] - 1; n > 0 {
		s.perUID[uid] = n
	} else {
		delete(s.perUID, uid)
	}
}

// unregister ends a registered connection: it closes it and gives back its
// slot and its place in the counts.
func (s *Server) unregister(c *conn) {
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	if c.limited() && !c.isEvicted() {
		s.decUID(c.uid)
	}
	slotted := c.slotted
	s.uncountWaiting(c)
	s.mu.Unlock()
	if slotted {
		<-s.slots
		if o := s.Observer; o != nil {
			o.ConnClosed()
		}
	}
	s.wg.Done()
}
