package client

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// netConn is a net.Conn for one exchange (TCPLookup) whose deadline and
// cancellation are the context's. Its errors after a timeout or cancel are
// the context's.
type netConn struct {
	ctx  context.Context
	nc   net.Conn
	stop func() bool
}

func dialNet(ctx context.Context, deadline time.Time, a sockaddr.Addr) (*netConn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return &netConn{ctx: ctx, nc: nc, stop: stop}, nil
}

func (c *netConn) fail(err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func (c *netConn) Read(b []byte) (int, error) {
	n, err := c.nc.Read(b)
	if err != nil && err != io.EOF {
		err = c.fail(err)
	}
	return n, err
}

func (c *netConn) Write(b []byte) (int, error) {
	n, err := c.nc.Write(b)
	if err != nil {
		err = c.fail(err)
	}
	return n, err
}

func (c *netConn) Close() error {
	c.stop()
	return c.nc.Close()
}
