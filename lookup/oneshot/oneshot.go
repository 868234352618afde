// Package oneshot asks a socketmap_table(5) server (mapdropd) for one lookup
// over a connection of its own, and closes it: what a short-lived process,
// the delivery agent, needs. The wire format is that of lookup/socketmap
// inside lookup/netstring frames; the outcomes are those of lookup/client:
//
//	found                              the value, nil error
//	NOTFOUND                           failure.ErrNotFound (kind NotFound)
//	TEMP, or a garbled reply           kind Temporary, with the server's reason
//	PERM                               kind Permanent, with the server's reason
//	dial, read, write errors, timeouts kind Temporary: a dead or slow
//	                                   server never reads as "not found"
//
// The package does not import Go's net package: a process that starts for
// one delivery then pays neither its initialization nor its network poller.
// The connection is a blocking socket whose system calls are bounded by the
// lookup's deadline (socket timeouts) and woken by the context's
// cancellation (shutdown). Once the request is sent, the client shuts down
// its sending side, so the server reads the end of the connection right
// after the request and closes its end once it has replied. A socketmap
// server reads requests until the end of the connection, so this changes no
// answer. (What each of these saves per delivery is in the README's
// benchmark section.) Addresses (package lookup/sockaddr) are reached this
// way:
//
//	unix:/path               that unix-domain socket
//	inet:IP:port             that IPv4 or IPv6 address; an IPv6 zone is an
//	                         interface name or index ("fe80::1%eth0")
//	inet:name:port           the addresses `getent ahosts NAME` lists (the C
//	                         library's resolver, nsswitch.conf included),
//	                         tried in its order until one accepts
package oneshot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/getent"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/lookup/socketmap"
)

// DefaultTimeout bounds a lookup whose context has no deadline, as in
// Postfix's own socketmap client.
const DefaultTimeout = 100 * time.Second

// Lookup dials the socketmap server at a, asks for key in mapName and
// closes the connection. The whole exchange, a host name lookup included,
// ends by deadline or by ctx's deadline, whichever is earlier (with
// neither, DefaultTimeout from now), and when ctx is cancelled.
//
// The deadline is a parameter rather than only a context's because a
// context deadline is a runtime timer, and the first timer of a process
// starts Go's network poller: a short-lived caller saves that by passing a
// context without a deadline (context.Background) and a deadline here.
func Lookup(ctx context.Context, deadline time.Time, a sockaddr.Addr, mapName, key string) (string, error) {
	payload, err := socketmap.AppendRequest(nil, mapName, key)
	if err != nil {
		return "", err
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(DefaultTimeout)
	}
	sas, err := sockaddrs(ctx, deadline, a)
	var c *rawConn
	if err == nil {
		c, err = dial(ctx, deadline, sas)
	}
	if err != nil {
		return "", failure.Wrap(failure.Temporary, err, "lookup server %s unreachable", a)
	}
	defer c.Close()
	_, err = c.Write(netstring.Append(nil, payload))
	var reply []byte
	if err == nil {
		c.closeWrite()
		reply, err = netstring.NewReader(bufio.NewReader(c), socketmap.MaxSize).Read()
	}
	if err != nil {
		return "", failure.Wrap(failure.Temporary, err, "socketmap lookup in %q at %s", mapName, a)
	}
	return socketmap.ParseReply(reply)
}

// sockaddrs returns the socket addresses to try for a, in order; a host
// name is asked of getent by the deadline.
func sockaddrs(ctx context.Context, deadline time.Time, a sockaddr.Addr) ([]unix.Sockaddr, error) {
	if a.Network == "unix" {
		return []unix.Sockaddr{&unix.SockaddrUnix{Name: a.Address}}, nil
	}
	i := strings.LastIndexByte(a.Address, ':')
	if i < 0 {
		return nil, fmt.Errorf("address %q: no port", a.Address)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(a.Address[:i], "["), "]")
	port, err := strconv.ParseUint(a.Address[i+1:], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: bad port", a.Address)
	}
	if ip, zone, ok := parseIP(host); ok {
		sa, err := inetSockaddr(ip, zone, int(port))
		if err != nil {
			return nil, err
		}
		return []unix.Sockaddr{sa}, nil
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err := getent.Query(ctx, "ahosts", host)
	if err != nil {
		return nil, fmt.Errorf("host name %s: %w", host, err)
	}
	// Lines are "ADDRESS SOCKTYPE [NAME]", each address once per socket
	// type; the STREAM lines are the ones for TCP.
	var sas []unix.Sockaddr
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "STREAM" {
			continue
		}
		if ip, zone, ok := parseIP(f[0]); ok {
			if sa, err := inetSockaddr(ip, zone, int(port)); err == nil {
				sas = append(sas, sa)
			}
		}
	}
	if len(sas) == 0 {
		return nil, fmt.Errorf("host name %s: no address in %q", host, strings.TrimSpace(out))
	}
	return sas, nil
}

// inetSockaddr returns the TCP socket address for ip (4 or 16 bytes) and
// port; an IPv4-mapped IPv6 address without a zone is IPv4.
func inetSockaddr(ip []byte, zone string, port int) (unix.Sockaddr, error) {
	if len(ip) == 16 && zone == "" && string(ip[:12]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff" {
		ip = ip[12:]
	}
	if len(ip) == 4 {
		return &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip)}, nil
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: [16]byte(ip)}
	if zone != "" {
		id, err := zoneIndex(zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = id
	}
	return sa, nil
}

// zoneIndex returns the interface index of an IPv6 zone, a number or an
// interface name.
func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	b, err := os.ReadFile("/sys/class/net/" + strings.ReplaceAll(zone, "/", "_") + "/ifindex")
	if err != nil {
		return 0, fmt.Errorf("IPv6 zone %q: no such interface", zone)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("IPv6 zone %q: %v", zone, err)
	}
	return uint32(n), nil
}
