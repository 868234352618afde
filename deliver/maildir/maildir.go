// Package maildir writes messages durably into a Maildir and its Maildir++
// folders, without following symlinks below the user's home directory.
//
// # Layout (Maildir, Maildir++)
//
// A Maildir is a directory holding three directories, tmp/, new/ and cur/.
// A Maildir++ folder is a directory inside the Maildir whose name starts with
// a dot (".Work", nested ".Work.Sub"), itself laid out as a Maildir. A
// message is delivered by creating a uniquely named file in tmp/, writing it
// completely and renaming it into new/. Readers only look at new/ and cur/,
// so a delivery interrupted at any point leaves nothing for them to see.
//
// # Durability, step by step
//
//  1. openat(tmp, KEY, O_CREAT|O_EXCL|O_NOFOLLOW, 0600), write the message
//  2. fsync(the file)
//  3. renameat(tmp/KEY, new/KEY,S=SIZE)
//  4. fsync(new/)
//
// Commit returns success only after step 4. A failure at any step removes
// the file (from tmp/, or from new/ when step 4 fails, so that the retry
// Postfix makes does not deliver a second copy).
//
// # File names
//
// KEY is "SECONDS.MMICROSPPIDQCOUNTRRANDOM.HOST" (the Maildir convention of
// time, a per-delivery unique part and the host name, with "/" and ":" in
// the host name written as \057 and \072). In new/ the Maildir++ size
// attribute ",S=SIZE" (the message size in bytes) is appended, which quota
// calculation reads instead of calling stat.
//
// # Symlinks
//
// The directory the mailbox hangs from (the home directory when the Maildir
// is inside it, otherwise the Maildir's parent) is opened as given: it is
// the administrator's path. Every component below it, the Maildir itself,
// tmp/, new/, cur/, folders and the message file are opened relative to
// their parent's descriptor with O_NOFOLLOW, so a symlink planted there is
// refused instead of followed. Missing components are created mode 0700.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-maildir/maildirpp"
	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/randtoken"
)

// The system calls of the durable write path. Tests replace them with
// recording wrappers to prove the order of the steps.
var (
	sysFsync    = unix.Fsync
	sysRenameat = unix.Renameat
)

// Dir is an open Maildir (the INBOX) or Maildir++ folder.
type Dir struct {
	path   string // for messages only
	folder string // "" for the INBOX, ".Work" for a folder
	root   *os.File
	tmp    *os.File
	new    *os.File
}

// Open opens the Maildir at path, creating it and missing parent
// directories below home, mode 0700. home and path must be absolute. When
// path is not inside home, the Maildir's parent directory takes home's
// place. A missing home (or parent) is created too, following symlinks
// above it as the administrator's path does.
//
// Errors: a non-directory in the way is failure.CantCreate; a symlink below
// home, a permission problem (such as a home the user may not create) or any
// other system error is failure.Temporary.
func Open(home, path string) (*Dir, error) {
	if !filepath.IsAbs(home) || !filepath.IsAbs(path) {
		return nil, failure.Temp("maildir %q or home %q is not an absolute path", path, home)
	}
	home = filepath.Clean(home)
	path = filepath.Clean(path)
	anchor, rel := home, ""
	switch {
	case path == home:
	case strings.HasPrefix(path, home+"/") || home == "/":
		rel = strings.TrimPrefix(strings.TrimPrefix(path, home), "/")
	default:
		anchor, rel = filepath.Dir(path), filepath.Base(path)
	}
	fd, err := unix.Open(anchor, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		// A new user's first mail: create the home (or the Maildir's
		// parent) like virtual(8) and dovecot-lda do. This runs with the
		// user's credentials, so the kernel decides whether it may.
		if merr := os.MkdirAll(anchor, 0o700); merr != nil {
			if errors.Is(merr, unix.ENOTDIR) {
				return nil, failure.New(failure.CantCreate, "cannot create maildir %s: a file is in the way of %s", path, anchor)
			}
			return nil, failure.Wrap(failure.Temporary, merr, "cannot create maildir %s", path)
		}
		fd, err = unix.Open(anchor, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOTDIR):
			return nil, failure.New(failure.CantCreate, "cannot create maildir %s: %s is not a directory", path, anchor)
		}
		return nil, failure.Wrap(failure.Temporary, err, "cannot open %s", anchor)
	}
	cur := os.NewFile(uintptr(fd), anchor)
	curPath := anchor
	if rel != "" {
		for _, c := range strings.Split(rel, "/") {
			next, err := openDir(cur, curPath, c, true)
			cur.Close()
			if err != nil {
				return nil, err
			}
			cur, curPath = next, filepath.Join(curPath, c)
		}
	}
	return openLayout(cur, path, "")
}

// openLayout completes a Dir from its open root, creating tmp/, new/ and
// cur/ when missing. It takes ownership of root.
func openLayout(root *os.File, path, folder string) (*Dir, error) {
	d := &Dir{path: path, folder: folder, root: root}
	var err error
	if d.tmp, err = openDir(root, path, "tmp", true); err != nil {
		d.Close()
		return nil, err
	}
	if d.new, err = openDir(root, path, "new", true); err != nil {
		d.Close()
		return nil, err
	}
	cur, err := openDir(root, path, "cur", true)
	if err != nil {
		d.Close()
		return nil, err
	}
	cur.Close()
	return d, nil
}

// openDir opens the directory name inside parent without following a
// symlink, creating it (mode 0700) first when create is set and it is
// missing.
func openDir(parent *os.File, parentPath, name string, create bool) (*os.File, error) {
	p := filepath.Join(parentPath, name)
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(int(parent.Fd()), name, flags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(int(parent.Fd()), name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, failure.Wrap(failure.Temporary, err, "cannot create %s", p)
		}
		fd, err = unix.Openat(int(parent.Fd()), name, flags, 0)
	}
	if err != nil {
		return nil, classify(parent, name, p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// classify turns a failed open of a directory into the failure kind the
// caller reports: a symlink is refused (Temporary: mail stays queued while
// someone looks), a non-directory in the way is CantCreate.
func classify(parent *os.File, name, p string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(int(parent.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return failure.New(failure.Temporary, "refusing to follow symlink %s", p)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return failure.New(failure.CantCreate, "cannot create maildir: %s is not a directory", p)
			}
		}
	}
	return failure.Wrap(failure.Temporary, err, "cannot open %s", p)
}

// Path returns the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// Name returns the Maildir++ folder's directory name (".Work"), or "INBOX"
// for the Maildir itself.
func (d *Dir) Name() string {
	if d.folder == "" {
		return "INBOX"
	}
	return d.folder
}

// Root returns the open directory itself. It stays owned by d.
func (d *Dir) Root() *os.File { return d.root }

// Close releases the directory descriptors.
func (d *Dir) Close() error {
	for _, f := range []*os.File{d.tmp, d.new, d.root} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// FolderName returns the Maildir++ folder directory name for an address
// extension ("work" → ".work", "lists.go" → ".lists.go"), and false when
// the extension must not name a folder: empty, containing "/", a control
// character or invalid UTF-8, or an empty dot-separated part (a leading or
// trailing ".", or "..").
func FolderName(ext string) (string, bool) {
	if ext == "" || strings.ContainsRune(ext, '/') || !isPrintableUTF8(ext) {
		return "", false
	}
	elems := strings.Split(ext, ".")
	for _, e := range elems {
		if e == "" {
			return "", false
		}
	}
	name, err := maildirpp.Join(elems)
	if err != nil {
		return "", false
	}
	return name, true
}

func isPrintableUTF8(s string) bool {
	for _, r := range s {
		if r == 0xFFFD || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Folder opens the Maildir++ folder for an address extension: the existing
// folder whose name matches FolderName(ext) ignoring case (an exact match
// wins over others), with tmp/, new/ and cur/ created if missing. It
// returns d itself (the INBOX) when ext names no folder or no such folder
// exists. Folders are never created. The caller closes the returned Dir
// when it is not d.
func (d *Dir) Folder(ext string) (*Dir, error) {
	want, ok := FolderName(ext)
	if !ok {
		return d, nil
	}
	sub, found, err := d.Sub(want, false)
	if err != nil || !found {
		return d, err
	}
	return sub, nil
}

var counter atomic.Uint64

// newKey returns a unique Maildir file name (see the package doc).
func newKey() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.ReplaceAll(host, "/", `\057`)
	host = strings.ReplaceAll(host, ":", `\072`)
	rnd, err := randtoken.New()
	if err != nil {
		return "", err
	}
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000,
		os.Getpid(), counter.Add(1), rnd, host), nil
}

// Delivery is one message being written into a Dir.
type Delivery struct {
	d    *Dir
	key  string
	f    *os.File
	size int64
	done bool
}

// Create starts a delivery: a new file in tmp/, mode 0600.
func (d *Dir) Create() (*Delivery, error) {
	key, err := newKey()
	if err != nil {
		return nil, failure.Wrap(failure.Temporary, err, "cannot make a maildir file name")
	}
	fd, err := unix.Openat(int(d.tmp.Fd()), key,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, failure.Wrap(failure.Temporary, err, "cannot create %s/tmp/%s", d.path, key)
	}
	return &Delivery{d: d, key: key, f: os.NewFile(uintptr(fd), filepath.Join(d.path, "tmp", key))}, nil
}

// ReadError is what Write returns when reading the message failed (as
// opposed to writing it).
type ReadError struct{ Err error }

// Error says that reading the message failed, and why.
func (e *ReadError) Error() string { return "reading message: " + e.Err.Error() }

// Unwrap returns the read error.
func (e *ReadError) Unwrap() error { return e.Err }

type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// Write copies the whole message from r into the file and fsyncs it. A
// failure to read r is a *ReadError inside a failure.Temporary; a failure
// to write (a full file system, say) is failure.Temporary too. After an
// error, call Abort.
func (dl *Delivery) Write(r io.Reader) (int64, error) {
	rt := &readTracker{r: r}
	n, err := io.Copy(dl.f, rt)
	dl.size += n
	if rt.err != nil {
		return dl.size, failure.Wrap(failure.Temporary, &ReadError{rt.err}, "")
	}
	if err != nil {
		return dl.size, failure.Wrap(failure.Temporary, err, "cannot write %s", dl.f.Name())
	}
	if err := sysFsync(int(dl.f.Fd())); err != nil {
		return dl.size, failure.Wrap(failure.Temporary, err, "cannot fsync %s", dl.f.Name())
	}
	return dl.size, nil
}

// Size returns the number of bytes written so far.
func (dl *Delivery) Size() int64 { return dl.size }

// Commit moves the written message into new/ as KEY,S=SIZE and fsyncs
// new/. It returns the message's path relative to the Maildir++ folder
// ("new/KEY,S=SIZE"). On error the message is removed.
func (dl *Delivery) Commit() (string, error) {
	if dl.done {
		return "", failure.Temp("maildir delivery already finished")
	}
	dl.done = true
	if err := dl.f.Close(); err != nil {
		unix.Unlinkat(int(dl.d.tmp.Fd()), dl.key, 0)
		return "", failure.Wrap(failure.Temporary, err, "cannot close %s", dl.f.Name())
	}
	name := fmt.Sprintf("%s,S=%d", dl.key, dl.size)
	if err := sysRenameat(int(dl.d.tmp.Fd()), dl.key, int(dl.d.new.Fd()), name); err != nil {
		unix.Unlinkat(int(dl.d.tmp.Fd()), dl.key, 0)
		return "", failure.Wrap(failure.Temporary, err, "cannot move %s into %s/new", dl.f.Name(), dl.d.path)
	}
	if err := sysFsync(int(dl.d.new.Fd())); err != nil {
		unix.Unlinkat(int(dl.d.new.Fd()), name, 0)
		return "", failure.Wrap(failure.Temporary, err, "cannot fsync %s/new", dl.d.path)
	}
	return "new/" + name, nil
}

// Abort removes the file from tmp/. It is a no-op after Commit or Abort.
func (dl *Delivery) Abort() {
	if dl.done {
		return
	}
	dl.done = true
	dl.f.Close()
	unix.Unlinkat(int(dl.d.tmp.Fd()), dl.key, 0)
}

// TmpMaxAge is how long a file may sit in tmp/ before it counts as left
// behind by a delivery that never finished (the Maildir rule: 36 hours).
const TmpMaxAge = 36 * time.Hour

// CleanTmp removes from tmp/ the regular files whose modification and
// access times are both more than TmpMaxAge before now: what deliveries
// that were killed or crashed left behind. It is bounded, as it runs on
// every delivery: it looks at the first maxEntries entries of the
// directory only, and stops once budget has passed. It returns the number
// of files removed. Errors are ignored: cleaning never fails a delivery.
func (d *Dir) CleanTmp(now time.Time, maxEntries int, budget time.Duration) int {
	start := time.Now()
	fd, err := unix.Openat(int(d.tmp.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	list := os.NewFile(uintptr(fd), filepath.Join(d.path, "tmp"))
	defer list.Close()
	entries, _ := list.ReadDir(maxEntries)
	cutoff := now.Add(-TmpMaxAge).Unix()
	removed := 0
	for _, e := range entries {
		if time.Since(start) > budget {
			break
		}
		if !e.Type().IsRegular() {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if st.Mtim.Sec >= cutoff || st.Atim.Sec >= cutoff {
			continue
		}
		if unix.Unlinkat(fd, e.Name(), 0) == nil {
			removed++
		}
	}
	return removed
}
