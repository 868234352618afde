package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	gomaildir "github.com/emersion/go-maildir"
	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
)

func wantKind(t *testing.T, err error, kind failure.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if k := failure.KindOf(err); k != kind {
		t.Fatalf("error %q has kind %v, want %v", err, k, kind)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// openMaildir opens HOME/Maildir in a new temporary home, closed when the
// test ends, and returns it and its path.
func openMaildir(t *testing.T) (*Dir, string) {
	t.Helper()
	home := t.TempDir()
	path := filepath.Join(home, "Maildir")
	d, err := Open(home, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func deliver(t *testing.T, d *Dir, msg []byte) string {
	t.Helper()
	dl, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := dl.Write(bytes.NewReader(msg)); err != nil || n != int64(len(msg)) {
		dl.Abort()
		t.Fatalf("Write = %d, %v; want %d", n, err, len(msg))
	}
	name, err := dl.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestOpenCreatesMaildirAndParents(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "mail", "box", "Maildir") + "/"
	d, err := Open(home, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, sub := range []string{"mail", "mail/box", "mail/box/Maildir", "mail/box/Maildir/tmp", "mail/box/Maildir/new", "mail/box/Maildir/cur"} {
		st, err := os.Lstat(filepath.Join(home, sub))
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want a directory without group/other access", sub, st.Mode())
		}
	}
	msg := []byte("Subject: hi\r\n\r\nbody\x00\xff\n")
	name := deliver(t, d, msg)
	if !strings.HasPrefix(name, "new/") || !strings.HasSuffix(name, fmt.Sprintf(",S=%d", len(msg))) {
		t.Errorf("name %q: want new/KEY,S=%d", name, len(msg))
	}
	got, err := os.ReadFile(filepath.Join(path, name))
	if err != nil || !bytes.Equal(got, msg) {
		t.Errorf("delivered %q, %v; want %q", got, err, msg)
	}
	if tmp := entries(t, filepath.Join(path, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ still holds %v", tmp)
	}
	// go-maildir, an independent reader, sees exactly this message.
	if n, err := gomaildir.Dir(path).UnseenCount(); err != nil || n != 1 {
		t.Errorf("go-maildir UnseenCount = %d, %v; want 1", n, err)
	}
	if st, err := os.Stat(filepath.Join(path, name)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("message mode %v, %v; want 0600", st.Mode(), err)
	}
}

func TestOpenExistingAndOutsideHome(t *testing.T) {
	home := t.TempDir()
	other := t.TempDir()
	d, err := Open(home, filepath.Join(other, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, d, []byte("one\n"))
	d.Close()
	d, err = Open(home, filepath.Join(other, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deliver(t, d, []byte("two\n"))
	if n := len(entries(t, filepath.Join(other, "Maildir", "new"))); n != 2 {
		t.Errorf("%d messages in new/, want 2", n)
	}
	// The Maildir is the home directory itself.
	d2, err := Open(home, home)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	deliver(t, d2, []byte("three\n"))
	if n := len(entries(t, filepath.Join(home, "new"))); n != 1 {
		t.Errorf("%d messages in home/new/, want 1", n)
	}
}

func TestOpenErrors(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// Home missing: created, with its missing parents.
	d, err := Open(filepath.Join(base, "new", "home"), filepath.Join(base, "new", "home", "Maildir"))
	if err != nil {
		t.Fatalf("Open with a missing home: %v", err)
	}
	d.Close()
	if fi, err := os.Stat(filepath.Join(base, "new", "home", "Maildir", "new")); err != nil || !fi.IsDir() {
		t.Errorf("Maildir under a created home: %v", err)
	}
	// A file in the way of home: cannot create (a bounce).
	if err := os.WriteFile(filepath.Join(base, "afile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(filepath.Join(base, "afile", "home"), filepath.Join(base, "afile", "home", "Maildir"))
	wantKind(t, err, failure.CantCreate)
	// A regular file where the Maildir should be.
	if err := os.WriteFile(filepath.Join(home, "Maildir"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(home, filepath.Join(home, "Maildir"))
	wantKind(t, err, failure.CantCreate)
	// A file where new/ should be.
	os.Remove(filepath.Join(home, "Maildir"))
	for _, d := range []string{"Maildir", "Maildir/tmp", "Maildir/cur"} {
		os.Mkdir(filepath.Join(home, d), 0o700)
	}
	os.WriteFile(filepath.Join(home, "Maildir", "new"), nil, 0o600)
	_, err = Open(home, filepath.Join(home, "Maildir"))
	wantKind(t, err, failure.CantCreate)
	// Relative paths are refused.
	_, err = Open("home", "home/Maildir")
	wantKind(t, err, failure.Temporary)
}

func TestSymlinksRefused(t *testing.T) {
	cases := []struct {
		name  string
		link  string // relative to home
		maild string // relative to home
	}{
		{"maildir", "Maildir", "Maildir"},
		{"parent", "mail", "mail/Maildir"},
		{"new", "Maildir/new", "Maildir"},
		{"tmp", "Maildir/tmp", "Maildir"},
		{"cur", "Maildir/cur", "Maildir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home, elsewhere := t.TempDir(), t.TempDir()
			if c.link != "Maildir" {
				os.MkdirAll(filepath.Join(home, "Maildir"), 0o700)
			}
			if err := os.Symlink(elsewhere, filepath.Join(home, c.link)); err != nil {
				t.Fatal(err)
			}
			d, err := Open(home, filepath.Join(home, c.maild))
			if err == nil {
				d.Close()
			}
			wantKind(t, err, failure.Temporary)
			if !strings.Contains(err.Error(), "symlink") {
				t.Errorf("error %q does not name the symlink", err)
			}
			if got := entries(t, elsewhere); len(got) != 0 {
				t.Errorf("written through the symlink: %v", got)
			}
		})
	}
}

// A symlink in the administrator's part of the path (the home directory
// itself) is followed: /home -> /srv/home is common.
func TestSymlinkAboveHomeFollowed(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "home")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	d, err := Open(link, filepath.Join(link, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deliver(t, d, []byte("x\n"))
	if n := len(entries(t, filepath.Join(real, "Maildir", "new"))); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestDurableOrder proves the order of the durable write path by recording
// the real system calls: the message file is fsynced (with its full content
// on disk) before it is renamed into new/, and new/ is fsynced after.
func TestDurableOrder(t *testing.T) {
	d, _ := openMaildir(t)
	msg := bytes.Repeat([]byte("0123456789abcdef\n"), 10000)
	var steps []string
	describe := func(fd int) string {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return "fsync ?"
		}
		target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return "fsync dir " + filepath.Base(target)
		}
		if st.Size != int64(len(msg)) {
			return fmt.Sprintf("fsync file with %d bytes", st.Size)
		}
		return "fsync file " + filepath.Base(filepath.Dir(target))
	}
	oldFsync, oldRename := sysFsync, sysRenameat
	t.Cleanup(func() { sysFsync, sysRenameat = oldFsync, oldRename })
	sysFsync = func(fd int) error {
		steps = append(steps, describe(fd))
		return oldFsync(fd)
	}
	sysRenameat = func(ofd int, o string, nfd int, n string) error {
		steps = append(steps, "rename "+filepath.Base(d.dirOf(ofd))+" -> "+filepath.Base(d.dirOf(nfd)))
		return oldRename(ofd, o, nfd, n)
	}
	deliver(t, d, msg)
	want := []string{"fsync file tmp", "rename tmp -> new", "fsync dir new"}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("steps %q, want %q", steps, want)
	}
}

func (d *Dir) dirOf(fd int) string {
	target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return target
}

func TestFsyncFailures(t *testing.T) {
	d, path := openMaildir(t)
	oldFsync := sysFsync
	t.Cleanup(func() { sysFsync = oldFsync })

	// The file's fsync fails: Write fails, Abort leaves nothing.
	sysFsync = func(int) error { return unix.EIO }
	dl, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	_, err = dl.Write(strings.NewReader("x"))
	wantKind(t, err, failure.Temporary)
	dl.Abort()

	// The directory's fsync fails: Commit fails and takes the message back.
	calls := 0
	sysFsync = func(fd int) error {
		calls++
		if calls == 2 {
			return unix.EIO
		}
		return oldFsync(fd)
	}
	dl, err = d.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Write(strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	_, err = dl.Commit()
	wantKind(t, err, failure.Temporary)
	for _, sub := range []string{"tmp", "new"} {
		if got := entries(t, filepath.Join(path, sub)); len(got) != 0 {
			t.Errorf("%s/ holds %v after failed deliveries", sub, got)
		}
	}
}

func TestReadErrorLeavesNothing(t *testing.T) {
	d, path := openMaildir(t)
	dl, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	r := iotest.TimeoutReader(strings.NewReader(strings.Repeat("x", 100000)))
	_, err = dl.Write(&errAfter{r: r, err: boom})
	wantKind(t, err, failure.Temporary)
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, boom) {
		t.Errorf("error %q is not a ReadError wrapping the cause", err)
	}
	dl.Abort()
	dl.Abort() // twice is harmless
	if _, err := dl.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	for _, sub := range []string{"tmp", "new"} {
		if got := entries(t, filepath.Join(path, sub)); len(got) != 0 {
			t.Errorf("%s/ holds %v", sub, got)
		}
	}
}

type errAfter struct {
	r   interface{ Read([]byte) (int, error) }
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		return n, e.err
	}
	return n, nil
}

func TestUniqueNames(t *testing.T) {
	seen := map[string]bool{}
	for range 20000 {
		key, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] || strings.ContainsAny(key, "/:") || strings.Count(key, ".") < 2 {
			t.Fatalf("key %q: repeated or malformed", key)
		}
		seen[key] = true
	}
}

func TestFolderSelection(t *testing.T) {
	d, path := openMaildir(t)
	for _, f := range []string{".Work", ".Lists.Go", ".Both", ".both"} {
		if err := os.Mkdir(filepath.Join(path, f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(path, ".Ready"), 0o700)
	for _, s := range []string{"tmp", "new", "cur"} {
		os.Mkdir(filepath.Join(path, ".Ready", s), 0o700)
	}
	elsewhere := t.TempDir()
	os.Symlink(elsewhere, filepath.Join(path, ".Linked"))
	os.WriteFile(filepath.Join(path, ".File"), nil, 0o600)

	cases := []struct{ ext, want string }{
		{"work", ".Work"},
		{"WORK", ".Work"},
		{"Work", ".Work"},
		{"lists.go", ".Lists.Go"},
		{"both", ".both"}, // exact match wins
		{"BOTH", ".Both"}, // otherwise the first in byte order
		{"ready", ".Ready"},
		{"nosuch", "INBOX"},
		{"", "INBOX"},
		{"linked", "INBOX"}, // a symlink is not a folder
		{"file", "INBOX"},
		{"../Work", "INBOX"},
		{"..", "INBOX"},
		{".Work", "INBOX"},
		{"Work.", "INBOX"},
		{"a..b", "INBOX"},
		{"Work/x", "INBOX"},
		{"Wo\x00rk", "INBOX"},
		{"Wo\nrk", "INBOX"},
		{"Work\x7f", "INBOX"},
		{"Work\xff", "INBOX"},
	}
	for _, c := range cases {
		f, err := d.Folder(c.ext)
		if err != nil {
			t.Errorf("Folder(%q): %v", c.ext, err)
			continue
		}
		if f.Name() != c.want {
			t.Errorf("Folder(%q) = %s, want %s", c.ext, f.Name(), c.want)
		}
		if c.want == "INBOX" {
			if f != d {
				t.Errorf("Folder(%q) for the INBOX is not d", c.ext)
			}
			continue
		}
		msg := []byte("to " + c.ext + "\n")
		name := deliver(t, f, msg)
		got, err := os.ReadFile(filepath.Join(path, c.want, name))
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("Folder(%q): delivered %q, %v", c.ext, got, err)
		}
		f.Close()
	}
	if got := entries(t, elsewhere); len(got) != 0 {
		t.Errorf("written through a symlinked folder: %v", got)
	}
	// The folder got its Maildir layout.
	for _, s := range []string{"tmp", "new", "cur"} {
		if _, err := os.Stat(filepath.Join(path, ".Work", s)); err != nil {
			t.Error(err)
		}
	}
}

func TestFolderName(t *testing.T) {
	for ext, want := range map[string]string{
		"work": ".work", "a.b": ".a.b", "Ünï": ".Ünï", "with space": ".with space",
	} {
		if got, ok := FolderName(ext); !ok || got != want {
			t.Errorf("FolderName(%q) = %q, %v; want %q", ext, got, ok, want)
		}
	}
	for _, ext := range []string{"", ".", "..", ".x", "x.", "x..y", "a/b", "/", "\t", "x\u0085", "\xc3"} {
		if got, ok := FolderName(ext); ok {
			t.Errorf("FolderName(%q) = %q, want refusal", ext, got)
		}
	}
}

func FuzzFolderName(f *testing.F) {
	f.Fuzz(func(t *testing.T, ext string) {
		name, ok := FolderName(ext)
		if !ok {
			return
		}
		if name != "."+ext {
			t.Fatalf("FolderName(%q) = %q", ext, name)
		}
		if strings.Contains(name, "/") || strings.Contains(name, "..") || name == "." {
			t.Fatalf("FolderName(%q) = %q: unsafe", ext, name)
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("FolderName(%q) = %q: control character", ext, name)
			}
		}
		if filepath.Clean(name) != name || filepath.Base(name) != name {
			t.Fatalf("FolderName(%q) = %q: not a single path element", ext, name)
		}
	})
}
