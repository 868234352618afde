package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// listenAddr opens a listener on a, preparing and adjusting the socket file
// of a unix listener.
func listenAddr(a sockaddr.Addr, opt UnixOptions) (net.Listener, error) {
	switch a.Network {
	case "tcp":
		return net.Listen("tcp", a.Address)
	case "unix":
	default:
		return nil, fmt.Errorf("listen %s: unsupported network %q", a, a.Network)
	}
	gid := -1
	if opt.Group != "" {
		var err error
		if gid, err = lookupGroup(opt.Group); err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
	}
	if err := removeStale(a.Address); err != nil {
		return nil, fmt.Errorf("listen %s: %w", a, err)
	}
	ln, err := net.Listen("unix", a.Address)
	if err != nil {
		return nil, err
	}
	if gid >= 0 {
		if err := os.Chown(a.Address, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: set group: %w", a, err)
		}
	}
	if opt.Mode != 0 {
		if err := os.Chmod(a.Address, opt.Mode.Perm()); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: set mode: %w", a, err)
		}
	}
	return ln, nil
}

// lookupGroup resolves a group name or numeric gid.
func lookupGroup(group string) (int, error) {
	if gid, err := strconv.Atoi(group); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("bad group id %d", gid)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// removeStale removes a socket file at path that nothing listens on any
// more. It refuses to touch a path that is not a socket, and reports an
// error when a server still accepts connections there.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another server is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking for a stale socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}
