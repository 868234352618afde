package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// bigValue is one byte too long to fit in a socketmap OK reply.
var bigValue = strings.Repeat("v", 100000-len("OK ")+1)

var tables = map[string]map[string]string{
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
		"big":     bigValue,
		"fits":    bigValue[1:],
		"percent": "a b%c\tü",
	},
}

// mapTables serves tables; map "temp" always fails temporarily.
func mapTables(_ context.Context, mapName, key string) (string, error) {
	if mapName == "temp" {
		return "", failure.Temp("table %s is reloading\r\nsecond line", mapName)
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

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor polls cond for up to 20 seconds; the bound keeps a broken test
// from hanging, it is not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// newServer returns a server with the map resolver, logging to the
// returned buffer at Debug, shut down at the end of the test.
func newServer(t testing.TB, configure func(*server.Server)) (*server.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s := &server.Server{
		Tables: server.TablesFunc(mapTables),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(s)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, logs
}

// listenSocketmap starts a socketmap listener on 127.0.0.1 and returns its
// address.
func listenSocketmap(t testing.TB, s *server.Server) sockaddr.Addr {
	t.Helper()
	a := mustParse(t, "inet:127.0.0.1:0")
	if err := s.ListenSocketmap(a, server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	return mustParse(t, "inet:"+addrs[len(addrs)-1].String())
}

func mustParse(t testing.TB, s string) sockaddr.Addr {
	t.Helper()
	a, err := sockaddr.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rawConn is a client connection that speaks the wire format by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	nr *netstring.Reader
}

func dialRaw(t testing.TB, a sockaddr.Addr) *rawConn {
	t.Helper()
	nc, err := net.Dial(a.Network, a.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	// A generous bound so a broken server fails the test instead of
	// hanging it.
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	return &rawConn{t: t, nc: nc, br: br, nr: netstring.NewReader(br, 200000)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// query sends one socketmap request and returns the reply payload.
func (c *rawConn) query(mapName, key string) string {
	c.t.Helper()
	c.send(string(netstring.AppendString(nil, mapName+" "+key)))
	return c.reply()
}

func (c *rawConn) reply() string {
	c.t.Helper()
	b, err := c.nr.Read()
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return string(b)
}

func (c *rawConn) line() string {
	c.t.Helper()
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading reply line: %v", err)
	}
	return s
}

// expectClosed checks that the server closes the connection (after
// whatever it sends first, which is discarded).
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	if err != nil {
		c.t.Fatalf("expected the server to close the connection, got %v", err)
	}
}
