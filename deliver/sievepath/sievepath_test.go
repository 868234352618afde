package sievepath

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func write(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("keep;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	d := t.TempDir()
	home := filepath.Join(d, "home")
	os.MkdirAll(home, 0o755)
	if s := Find(home, "", nil, nil); !s.Empty() {
		t.Fatalf("empty home: %+v", s)
	}
	// ManageSieve layout: a symlink into sieve/.
	write(t, filepath.Join(home, "sieve", "main.sieve"))
	if err := os.Symlink("sieve/main.sieve", filepath.Join(home, ".dovecot.sieve")); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(d, "before.d")
	write(t, filepath.Join(before, "20-b.sieve"))
	write(t, filepath.Join(before, "10-a.sieve"))
	write(t, filepath.Join(before, "README"))
	os.Mkdir(filepath.Join(before, "x.sieve"), 0o755)
	after := filepath.Join(d, "after.sieve")
	write(t, after)
	s := Find(home, "", []string{before, filepath.Join(d, "missing")}, []string{after})
	want := Set{
		Before: []string{filepath.Join(before, "10-a.sieve"), filepath.Join(before, "20-b.sieve")},
		User:   filepath.Join(home, ".dovecot.sieve"),
		After:  []string{after},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Find = %+v, want %+v", s, want)
	}
	if got := s.All(); len(got) != 4 || got[2] != want.User {
		t.Fatalf("All = %v", got)
	}
	// userdb sieve= overrides the home script, even when missing.
	if s := Find(home, filepath.Join(d, "nope.sieve"), nil, nil); !s.Empty() {
		t.Fatalf("override to a missing file: %+v", s)
	}
	// A dangling symlink is no script.
	os.Remove(filepath.Join(home, "sieve", "main.sieve"))
	if s := Find(home, "", nil, nil); !s.Empty() {
		t.Fatalf("dangling symlink: %+v", s)
	}
	if HasMailfilter(home) {
		t.Fatal("HasMailfilter without the file")
	}
	write(t, filepath.Join(home, ".mailfilter"))
	if !HasMailfilter(home) {
		t.Fatal("HasMailfilter missed the file")
	}
}
