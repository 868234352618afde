package client

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mapdrop/mapdrop/lookup/addr"
	"golang.org/x/sys/unix"
)

// errNoRawDial says that an address needs Go's resolver (a host name, an
// IPv6 zone): the caller uses the net package instead.
var errNoRawDial = errors.New("address needs the net package")

// rawConn is a blocking stream socket for one short exchange, used by
// LookupOnce instead of a net.Conn. It does not go through Go's network
// poller: no epoll registration, and no hand-off of the waiting goroutine
// to another thread when the reply is not there yet (strace of mapdrop: a
// dozen fewer system calls and thread wake-ups per delivery).
//
// The deadline bounds every system call through SO_SNDTIMEO (connect,
// write) and SO_RCVTIMEO (read), set to the time left before each call;
// cancelling the context shuts the socket down, which wakes a blocked read
// or write (a blocked connect waits for its timeout). A timeout is
// context.DeadlineExceeded, a cancel the context's error. Signals (Go's
// preemption uses SIGURG) interrupt these calls with EINTR: they are
// retried.
type rawConn struct {
	ctx      context.Context
	deadline time.Time
	fd       int

	mu     sync.Mutex // guards fd against shutdown after Close
	closed bool
	stop   func() bool
}

// rawSockaddr returns the socket address for a, or errNoRawDial.
func rawSockaddr(a addr.Addr) (family int, sa unix.Sockaddr, err error) {
	switch a.Network {
	case "unix":
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: a.Address}, nil
	case "tcp":
		ap, err := netip.ParseAddrPort(a.Address)
		if err != nil || ap.Addr().Zone() != "" {
			return 0, nil, errNoRawDial
		}
		ip := ap.Addr().Unmap()
		if ip.Is4() {
			return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}, nil
		}
		return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}, nil
	}
	return 0, nil, errNoRawDial
}

// dialRaw connects a blocking socket to a, by the deadline.
func dialRaw(ctx context.Context, deadline time.Time, a addr.Addr) (*rawConn, error) {
	family, sa, err := rawSockaddr(a)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	c := &rawConn{ctx: ctx, deadline: deadline, fd: fd}
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed {
			unix.Shutdown(c.fd, unix.SHUT_RDWR)
		}
	})
	for {
		if err = c.arm(unix.SO_SNDTIMEO); err != nil {
			break
		}
		err = unix.Connect(fd, sa)
		if err == unix.EINTR {
			continue // a signal (Go's preemption): wait on
		}
		if err == unix.EISCONN { // connected while we were interrupted
			err = nil
		}
		break
	}
	if err != nil {
		c.Close()
		return nil, c.fail("connect", err)
	}
	return c, nil
}

// arm sets the socket timeout opt to the time left before the deadline.
func (c *rawConn) arm(opt int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	left := time.Until(c.deadline)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	// A zero timeval means "no timeout": round sub-microsecond up.
	tv := unix.NsecToTimeval(max(left.Nanoseconds(), 1000))
	return os.NewSyscallError("setsockopt", unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, opt, &tv))
}

// fail turns a failed system call into the error to report: the context's
// error when it ended (timeout, cancel), else the call's.
func (c *rawConn) fail(op string, err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	if err == unix.EAGAIN || err == unix.EINPROGRESS {
		// SO_RCVTIMEO or SO_SNDTIMEO expired just before the context did.
		return context.DeadlineExceeded
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError(op, err)
	}
	return err
}

// Read reads from the socket, waiting at most until the deadline.
func (c *rawConn) Read(p []byte) (int, error) {
	for {
		if err := c.arm(unix.SO_RCVTIMEO); err != nil {
			return 0, err
		}
		n, err := unix.Read(c.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, c.fail("read", err)
		}
		if n == 0 {
			if cerr := c.ctx.Err(); cerr != nil {
				return 0, cerr // shut down by a cancel
			}
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p, waiting at most until the deadline. MSG_NOSIGNAL
// keeps a closed peer from raising SIGPIPE.
func (c *rawConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		if err := c.arm(unix.SO_SNDTIMEO); err != nil {
			return done, err
		}
		n, err := unix.SendmsgN(c.fd, p[done:], nil, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, c.fail("write", err)
		}
		done += n
	}
	return done, nil
}

// Close closes the socket; a later cancel of the context no longer touches
// the descriptor (whose number may then belong to another file).
func (c *rawConn) Close() error {
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return os.NewSyscallError("close", unix.Close(c.fd))
}
