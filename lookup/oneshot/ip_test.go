package oneshot

import (
	"bytes"
	"net/netip"
	"testing"
)

// parseIP must accept exactly what net/netip.ParseAddr accepts, with the
// same bytes and zone.
func checkParseIP(t *testing.T, s string) {
	ip, zone, ok := parseIP(s)
	want, err := netip.ParseAddr(s)
	if ok != (err == nil) {
		t.Fatalf("parseIP(%q) ok=%v, netip.ParseAddr error %v", s, ok, err)
	}
	if !ok {
		return
	}
	wantBytes := want.AsSlice()
	if !bytes.Equal(ip, wantBytes) || zone != want.Zone() {
		t.Fatalf("parseIP(%q) = %v %q, netip says %v %q", s, ip, zone, wantBytes, want.Zone())
	}
}

var ipSeeds = []string{
	"127.0.0.1", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3",
	"::1", "::", "1::", "2001:db8::1", "2001:db8:0:0:0:0:0:1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
	"1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1::2::3", ":1::", "1:::2", "12345::", "::ffff:192.0.2.1",
	"::192.0.2.1", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "fe80::1%", "1.2.3.4%eth0",
	"::ffff:1.2.3", "g::", "", "[::1]", "1.2.3.4:5", "::1.2.3.4:5", "+1::", "0x1::",
}

func TestParseIP(t *testing.T) {
	for _, s := range ipSeeds {
		checkParseIP(t, s)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range ipSeeds {
		f.Add(s)
	}
	f.Fuzz(checkParseIP)
}
