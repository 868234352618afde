package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// countingObserver counts what the server reports.
type countingObserver struct {
	lookups                         [server.NumResults]atomic.Int64
	open, closed, rejected, evicted atomic.Int64
}

func (o *countingObserver) Lookup(_ string, r server.Result, _ time.Duration) { o.lookups[r].Add(1) }
func (o *countingObserver) ConnOpened()                                       { o.open.Add(1) }
func (o *countingObserver) ConnClosed()                                       { o.closed.Add(1) }
func (o *countingObserver) ConnRejected()                                     { o.rejected.Add(1) }
func (o *countingObserver) ConnEvicted()                                      { o.evicted.Add(1) }

// blockingTables answers key "block" only once release is closed; entered
// gets a value each time such a lookup starts.
func blockingTables(entered chan<- struct{}, release <-chan struct{}) server.TablesFunc {
	return func(ctx context.Context, m, k string) (string, error) {
		if k == "block" {
			entered <- struct{}{}
			<-release
			return "released", nil
		}
		return fixtures.Lookup(ctx, m, k)
	}
}

// listenUnix starts a socketmap listener on a unix socket in a temporary
// directory.
func listenUnix(t *testing.T, s *server.Server) sockaddr.Addr {
	t.Helper()
	a := fixtures.MustParse(t, "unix:"+filepath.Join(t.TempDir(), "s.sock"))
	if err := s.ListenSocketmap(a, server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	return a
}

// notServed checks that c gets no reply within a short while.
func (c *rawConn) notServed(what string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("%s: served or closed (%v), want waiting", what, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
}

func TestMaxConnsClosesLongestIdle(t *testing.T) {
	obs := &countingObserver{}
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.MaxConns = 2; s.Observer = obs })
	a := fixtures.SocketmapAddr(t, s)
	oldest := dialRaw(t, a)
	if got := oldest.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("first: %q", got)
	}
	younger := dialRaw(t, a)
	if got := younger.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("second: %q", got)
	}
	// Let the server mark both idle: until then, a connection that has
	// just written its reply counts as busy.
	waitIdle(t, s, 2)
	if got := oldest.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") { // now the younger one idles longest
		t.Fatalf("first again: %q", got)
	}
	// At the limit: the newcomer is served at once, the connection idle
	// the longest is closed for it.
	newcomer := dialRaw(t, a)
	if got := newcomer.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("newcomer: %q", got)
	}
	younger.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, younger.br); err != nil {
		t.Fatalf("the connection idle the longest was not closed: %v\n%s", err, logs)
	}
	if got := oldest.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("the other connection after the eviction: %q", got)
	}
	if n := obs.evicted.Load(); n != 1 {
		t.Errorf("evicted %d connections, want 1", n)
	}
	if !strings.Contains(logs.String(), "closed the longest-idle connection to admit a new one") {
		t.Errorf("eviction not logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), "connection read failed") {
		t.Errorf("the evicted connection logged as a failure:\n%s", logs)
	}
}

func TestMaxConnsClosesStalledRequest(t *testing.T) {
	defer server.SetStallAfter(50 * time.Millisecond)()
	s, _ := fixtures.TableServer(t, func(s *server.Server) { s.MaxConns = 1 })
	a := fixtures.SocketmapAddr(t, s)
	stalled := dialRaw(t, a)
	stalled.send("12:userdb") // the rest never comes
	testkit.Eventually(t, "the stalled request to be started", func() bool {
		idle, busy := server.SlottedConns(s)
		return idle == 0 && busy == 1
	})
	newcomer := dialRaw(t, a)
	if got := newcomer.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("newcomer: %q", got)
	}
	stalled.expectClosed()
}

// A privileged connection busy with a request is never closed: a
// newcomer waits for it, as before the limit closed anything.
func TestMaxConnsWaitsForBusyPrivileged(t *testing.T) {
	defer server.SetStallAfter(50 * time.Millisecond)()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s, _ := fixtures.TableServer(t, func(s *server.Server) {
		s.MaxConns = 1
		s.PrivilegedUIDs = []uint32{uint32(os.Getuid())}
		s.Tables = blockingTables(entered, release)
	})
	a := listenUnix(t, s)
	busy := dialRaw(t, a)
	busy.send("12:userdb block,")
	<-entered
	second := dialRaw(t, a)
	second.send("12:userdb user1,")
	second.notServed("second connection while the only slot is busy")
	close(release)
	if got := busy.reply(); got != "OK released" {
		t.Fatalf("busy: %q", got)
	}
	if got := second.reply(); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("second after the first finished: %q", got)
	}
}

func TestMaxConnsPerUID(t *testing.T) {
	defer server.SetStallAfter(time.Hour)()
	obs := &countingObserver{}
	entered, release := make(chan struct{}, 2), make(chan struct{})
	defer close(release)
	s, logs := fixtures.TableServer(t, func(s *server.Server) {
		s.MaxConnsPerUID = 2
		s.Observer = obs
		s.Tables = blockingTables(entered, release)
	})
	a := listenUnix(t, s)
	first, second := dialRaw(t, a), dialRaw(t, a)
	for _, c := range []*rawConn{first, second} {
		if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
			t.Fatalf("query: %q", got)
		}
	}
	// Let the server mark both idle (until then, a connection that has just
	// written its reply counts as busy, and a loaded machine could leave
	// the first busy while the second is idle already: the test then saw
	// the second closed).
	waitIdle(t, s, 2)
	// A third connection of the same uid closes that uid's longest-idle one.
	third := dialRaw(t, a)
	if got := third.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("third: %q", got)
	}
	first.expectClosed()
	// With both of its connections busy, the uid's next one is refused.
	second.send("12:userdb block,")
	third.send("12:userdb block,")
	<-entered
	<-entered
	fourth := dialRaw(t, a)
	fourth.expectClosed()
	if e, r := obs.evicted.Load(), obs.rejected.Load(); e != 1 || r != 1 {
		t.Errorf("evicted %d, rejected %d; want 1 and 1", e, r)
	}
	if !strings.Contains(logs.String(), "connection refused: its uid holds its share of connections") ||
		!strings.Contains(logs.String(), `remote="unix:uid=`) {
		t.Errorf("refusal not logged with the uid:\n%s", logs)
	}
}

func TestPrivilegedUIDNotLimited(t *testing.T) {
	s, _ := fixtures.TableServer(t, func(s *server.Server) {
		s.MaxConnsPerUID = 1
		s.PrivilegedUIDs = []uint32{uint32(os.Getuid())}
	})
	a := listenUnix(t, s)
	var conns []*rawConn
	for range 5 {
		c := dialRaw(t, a)
		conns = append(conns, c)
		if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
			t.Fatalf("query: %q", got)
		}
	}
	for _, c := range conns {
		if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
			t.Fatalf("query again: %q", got)
		}
	}
}

func TestConnectionsObserved(t *testing.T) {
	obs := &countingObserver{}
	s, _ := fixtures.TableServer(t, func(s *server.Server) { s.Observer = obs })
	a := fixtures.SocketmapAddr(t, s)
	c := dialRaw(t, a)
	c.query("userdb", "user1")
	c.query("userdb", "nokey")
	c.query("temp", "x")
	c.query("nosuchmap", "x")
	c.send("3:bad,") // malformed: not a lookup
	c.reply()
	c.nc.Close()
	testkit.Eventually(t, "the connection to close", func() bool { return obs.closed.Load() == 1 })
	want := [server.NumResults]int64{1, 1, 1, 1}
	for r := range server.NumResults {
		if got := obs.lookups[r].Load(); got != want[r] {
			t.Errorf("%s lookups: %d, want %d", r, got, want[r])
		}
	}
	if obs.open.Load() != 1 {
		t.Errorf("opened %d, want 1", obs.open.Load())
	}
}

// A privileged client is admitted (to wait for a slot) even when as many
// connections as -max-conns wait already: under a flood of connections the
// count of waiting ones can reach the limit, and Postfix must never be
// turned away for it.
func TestPrivilegedNotRefusedWhenManyWait(t *testing.T) {
	defer server.SetStallAfter(time.Hour)()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s, logs := fixtures.TableServer(t, func(s *server.Server) {
		s.MaxConns = 1
		s.PrivilegedUIDs = []uint32{uint32(os.Getuid())}
		s.Tables = blockingTables(entered, release)
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	unix := listenUnix(t, s)
	tcp := fixtures.SocketmapAddr(t, s) // no peer uid: never privileged
	busy := dialRaw(t, unix)
	busy.send("12:userdb block,")
	<-entered
	waiting := dialRaw(t, tcp) // waits for the only slot
	waiting.notServed("the TCP connection while the slot is busy")
	priv := dialRaw(t, unix)
	priv.send("12:userdb user1,")
	priv.notServed("the privileged connection while the slot is busy")
	close(release)
	released = true
	if got := busy.reply(); got != "OK released" {
		t.Fatalf("busy: %q", got)
	}
	if got := priv.reply(); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("the privileged connection, once the slot was free: %q\n%s", got, logs)
	}
}

// waitIdle waits until n of s's connections are idle in the limits' view.
func waitIdle(t *testing.T, s *server.Server, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d idle connections", n), func() bool {
		idle, _ := server.SlottedConns(s)
		return idle == n
	})
}
