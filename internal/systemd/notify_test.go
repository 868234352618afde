package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify makes a unixgram socket at addr, as the service manager
// does for NOTIFY_SOCKET, and returns a function reading one datagram.
func listenNotify(t *testing.T, addr string) func() string {
	t.Helper()
	name := addr
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading a notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotify(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@mapdrop-systemd-test-" + strconv.Itoa(os.Getpid()),
	} {
		t.Run(addr, func(t *testing.T) {
			read := listenNotify(t, addr)
			t.Setenv("NOTIFY_SOCKET", addr)
			var n Notifier
			defer n.Close()
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if err := n.Ready("3 maps,\n12 entries"); err != nil {
				t.Fatal(err)
			}
			if got, want := read(), "READY=1\nSTATUS=3 maps, 12 entries"; got != want {
				t.Errorf("Ready sent %q, want %q", got, want)
			}
			before := MonotonicUsec()
			if err := n.Reloading(""); err != nil {
				t.Fatal(err)
			}
			got := read()
			v, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			usec, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil || usec < before || usec > MonotonicUsec() {
				t.Errorf("Reloading sent %q, want RELOADING=1 and a MONOTONIC_USEC between %d and now", got, before)
			}
			if err := n.Stopping(""); err != nil {
				t.Fatal(err)
			}
			if got := read(); got != "STOPPING=1" {
				t.Errorf("Stopping sent %q", got)
			}
			if err := n.Status("ok"); err != nil {
				t.Fatal(err)
			}
			if got := read(); got != "STATUS=ok" {
				t.Errorf("Status sent %q", got)
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var n Notifier
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
	var nilN *Notifier
	if err := nilN.Stopping(""); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
}

func TestNotifyDeadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	var n Notifier
	if err := n.Ready(""); err == nil {
		t.Error("Ready to a socket nobody listens on: no error")
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	var m Notifier
	if err := m.Ready(""); err == nil {
		t.Error("Ready to a relative NOTIFY_SOCKET: no error")
	}
}

func TestListenersNotForUs(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	socks, err := Listeners()
	if err != nil || len(socks) != 0 {
		t.Errorf("Listeners with another LISTEN_PID = %v, %v; want none", socks, err)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		t.Error("LISTEN_FDS not unset")
	}
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDS", "x")
	if _, err := Listeners(); err == nil {
		t.Error("LISTEN_FDS=x: no error")
	}
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDS", "2")
	t.Setenv("LISTEN_FDNAMES", "one")
	if _, err := Listeners(); err == nil {
		t.Error("two descriptors, one name: no error")
	}
}
