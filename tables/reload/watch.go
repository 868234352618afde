package reload

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why inotify directly rather than fsnotify: loading a file only once its
// writer has closed it needs IN_CLOSE_WRITE, and to tell "a writer is at
// work" from "a writer is done" it needs IN_MODIFY and IN_CLOSE_WRITE as
// separate events. fsnotify (v1.10.1) has IN_CLOSE_WRITE only as the
// unexported xUnportableCloseWrite, and folds IN_MODIFY and IN_CLOSE_WRITE
// into one Write op; golang.org/x/sys/unix, already a dependency, gives the
// kernel's events as they are. mapdropd runs on Linux only.

// Masks of the watches: on a watched directory (the tables directory and
// the directory of every -map file), and on its parent, which sees the
// directory come back after it was removed or renamed.
const (
	dirMask = unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE |
		unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
		unix.IN_ONLYDIR
	parentMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
)

// inotifyEvent is one kernel event: the watch it came from, what happened,
// and the name of the file in the watched directory ("" for the directory
// itself).
type inotifyEvent struct {
	wd   int32
	mask uint32
	name string
}

// inotify is an inotify instance, read by a goroutine that sends its events
// on events until the instance is closed.
type inotify struct {
	fd     int
	file   *os.File // owns fd; its reads go through Go's poller
	events chan []inotifyEvent
	errs   chan error
	once   sync.Once
	done   chan struct{}

	wds    map[int32]string // watch → path; only the Run goroutine uses wds and byPath
	byPath map[string]int32
}

// newInotify starts an inotify instance and its reader.
func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	in := &inotify{
		fd:     fd,
		file:   os.NewFile(uintptr(fd), "inotify"),
		events: make(chan []inotifyEvent),
		errs:   make(chan error, 1),
		done:   make(chan struct{}),
		wds:    map[int32]string{},
		byPath: map[string]int32{},
	}
	go in.read()
	return in, nil
}

// close stops the instance; its reader exits.
func (in *inotify) close() {
	in.once.Do(func() {
		close(in.done)
		in.file.Close()
	})
}

// read sends batches of events until the instance is closed or fails.
func (in *inotify) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := in.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				select {
				case in.errs <- err:
				default:
				}
			}
			return
		}
		var batch []inotifyEvent
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent
			name := ""
			if l := int(raw.Len); l > 0 && off+l <= n {
				b := buf[off : off+l]
				for len(b) > 0 && b[len(b)-1] == 0 {
					b = b[:len(b)-1]
				}
				name = string(b)
				off += l
			}
			batch = append(batch, inotifyEvent{wd: raw.Wd, mask: raw.Mask, name: name})
		}
		select {
		case in.events <- batch:
		case <-in.done:
			return
		}
	}
}

// add watches path with mask, replacing the watch's mask if path is
// watched already.
func (in *inotify) add(path string, mask uint32) error {
	wd, err := unix.InotifyAddWatch(in.fd, path, mask)
	if err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	if old, ok := in.byPath[path]; ok && old != int32(wd) {
		delete(in.wds, old)
	}
	in.wds[int32(wd)] = path
	in.byPath[path] = int32(wd)
	return nil
}

// remove stops watching path, if it is watched.
func (in *inotify) remove(path string) {
	wd, ok := in.byPath[path]
	if !ok {
		return
	}
	delete(in.byPath, path)
	delete(in.wds, wd)
	_, _ = unix.InotifyRmWatch(in.fd, uint32(wd)) // gone already when the directory was deleted
}

// forget drops a watch the kernel removed (IN_IGNORED).
func (in *inotify) forget(wd int32) {
	if path, ok := in.wds[wd]; ok {
		delete(in.wds, wd)
		if in.byPath[path] == wd {
			delete(in.byPath, path)
		}
	}
}

// watchSet is every path to watch with its mask: the directories holding
// maps, and their parents.
func watchSet(dirs []string) map[string]uint32 {
	set := map[string]uint32{}
	for _, d := range dirs {
		set[d] |= dirMask
		if p := filepath.Dir(d); p != d {
			set[p] |= parentMask
		}
	}
	return set
}
