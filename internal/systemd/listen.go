package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// firstFD is SD_LISTEN_FDS_START, the first passed descriptor.
const firstFD = 3

// Socket is one socket passed by the service manager.
type Socket struct {
	// Name is its entry in LISTEN_FDNAMES: FileDescriptorName= of the
	// .socket unit, by default the unit's name; "" when LISTEN_FDNAMES is
	// unset.
	Name     string
	Listener net.Listener
}

// Listeners returns the sockets passed by the service manager, in order,
// and unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. It returns none
// when LISTEN_PID is not this process. A descriptor that is not a
// listening stream socket is an error, as is a LISTEN_FDNAMES whose count
// does not match.
func Listeners() ([]Socket, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 1000 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: not a count of descriptors", fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
		if len(nameList) != n {
			return nil, fmt.Errorf("LISTEN_FDNAMES has %d names for %d descriptors", len(nameList), n)
		}
	}
	socks := make([]Socket, 0, n)
	for i := 0; i < n; i++ {
		fd := firstFD + i
		syscall.CloseOnExec(fd)
		name := ""
		if nameList != nil {
			name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd)+":"+name)
		ln, err := net.FileListener(f)
		f.Close() // FileListener works on a duplicate
		if err != nil {
			for _, s := range socks {
				s.Listener.Close()
			}
			return nil, fmt.Errorf("passed descriptor %d (%q): %w", fd, name, err)
		}
		socks = append(socks, Socket{Name: name, Listener: ln})
	}
	return socks, nil
}
