package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/server"
)

func TestSocketmapReplies(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	// All on one connection, as Postfix and postmap -q - do.
	for _, tc := range []struct{ mapName, key, want string }{
		{"virtual_mailbox", "user1@some.domain", "OK some.domain/user1/"},
		{"virtual_mailbox", "USER1@Some.Domain", "OK capitals/"},
		{"virtual_mailbox", "user1@Some.Domain", "NOTFOUND "},
		{"virtual_mailbox", "a b  c", "OK spaced key"},
		{"virtual_mailbox", "ümläut@dömain.test", "OK dömain.test/ümläut/"},
		{"virtual_mailbox", "", "OK empty key"},
		{"userdb", "user1", "OK uid=1001 gid=1001 home=/home/user1"},
		{"userdb", "empty", "PERM empty value"},
		{"userdb", "big", "TEMP reply too long"},
		{"userdb", "fits", "OK " + fixtures.BigValue[1:]},
		{"nosuchmap", "x", `PERM unknown map "nosuchmap"`},
		{"temp", "x", "TEMP table temp is reloading  second line"},
	} {
		if got := c.query(tc.mapName, tc.key); got != tc.want {
			t.Errorf("%s %q: reply %.60q, want %.60q", tc.mapName, tc.key, got, tc.want)
		}
	}
	for i := range 500 {
		want := "NOTFOUND "
		if i%2 == 0 {
			want = "OK some.domain/user1/"
		}
		key := fmt.Sprintf("nouser%d@some.domain", i)
		if i%2 == 0 {
			key = "user1@some.domain"
		}
		if got := c.query("virtual_mailbox", key); got != want {
			t.Fatalf("request %d: %q, want %q", i, got, want)
		}
	}
}

func TestSocketmapPipelined(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	// Several requests in one write: one reply each, in order.
	c.send("22:userdb user1 nosuchkey,12:userdb user1,7:nospace,")
	for _, want := range []string{"NOTFOUND ", "OK uid=1001 gid=1001 home=/home/user1", "PERM no space between map name and key: malformed socketmap request"} {
		if got := c.reply(); got != want {
			t.Errorf("reply %q, want %q", got, want)
		}
	}
	// A malformed request did not close the connection.
	if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("after malformed request: %q", got)
	}
	c.send("7: userdb,")
	if got := c.reply(); !strings.HasPrefix(got, "PERM empty map name") {
		t.Errorf("empty map name: %q", got)
	}
}

func TestMalformedNetstringClosesOnlyThatConnection(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	good := dialRaw(t, a)
	if got := good.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("good connection: %q", got)
	}
	for _, tc := range []struct{ name, input, reason string }{
		{"non-digit length", "x:abc,", "unexpected byte"},
		{"too long", "100001:", "length exceeds 100000"},
		{"missing comma", "12:userdb user1;", "missing ','"},
		{"leading zero", "012:userdb user1,", "leading zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := dialRaw(t, a)
			// Start a request on the good connection before the bad one
			// breaks, and finish it after: the good one is unaffected.
			good.send("12:userdb")
			bad.send(tc.input)
			bad.expectClosed()
			good.send(" user1,")
			if got := good.reply(); !strings.HasPrefix(got, "OK ") {
				t.Fatalf("good connection after %s: %q", tc.name, got)
			}
			remote := bad.nc.LocalAddr().String()
			testkit.Eventually(t, "log line", func() bool {
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, "malformed request") && strings.Contains(l, remote) && strings.Contains(l, tc.reason) {
						return true
					}
				}
				return false
			})
		})
	}
	if got := good.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("good connection at the end: %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.IdleTimeout = 50 * time.Millisecond })
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("reply %q", got)
	}
	c.expectClosed()
	testkit.Eventually(t, "idle log line", func() bool { return strings.Contains(logs.String(), "idle connection closed") })
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("idle close logged loudly: %s", l)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.RequestTimeout = 50 * time.Millisecond })
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	c.send("12:userdb") // and never the rest
	c.expectClosed()
	testkit.Eventually(t, "timeout log line", func() bool { return strings.Contains(logs.String(), "request not complete in time") })
}

func TestShutdownDrainsRequestInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s, _ := fixtures.TableServer(t, func(s *server.Server) {
		s.Tables = server.TablesFunc(func(ctx context.Context, m, k string) (string, error) {
			if k == "block" {
				close(entered)
				<-release
				return "released", nil
			}
			return fixtures.Lookup(ctx, m, k)
		})
	})
	a := fixtures.SocketmapAddr(t, s)
	busy := dialRaw(t, a)
	idle := dialRaw(t, a)
	if got := idle.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("idle connection: %q", got)
	}
	busy.send("12:userdb block,")
	<-entered

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()

	// The idle connection is closed and the listener stops accepting,
	// while the request in flight is still blocked.
	idle.expectClosed()
	testkit.Eventually(t, "listener to close", func() bool {
		nc, err := net.Dial(a.Network, a.Address)
		if err != nil {
			return true
		}
		nc.Close()
		return false
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v before the request in flight was answered", err)
	default:
	}
	close(release)
	if got := busy.reply(); got != "OK released" {
		t.Fatalf("in-flight reply %q", got)
	}
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.ListenSocketmap(a, server.UnixOptions{}); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Listen after Shutdown: %v", err)
	}
}

func TestShutdownGivesUp(t *testing.T) {
	entered := make(chan struct{})
	s := &server.Server{
		Logger: slog.New(slog.DiscardHandler),
		Tables: server.TablesFunc(func(ctx context.Context, m, k string) (string, error) {
			close(entered)
			<-ctx.Done() // released by Shutdown giving up
			return "", ctx.Err()
		}),
	}
	a := fixtures.SocketmapAddr(t, s)
	c := dialRaw(t, a)
	c.send("12:userdb block,")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a done context = %v", err)
	}
	c.expectClosed()
}

func TestTablesPanic(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) {
		s.Tables = server.TablesFunc(func(ctx context.Context, m, k string) (string, error) {
			if k == "boom" {
				panic("boom")
			}
			return fixtures.Lookup(ctx, m, k)
		})
	})
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	if got := c.query("userdb", "boom"); got != "TEMP internal error" {
		t.Fatalf("panicking lookup: %q", got)
	}
	if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("after panic: %q", got)
	}
	if !strings.Contains(logs.String(), "lookup panicked") {
		t.Fatal("panic not logged")
	}
}

func TestDebugOnlyPerQueryLogs(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	c.query("userdb", "user1")
	c.query("userdb", "nokey")
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=lookup") && !strings.Contains(l, "level=DEBUG") {
			t.Errorf("per-query line above Debug: %s", l)
		}
	}
	if !strings.Contains(logs.String(), "key=nokey") {
		t.Errorf("no debug line for a lookup")
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mapdropd.sock")
	a := fixtures.MustParse(t, "unix:"+path)
	gid, group := otherGroup(t)
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenSocketmap(a, server.UnixOptions{Mode: 0660, Group: group}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0660 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	if got := int(fi.Sys().(*syscall.Stat_t).Gid); got != gid {
		t.Errorf("socket gid %d, want %d", got, gid)
	}
	c := dialRaw(t, a)
	if got := c.query("virtual_mailbox", "user1@some.domain"); got != "OK some.domain/user1/" {
		t.Errorf("over unix socket: %q", got)
	}

	// A second server refuses the live socket and leaves it alone.
	s2, _ := fixtures.TableServer(t, nil)
	if err := s2.ListenSocketmap(a, server.UnixOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("listening on a live socket: %v", err)
	}
	if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("first server after refused takeover: %q", got)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Shutdown: %v", err)
	}
}

// otherGroup returns a group other than root's, by gid and name, for
// checking that the group option is applied.
func otherGroup(t *testing.T) (int, string) {
	for _, name := range []string{"nogroup", "daemon", "mail", "postfix"} {
		if g, err := user.LookupGroup(name); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			if gid != os.Getegid() {
				return gid, name
			}
		}
	}
	t.Skip("no group other than the test's own to try")
	return 0, ""
}

func TestUnixSocketNumericGroup(t *testing.T) {
	gid, _ := otherGroup(t)
	path := filepath.Join(t.TempDir(), "s")
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "unix:"+path), "userdb", server.UnixOptions{Group: strconv.Itoa(gid)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := int(fi.Sys().(*syscall.Stat_t).Gid); got != gid {
		t.Errorf("socket gid %d, want %d", got, gid)
	}
	if err := s.ListenSocketmap(fixtures.MustParse(t, "unix:"+path+"2"), server.UnixOptions{Group: "no-such-group-here"}); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestUnixStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	// Leave a socket file behind with nothing listening on it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.MustParse(t, "unix:"+path)
	if err := s.ListenSocketmap(a, server.UnixOptions{}); err != nil {
		t.Fatalf("listening over a stale socket: %v", err)
	}
	if got := dialRaw(t, a).query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("reply %q", got)
	}
}

func TestUnixRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenSocketmap(fixtures.MustParse(t, "unix:"+path), server.UnixOptions{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listening over a regular file: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Fatalf("regular file touched: %q, %v", b, err)
	}
}

func TestIPv6(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("cannot bind ::1: %v", err)
	}
	probe.Close()
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenSocketmap(fixtures.MustParse(t, "inet:[::1]:0"), server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:[::1]:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	c := dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[0].String()))
	if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("socketmap over IPv6: %q", got)
	}
	tc := dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[1].String()))
	tc.send("get user1\n")
	if got := tc.line(); got != "200 uid=1001%20gid=1001%20home=/home/user1\n" {
		t.Errorf("tcp_table over IPv6: %q", got)
	}
}

func TestTCPTable(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "virtual_mailbox", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	vm := dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[0].String()))
	for _, tc := range []struct{ req, want string }{
		{"get user1@some.domain\n", "200 some.domain/user1/\n"},
		{"get a%20b%20%20c\n", "200 spaced%20key\n"},
		{"get %C3%BCml%C3%A4ut@d%C3%B6main.test\n", "200 d%C3%B6main.test/%C3%BCml%C3%A4ut/\n"},
		{"get %c3%bcml%c3%a4ut@d%c3%b6main.test\r\n", "200 d%C3%B6main.test/%C3%BCml%C3%A4ut/\n"},
		{"get nobody@some.domain\n", "500 not%20found\n"},
		{"put k v\n", "500 put%20not%20supported\n"},
		{"get a%zz\n", "400 malformed%20tcp_table%20request:%20bad%20%25-escape%20\"%25zz\"%20at%20byte%201\n"},
		{"frob x\n", "400 unsupported%20tcp_table%20request:%20\"frob\"\n"},
		{"get " + strings.Repeat("x", 5000) + "\n", "400 request%20too%20long\n"},
		{"get " + strings.Repeat("x", 4091) + "\n", "500 not%20found\n"}, // exactly 4096 bytes
		{"get " + strings.Repeat("x", 4092) + "\n", "400 request%20too%20long\n"},
		{"get user1@some.domain\n", "200 some.domain/user1/\n"},
	} {
		vm.send(tc.req)
		if got := vm.line(); got != tc.want {
			t.Errorf("%.40q: reply %q, want %q", tc.req, got, tc.want)
		}
	}
	udb := dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[1].String()))
	for _, tc := range []struct{ req, want string }{
		{"get percent\n", "200 a%20b%25c%09%C3%BC\n"},
		{"get empty\n", "400 empty%20value\n"},
		{"get fits\n", "400 value%20too%20long\n"},
	} {
		udb.send(tc.req)
		if got := udb.line(); got != tc.want {
			t.Errorf("%.40q: reply %.60q, want %.60q", tc.req, got, tc.want)
		}
	}
	udb.send("get partial")
	udb.nc.(*net.TCPConn).CloseWrite()
	udb.expectClosed()
}

func TestTCPTableTemporaryAndUnknownMap(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "temp", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "nosuchmap", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	c := dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[0].String()))
	c.send("get x\n")
	if got := c.line(); got != "400 table%20temp%20is%20reloading%0D%0Asecond%20line\n" {
		t.Errorf("temp reply %q", got)
	}
	c = dialRaw(t, fixtures.MustParse(t, "inet:"+addrs[1].String()))
	c.send("get x\n")
	if got := c.line(); got != "400 unknown%20map%20\"nosuchmap\"\n" {
		t.Errorf("unknown map reply %q", got)
	}
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "", server.UnixOptions{}); err == nil {
		t.Error("tcp_table listener without a map name accepted")
	}
}

func TestManyConcurrentClients(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialRaw(t, a)
			for j := range 100 {
				key := "user1"
				want := "OK uid=1001 gid=1001 home=/home/user1"
				if (i+j)%3 == 0 {
					key, want = fmt.Sprintf("k%d-%d", i, j), "NOTFOUND "
				}
				c.send(fmt.Sprintf("%d:userdb %s,", len("userdb ")+len(key), key))
				b, err := c.nr.Read()
				if err != nil || string(b) != want {
					errs <- fmt.Sprintf("client %d request %d: %q, %v", i, j, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestMaxConnsSharedAcrossListeners(t *testing.T) {
	s, _ := fixtures.TableServer(t, func(s *server.Server) { s.MaxConns = 1 })
	sm := fixtures.SocketmapAddr(t, s)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	tt := fixtures.MustParse(t, "inet:"+s.Addrs()[1].String())
	// An idle listener does not hold the only slot: each listener in turn
	// serves a client.
	for range 3 {
		c := dialRaw(t, tt)
		c.send("get user1\n")
		if got := c.line(); !strings.HasPrefix(got, "200 ") {
			t.Fatalf("tcp_table: %q", got)
		}
		c.nc.Close()
		c = dialRaw(t, sm)
		if got := c.query("userdb", "user1"); !strings.HasPrefix(got, "OK ") {
			t.Fatalf("socketmap: %q", got)
		}
		c.nc.Close()
	}
}
