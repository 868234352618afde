// Package server answers Postfix table lookups over the network. It speaks
// two protocols, each implemented by a codec package that knows nothing
// about sockets:
//
//   - socketmap (socketmap_table(5), codec lookup/socketmap, framing
//     lookup/netstring): one listener serves every map, the client names
//     the map in each request;
//   - tcp_table (tcp_table(5), codec lookup/tcptable): the protocol has no
//     map name, so each listener serves one map.
//
// The server knows nothing about files or tables either: it hands every
// lookup to its Tables, whose errors are failure kinds (see package
// failure).
//
// Connections. Listeners are unix-domain sockets or TCP over IPv4 and IPv6
// (addresses as parsed by lookup/sockaddr). A connection carries any number of
// requests, one after another, as Postfix and "postmap -q -" send them;
// the server writes exactly one reply per request, in order. Per
// connection:
//
//   - Between requests the server waits at most IdleTimeout (default 60s,
//     longer than the 10s after which Postfix closes an idle socketmap
//     connection itself) and then closes the connection quietly.
//   - Once the first byte of a request has arrived, reading the rest of
//     it, the lookup and writing the reply must finish within
//     RequestTimeout (default 10s); otherwise the connection is closed and
//     one line is logged.
//   - A socketmap request that breaks the netstring framing (length over
//     100000 bytes, a non-digit or leading zero in the length, a missing
//     ',') closes that connection with one log line naming the remote
//     address and the reason; other connections are not affected. A
//     well-framed request that is not "NAME KEY" is answered PERM and the
//     connection stays open. tcp_table request errors are answered on the
//     wire and the connection stays open (see lookup/tcptable).
//
// Connection limit. At most MaxConns (default 1000) connections, over all
// listeners of a Server, are served at once; a newcomer never locks out
// Postfix. When the limit is reached, the server closes the connection
// that has waited longest for its next request to admit the newcomer
// (Postfix's clients reconnect and retry on their own). Candidates, in this
// order: connections of unprivileged peers that are idle, or stalled for
// over a second in the middle of a request (Postfix sends a request whole),
// longest first; then, for a privileged newcomer only, idle connections of
// privileged peers. A newcomer for whom there is no candidate waits until
// a connection closes (requests in flight end within RequestTimeout); at
// most MaxConns unprivileged newcomers wait, further ones are closed at
// once (a privileged one always waits). A connection closed to make room
// stops counting as waiting at once, so a flood of connections that close
// one another cannot fill the waiting count.
//
// Per-user limit. On a unix socket the server knows each peer's uid
// (SO_PEERCRED). A uid that is not in PrivilegedUIDs may hold at most
// MaxConnsPerUID connections (default MaxConns/10): its next one closes
// its own longest-idle connection, or, when all of them are busy, is
// closed at once. Privileged uids (root and postfix in mapdropd: Postfix's
// daemons, and the users that run mapdrop) are never limited per uid and
// are never displaced by an unprivileged peer. TCP peers have no uid: they
// are unprivileged, without a per-user limit. Closing a connection to make
// room logs a warning at most once a minute.
//
// Lifecycle. ListenSocketmap and ListenTCPTable bind synchronously and
// return bind errors; they then serve in background goroutines until
// Shutdown. Shutdown closes the listeners (removing their unix socket
// files), closes idle connections, lets each connection with a request in
// flight write its reply and then closes it, and waits for all of them or
// for its context to end. The exported fields must be set before the first
// Listen call and not changed afterwards.
//
// Logging. Per-query lines are logged at Debug only. Every TEMP or PERM
// answer (socketmap) and every 400 answer (tcp_table) to a lookup is
// logged at Warn with map, key and cause, at most FailureLogBurst lines per
// map per minute (the next line says how many were left out). A map name
// that does not exist (see MapChecker) is logged once per name, for the
// first MaxUnknownMaps names. A client that speaks the other protocol (a
// tcp_table "get"/"put" line on a socketmap listener, a netstring on a
// tcp_table listener: the commonest mistake in main.cf) gets an error
// reply in its own protocol, its connection is closed, and one Warn line
// says what happened. Normal closes (client, idle timeout, shutdown) are
// logged at Debug; other connection-level problems at Info or Warn, one
// line each.
//
// Observation. When Observer is set, it is told about every lookup
// answered (map, result, server-side duration) and every connection opened,
// closed, evicted or rejected, without allocating on the lookup path.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/lookup/socketmap"
	"github.com/mapdrop/mapdrop/lookup/tcptable"
)

// Tables looks up key in the map named mapName. A key that is not there
// gives an error of kind failure.NotFound; other errors are failure kinds
// too (a plain error counts as Temporary). ctx ends when a Shutdown gives
// up waiting; RequestTimeout bounds the request's socket I/O, not Lookup,
// which is expected to answer from memory.
type Tables interface {
	Lookup(ctx context.Context, mapName, key string) (string, error)
}

// TablesFunc adapts a function to the Tables interface.
type TablesFunc func(ctx context.Context, mapName, key string) (string, error)

// Lookup calls f(ctx, mapName, key).
func (f TablesFunc) Lookup(ctx context.Context, mapName, key string) (string, error) {
	return f(ctx, mapName, key)
}

// Defaults for the Server fields left zero.
const (
	DefaultIdleTimeout    = 60 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxConns       = 1000
)

// ErrServerClosed is returned by the Listen methods after Shutdown.
var ErrServerClosed = errors.New("lookup server closed")

// Server serves lookups to Postfix; see the package documentation. The
// zero value with Tables set is ready to use.
type Server struct {
	// Tables answers every lookup.
	Tables Tables
	// Logger receives the server's log lines; nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout is how long a connection may wait between requests;
	// zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// RequestTimeout bounds one request from its first byte to the end of
	// its reply; zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxConns is the number of connections served at once; zero means
	// DefaultMaxConns.
	MaxConns int
	// MaxConnsPerUID is the number of connections one unprivileged uid
	// may hold on unix sockets; zero means MaxConns/10 (at least 1).
	MaxConnsPerUID int
	// PrivilegedUIDs are the peer uids on unix sockets that are never
	// limited per uid nor displaced by unprivileged peers.
	PrivilegedUIDs []uint32
	// Observer, if set, is told about lookups and connections (metrics).
	Observer Observer

	initOnce sync.Once
	slots    chan struct{}      // one token per connection being served
	done     chan struct{}      // closed when Shutdown starts
	baseCtx  context.Context    // parent of every lookup's context
	cancel   context.CancelFunc // cancels baseCtx when Shutdown gives up
	wg       sync.WaitGroup     // accept loops and connections
	privUIDs map[uint32]bool
	fails    failLog

	mu         sync.Mutex
	closed     bool
	listeners  []*listener
	conns      map[*conn]struct{}
	perUID     map[uint32]int // live (not evicted) connections per unprivileged uid
	waiting    int            // connections waiting for a slot
	lastLimit  time.Time      // when the connection limit was last logged
	lastPerUID time.Time      // when an eviction for the per-uid limit was last logged
	lastRefuse time.Time      // when a refused connection was last logged
}

// UnixOptions sets the ownership and permissions of a unix socket file, so
// that Postfix's processes may connect. They are ignored for TCP.
type UnixOptions struct {
	// Mode is the socket file's permission bits; zero leaves what the
	// umask gives.
	Mode os.FileMode
	// Group is a group name or numeric gid to own the socket file; empty
	// leaves the creating process's group.
	Group string
}

type protocol int

const (
	protoSocketmap protocol = iota
	protoTCPTable
)

func (p protocol) String() string {
	if p == protoTCPTable {
		return "tcp_table"
	}
	return "socketmap"
}

type listener struct {
	ln      net.Listener
	proto   protocol
	mapName string // tcp_table only
	name    string // for log lines
}

type conn struct {
	nc         net.Conn
	l          *listener
	remote     string
	uid        uint32 // peer uid, when hasUID
	hasUID     bool
	privileged bool
	gone       chan struct{} // closed when the connection is evicted
	start      time.Time     // first byte of the request being served; owned by the connection's goroutine
	evicted    atomic.Bool   // closed to make room; set with Server.mu held
	slotted    bool          // holds a slot; guarded by Server.mu
	// waitCounted: counted in Server.waiting (registered, neither slotted
	// nor evicted yet); guarded by Server.mu.
	waitCounted bool

	mu    sync.Mutex
	idle  bool      // waiting for the first byte of a request
	since time.Time // when the connection was accepted, became idle or started its request
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.slots = make(chan struct{}, s.maxConns())
		s.done = make(chan struct{})
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.conns = make(map[*conn]struct{})
		s.perUID = make(map[uint32]int)
		s.privUIDs = make(map[uint32]bool, len(s.PrivilegedUIDs))
		for _, u := range s.PrivilegedUIDs {
			s.privUIDs[u] = true
		}
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Server) requestTimeout() time.Duration {
	if s.RequestTimeout > 0 {
		return s.RequestTimeout
	}
	return DefaultRequestTimeout
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) maxConnsPerUID() int {
	if s.MaxConnsPerUID > 0 {
		return s.MaxConnsPerUID
	}
	return max(1, s.maxConns()/10)
}

// closing reports whether Shutdown has started.
func (s *Server) closing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ListenSocketmap listens on a for socketmap requests, which name their
// map, and serves them in the background until Shutdown. For a unix socket
// a stale socket file is removed first, but ListenSocketmap refuses when
// something is listening on it or the path is not a socket.
func (s *Server) ListenSocketmap(a sockaddr.Addr, opt UnixOptions) error {
	return s.listen(a, opt, protoSocketmap, "")
}

// ListenTCPTable listens on a for tcp_table requests, all of which are
// lookups in mapName, and serves them in the background until Shutdown.
// Unix sockets are handled as for ListenSocketmap.
func (s *Server) ListenTCPTable(a sockaddr.Addr, mapName string, opt UnixOptions) error {
	if mapName == "" {
		return fmt.Errorf("tcp_table listener %s: empty map name", a)
	}
	return s.listen(a, opt, protoTCPTable, mapName)
}

func (s *Server) listen(a sockaddr.Addr, opt UnixOptions, proto protocol, mapName string) error {
	s.init()
	if s.closing() {
		return ErrServerClosed
	}
	ln, err := listenAddr(a, opt)
	if err != nil {
		return err
	}
	name := a.String()
	if a.Network == "tcp" {
		name = "inet:" + ln.Addr().String()
	}
	return s.serveListener(ln, proto, mapName, name)
}

// serveListener serves ln in the background until Shutdown, which closes it.
func (s *Server) serveListener(ln net.Listener, proto protocol, mapName, name string) error {
	l := &listener{ln: ln, proto: proto, mapName: mapName, name: name}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.wg.Add(1)
	s.mu.Unlock()
	attrs := []any{"protocol", proto.String(), "addr", l.name}
	if mapName != "" {
		attrs = append(attrs, "map", mapName)
	}
	s.logger().Info("listening", attrs...)
	go s.acceptLoop(l)
	return nil
}

// Addrs returns the addresses of the server's listeners, in the order they
// were created; with port 0 this tells the port the kernel chose.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// acceptLoop accepts connections on l until Shutdown and hands each to
// its own goroutine, which waits for a slot (see admit.go): the loop
// itself never waits for the connection limit, so that a privileged
// client is never stuck behind a waiting one.
func (s *Server) acceptLoop(l *listener) {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if s.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait, then try again.
			s.logger().Warn("accept failed", "addr", l.name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		c := s.newConn(nc, l)
		if !s.register(c) {
			nc.Close()
			if s.closing() {
				return
			}
			continue
		}
		go s.serveConn(c)
	}
}

func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	return "unix"
}

// setIdle marks c as waiting for a request and arms the idle timeout. It
// returns false when Shutdown has started, in which case c is to be closed.
func (s *Server) setIdle(c *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closing() {
		return false
	}
	now := time.Now()
	c.idle, c.since = true, now
	c.nc.SetDeadline(now.Add(s.idleTimeout()))
	return true
}

// setActive marks c as serving a request that started at now.
func (c *conn) setActive(now time.Time) {
	c.mu.Lock()
	c.idle, c.since = false, now
	c.mu.Unlock()
}

// interruptIfIdle wakes c's reader if it is waiting for a request, so that
// it notices Shutdown and closes.
func (c *conn) interruptIfIdle() {
	c.mu.Lock()
	if c.idle {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// handler serves one request whose first byte has arrived. It returns
// false when the connection must be closed.
type handler func(ctx context.Context, c *conn) bool

func (s *Server) serveConn(c *conn) {
	defer s.unregister(c)
	if !s.admit(c) {
		return
	}
	log := s.logger()
	br := bufio.NewReaderSize(c.nc, tcptable.MaxLine)
	bw := bufio.NewWriter(c.nc)
	var h handler
	if c.l.proto == protoSocketmap {
		h = s.socketmapHandler(br, bw)
	} else {
		h = s.tcpTableHandler(br, bw)
	}
	log.Debug("connection opened", "addr", c.l.name, "remote", c.remote)
	for {
		if !s.setIdle(c) {
			log.Debug("connection closed for shutdown", "addr", c.l.name, "remote", c.remote)
			return
		}
		_, err := br.Peek(1)
		now := time.Now()
		c.setActive(now)
		if err != nil {
			switch {
			case c.isEvicted():
				log.Debug("connection closed to make room", "addr", c.l.name, "remote", c.remote)
			case s.closing():
				log.Debug("connection closed for shutdown", "addr", c.l.name, "remote", c.remote)
			case errors.Is(err, os.ErrDeadlineExceeded):
				log.Debug("idle connection closed", "addr", c.l.name, "remote", c.remote)
			case errors.Is(err, io.EOF):
				log.Debug("connection closed by client", "addr", c.l.name, "remote", c.remote)
			default:
				log.Info("connection read failed", "addr", c.l.name, "remote", c.remote, "err", err)
			}
			return
		}
		// The request deadline bounds the socket I/O of this request. The
		// Tables gets the server's context, cancelled by a forced
		// Shutdown: a context with its own deadline per request costs an
		// allocation and a runtime timer each time, a fifth of the
		// server's CPU per lookup (bench/lookupbench), for resolvers that
		// answer from memory.
		c.start = now
		c.nc.SetDeadline(now.Add(s.requestTimeout()))
		if !h(s.baseCtx, c) {
			return
		}
	}
}

// readFailed logs why reading a request failed; the connection is closed
// after it.
func (s *Server) readFailed(c *conn, err error) {
	log := s.logger()
	switch {
	case c.isEvicted():
		log.Debug("connection closed to make room", "addr", c.l.name, "remote", c.remote)
	case s.closing() && errors.Is(err, net.ErrClosed):
		log.Debug("connection closed for shutdown", "addr", c.l.name, "remote", c.remote)
	case errors.Is(err, netstring.ErrTooLong), errors.Is(err, netstring.ErrSyntax):
		log.Warn("closing connection: malformed request", "addr", c.l.name, "remote", c.remote, "reason", err.Error())
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("closing connection: request not complete in time", "addr", c.l.name, "remote", c.remote, "timeout", s.requestTimeout())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		log.Info("connection closed in the middle of a request", "addr", c.l.name, "remote", c.remote)
	default:
		log.Info("connection read failed", "addr", c.l.name, "remote", c.remote, "err", err)
	}
}

// writeReply writes and flushes one reply. A failed write leaves the
// connection out of step, so it is closed.
func (s *Server) writeReply(c *conn, bw *bufio.Writer, reply []byte) bool {
	_, err := bw.Write(reply)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if c.isEvicted() {
			s.logger().Debug("connection closed to make room", "addr", c.l.name, "remote", c.remote)
		} else {
			s.logger().Info("closing connection: reply not written", "addr", c.l.name, "remote", c.remote, "err", err)
		}
		return false
	}
	return true
}

// lookup asks the Tables, turning a panic into a temporary error so one
// bad lookup does not take the server down.
func (s *Server) lookup(ctx context.Context, c *conn, mapName, key string) (value string, err error) {
	if s.Tables == nil {
		return "", errors.New("no resolver configured")
	}
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("lookup panicked", "map", mapName, "panic", fmt.Sprint(p))
			value, err = "", errors.New("internal error")
		}
	}()
	value, err = s.Tables.Lookup(ctx, mapName, key)
	if s.logger().Enabled(ctx, slog.LevelDebug) {
		s.logger().Debug("lookup", "protocol", c.l.proto.String(), "remote", c.remote,
			"map", mapName, "key", key, "found", err == nil, "err", err)
	}
	return value, err
}

func (s *Server) socketmapHandler(br *bufio.Reader, bw *bufio.Writer) handler {
	nr := netstring.NewReader(br, socketmap.MaxSize)
	var reply, frame []byte
	return func(ctx context.Context, c *conn) bool {
		if first, _ := br.Peek(1); len(first) == 1 && (first[0] < '0' || first[0] > '9') && s.wrongProtocol(c, br, bw) {
			return false
		}
		payload, err := nr.Read()
		if err != nil {
			s.readFailed(c, err)
			return false
		}
		mapName, key, err := socketmap.ParseRequest(payload)
		if err != nil {
			s.logger().Info("malformed socketmap request", "addr", c.l.name, "remote", c.remote, "reason", err.Error())
			reply = socketmap.AppendReply(reply[:0], "", err)
			frame = netstring.Append(frame[:0], reply)
			return s.writeReply(c, bw, frame)
		}
		if target, ok := strings.CutPrefix(mapName, ExplainPrefix); ok {
			value, err := s.explain(ctx, c, target, key)
			reply = socketmap.AppendReply(reply[:0], value, err)
			frame = netstring.Append(frame[:0], reply)
			return s.writeReply(c, bw, frame)
		}
		value, err := s.lookup(ctx, c, mapName, key)
		reply = socketmap.AppendReply(reply[:0], value, err)
		frame = netstring.Append(frame[:0], reply)
		ok := s.writeReply(c, bw, frame)
		// The reply's first byte says what the client was told: OK,
		// NOTFOUND, TEMP or PERM.
		var res Result
		switch reply[0] {
		case 'O':
			res = Found
		case 'N':
			res = NotFound
		case 'T':
			res = Temp
		default:
			res = Perm
		}
		s.answered(c, mapName, key, res, err, reply)
		return ok
	}
}

func (s *Server) tcpTableHandler(br *bufio.Reader, bw *bufio.Writer) handler {
	var reply []byte
	return func(ctx context.Context, c *conn) bool {
		if first, _ := br.Peek(1); len(first) == 1 && first[0] >= '0' && first[0] <= '9' && s.wrongProtocol(c, br, bw) {
			return false
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				s.readFailed(c, err)
				return false
			}
			s.logger().Info("tcp_table request too long", "addr", c.l.name, "remote", c.remote)
			return s.writeReply(c, bw, tcptable.AppendTooLong(reply[:0]))
		}
		if err != nil {
			s.readFailed(c, err)
			return false
		}
		req, err := tcptable.ParseRequest(string(line))
		if err != nil {
			s.logger().Info("tcp_table request refused", "addr", c.l.name, "remote", c.remote, "reason", err.Error())
			reply = tcptable.AppendRequestError(reply[:0], req, err)
			return s.writeReply(c, bw, reply)
		}
		value, err := s.lookup(ctx, c, c.l.mapName, req.Key)
		reply = tcptable.AppendReply(reply[:0], value, err)
		ok := s.writeReply(c, bw, reply)
		// 200 found, 500 not found, 400 anything else.
		var res Result
		switch reply[0] {
		case '2':
			res = Found
		case '5':
			res = NotFound
		default:
			res = Temp
		}
		s.answered(c, c.l.mapName, req.Key, res, err, reply)
		return ok
	}
}

// Shutdown stops the server: it closes the listeners (a unix listener
// removes its socket file), closes idle connections, lets every request in
// flight get its reply before closing that connection, and waits for all
// connections to end. When ctx ends first, Shutdown closes the remaining
// connections, cancels the lookups' contexts and returns ctx.Err().
// Shutdown may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	listeners := append([]*listener(nil), s.listeners...)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, l := range listeners {
		l.ln.Close()
	}
	for _, c := range conns {
		c.interruptIfIdle()
	}
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}
