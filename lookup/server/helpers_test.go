package server_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

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
