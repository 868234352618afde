package server

import (
	"bufio"
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/socketmap"
	"github.com/mapdrop/mapdrop/lookup/tcptable"
)

// Result is what the client was told about one lookup.
type Result uint8

// The results of a lookup, as the client reads them: socketmap OK,
// NOTFOUND, TEMP and PERM; tcp_table 200, 500 and 400 (Temp: tcp_table
// has no permanent error).
const (
	Found Result = iota
	NotFound
	Temp
	Perm
	NumResults // the number of Result values
)

// String returns "found", "notfound", "temp" or "perm".
func (r Result) String() string {
	switch r {
	case Found:
		return "found"
	case NotFound:
		return "notfound"
	case Temp:
		return "temp"
	case Perm:
		return "perm"
	}
	return "invalid"
}

// Observer is told about the server's lookups and connections, for
// metrics. Its methods are called on the lookup path: they must be safe
// for concurrent use, must not block, and should not allocate.
type Observer interface {
	// Lookup is called once for every lookup answered: mapName as the
	// request named it (socketmap: whatever the client sent, possibly a
	// map that does not exist; tcp_table: the listener's map), the result
	// and the time from the request's first byte to its reply written.
	// Requests that are not lookups (malformed requests, the other
	// protocol) are not reported.
	Lookup(mapName string, r Result, d time.Duration)
	// ConnOpened and ConnClosed are called when a connection is admitted
	// (holds one of the MaxConns slots) and when that connection ends.
	ConnOpened()
	ConnClosed()
	// ConnRejected is called for a connection closed unserved because of
	// the connection limits (its uid over MaxConnsPerUID with none of its
	// own connections idle, or too many waiting).
	ConnRejected()
	// ConnEvicted is called for a connection closed to make room for a
	// newcomer.
	ConnEvicted()
}

// MapChecker may be implemented by a Tables to say whether a map exists.
// The server asks it only for a TEMP or PERM answer, to log an unknown map
// name once instead of every time.
type MapChecker interface {
	HasMap(name string) bool
}

// Log limits for failed lookups.
const (
	// FailureLogBurst is the number of failed lookups logged per map per
	// minute.
	FailureLogBurst = 5
	// MaxUnknownMaps is the number of distinct unknown map names logged;
	// the server remembers no more names than that.
	MaxUnknownMaps = 1000
	// maxFailMaps bounds the per-map log limiters; maps beyond it share one.
	maxFailMaps = 1000
)

// failLog rate-limits the log lines of failed lookups per map and
// remembers which unknown map names were logged, within bounded memory.
type failLog struct {
	mu       sync.Mutex
	windows  map[string]*failWindow
	overflow failWindow // for maps beyond maxFailMaps
	unknown  map[string]struct{}
}

type failWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

// allow reports whether a failure of mapName may be logged now, and how
// many were left out since the last one logged.
func (f *failLog) allow(mapName string, now time.Time) (ok bool, suppressed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[mapName]
	if w == nil {
		if f.windows == nil {
			f.windows = make(map[string]*failWindow)
		}
		if len(f.windows) < maxFailMaps {
			w = &failWindow{}
			f.windows[mapName] = w
		} else {
			w = &f.overflow
		}
	}
	if now.Sub(w.start) >= time.Minute {
		w.start, w.logged = now, 0
	}
	if w.logged >= FailureLogBurst {
		w.suppressed++
		return false, 0
	}
	w.logged++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}

// firstUnknown reports whether mapName is an unknown map name not logged
// before, remembering it; after MaxUnknownMaps names it reports false for
// every name, and last is true exactly once, for the name that filled it.
func (f *failLog) firstUnknown(mapName string) (first, last bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unknown == nil {
		f.unknown = make(map[string]struct{})
	}
	if _, seen := f.unknown[mapName]; seen || len(f.unknown) >= MaxUnknownMaps {
		return false, false
	}
	f.unknown[mapName] = struct{}{}
	return true, len(f.unknown) == MaxUnknownMaps
}

// answered reports one lookup to the Observer and logs it when it failed.
func (s *Server) answered(c *conn, mapName, key string, res Result, err error, reply []byte) {
	if o := s.Observer; o != nil {
		o.Lookup(mapName, res, time.Since(c.start))
	}
	if res >= Temp {
		s.logFailure(c, mapName, key, err, reply)
	}
}

// logFailure logs a TEMP, PERM or 400 answer, within the limits in the
// package documentation.
func (s *Server) logFailure(c *conn, mapName, key string, err error, reply []byte) {
	log := s.logger()
	if mc, ok := s.Tables.(MapChecker); ok && !mc.HasMap(mapName) {
		first, last := s.fails.firstUnknown(mapName)
		if first {
			log.Warn("lookup in a map that does not exist; check the map name in main.cf (logged once per name)",
				"map", mapName, "protocol", c.l.proto.String(), "addr", c.l.name, "remote", c.remote, "key", key)
		}
		if last {
			log.Warn("too many unknown map names; further ones are not logged", "limit", MaxUnknownMaps)
		}
		return
	}
	ok, suppressed := s.fails.allow(mapName, time.Now())
	if !ok {
		return
	}
	answer, cause, _ := bytes.Cut(reply, []byte(" "))
	attrs := []any{"map", mapName, "key", key, "answer", string(answer), "cause", string(cause),
		"protocol", c.l.proto.String(), "remote", c.remote}
	if err != nil {
		attrs[7] = err.Error()
	} else if c.l.proto == protoTCPTable {
		if d, derr := tcptable.Decode(string(bytes.TrimSpace(cause))); derr == nil {
			attrs[7] = d
		}
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	log.Warn("lookup failed", attrs...)
}

// wrongProtocol checks whether the bytes waiting on c are a request of the
// other protocol: a tcp_table "get "/"put " line on a socketmap listener,
// or a netstring ("123:") on a tcp_table listener. If so it answers with an
// error the client's own protocol understands, logs one line saying so
// and returns true: the connection is then closed. It looks only at what
// is buffered already (Postfix writes a request at once) and consumes
// nothing when it returns false.
func (s *Server) wrongProtocol(c *conn, br *bufio.Reader, bw *bufio.Writer) bool {
	b, _ := br.Peek(min(br.Buffered(), 16))
	var said, want, hint string
	var reply []byte
	switch c.l.proto {
	case protoSocketmap:
		if !bytes.HasPrefix(b, []byte("get ")) && !bytes.HasPrefix(b, []byte("put ")) {
			return false
		}
		said, want = "tcp_table", "socketmap"
		hint = "this listener speaks socketmap: use socketmap:" + c.l.name + ":MAPNAME in main.cf, or point tcp: at a -tcp listener"
		reply = tcptable.AppendReply(nil, "", errors.New("wrong protocol: this is a socketmap server"))
	case protoTCPTable:
		i := bytes.IndexByte(b, ':')
		if i < 1 || len(bytes.TrimLeft(b[:i], "0123456789")) != 0 {
			return false
		}
		said, want = "socketmap", "tcp_table"
		hint = "this listener speaks tcp_table for map " + c.l.mapName + ": use tcp:HOST:PORT in main.cf, or point socketmap: at a -socketmap listener"
		reply = netstring.Append(nil, socketmap.AppendReply(nil, "", failure.Perm("wrong protocol: this is a tcp_table server")))
	default:
		return false
	}
	s.logger().Warn("client speaks "+said+" on a "+want+" listener; closing the connection",
		"addr", c.l.name, "remote", c.remote, "hint", hint)
	bw.Write(reply)
	bw.Flush()
	return true
}
