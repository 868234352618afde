package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/addr"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/socketmap"
)

// LookupOnce dials the socketmap server at a, asks for key in mapName and
// closes the connection: what a short-lived delivery agent needs. ctx's
// deadline (DefaultTimeout from now when it has none) and its cancellation
// bound the whole exchange.
//
// For a unix socket or a numeric IP address the connection is a blocking
// socket, not a net.Conn (see rawConn): a one-shot process then does not
// start Go's network poller for it. Host names go through Go's resolver and
// a net.Conn. The outcomes are the same either way.
func LookupOnce(ctx context.Context, a addr.Addr, mapName, key string) (string, error) {
	payload, err := socketmap.AppendRequest(nil, mapName, key)
	if err != nil {
		return "", err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	var c io.ReadWriteCloser
	c, err = dialRaw(ctx, deadline, a)
	if errors.Is(err, errNoRawDial) {
		c, err = dialNet(ctx, deadline, a)
	}
	if err != nil {
		return "", failure.Wrap(failure.Temporary, err, "lookup server %s unreachable", a)
	}
	defer c.Close()
	_, err = c.Write(netstring.Append(nil, payload))
	var reply []byte
	if err == nil {
		reply, err = netstring.NewReader(bufio.NewReader(c), socketmap.MaxSize).Read()
	}
	if err != nil {
		return "", failure.Wrap(failure.Temporary, err, "socketmap lookup in %q at %s", mapName, a)
	}
	return socketmap.ParseReply(reply)
}

// netConn is a net.Conn for one exchange, for addresses that need Go's
// resolver. Its errors after a timeout or cancel are the context's.
type netConn struct {
	ctx  context.Context
	nc   net.Conn
	stop func() bool
}

func dialNet(ctx context.Context, deadline time.Time, a addr.Addr) (*netConn, error) {
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
