// Package client asks a mapdropd (or any socketmap_table(5) server) for
// table lookups over one kept-open connection, as Postfix does. The wire
// format is that of lookup/socketmap, inside lookup/netstring frames.
//
// Every outcome is a failure kind (package failure):
//
//	found                              the value, nil error
//	NOTFOUND                           failure.ErrNotFound (kind NotFound)
//	TEMP, or a garbled reply           kind Temporary, with the server's reason
//	PERM                               kind Permanent, with the server's reason
//	dial, read, write errors, timeouts kind Temporary: a dead or slow
//	                                   server never reads as "not found"
//
// A lookup whose context has no deadline gets DefaultTimeout.
//
// For one lookup from a short-lived process, without Go's net package, see
// lookup/oneshot.
package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/lookup/socketmap"
)

// DefaultTimeout bounds a dial or lookup whose context has no deadline. It
// is the timeout Postfix's own socketmap and tcp_table clients use.
const DefaultTimeout = oneshot.DefaultTimeout

// Socketmap is a persistent socketmap connection. It is safe for concurrent
// use; lookups on one Socketmap are sent one at a time. When the server
// has closed the connection (for example after its idle timeout), the next
// Lookup dials again.
type Socketmap struct {
	addr sockaddr.Addr

	mu  sync.Mutex
	nc  net.Conn // nil when not connected
	br  *bufio.Reader
	nr  *netstring.Reader
	buf []byte
}

// withTimeout returns ctx with DefaultTimeout when it has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

func dial(ctx context.Context, a sockaddr.Addr) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return nil, failure.Wrap(failure.Temporary, err, "lookup server %s unreachable", a)
	}
	return nc, nil
}

// Dial connects to the socketmap server at a. Errors are Temporary.
func Dial(ctx context.Context, a sockaddr.Addr) (*Socketmap, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	c := &Socketmap{addr: a}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Socketmap) connect(ctx context.Context) error {
	nc, err := dial(ctx, c.addr)
	if err != nil {
		return err
	}
	c.nc = nc
	c.br = bufio.NewReader(nc)
	c.nr = netstring.NewReader(c.br, socketmap.MaxSize)
	return nil
}

func (c *Socketmap) disconnect() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.br, c.nr = nil, nil, nil
	}
}

// Lookup asks for key in mapName; see the package documentation for the
// errors. A request that cannot be sent (an empty map name or one with a
// space, a request over 100000 bytes) is Permanent.
func (c *Socketmap) Lookup(ctx context.Context, mapName, key string) (string, error) {
	payload, err := socketmap.AppendRequest(nil, mapName, key)
	if err != nil {
		return "", err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = netstring.Append(c.buf[:0], payload)
	reused := c.nc != nil
	if !reused {
		if err := c.connect(ctx); err != nil {
			return "", err
		}
	}
	reply, err := c.exchange(ctx)
	if err != nil && reused && ctx.Err() == nil && !errors.Is(err, netstring.ErrSyntax) && !errors.Is(err, netstring.ErrTooLong) {
		// The server may have closed the idle connection: one more try
		// on a fresh one, as Postfix does. Lookups are idempotent.
		if err := c.connect(ctx); err != nil {
			return "", err
		}
		reply, err = c.exchange(ctx)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return "", failure.Wrap(failure.Temporary, err, "socketmap lookup in %q at %s", mapName, c.addr)
	}
	return socketmap.ParseReply(reply)
}

// exchange sends c.buf and reads one reply; on error the connection is
// dropped.
func (c *Socketmap) exchange(ctx context.Context) ([]byte, error) {
	nc := c.nc
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_, err := nc.Write(c.buf)
	var reply []byte
	if err == nil {
		reply, err = c.nr.Read()
	}
	if err != nil {
		c.disconnect()
		return nil, err
	}
	return reply, nil
}

// Close closes the connection.
func (c *Socketmap) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil {
		return nil
	}
	err := c.nc.Close()
	c.nc, c.br, c.nr = nil, nil, nil
	return err
}
