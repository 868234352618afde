// Package maildirsize enforces Maildir++ quotas through the maildirsize file, as
// Courier maildrop, deliverquota and Dovecot's "maildir" quota do.
//
// # The maildirsize file
//
// maildirsize lives in the Maildir's root directory (never in a folder).
// Its first line is the quota definition (package format/quota), a comma-separated list of
// integers each followed by a letter: S the total size of all messages in
// bytes, C the number of messages ("104857600S,1000C"; either may be
// missing). Every further line holds two whitespace-separated integers, a
// byte count and a message count, possibly negative; the current usage is
// the sum of all of them. Lines are appended, one per delivery, padded like
// Courier's to "%8d %4d\n"; a final line without "\n" is a write in
// progress and is ignored.
//
// # Recalculation
//
// The file is rebuilt from the Maildir's contents when it is missing,
// unreadable or malformed, is 5120 bytes or larger, or holds a quota
// definition other than the one configured; and, when a delivery would be
// over quota, once more if the file was last changed more than 15 minutes
// ago. Rebuilding adds up the messages in new/ and cur/ of the Maildir and
// of every folder (".Name" directories), except the ".Trash" folder and
// messages flagged T (trashed) — as Courier counts. A message's size is read
// from ",S=SIZE" in its file name (before the ":" info part), else from
// stat. The new file is written to tmp/ and renamed over maildirsize. If
// new/ or cur/ of any folder changed while counting, the file is removed
// again so that the next delivery counts afresh; the numbers still serve
// the delivery at hand.
//
// # Enforcement
//
// A message of SIZE bytes is over quota when usage bytes + SIZE > S or usage
// messages + 1 > C, so a mailbox may fill to exactly its quota. After a
// delivery the caller appends "SIZE 1" with Add. Like every Maildir++
// implementation this is approximate: concurrent deliveries may overshoot
// the quota by a message each.
package maildirsize

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/quota"
	"github.com/mapdrop/mapdrop/internal/randtoken"
)

// FileName is the quota file's name in the Maildir root.
const FileName = "maildirsize"

// MaxFileSize is the size from which maildirsize is rebuilt.
const MaxFileSize = 5120

// StaleAfter is how old maildirsize must be before an over-quota verdict
// is checked by rebuilding it.
const StaleAfter = 15 * time.Minute

// Usage is what a Maildir holds.
type Usage struct {
	Bytes    int64
	Messages int64
}

// Parse reads a maildirsize file's content: the quota definition and the
// summed usage. A last line without a newline is ignored. Data of
// MaxFileSize bytes or more is refused: such a file is rebuilt, not read.
func Parse(data []byte) (quota.Limits, Usage, error) {
	if len(data) >= MaxFileSize {
		return quota.Limits{}, Usage{}, errors.New("maildirsize: too large")
	}
	first, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return quota.Limits{}, Usage{}, errors.New("maildirsize: no complete first line")
	}
	lim, err := quota.ParseFile(string(first))
	if err != nil {
		return quota.Limits{}, Usage{}, err
	}
	var u Usage
	for len(rest) > 0 {
		line, tail, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			break // a write in progress
		}
		rest = tail
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return quota.Limits{}, Usage{}, fmt.Errorf("maildirsize: bad line %q", line)
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return quota.Limits{}, Usage{}, fmt.Errorf("maildirsize: bad line %q", line)
		}
		const limit = 1 << 50 // MaxFileSize bytes hold too few lines for these to overflow a sum
		if b > limit || b < -limit || c > limit || c < -limit {
			return quota.Limits{}, Usage{}, fmt.Errorf("maildirsize: number out of range in %q", line)
		}
		u.Bytes += b
		u.Messages += c
	}
	return lim, u, nil
}

// ErrOverQuota is returned by Check when the message does not fit.
var ErrOverQuota = errors.New("mailbox full")

// over reports whether size more bytes in one more message exceed lim.
func over(lim quota.Limits, u Usage, size int64) bool {
	return (lim.Bytes > 0 && u.Bytes+size > lim.Bytes) || (lim.Messages > 0 && u.Messages+1 > lim.Messages)
}

// Check decides whether a message of size bytes fits into the Maildir
// whose root directory is open as root, reading or rebuilding maildirsize
// as the package documentation describes. It returns the usage it based
// its verdict on, and ErrOverQuota (wrapped) when the message does not
// fit. Other errors are failure.Temporary.
func Check(root *os.File, lim quota.Limits, size int64, now time.Time) (Usage, error) {
	if !lim.Enabled() {
		return Usage{}, nil
	}
	u, mtime, err := read(root, lim)
	rebuilt := false
	if err != nil {
		if u, err = Recalculate(root, lim); err != nil {
			return Usage{}, err
		}
		rebuilt = true
	}
	if over(lim, u, size) && !rebuilt && now.Sub(mtime) > StaleAfter {
		if u, err = Recalculate(root, lim); err != nil {
			return Usage{}, err
		}
	}
	if over(lim, u, size) {
		return u, fmt.Errorf("%w (quota %s, in use %d bytes in %d messages, message %d bytes)",
			ErrOverQuota, lim, u.Bytes, u.Messages, size)
	}
	return u, nil
}

// read returns the usage in maildirsize and the file's mtime, or an error
// when it must be rebuilt.
func read(root *os.File, lim quota.Limits) (Usage, time.Time, error) {
	fd, err := unix.Openat(int(root.Fd()), FileName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return Usage{}, time.Time{}, err
	}
	f := os.NewFile(uintptr(fd), FileName)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Usage{}, time.Time{}, err
	}
	if !st.Mode().IsRegular() {
		return Usage{}, time.Time{}, errors.New("maildirsize is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize))
	if err != nil {
		return Usage{}, time.Time{}, err
	}
	have, u, err := Parse(data)
	if err != nil {
		return Usage{}, time.Time{}, err
	}
	if have != lim {
		return Usage{}, time.Time{}, errors.New("maildirsize has another quota")
	}
	return u, st.ModTime(), nil
}

// Add appends a usage line for bytes in count messages to maildirsize. A
// missing file is left missing (the next Check rebuilds it).
func Add(root *os.File, bytes, count int64) error {
	fd, err := unix.Openat(int(root.Fd()), FileName, unix.O_WRONLY|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "cannot open %s", FileName)
	}
	f := os.NewFile(uintptr(fd), FileName)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return failure.Temp("%s is not a regular file", FileName)
	}
	if _, err := fmt.Fprintf(f, "%8d %4d\n", bytes, count); err != nil {
		return failure.Wrap(failure.Temporary, err, "cannot append to %s", FileName)
	}
	return nil
}

// Recalculate counts the Maildir's messages and writes a fresh
// maildirsize, as the package documentation describes.
func Recalculate(root *os.File, lim quota.Limits) (Usage, error) {
	before, u, err := count(root)
	if err != nil {
		return Usage{}, failure.Wrap(failure.Temporary, err, "cannot count the maildir for its quota")
	}
	tmp, err := tmpName()
	if err != nil {
		return Usage{}, failure.Wrap(failure.Temporary, err, "cannot name a temporary maildirsize")
	}
	tmpPath := "tmp/" + tmp
	fd, err := unix.Openat(int(root.Fd()), tmpPath, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return Usage{}, failure.Wrap(failure.Temporary, err, "cannot create %s", tmpPath)
	}
	f := os.NewFile(uintptr(fd), tmpPath)
	_, err = fmt.Fprintf(f, "%s\n%8d %4d\n", lim, u.Bytes, u.Messages)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(int(root.Fd()), tmpPath, int(root.Fd()), FileName)
	}
	if err != nil {
		unix.Unlinkat(int(root.Fd()), tmpPath, 0)
		return Usage{}, failure.Wrap(failure.Temporary, err, "cannot write %s", FileName)
	}
	after, _, err := count(root)
	if err != nil || after != before {
		unix.Unlinkat(int(root.Fd()), FileName, 0)
	}
	return u, nil
}

func tmpName() (string, error) {
	rnd, err := randtoken.New()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d_%s.maildirsize", time.Now().Unix(), os.Getpid(), rnd), nil
}

// count adds up the messages as the package documentation describes. It
// also returns a fingerprint of the counted directories' change times so
// that the caller can tell whether they changed meanwhile.
func count(root *os.File) (string, Usage, error) {
	var u Usage
	var stamp strings.Builder
	names, err := readNames(int(root.Fd()), ".")
	if err != nil {
		return "", u, err
	}
	folders := []string{"."}
	for _, n := range names {
		if len(n) > 1 && n[0] == '.' && n != ".." && n != ".Trash" {
			folders = append(folders, n)
		}
	}
	for _, folder := range folders {
		for _, sub := range []string{"new", "cur"} {
			dir := folder + "/" + sub
			if folder == "." {
				dir = sub
			}
			fd, err := unix.Openat(int(root.Fd()), dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
					continue // not a Maildir++ folder
				}
				return "", u, err
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return "", u, err
			}
			fmt.Fprintf(&stamp, "%s:%d.%d;", dir, st.Mtim.Sec, st.Mtim.Nsec)
			msgs, err := readNames(fd, ".")
			if err != nil {
				unix.Close(fd)
				return "", u, err
			}
			for _, m := range msgs {
				if m[0] == '.' {
					continue
				}
				size, trashed, ok := fromName(m)
				if trashed {
					continue
				}
				if !ok {
					var mst unix.Stat_t
					if unix.Fstatat(fd, m, &mst, unix.AT_SYMLINK_NOFOLLOW) != nil || mst.Mode&unix.S_IFMT != unix.S_IFREG {
						continue
					}
					size = mst.Size
				}
				u.Bytes += size
				u.Messages++
			}
			unix.Close(fd)
		}
	}
	return stamp.String(), u, nil
}

// fromName reads the size from a Maildir++ file name ("KEY,S=123:2,S")
// and whether the message is flagged trashed.
func fromName(name string) (size int64, trashed, ok bool) {
	key, info, hasInfo := strings.Cut(name, ":")
	if hasInfo && strings.HasPrefix(info, "2,") && strings.ContainsRune(info[2:], 'T') {
		return 0, true, false
	}
	i := strings.Index(key, ",S=")
	if i < 0 {
		return 0, false, false
	}
	digits := key[i+3:]
	if j := strings.IndexByte(digits, ','); j >= 0 {
		digits = digits[:j]
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, false, false
	}
	return n, false, true
}

func readNames(dirfd int, name string) ([]string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Readdirnames(-1)
}
