package oneshot

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// rawConn is a blocking stream socket for one short exchange, not a
// net.Conn. It does not go through Go's network poller: no epoll
// registration, and no hand-off of the waiting goroutine to another thread
// when the reply is not there yet (strace of mapdrop: a dozen fewer system
// calls and thread wake-ups per delivery).
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

// dial connects a blocking socket to the first of addrs that accepts, by
// the deadline; the error is the last address's.
func dial(ctx context.Context, deadline time.Time, addrs []unix.Sockaddr) (*rawConn, error) {
	err := errors.New("no address")
	for _, sa := range addrs {
		var c *rawConn
		if c, err = dialOne(ctx, deadline, sa); err == nil {
			return c, nil
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	return nil, err
}

// dialOne connects a blocking socket to sa, by the deadline.
func dialOne(ctx context.Context, deadline time.Time, sa unix.Sockaddr) (*rawConn, error) {
	family := unix.AF_UNIX
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
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

// closeWrite shuts down the sending side: the peer reads end of file after
// what was written. An error is left to the read that follows.
func (c *rawConn) closeWrite() {
	unix.Shutdown(c.fd, unix.SHUT_WR)
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
