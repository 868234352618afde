package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mapdrop/mapdrop/deliver/mutf7"
	"github.com/mapdrop/mapdrop/failure"
	"golang.org/x/sys/unix"
)

// MailboxDir returns the Maildir++ folder directory name for an IMAP
// mailbox name, as Dovecot and Courier IMAP lay it out: "/" and "." both
// separate hierarchy levels ("Lists/Go" and "Lists.Go" are ".Lists.Go"),
// and each level is written in modified UTF-7 ("Entwürfe" is
// ".Entw&APw-rfe"). inbox is true, and dir "", for "INBOX" in any case.
// An empty level (a leading, trailing or doubled separator), invalid UTF-8
// or a control character is an error.
func MailboxDir(mailbox string) (dir string, inbox bool, err error) {
	if strings.EqualFold(mailbox, "INBOX") {
		return "", true, nil
	}
	if !isPrintableUTF8(mailbox) {
		return "", false, fmt.Errorf("mailbox name %q: control character or invalid UTF-8", mailbox)
	}
	levels := strings.FieldsFunc(mailbox, func(r rune) bool { return r == '/' || r == '.' })
	if len(levels) == 0 || len(levels) != strings.Count(mailbox, "/")+strings.Count(mailbox, ".")+1 {
		return "", false, fmt.Errorf("mailbox name %q: empty hierarchy level", mailbox)
	}
	var b strings.Builder
	for _, l := range levels {
		enc, err := mutf7.Encode(l)
		if err != nil {
			return "", false, fmt.Errorf("mailbox name %q: %v", mailbox, err)
		}
		b.WriteByte('.')
		b.WriteString(enc)
	}
	return b.String(), false, nil
}

// Sub opens the Maildir++ folder with directory name name (".Lists.Go")
// inside the Maildir d: the existing directory whose name matches name
// ignoring case (an exact match wins over others, then the smallest
// name), with tmp/, new/ and cur/ created if missing. When there is none
// and create is set, the folder is created, mode 0700, with tmp/, new/,
// cur/ and an empty maildirfolder file (the Maildir++ marker), and the
// Maildir directory is fsynced; found is then true. Otherwise found is
// false and the Dir is nil. The caller closes a returned Dir.
func (d *Dir) Sub(name string, create bool) (sub *Dir, found bool, err error) {
	fd, err := unix.Openat(int(d.root.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, failure.Wrap(failure.Temporary, err, "cannot read %s", d.path)
	}
	list := os.NewFile(uintptr(fd), d.path)
	entries, err := list.ReadDir(-1)
	list.Close()
	if err != nil {
		return nil, false, failure.Wrap(failure.Temporary, err, "cannot read %s", d.path)
	}
	match := ""
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || !strings.EqualFold(n, name) {
			continue
		}
		if n == name {
			match = n
			break
		}
		if match == "" || n < match {
			match = n
		}
	}
	if match == "" {
		if !create {
			return nil, false, nil
		}
		match = name
	}
	root, err := openDir(d.root, d.path, match, create)
	if err != nil {
		return nil, false, err
	}
	sub, err = openLayout(root, filepath.Join(d.path, match), match)
	if err != nil {
		return nil, false, err
	}
	if create {
		mf, err := unix.Openat(int(sub.root.Fd()), "maildirfolder", unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(mf)
		}
		if err := sysFsync(int(d.root.Fd())); err != nil {
			sub.Close()
			return nil, false, failure.Wrap(failure.Temporary, err, "cannot fsync %s", d.path)
		}
	}
	return sub, true, nil
}

// InfoFlags returns the Maildir info flag letters for IMAP flags, in ASCII
// order: \Draft D, \Flagged F, \Answered R, \Seen S, \Deleted T (names in
// any case). Other flags (keywords) have no letter and are left out.
func InfoFlags(flags []string) string {
	var b []byte
	for _, l := range []struct {
		name   string
		letter byte
	}{{`\Draft`, 'D'}, {`\Flagged`, 'F'}, {`\Answered`, 'R'}, {`\Seen`, 'S'}, {`\Deleted`, 'T'}} {
		for _, f := range flags {
			if strings.EqualFold(f, l.name) {
				b = append(b, l.letter)
				break
			}
		}
	}
	return string(b)
}

// Link stores one more copy of the written message (after Write) in dst:
// a hard link from tmp/ into dst's new/ as KEY,S=SIZE, or, when flags (the
// letters from InfoFlags) is not empty, into cur/ as KEY,S=SIZE:2,FLAGS;
// then the directory is fsynced. It returns the copy's path relative to
// dst ("new/..." or "cur/..."). dst must be on the same file system (a
// folder of the same Maildir). The file stays in tmp/ until Abort.
func (dl *Delivery) Link(dst *Dir, flags string) (string, error) {
	if dl.done {
		return "", failure.Temp("maildir delivery already finished")
	}
	name := fmt.Sprintf("%s,S=%d", dl.key, dl.size)
	sub, dir := "new", dst.new
	if flags != "" {
		name += ":2," + flags
		cur, err := openDir(dst.root, dst.path, "cur", true)
		if err != nil {
			return "", err
		}
		defer cur.Close()
		sub, dir = "cur", cur
	}
	if err := unix.Linkat(int(dl.d.tmp.Fd()), dl.key, int(dir.Fd()), name, 0); err != nil {
		return "", failure.Wrap(failure.Temporary, err, "cannot link %s into %s/%s", dl.f.Name(), dst.path, sub)
	}
	if err := sysFsync(int(dir.Fd())); err != nil {
		unix.Unlinkat(int(dir.Fd()), name, 0)
		return "", failure.Wrap(failure.Temporary, err, "cannot fsync %s/%s", dst.path, sub)
	}
	return sub + "/" + name, nil
}

// Remove removes a message stored by Link (rel as Link returned it), to
// undo a delivery that did not complete.
func (d *Dir) Remove(rel string) error {
	sub, name, ok := strings.Cut(rel, "/")
	if !ok || (sub != "new" && sub != "cur") || strings.Contains(name, "/") {
		return errors.New("maildir: bad message path " + rel)
	}
	dir, err := openDir(d.root, d.path, sub, false)
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Unlinkat(int(dir.Fd()), name, 0)
}

// Open opens the written file (after Write) for reading.
func (dl *Delivery) Open() (*os.File, error) {
	fd, err := unix.Openat(int(dl.d.tmp.Fd()), dl.key, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, failure.Wrap(failure.Temporary, err, "cannot open %s", dl.f.Name())
	}
	return os.NewFile(uintptr(fd), dl.f.Name()), nil
}
