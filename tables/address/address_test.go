package address

import "testing"

func TestExtensionAt(t *testing.T) {
	cases := []struct {
		local, delims string
		want          int
	}{
		{"user+ext", "+", 4},
		{"user-a+b", "+-", 4},
		{"user", "+", -1},
		{"user+ext", "", -1},
		{"+foo", "+", -1},
		{"user+", "+", 4},
		{"Postmaster+x", "+", 10},
		{"PostMaster", "+", -1},
		{"mailer-daemon", "-", -1},
		{"double-bounce", "+-", -1},
		{"owner-list", "-", -1},
		{"Owner-list", "+-", -1},
		{"owner-list", "+", -1}, // no delimiter in it
		{"owner+x", "+", 5},     // owner- only matters when '-' is a delimiter
		{"list-request", "-", -1},
		{"x-request", "+-", -1},
		{"-request", "-", -1}, // leading delimiter
		{"a-b", "-", 1},
		{"ü+x", "+", 2},
		{"u\xff+x", "+\xff", 2}, // invalid UTF-8 is never a delimiter
		{"user=x", "+=", 4},
	}
	for _, c := range cases {
		if got := ExtensionAt(c.local, c.delims); got != c.want {
			t.Errorf("ExtensionAt(%q, %q) = %d, want %d", c.local, c.delims, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ExtensionAt("Owner-List+x", "+-") }); n != 0 {
		t.Errorf("ExtensionAt allocates %v times", n)
	}
}

func TestCheckDelimiters(t *testing.T) {
	for _, ok := range []string{"", "+", "+-=", "ü"} {
		if err := CheckDelimiters(ok); err != nil {
			t.Errorf("CheckDelimiters(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"@", "+ ", "\t", "+\x00", "\xff", "\uFFFD", "\u200b"} {
		if CheckDelimiters(bad) == nil {
			t.Errorf("CheckDelimiters(%q) accepted", bad)
		}
	}
}
