// Package export writes snapshots of lookup tables as cdb files that Postfix
// reads natively, so that Postfix can be pointed at cdb:DIR/NAME instead of
// (or as well as) the mapdropd socket — for instance by delivery agents that
// refuse socketmap for security-sensitive data.
//
// # Files
//
// Snapshot(dir, name, entries) leaves dir/NAME.cdb, mode 0644, in the cdb
// format of package tables/cdb, holding one record per entry:
//
//   - the key and the value are stored byte for byte as given, without the
//     trailing NUL byte, exactly as "postmap cdb:" stores them; Postfix's
//     dict_cdb then finds them with a query for the key without NUL;
//   - Postfix folds every query key to lower case before the lookup (ASCII
//     only under compatibility_level < 3.6; full Unicode case folding, so
//     "ß" becomes "ss", from 3.6 on with smtputf8_enable), so the caller
//     passes keys already folded the same way. A key with upper-case letters
//     is stored, but Postfix will never find it;
//   - keys and values must not contain a NUL byte, which Postfix's C strings
//     cannot carry (Snapshot returns a Permanent error);
//   - if a key comes twice, lookups return the first value.
//
// Postfix's syntax for the file is cdb:DIR/NAME (without the .cdb suffix).
//
// # Atomic replacement
//
// The records are written to a temporary file in dir named .NAME.cdb.tmp-*
// (never matched by Postfix's NAME.cdb), held under an exclusive flock(2)
// while it is written. The file is fsynced, renamed over NAME.cdb, and the
// directory is fsynced. Readers see either the old file or the complete new
// one, never a partial one, also after a crash or power loss. On any error
// before the rename the temporary file is removed and NAME.cdb is left
// untouched; an error after it (closing the file, fsyncing the directory)
// means the new NAME.cdb is in place but its durability is unknown. A temporary
// file left by a process that died (its flock released by the kernel) is
// removed by the next Snapshot of the same name; one still locked by a live
// writer is left alone; RemoveStale removes such files of every name in a
// directory. WriteFile and WriteWith replace any other file (such as a
// map's last good source text, or a file of the etcd cache) in the same
// way; WriteWith with a mode of the caller's choice.
//
// # Unchanged files stay
//
// When the file in place is a regular file of the mode being written (0644
// for Snapshot) holding exactly the bytes just written, the
// temporary file is removed and the file in place is left as it is (same
// inode, same mtime): Postfix's daemons restart when a table file they
// opened is replaced, so a restart of mapdropd with the same tables
// restarts none of them.
package export

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/cdb"
)

// Suffix is the file name suffix Postfix's cdb: map adds to a table name.
const Suffix = ".cdb"

// FileMode is the permission of the files Snapshot writes: Postfix's
// daemons, which run as other users, read them.
const FileMode os.FileMode = 0o644

// tmpInfix ends the temporary file names' .FILE part.
const tmpInfix = ".tmp-"

// tmpPrefix is the start of the temporary file names for file.
func tmpPrefix(file string) string { return "." + file + tmpInfix }

// isTemp reports whether name is a temporary file name of some file:
// .FILE.tmp-*, FILE not empty.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.LastIndex(name, tmpInfix) > 1
}

// Path returns the file Snapshot(dir, name, ...) writes: dir/NAME.cdb.
func Path(dir, name string) string { return filepath.Join(dir, name+Suffix) }

// Snapshot writes entries to dir/NAME.cdb atomically (see the package
// documentation). Errors of the file system are Temporary; an invalid name,
// a key or value with a NUL byte, or a table over the 4 GiB limit of the
// format is Permanent. If entries panics, the temporary file is removed and
// the panic goes on.
func Snapshot(dir, name string, entries iter.Seq2[string, string]) error {
	if err := checkName(name); err != nil {
		return err
	}
	return replace(dir, name+Suffix, FileMode, "export "+name, func(f *os.File) error {
		w := cdb.NewWriter(f)
		for k, v := range entries {
			if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
				return failure.Perm("export %s: key %q: NUL byte in key or value", name, k)
			}
			if err := w.Add([]byte(k), []byte(v)); err != nil {
				return wrap(err, "export %s", name)
			}
		}
		return wrap(w.Close(), "export %s", name)
	})
}

// WriteFile replaces dir/FILE by a file holding text, of permission bits
// perm, in the same atomic way as Snapshot: a locked temporary file
// .FILE.tmp-*, fsynced, renamed over FILE, and the directory fsynced.
// Errors are Temporary, except an invalid file name (Permanent).
func WriteFile(dir, file, text string, perm os.FileMode) error {
	return WriteWith(dir, file, perm, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
}

// WriteWith replaces dir/FILE by a file of permission bits perm holding
// what fill writes to w, in the same atomic way as WriteFile; a file in
// place of mode perm holding the same bytes stays. w is the temporary
// file itself: fill buffers its writes if they are small. An error of fill
// keeps its kind (a plain error is Temporary); on it, and on a panic in
// fill (which goes on), the temporary file is removed and FILE is left as
// it was. Other errors are Temporary, except an invalid file name
// (Permanent).
func WriteWith(dir, file string, perm os.FileMode, fill func(w io.Writer) error) error {
	if err := checkName(file); err != nil {
		return err
	}
	return replace(dir, file, perm, "write "+file, func(f *os.File) error {
		return wrap(fill(f), "write %s", file)
	})
}

// replace writes dir/file atomically with write, mode perm; what names
// the operation in errors.
func replace(dir, file string, perm os.FileMode, what string, write func(*os.File) error) error {
	perm = perm.Perm()
	prefix := tmpPrefix(file)
	removeStale(dir, func(name string) bool { return strings.HasPrefix(name, prefix) })

	f, err := os.CreateTemp(dir, prefix+"*")
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", what)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		// Runs on errors and on panics in write alike.
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := lock(f, tmp); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", what)
	}
	if err := f.Chmod(perm); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", what)
	}
	if err := write(f); err != nil {
		return err
	}
	if sameAsFile(f, filepath.Join(dir, file), perm) {
		return nil // the deferred function removes the temporary file
	}
	if err := f.Sync(); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s: fsync %s", what, tmp)
	}
	// Rename while the file is still open and locked, so that no other
	// writer takes it for stale in between.
	if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", what)
	}
	renamed = true
	if err := f.Close(); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s: close", what)
	}
	if err := syncDir(dir); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s: fsync directory %s", what, dir)
	}
	return nil
}

// sameAsFile reports whether path is a regular file of permission bits
// perm holding exactly what f holds. Any error reads as "not the same".
func sameAsFile(f *os.File, path string, perm os.FileMode) bool {
	old, err := os.Open(path)
	if err != nil {
		return false
	}
	defer old.Close()
	ofi, err := old.Stat()
	if err != nil || !ofi.Mode().IsRegular() || ofi.Mode().Perm() != perm {
		return false
	}
	nfi, err := f.Stat()
	if err != nil || nfi.Size() != ofi.Size() {
		return false
	}
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := int64(0); off < nfi.Size(); {
		n, err := f.ReadAt(a, off)
		if n == 0 && err != nil {
			return false
		}
		if m, err := io.ReadFull(io.NewSectionReader(old, off, int64(n)), b[:n]); m != n || err != nil || !bytes.Equal(a[:n], b[:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

// wrap keeps the kind of err (plain errors are Temporary); nil stays nil.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return failure.Wrap(failure.KindOf(err), err, format, args...)
}

// checkName refuses names that are not a single file name component.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return failure.Perm("export: invalid table name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return failure.Perm("export: invalid table name %q: contains '/' or NUL", name)
	}
	return nil
}

// lock takes an exclusive flock on the new temporary file and checks that
// its name still refers to it: a concurrent removeStale may have taken it
// for stale between its creation and the lock.
func lock(f *os.File, path string) error {
	if err := flock(f, syscall.LOCK_EX); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !os.SameFile(fi, pi) {
		return errors.New("temporary file replaced during creation")
	}
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// RemoveStale removes the temporary files (.FILE.tmp-*, of any FILE) that
// writers of dir left when they died; those of live writers, which hold
// an flock on them, stay. Snapshot, WriteFile and WriteWith remove those
// of the file they write; RemoveStale is for a directory whose file names
// change, such as the etcd cache's. It is best effort.
func RemoveStale(dir string) { removeStale(dir, isTemp) }

// removeStale removes the temporary files named as match says whose writer
// is gone: those on which an exclusive flock can be taken. It is best
// effort; a file it cannot remove is tried again on the next write.
func removeStale(dir string, match func(name string) bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !match(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if flock(f, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.Remove(path)
		}
		f.Close()
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
