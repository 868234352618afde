package maildirsize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/format/quota"
)

// newMaildir makes a Maildir with the given files (path relative to the
// Maildir → content) and returns its path and open root.
func newMaildir(t *testing.T, files map[string]string) (string, *os.File) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	lim, u, err := Parse([]byte("1000S,10C\n     300    3\n    -100   -1\n\n  50 1\n 999 9"))
	if err != nil || lim != (quota.Limits{Bytes: 1000, Messages: 10}) || u != (Usage{250, 3}) {
		t.Errorf("Parse = %+v %+v %v; want {1000 10} {250 3}", lim, u, err)
	}
	for _, bad := range []string{"", "1000S", "1000S\n1\n", "1000S\nx 1\n", "1000S\n1 2 3\n", "zz\n", "1S\n1125899906842625 1\n",
		"1S\n" + strings.Repeat("1 1\n", MaxFileSize/4)} {
		if _, _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%.40q) succeeded, want an error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		lim, u, err := Parse(data)
		if err != nil {
			return
		}
		if lim.Bytes < 0 || lim.Messages < 0 {
			t.Fatalf("negative limits %+v", lim)
		}
		// The definition survives a round trip.
		again, err := quota.ParseFile(lim.String())
		if err != nil || again != lim {
			t.Fatalf("definition %q re-parses as %+v, %v; want %+v", lim.String(), again, err, lim)
		}
		// Appending a usage line adds exactly it.
		_, u2, err := Parse(append(append([]byte(nil), data[:len(data)-len(partialTail(data))]...), []byte("     7    1\n")...))
		if err == nil && u2 != (Usage{u.Bytes + 7, u.Messages + 1}) {
			t.Fatalf("after appending 7 1: %+v, want %+v + {7 1}", u2, u)
		}
	})
}

// partialTail returns the bytes after the last newline.
func partialTail(data []byte) []byte {
	i := strings.LastIndexByte(string(data), '\n')
	return data[i+1:]
}

func TestRecalculateCounts(t *testing.T) {
	dir, root := newMaildir(t, map[string]string{
		"new/1.a.host,S=100":           "whatever the content",   // size from the name: 100
		"cur/2.b.host,S=50:2,S":        "x",                      // 50
		"cur/3.c.host:2,":              "0123456789",             // no S=: stat, 10
		"cur/4.d.host,S=70:2,ST":       "trashed",                // flagged T: not counted
		".Work/new/5.e.host,S=1000":    "",                       // folder: 1000
		".Work/cur/6.f.host:2,S":       "12345",                  // 5
		".Trash/cur/7.g.host,S=9999:2": "",                       // Trash: not counted
		"tmp/8.h.host,S=5000":          "",                       // tmp: not counted
		"new/.hidden":                  "dot files are not mail", // not counted
		".Empty/maildirfolder":         "",                       // a folder without new/cur
		".notes":                       "a file, not a folder",   // not counted
		"maildirsize":                  "5S\n1 1\n",              // another quota: rebuilt
	})
	lim := quota.Limits{Bytes: 1000000, Messages: 100}
	u, err := Check(root, lim, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{Bytes: 100 + 50 + 10 + 1000 + 5, Messages: 5}
	if u != want {
		t.Errorf("usage %+v, want %+v", u, want)
	}
	got := readFile(t, filepath.Join(dir, FileName))
	wantFile := fmt.Sprintf("1000000S,100C\n%8d %4d\n", want.Bytes, want.Messages)
	if got != wantFile {
		t.Errorf("maildirsize = %q, want %q", got, wantFile)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 1 {
		t.Errorf("tmp/ holds %d entries, want only the message there", len(es))
	}
}

func TestUnderAtOver(t *testing.T) {
	for _, c := range []struct {
		name   string
		lim    quota.Limits
		used   string // maildirsize usage lines
		size   int64
		isOver bool
	}{
		{"bytes under", quota.Limits{Bytes: 1000}, "500 5\n", 499, false},
		{"bytes at", quota.Limits{Bytes: 1000}, "500 5\n", 500, false},
		{"bytes over", quota.Limits{Bytes: 1000}, "500 5\n", 501, true},
		{"bytes full", quota.Limits{Bytes: 1000}, "1000 5\n", 1, true},
		{"count under", quota.Limits{Messages: 3}, "500 1\n", 1 << 30, false},
		{"count at", quota.Limits{Messages: 3}, "500 2\n", 1, false},
		{"count over", quota.Limits{Messages: 3}, "500 3\n", 1, true},
		{"both, count over", quota.Limits{Bytes: 1000, Messages: 3}, "10 3\n", 1, true},
		{"both, bytes over", quota.Limits{Bytes: 1000, Messages: 3}, "999 1\n", 2, true},
		{"both under", quota.Limits{Bytes: 1000, Messages: 3}, "998 1\n -1 0\n", 3, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, root := newMaildir(t, map[string]string{FileName: c.lim.String() + "\n" + c.used})
			before := readFile(t, filepath.Join(dir, FileName))
			_, err := Check(root, c.lim, c.size, time.Now())
			if c.isOver != errors.Is(err, ErrOverQuota) {
				t.Fatalf("Check = %v, want over quota %v", err, c.isOver)
			}
			if c.isOver && !strings.Contains(err.Error(), "mailbox full") {
				t.Errorf("error %q does not say mailbox full", err)
			}
			// A fresh, valid file is trusted, not rebuilt (the Maildir is empty).
			if after := readFile(t, filepath.Join(dir, FileName)); after != before {
				t.Errorf("maildirsize rewritten: %q", after)
			}
		})
	}
}

func TestNoLimitsNoFile(t *testing.T) {
	dir, root := newMaildir(t, nil)
	if _, err := Check(root, quota.Limits{}, 1<<40, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := Add(root, 10, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Errorf("maildirsize exists without a quota: %v", err)
	}
}

func TestStaleOverQuotaRecalculated(t *testing.T) {
	// The file says full; the Maildir is empty (mail was deleted by a reader
	// that does not keep maildirsize).
	dir, root := newMaildir(t, map[string]string{FileName: "1000S\n1000 10\n"})
	lim := quota.Limits{Bytes: 1000}
	if _, err := Check(root, lim, 10, time.Now()); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("fresh file: Check = %v, want over quota", err)
	}
	old := time.Now().Add(-StaleAfter - time.Minute)
	if err := os.Chtimes(filepath.Join(dir, FileName), old, old); err != nil {
		t.Fatal(err)
	}
	u, err := Check(root, lim, 10, time.Now())
	if err != nil || u != (Usage{}) {
		t.Fatalf("stale file: Check = %+v, %v; want a fit with zero usage", u, err)
	}
	if got := readFile(t, filepath.Join(dir, FileName)); got != "1000S\n       0    0\n" {
		t.Errorf("maildirsize = %q", got)
	}
}

func TestLargeOrBrokenFileRebuilt(t *testing.T) {
	for name, content := range map[string]string{
		"large":     "1000S\n" + strings.Repeat("     900    1\n", MaxFileSize/14+1),
		"garbage":   "1000S\nnot numbers\n",
		"no line":   "1000S",
		"directory": "",
	} {
		t.Run(name, func(t *testing.T) {
			dir, root := newMaildir(t, map[string]string{"new/1.x.h,S=10": ""})
			p := filepath.Join(dir, FileName)
			if name == "directory" {
				os.Mkdir(p, 0o700)
			} else {
				os.WriteFile(p, []byte(content), 0o600)
			}
			u, err := Check(root, quota.Limits{Bytes: 1000}, 10, time.Now())
			if name == "directory" {
				// A directory cannot be replaced by rename: a temporary error.
				if err == nil || errors.Is(err, ErrOverQuota) {
					t.Fatalf("Check = %v, want a temporary error", err)
				}
				return
			}
			if err != nil || u != (Usage{10, 1}) {
				t.Fatalf("Check = %+v, %v; want {10 1}", u, err)
			}
			if got := readFile(t, p); got != "1000S\n      10    1\n" {
				t.Errorf("maildirsize = %q", got)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	dir, root := newMaildir(t, nil)
	lim := quota.Limits{Bytes: 100, Messages: 3}
	for i := range 3 {
		if _, err := Check(root, lim, 30, time.Now()); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if err := Add(root, 30, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Check(root, lim, 1, time.Now()); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("fourth message: Check = %v, want over quota (count)", err)
	}
	want := "100S,3C\n       0    0\n      30    1\n      30    1\n      30    1\n"
	if got := readFile(t, filepath.Join(dir, FileName)); got != want {
		t.Errorf("maildirsize = %q, want %q", got, want)
	}
}

func TestSymlinkedMaildirsize(t *testing.T) {
	dir, root := newMaildir(t, nil)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	if err := os.Symlink(victim, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if err := Add(root, 1, 1); err == nil {
		t.Error("Add through a symlink succeeded")
	}
	if _, err := Check(root, quota.Limits{Bytes: 100}, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, victim); got != "precious\n" {
		t.Errorf("symlink target changed: %q", got)
	}
	if st, err := os.Lstat(filepath.Join(dir, FileName)); err != nil || !st.Mode().IsRegular() {
		t.Errorf("maildirsize not replaced by a regular file: %v %v", st, err)
	}
}
