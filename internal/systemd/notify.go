package systemd

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Notifier sends state changes to the service manager. The zero value
// reads NOTIFY_SOCKET on first use; a nil *Notifier does nothing. It is
// safe for concurrent use.
type Notifier struct {
	once sync.Once
	mu   sync.Mutex
	conn *net.UnixConn
	err  error
}

// Enabled reports whether NOTIFY_SOCKET names a socket to notify.
func (n *Notifier) Enabled() bool {
	if n == nil {
		return false
	}
	n.open()
	return n.conn != nil || n.err != nil
}

func (n *Notifier) open() {
	n.once.Do(func() {
		path := os.Getenv("NOTIFY_SOCKET")
		if path == "" {
			return
		}
		if path[0] != '/' && path[0] != '@' {
			n.err = &net.AddrError{Err: "NOTIFY_SOCKET is neither an absolute path nor an abstract name", Addr: path}
			return
		}
		name := path
		if name[0] == '@' {
			name = "\x00" + name[1:]
		}
		n.conn, n.err = net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	})
}

// Notify sends state, newline-separated VAR=VALUE assignments, as one
// datagram. It returns nil without NOTIFY_SOCKET, and the error of opening
// or writing to the socket otherwise.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	n.open()
	if n.err != nil || n.conn == nil {
		return n.err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.conn.Write([]byte(state))
	return err
}

// Ready says that startup is finished: READY=1, with status when it is not empty.
func (n *Notifier) Ready(status string) error {
	return n.Notify("READY=1" + statusLine(status))
}

// Reloading says that a reload starts: RELOADING=1 and MONOTONIC_USEC with
// the current CLOCK_MONOTONIC time, as systemd's Type=notify-reload
// requires; Ready ends the reload.
func (n *Notifier) Reloading(status string) error {
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(MonotonicUsec(), 10) + statusLine(status))
}

// Stopping says that shutdown starts: STOPPING=1.
func (n *Notifier) Stopping(status string) error {
	return n.Notify("STOPPING=1" + statusLine(status))
}

// Status sets the one-line status text: STATUS=TEXT.
func (n *Notifier) Status(status string) error {
	return n.Notify(strings.TrimPrefix(statusLine(status), "\n"))
}

// statusLine is "\nSTATUS=TEXT" with TEXT on one line, or "" for no text.
func statusLine(s string) string {
	if s == "" {
		return ""
	}
	return "\nSTATUS=" + strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Close closes the socket.
func (n *Notifier) Close() error {
	if n == nil || n.conn == nil {
		return nil
	}
	return n.conn.Close()
}

// MonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock of
// MONOTONIC_USEC.
func MonotonicUsec() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}
