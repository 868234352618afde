package oneshot_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// A server that accepts but never answers is a timeout, Temporary, on both
// kinds of raw socket.
func TestLookupSilentServerTimesOut(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		a, _ := fixtures.SilentServer(t, network)
		short, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		_, err := oneshot.Lookup(short, time.Time{}, a, "userdb", "user1")
		cancel()
		if err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) ||
			!errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Lookup from a silent server: error %v, want a Temporary deadline error", network, err)
		}
	}
}

// Cancelling a context without a deadline wakes a lookup blocked on the
// reply.
func TestLookupCancel(t *testing.T) {
	a, accepted := fixtures.SilentServer(t, "unix")
	c, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-accepted: // the request is on its way: now cancel
		case <-time.After(20 * time.Second):
		}
		cancel()
	}()
	_, err := oneshot.Lookup(c, time.Time{}, a, "userdb", "user1")
	if err == nil || failure.KindOf(err) != failure.Temporary || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lookup: error %v, want Temporary wrapping context.Canceled", err)
	}
}

// A server that closes the connection without a reply is Temporary.
func TestLookupClosedWithoutReply(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		a, accepted := fixtures.SilentServer(t, network)
		go func() {
			if nc, ok := <-accepted; ok {
				nc.Close()
			}
		}()
		_, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, "userdb", "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) {
			t.Errorf("%s: closed without reply: error %v, want Temporary", network, err)
		}
	}
}

// A host name is resolved by getent, with the same outcomes; "localhost"
// may list ::1 first, where nothing listens: the next address is tried.
func TestLookupHostName(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenSocketmap(fixtures.MustParse(t, "inet:127.0.0.1:0"), server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addrs()[0].String())
	a := fixtures.MustParse(t, "inet:localhost:"+port)
	for _, tc := range fixtures.Cases {
		v, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, tc.MapName, tc.Key)
		fixtures.Check(t, "Lookup localhost "+tc.MapName+" "+tc.Key, v, err, tc.Want)
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := oneshot.Lookup(short, time.Time{}, a, "userdb", "block"); err == nil || failure.KindOf(err) != failure.Temporary {
		t.Errorf("slow lookup by host name: error %v, want Temporary", err)
	}
}

// Every way a one-shot lookup ends closes its socket.
func TestLookupLeavesNoDescriptors(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.MustParse(t, "unix:"+filepath.Join(t.TempDir(), "mapdropd.sock"))
	if err := s.ListenSocketmap(a, server.UnixOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	silent, accepted := fixtures.SilentServer(t, "unix")
	dead := fixtures.MustParse(t, "unix:"+filepath.Join(t.TempDir(), "none.sock"))
	open := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(ents)
	}
	lookups := func() {
		for _, tc := range fixtures.Cases {
			oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, tc.MapName, tc.Key)
		}
		oneshot.Lookup(fixtures.Ctx(t), time.Time{}, dead, "userdb", "user1")
		short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		oneshot.Lookup(short, time.Time{}, silent, "userdb", "user1")
		cancel()
		(<-accepted).Close()
	}
	lookups() // first use may open descriptors that stay (the poller)
	before := open()
	for range 5 {
		lookups()
	}
	// The in-process server closes its ends when it sees ours closed:
	// give it time. A leak of ours would stay (5 rounds, 5 descriptors
	// per path at least).
	var after int
	testkit.Poll(5*time.Second, func() bool {
		after = open()
		return after <= before
	})
	if after > before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

// Every case of the shared table, over TCP and over a unix socket.
func TestLookup(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	tcp := fixtures.SocketmapAddr(t, s)
	sock := fixtures.MustParse(t, "unix:"+filepath.Join(t.TempDir(), "mapdropd.sock"))
	if err := s.ListenSocketmap(sock, server.UnixOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []sockaddr.Addr{tcp, sock} {
		for _, tc := range fixtures.Cases {
			v, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, tc.MapName, tc.Key)
			fixtures.Check(t, a.String()+" "+tc.MapName+" "+tc.Key, v, err, tc.Want)
		}
	}
}

// A request the protocol cannot carry is Permanent, and is not sent.
func TestBadRequestIsPermanent(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	for _, tc := range []struct{ mapName, key string }{
		{"", "k"},
		{"two words", "k"},
		{"userdb", strings.Repeat("k", 100000)},
	} {
		_, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, tc.mapName, tc.key)
		if failure.KindOf(err) != failure.Permanent {
			t.Errorf("Lookup(%q, %d bytes) error %v, want Permanent", tc.mapName, len(tc.key), err)
		}
	}
}

// Nothing listening, at a port or a socket path, or a name that does not
// resolve: Temporary, never "not found".
func TestDeadServerIsTemporary(t *testing.T) {
	for _, a := range append(fixtures.DeadAddrs(t), fixtures.MustParse(t, "inet:no-such-host.invalid:10027")) {
		_, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, a, "userdb", "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) {
			t.Errorf("Lookup(%s) error %v, want Temporary", a, err)
		}
	}
}

// Replies that break the framing or the protocol are Temporary.
func TestGarbledRepliesAreTemporary(t *testing.T) {
	for _, reply := range []string{"5:HELLO,", "x:", "3:OK", "", "100001:"} {
		_, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, fixtures.FakeServer(t, reply), "userdb", "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("socketmap reply %q: error %v, want Temporary", reply, err)
		}
	}
}

// IPv6 literals, with and without brackets, and an IPv4-mapped one.
func TestIPv6(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenSocketmap(fixtures.MustParse(t, "inet:[::1]:0"), server.UnixOptions{}); err != nil {
		t.Skip("no IPv6 loopback here:", err)
	}
	_, port, _ := net.SplitHostPort(s.Addrs()[0].String())
	for _, spelling := range []string{"inet:[::1]:" + port, "inet:::1:" + port, "inet:[::1%lo]:" + port, "inet:[::1%1]:" + port} {
		v, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, fixtures.MustParse(t, spelling), "userdb", "user1")
		if err != nil || v != "uid=1001 gid=1001 home=/home/user1" {
			t.Errorf("%s: %q, %v", spelling, v, err)
		}
	}
	v4 := fixtures.SocketmapAddr(t, s)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(v4.String(), "inet:"))
	if v, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, fixtures.MustParse(t, "inet:[::ffff:127.0.0.1]:"+port), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001 home=/home/user1" {
		t.Errorf("IPv4-mapped address: %q, %v", v, err)
	}
	if _, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, fixtures.MustParse(t, "inet:[fe80::1%no-such-if]:"+port), "userdb", "user1"); err == nil || failure.KindOf(err) != failure.Temporary {
		t.Errorf("unknown IPv6 zone: %v, want Temporary", err)
	}
}

// The request is followed by the end of the connection (a half-close), so
// a server learns it may close right after its reply: here a server that
// answers only once it has read end of file.
func TestRequestThenEndOfFile(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "eof.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := io.ReadAll(nc) // returns at end of file only
		got <- string(req)
		if err == nil {
			io.WriteString(nc, "6:OK yes,")
		}
	}()
	v, err := oneshot.Lookup(fixtures.Ctx(t), time.Time{}, fixtures.MustParse(t, "unix:"+ln.Addr().String()), "userdb", "user1")
	if req := <-got; req != "12:userdb user1," {
		t.Errorf("server read %q before end of file", req)
	}
	if err != nil || v != "yes" {
		t.Errorf("Lookup = %q, %v; want yes", v, err)
	}
}
