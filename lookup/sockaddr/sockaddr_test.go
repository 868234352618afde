package sockaddr

import "testing"

func TestParse(t *testing.T) {
	good := map[string]Addr{
		"unix:/run/mapdrop/socket": {"unix", "/run/mapdrop/socket"},
		"/run/x.sock":              {"unix", "/run/x.sock"},
		"inet:127.0.0.1:10027":     {"tcp", "127.0.0.1:10027"},
		"127.0.0.1:10027":          {"tcp", "127.0.0.1:10027"},
		"inet:localhost:1":         {"tcp", "localhost:1"},
		"inet:[::1]:10027":         {"tcp", "[::1]:10027"},
		"inet:::1:10027":           {"tcp", "[::1]:10027"},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "unix:relative", "inet:nohostport", "inet::10027", "inet:h:99999", "inet:h:x"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want error", in, got)
		}
	}
	a, _ := Parse("inet:[::1]:5")
	if a.String() != "inet:[::1]:5" {
		t.Errorf("String = %q", a.String())
	}
}
