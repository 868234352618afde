package oneshot

import (
	"strconv"
	"strings"
)

// parseIP parses an IP address literal as net/netip.ParseAddr does (which
// this package does not import, for its start-up cost): dotted-decimal
// IPv4 without leading zeros ("192.0.2.1"), or IPv6 in RFC 4291 text form,
// with at most one "::", an optional trailing dotted-decimal IPv4 part and an
// optional non-empty "%zone" ("fe80::1%eth0"). It returns the address as 4
// or 16 bytes and the zone.
func parseIP(s string) (ip []byte, zone string, ok bool) {
	if strings.IndexByte(s, ':') < 0 {
		v4, ok := parseIPv4(s)
		return v4, "", ok
	}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s, zone = s[:i], s[i+1:]
		if zone == "" {
			return nil, "", false
		}
	}
	v6, ok := parseIPv6(s)
	return v6, zone, ok
}

// parseIPv4 parses four dotted decimal fields 0-255, without leading zeros.
func parseIPv4(s string) ([]byte, bool) {
	ip := make([]byte, 0, 4)
	for f := range strings.SplitSeq(s, ".") {
		if len(ip) == 4 || f == "" || len(f) > 3 || (len(f) > 1 && f[0] == '0') {
			return nil, false
		}
		n := 0
		for _, c := range []byte(f) {
			if c < '0' || c > '9' {
				return nil, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return nil, false
		}
		ip = append(ip, byte(n))
	}
	return ip, len(ip) == 4
}

// parseIPv6 parses an IPv6 address without a zone.
func parseIPv6(s string) ([]byte, bool) {
	var ip [16]byte
	head, tail, compressed := strings.Cut(s, "::")
	if strings.Contains(tail, "::") {
		return nil, false
	}
	h, ok := parseGroups(head, !compressed)
	if !ok {
		return nil, false
	}
	t, ok := parseGroups(tail, true)
	if !ok || !compressed && len(t) > 0 {
		return nil, false
	}
	switch n := len(h) + len(t); {
	case compressed && n > 14, !compressed && n != 16:
		return nil, false
	}
	copy(ip[:], h)
	copy(ip[16-len(t):], t)
	return ip[:], true
}

// parseGroups parses colon-separated groups of 1-4 hex digits, the last of
// which may be a dotted-decimal IPv4 address when v4Last allows it; "" is
// no groups.
func parseGroups(s string, v4Last bool) ([]byte, bool) {
	var b []byte
	if s == "" {
		return b, true
	}
	groups := strings.Split(s, ":")
	for i, g := range groups {
		if i == len(groups)-1 && v4Last && strings.IndexByte(g, '.') >= 0 {
			v4, ok := parseIPv4(g)
			if !ok {
				return nil, false
			}
			b = append(b, v4...)
			break
		}
		if g == "" || len(g) > 4 {
			return nil, false
		}
		n, err := strconv.ParseUint(g, 16, 16)
		if err != nil {
			return nil, false
		}
		b = append(b, byte(n>>8), byte(n))
	}
	return b, len(b) <= 16
}
