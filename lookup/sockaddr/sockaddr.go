// Package sockaddr parses the listener and server addresses mapdrop uses, spelled
// as Postfix spells them in main.cf:
//
//	unix:/path/to/socket      a unix-domain stream socket (the path must be absolute)
//	inet:host:port            TCP; host may be a name, an IPv4 address, or an
//	                          IPv6 address with or without brackets
//	                          (inet:[::1]:10027 or inet:::1:10027)
//	/path/to/socket           shorthand for unix:/path/to/socket
//	host:port                 shorthand for inet:host:port
//
// The port is the text after the last colon, as in Postfix's
// socketmap:inet:HOST:PORT:NAME.
//
// Parsing resolves nothing and the package does not import net, so that
// lookup/oneshot, the delivery agent's client, stays free of it.
package sockaddr

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultServer is where mapdropd serve listens and where mapdrop and
// mapdropd query connect when no address is given.
const DefaultServer = "unix:/run/mapdrop/mapdropd.sock"

// Addr is a parsed address: Network is "unix" or "tcp", Address is what
// net.Dial and net.Listen take for that network.
type Addr struct {
	Network string
	Address string
}

// String returns the address in mapdrop's own spelling (unix:/p or inet:h:p).
func (a Addr) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Address
	}
	return "inet:" + a.Address
}

// Parse parses s as described in the package documentation.
func Parse(s string) (Addr, error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		return parseUnix(s, strings.TrimPrefix(s, "unix:"))
	case strings.HasPrefix(s, "/"):
		return parseUnix(s, s)
	case strings.HasPrefix(s, "inet:"):
		return parseInet(s, strings.TrimPrefix(s, "inet:"))
	}
	return parseInet(s, s)
}

func parseUnix(orig, path string) (Addr, error) {
	if !strings.HasPrefix(path, "/") {
		return Addr{}, fmt.Errorf("address %q: unix socket path must be absolute", orig)
	}
	return Addr{Network: "unix", Address: path}, nil
}

func parseInet(orig, hp string) (Addr, error) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return Addr{}, fmt.Errorf("address %q: want unix:/path or inet:host:port", orig)
	}
	host, port := hp[:i], hp[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return Addr{}, fmt.Errorf("address %q: bad port %q", orig, port)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return Addr{}, fmt.Errorf("address %q: missing host", orig)
	}
	if strings.IndexByte(host, ':') >= 0 { // IPv6, bracketed as net.JoinHostPort does
		host = "[" + host + "]"
	}
	return Addr{Network: "tcp", Address: host + ":" + port}, nil
}
