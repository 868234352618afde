package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/addr"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
)

var tables = map[string]map[string]string{
	"virtual_mailbox": {"user1@some.domain": "some.domain/user1/", "a b": "spaced", "ümläut@dömain": "ü/ä"},
	"userdb":          {"user1": "uid=1001 gid=1001", "empty": "", "big": strings.Repeat("v", 100000)},
}

func resolve(ctx context.Context, mapName, key string) (string, error) {
	switch {
	case mapName == "temp":
		return "", failure.Temp("try later")
	case key == "block": // slower than the client waits
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return "", failure.Temp("too slow")
	}
	t, ok := tables[mapName]
	if !ok {
		return "", failure.Perm("unknown map %q", mapName)
	}
	v, ok := t[key]
	if !ok {
		return "", failure.ErrNotFound
	}
	return v, nil
}

func mustParse(t *testing.T, s string) addr.Addr {
	t.Helper()
	a, err := addr.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// start runs a server with the tables above and returns it.
func start(t *testing.T, configure func(*server.Server)) *server.Server {
	t.Helper()
	s := &server.Server{Resolver: server.ResolverFunc(resolve), Logger: slog.New(slog.DiscardHandler)}
	if configure != nil {
		configure(s)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func socketmapAddr(t *testing.T, s *server.Server) addr.Addr {
	t.Helper()
	if err := s.ListenSocketmap(mustParse(t, "inet:127.0.0.1:0"), server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	return mustParse(t, "inet:"+addrs[len(addrs)-1].String())
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

type outcome struct {
	value string
	kind  failure.Kind // -1: found
	text  string       // in the error message
}

var cases = []struct {
	mapName, key string
	want         outcome
}{
	{"virtual_mailbox", "user1@some.domain", outcome{"some.domain/user1/", -1, ""}},
	{"virtual_mailbox", "a b", outcome{"spaced", -1, ""}},
	{"virtual_mailbox", "ümläut@dömain", outcome{"ü/ä", -1, ""}},
	{"virtual_mailbox", "nobody@some.domain", outcome{"", failure.NotFound, "not found"}},
	{"userdb", "empty", outcome{"", failure.Permanent, "empty value"}},
	{"userdb", "big", outcome{"", failure.Temporary, "reply too long"}},
	{"nosuchmap", "x", outcome{"", failure.Permanent, `unknown map "nosuchmap"`}},
	{"temp", "x", outcome{"", failure.Temporary, "try later"}},
}

func check(t *testing.T, what string, v string, err error, want outcome) {
	t.Helper()
	if want.kind < 0 {
		if err != nil || v != want.value {
			t.Errorf("%s = %q, %v; want %q", what, v, err, want.value)
		}
		return
	}
	if err == nil || failure.KindOf(err) != want.kind || !strings.Contains(err.Error(), want.text) {
		t.Errorf("%s = %q, %v; want a %v error containing %q", what, v, err, want.kind, want.text)
	}
	if want.kind == failure.NotFound && !errors.Is(err, failure.ErrNotFound) {
		t.Errorf("%s: %v is not failure.ErrNotFound", what, err)
	}
}

func TestSocketmapLookup(t *testing.T) {
	a := socketmapAddr(t, start(t, nil))
	c, err := client.Dial(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 { // many requests on one connection
		for _, tc := range cases {
			v, err := c.Lookup(ctx(t), tc.mapName, tc.key)
			check(t, tc.mapName+" "+tc.key, v, err, tc.want)
		}
	}
	for _, tc := range cases {
		v, err := client.LookupOnce(ctx(t), a, tc.mapName, tc.key)
		check(t, "LookupOnce "+tc.mapName+" "+tc.key, v, err, tc.want)
	}
}

func TestSocketmapConcurrentUse(t *testing.T) {
	a := socketmapAddr(t, start(t, nil))
	c, err := client.Dial(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range cases {
				v, err := c.Lookup(ctx(t), tc.mapName, tc.key)
				check(t, tc.mapName+" "+tc.key, v, err, tc.want)
			}
		}()
	}
	wg.Wait()
}

func TestBadRequestIsPermanent(t *testing.T) {
	a := socketmapAddr(t, start(t, nil))
	for _, tc := range []struct{ mapName, key string }{
		{"", "k"},
		{"two words", "k"},
		{"userdb", strings.Repeat("k", 100000)},
	} {
		_, err := client.LookupOnce(ctx(t), a, tc.mapName, tc.key)
		if failure.KindOf(err) != failure.Permanent {
			t.Errorf("LookupOnce(%q, %d bytes) error %v, want Permanent", tc.mapName, len(tc.key), err)
		}
	}
}

func TestDeadServerIsTemporary(t *testing.T) {
	// A port that was just free, and a socket path with nothing behind it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := mustParse(t, "inet:"+ln.Addr().String())
	ln.Close()
	unixAddr := mustParse(t, "unix:"+filepath.Join(t.TempDir(), "none.sock"))
	for _, a := range []addr.Addr{tcpAddr, unixAddr} {
		if _, err := client.Dial(ctx(t), a); err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("Dial(%s) error %v, want Temporary", a, err)
		}
		if _, err := client.LookupOnce(ctx(t), a, "userdb", "user1"); err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) {
			t.Errorf("LookupOnce(%s) error %v, want Temporary", a, err)
		}
		if _, err := client.TCPLookup(ctx(t), a, "user1"); err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("TCPLookup(%s) error %v, want Temporary", a, err)
		}
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	a := socketmapAddr(t, start(t, func(s *server.Server) { s.RequestTimeout = 200 * time.Millisecond }))
	c, err := client.Dial(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Lookup(short, "userdb", "block"); failure.KindOf(err) != failure.Temporary || err == nil {
		t.Fatalf("timed-out lookup error %v, want Temporary", err)
	}
	// The connection is usable again (it is redialled).
	if v, err := c.Lookup(ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001" {
		t.Fatalf("after timeout: %q, %v", v, err)
	}
}

func TestReconnectAfterServerClosedIdle(t *testing.T) {
	var mu sync.Mutex
	closed := 0
	s := start(t, func(s *server.Server) {
		s.IdleTimeout = 20 * time.Millisecond
		s.Logger = slog.New(countHandler{slog.DiscardHandler, "idle connection closed", &mu, &closed})
	})
	a := socketmapAddr(t, s)
	c, err := client.Dial(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if v, err := c.Lookup(ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001" {
			t.Fatalf("lookup %d: %q, %v", i, v, err)
		}
		// Wait until the server has dropped the idle connection.
		for j := 0; ; j++ {
			mu.Lock()
			n := closed
			mu.Unlock()
			if n > i {
				break
			}
			if j > 2000 {
				t.Fatal("server never closed the idle connection")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// countHandler counts log records with a given message.
type countHandler struct {
	slog.Handler
	msg string
	mu  *sync.Mutex
	n   *int
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.mu.Lock()
		*h.n++
		h.mu.Unlock()
	}
	return nil
}

// fakeServer answers every connection with reply, for replies no real
// server sends.
func fakeServer(t *testing.T, reply string) addr.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 4096)
				nc.Read(buf)
				io.WriteString(nc, reply)
			}()
		}
	}()
	return mustParse(t, "inet:"+ln.Addr().String())
}

func TestGarbledRepliesAreTemporary(t *testing.T) {
	for _, reply := range []string{"5:HELLO,", "x:", "3:OK", "", "100001:"} {
		_, err := client.LookupOnce(ctx(t), fakeServer(t, reply), "userdb", "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("socketmap reply %q: error %v, want Temporary", reply, err)
		}
	}
	for _, reply := range []string{"HELLO\n", "200 %zz\n", "", "200 " + strings.Repeat("x", 5000) + "\n", "200 no newline"} {
		_, err := client.TCPLookup(ctx(t), fakeServer(t, reply), "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("tcp_table reply %.20q: error %v, want Temporary", reply, err)
		}
	}
}

func TestTCPLookup(t *testing.T) {
	s := start(t, nil)
	listen := func(mapName string) addr.Addr {
		if err := s.ListenTCPTable(mustParse(t, "inet:127.0.0.1:0"), mapName, server.UnixOptions{}); err != nil {
			t.Fatal(err)
		}
		addrs := s.Addrs()
		return mustParse(t, "inet:"+addrs[len(addrs)-1].String())
	}
	vm, udb, tmp, none := listen("virtual_mailbox"), listen("userdb"), listen("temp"), listen("nosuchmap")
	for _, tc := range []struct {
		a    addr.Addr
		key  string
		want outcome
	}{
		{vm, "user1@some.domain", outcome{"some.domain/user1/", -1, ""}},
		{vm, "a b", outcome{"spaced", -1, ""}},
		{vm, "ümläut@dömain", outcome{"ü/ä", -1, ""}},
		{vm, "nobody", outcome{"", failure.NotFound, "not found"}},
		{udb, "user1", outcome{"uid=1001 gid=1001", -1, ""}},
		{udb, "empty", outcome{"", failure.Temporary, "empty value"}},
		{udb, "big", outcome{"", failure.Temporary, "value too long"}},
		{tmp, "x", outcome{"", failure.Temporary, "try later"}},
		{none, "x", outcome{"", failure.Temporary, "unknown map"}},
	} {
		v, err := client.TCPLookup(ctx(t), tc.a, tc.key)
		check(t, "TCPLookup "+tc.key, v, err, tc.want)
	}
}

func TestUnixSocketLookup(t *testing.T) {
	s := start(t, nil)
	a := mustParse(t, "unix:"+filepath.Join(t.TempDir(), "mapdropd.sock"))
	if err := s.ListenSocketmap(a, server.UnixOptions{Mode: 0o660}); err != nil {
		t.Fatal(err)
	}
	v, err := client.LookupOnce(ctx(t), a, "virtual_mailbox", "user1@some.domain")
	if err != nil || v != "some.domain/user1/" {
		t.Fatalf("over unix socket: %q, %v", v, err)
	}
}
