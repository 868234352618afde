package client_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/internal/lookuptest"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

func TestSocketmapLookup(t *testing.T) {
	a := lookuptest.SocketmapAddr(t, lookuptest.Start(t, nil))
	c, err := client.Dial(lookuptest.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 { // many requests on one connection
		for _, tc := range lookuptest.Cases {
			v, err := c.Lookup(lookuptest.Ctx(t), tc.MapName, tc.Key)
			lookuptest.Check(t, tc.MapName+" "+tc.Key, v, err, tc.Want)
		}
	}
}

func TestSocketmapConcurrentUse(t *testing.T) {
	a := lookuptest.SocketmapAddr(t, lookuptest.Start(t, nil))
	c, err := client.Dial(lookuptest.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range lookuptest.Cases {
				v, err := c.Lookup(lookuptest.Ctx(t), tc.MapName, tc.Key)
				lookuptest.Check(t, tc.MapName+" "+tc.Key, v, err, tc.Want)
			}
		}()
	}
	wg.Wait()
}

func TestDeadServerIsTemporary(t *testing.T) {
	for _, a := range lookuptest.DeadAddrs(t) {
		if _, err := client.Dial(lookuptest.Ctx(t), a); err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("Dial(%s) error %v, want Temporary", a, err)
		}
		if _, err := client.TCPLookup(lookuptest.Ctx(t), a, "user1"); err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("TCPLookup(%s) error %v, want Temporary", a, err)
		}
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	a := lookuptest.SocketmapAddr(t, lookuptest.Start(t, func(s *server.Server) { s.RequestTimeout = 200 * time.Millisecond }))
	c, err := client.Dial(lookuptest.Ctx(t), a)
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
	if v, err := c.Lookup(lookuptest.Ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001" {
		t.Fatalf("after timeout: %q, %v", v, err)
	}
}

func TestReconnectAfterServerClosedIdle(t *testing.T) {
	var mu sync.Mutex
	closed := 0
	s := lookuptest.Start(t, func(s *server.Server) {
		s.IdleTimeout = 20 * time.Millisecond
		s.Logger = slog.New(countHandler{slog.DiscardHandler, "idle connection closed", &mu, &closed})
	})
	a := lookuptest.SocketmapAddr(t, s)
	c, err := client.Dial(lookuptest.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if v, err := c.Lookup(lookuptest.Ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001" {
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

func TestGarbledRepliesAreTemporary(t *testing.T) {
	for _, reply := range []string{"HELLO\n", "200 %zz\n", "", "200 " + strings.Repeat("x", 5000) + "\n", "200 no newline"} {
		_, err := client.TCPLookup(lookuptest.Ctx(t), lookuptest.FakeServer(t, reply), "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("tcp_table reply %.20q: error %v, want Temporary", reply, err)
		}
	}
}

func TestTCPLookup(t *testing.T) {
	s := lookuptest.Start(t, nil)
	listen := func(mapName string) sockaddr.Addr {
		if err := s.ListenTCPTable(lookuptest.MustParse(t, "inet:127.0.0.1:0"), mapName, server.UnixOptions{}); err != nil {
			t.Fatal(err)
		}
		addrs := s.Addrs()
		return lookuptest.MustParse(t, "inet:"+addrs[len(addrs)-1].String())
	}
	vm, udb, tmp, none := listen("virtual_mailbox"), listen("userdb"), listen("temp"), listen("nosuchmap")
	for _, tc := range []struct {
		a    sockaddr.Addr
		key  string
		want lookuptest.Outcome
	}{
		{vm, "user1@some.domain", lookuptest.Found("some.domain/user1/")},
		{vm, "a b", lookuptest.Found("spaced")},
		{vm, "ümläut@dömain", lookuptest.Found("ü/ä")},
		{vm, "nobody", lookuptest.Fails(failure.NotFound, "not found")},
		{udb, "user1", lookuptest.Found("uid=1001 gid=1001")},
		{udb, "empty", lookuptest.Fails(failure.Temporary, "empty value")},
		{udb, "big", lookuptest.Fails(failure.Temporary, "value too long")},
		{tmp, "x", lookuptest.Fails(failure.Temporary, "try later")},
		{none, "x", lookuptest.Fails(failure.Temporary, "unknown map")},
	} {
		v, err := client.TCPLookup(lookuptest.Ctx(t), tc.a, tc.key)
		lookuptest.Check(t, "TCPLookup "+tc.key, v, err, tc.want)
	}
}
