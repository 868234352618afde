package testkit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// BigValue is one byte too long to fit in a socketmap OK reply; it is
// userdb's "big", and userdb's "fits" is BigValue[1:].
var BigValue = strings.Repeat("v", 100000-len("OK ")+1)

// Tables are what TableServer answers: map name -> key -> value.
var Tables = map[string]map[string]string{
	"virtual_mailbox": {
		"user1@some.domain":  "some.domain/user1/",
		"USER1@Some.Domain":  "capitals/",
		"a b  c":             "spaced key",
		"ümläut@dömain.test": "dömain.test/ümläut/",
		"":                   "empty key",
	},
	"userdb": {
		"user1":   "uid=1001 gid=1001 home=/home/user1",
		"empty":   "",
		"big":     BigValue,
		"fits":    BigValue[1:],
		"percent": "a b%c\tü",
	},
}

// Lookup answers from Tables, as a mapdropd would: map "temp" is always
// TEMP (with a two-line message), any other map not in Tables PERM, and
// key "block" answers TEMP only after a second (or when ctx ends).
func Lookup(ctx context.Context, mapName, key string) (string, error) {
	switch {
	case mapName == "temp":
		return "", failure.Temp("table %s is reloading\r\nsecond line", mapName)
	case key == "block": // slower than the client waits
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return "", failure.Temp("too slow")
	}
	t, ok := Tables[mapName]
	if !ok {
		return "", failure.Perm("unknown map %q", mapName)
	}
	v, ok := t[key]
	if !ok {
		return "", failure.ErrNotFound
	}
	return v, nil
}

// MustParse parses an address or fails the test.
func MustParse(t testing.TB, s string) sockaddr.Addr {
	t.Helper()
	a, err := sockaddr.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TableServer returns a lookup server (package lookup/server, in this
// process) that answers with Lookup and logs at Debug into the returned
// buffer, changed by configure when not nil. It listens nowhere yet. When
// the test ends it is shut down, and a failed shutdown fails the test.
func TableServer(t testing.TB, configure func(*server.Server)) (*server.Server, *Buffer) {
	t.Helper()
	logs := &Buffer{}
	s := &server.Server{
		Tables: server.TablesFunc(Lookup),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(s)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("testkit: Shutdown: %v", err)
		}
	})
	return s, logs
}

// SocketmapAddr makes s listen for socketmap on a free loopback port and
// returns its address.
func SocketmapAddr(t testing.TB, s *server.Server) sockaddr.Addr {
	t.Helper()
	if err := s.ListenSocketmap(MustParse(t, "inet:127.0.0.1:0"), server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	return MustParse(t, "inet:"+addrs[len(addrs)-1].String())
}

// DeadAddrs returns addresses where nothing listens: a loopback port that
// was free a moment ago, and a socket path with nothing behind it.
func DeadAddrs(t *testing.T) []sockaddr.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp := MustParse(t, "inet:"+ln.Addr().String())
	ln.Close()
	return []sockaddr.Addr{tcp, MustParse(t, "unix:"+filepath.Join(t.TempDir(), "none.sock"))}
}

// Ctx is a context that ends with the test (or after 30 seconds).
func Ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// Outcome is what a lookup should give: a value, or an error of a kind
// whose text contains a string.
type Outcome struct {
	Value string
	Kind  failure.Kind // -1: found
	Text  string       // in the error message
}

// Found is the outcome "found, with value v".
func Found(v string) Outcome { return Outcome{Value: v, Kind: -1} }

// Fails is the outcome "an error of kind whose text contains text".
func Fails(kind failure.Kind, text string) Outcome { return Outcome{Kind: kind, Text: text} }

// Cases are lookups of every outcome from TableServer, as a client sees them.
var Cases = []struct {
	MapName, Key string
	Want         Outcome
}{
	{"virtual_mailbox", "user1@some.domain", Found("some.domain/user1/")},
	{"virtual_mailbox", "a b  c", Found("spaced key")},
	{"virtual_mailbox", "ümläut@dömain.test", Found("dömain.test/ümläut/")},
	{"virtual_mailbox", "nobody@some.domain", Fails(failure.NotFound, "not found")},
	{"userdb", "empty", Fails(failure.Permanent, "empty value")},
	{"userdb", "big", Fails(failure.Temporary, "reply too long")},
	{"nosuchmap", "x", Fails(failure.Permanent, `unknown map "nosuchmap"`)},
	{"temp", "x", Fails(failure.Temporary, "is reloading")},
}

// Check reports an error unless v and err are the outcome want; what
// names the lookup.
func Check(t *testing.T, what string, v string, err error, want Outcome) {
	t.Helper()
	if want.Kind < 0 {
		if err != nil || v != want.Value {
			t.Errorf("%s = %q, %v; want %q", what, v, err, want.Value)
		}
		return
	}
	if err == nil || failure.KindOf(err) != want.Kind || !strings.Contains(err.Error(), want.Text) {
		t.Errorf("%s = %q, %v; want a %v error containing %q", what, v, err, want.Kind, want.Text)
	}
	if want.Kind == failure.NotFound && !errors.Is(err, failure.ErrNotFound) {
		t.Errorf("%s: %v is not failure.ErrNotFound", what, err)
	}
}

// FakeServer answers every connection with reply, for replies no real
// server sends.
func FakeServer(t *testing.T, reply string) sockaddr.Addr {
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
	return MustParse(t, "inet:"+ln.Addr().String())
}

// SilentServer accepts connections on network ("unix" or "tcp") and never
// answers; every accepted connection is announced on the returned channel.
func SilentServer(t *testing.T, network string) (sockaddr.Addr, <-chan net.Conn) {
	t.Helper()
	where := "127.0.0.1:0"
	if network == "unix" {
		where = filepath.Join(t.TempDir(), "silent.sock")
	}
	ln, err := net.Listen(network, where)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case nc := <-accepted:
				nc.Close()
			default:
				return
			}
		}
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- nc
		}
	}()
	if network == "unix" {
		return MustParse(t, "unix:"+where), accepted
	}
	return MustParse(t, "inet:"+ln.Addr().String()), accepted
}
