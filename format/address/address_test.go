package address

import (
	"strings"
	"testing"
	"unicode/utf8"
)

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

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in, delims, base, ext string
		ok                    bool
	}{
		{"user+ext@dom", "+", "user@dom", "ext", true},
		{"user+a+b@dom", "+", "user@dom", "a+b", true},
		{"user-ext@dom", "+-", "user@dom", "ext", true},
		{"user+@dom", "+", "user@dom", "", true},
		{"+ext@dom", "+", "+ext@dom", "", false},
		{"user@dom", "+", "user@dom", "", false},
		{"user+ext", "+", "user", "ext", true},
		{"a@b+c@dom", "+", "a@b@dom", "c", true},
		{"user+ext@dom", "", "user+ext@dom", "", false},
		{"postmaster+x@dom", "+", "postmaster+x@dom", "", true},
		{"postmaster@dom", "+", "postmaster@dom", "", false},
		{"owner-list@dom", "-", "owner-list@dom", "", false},
		{"list-request@dom", "-", "list-request@dom", "", false},
		{"list-request@dom", "+", "list-request@dom", "", false},
	} {
		base, ext, ok := Split(c.in, c.delims)
		if c.in == "postmaster+x@dom" {
			// "postmaster+x" is not "postmaster": it is cut.
			c.base, c.ext = "postmaster@dom", "x"
		}
		if base != c.base || ext != c.ext || ok != c.ok {
			t.Errorf("Split(%q, %q) = %q, %q, %v; want %q, %q, %v", c.in, c.delims, base, ext, ok, c.base, c.ext, c.ok)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Fuzz(func(t *testing.T, addr, delims string) {
		base, ext, ok := Split(addr, delims)
		if !ok {
			if base != addr || ext != "" {
				t.Fatalf("Split(%q, %q) = %q, %q without a cut", addr, delims, base, ext)
			}
			return
		}
		// The cut is reversible: base's local part, a delimiter and ext give
		// back addr's local part; the domain is unchanged.
		i := strings.LastIndexByte(addr, '@')
		domain := ""
		if i >= 0 {
			domain = addr[i:]
		}
		if !strings.HasSuffix(base, domain) {
			t.Fatalf("Split(%q) = %q: domain lost", addr, base)
		}
		local := strings.TrimSuffix(base, domain)
		if local == "" {
			t.Fatalf("Split(%q, %q): empty base local part", addr, delims)
		}
		for _, r := range local {
			if r != utf8.RuneError && strings.ContainsRune(delims, r) {
				t.Fatalf("Split(%q, %q): base local part %q holds a delimiter", addr, delims, local)
			}
		}
		rest := strings.TrimSuffix(addr, domain)[len(local):]
		r, size := utf8.DecodeRuneInString(rest)
		if r == utf8.RuneError || !strings.ContainsRune(delims, r) || rest[size:] != ext {
			t.Fatalf("Split(%q, %q) = %q, %q: not a cut at a delimiter", addr, delims, base, ext)
		}
	})
}
