// Package reload decides which files are maps, loads them into a
// store.Store, and reloads them when they change on disk.
//
// # Which files are maps
//
// In the tables directory (Config.Dir), every regular file (or symlink to
// one) whose name matches [a-z0-9_.-]+ is the source of the map of that
// name, except editor and tool leftovers: names starting with ".", ending in
// "~", starting and ending with "#", and names ending in .swp, .swo, .swx,
// .tmp, .bak, .orig, .rej, .db, .lmdb, .cdb, .dpkg-old, .dpkg-new,
// .dpkg-dist, .rpmnew or .rpmsave. Config.Maps adds maps from anywhere
// (-map NAME=PATH); such a map wins over a directory file of the same name.
//
// A map named "userdb" must have a value that userdb.Parse accepts on every
// line; a line it refuses is an error at that line. An entry of the
// directory named as a map that is a dangling symbolic link, a symbolic
// link loop, a FIFO, a socket or a device is no map, and LoadAll logs it
// at level ERROR ("mapdropd check" fails on it).
//
// # Loading
//
// A file is parsed whole (mapfile.Parse); if it has any error, the table
// already in the store keeps serving and every error is logged as
// "FILE:LINE: REASON" at level ERROR. A file that is deleted leaves its last
// table serving, with a warning; a map is never removed while mapdropd runs.
// Every successful load logs one INFO line with map, file, entries and
// duration, replaces the table in one store transaction, and then calls
// Config.OnLoad. A map that the store holds from etcd (an incremental map)
// is never replaced by a file of the same name that appears while mapdropd
// runs: store.ReplaceTable refuses it, the load fails with that reason at
// level ERROR ("map not loaded"), and the etcd map keeps answering; when
// the etcd map is removed, LoadName loads the file at once. A load
// can also be held back (see "Held back loads"). A
// file whose text is byte for byte the text of the map's last load (a
// SIGHUP with nothing changed, a file rewritten with the same content) is
// not loaded again: nothing is swapped, written or called.
//
// # Last good copies
//
// With Config.StateDir, every successful load also writes the file's text
// to STATEDIR/NAME.last-good (CopyName), mode 0640 (CopyMode), atomically
// as export.WriteFile does. When a map that is not in the store yet (at startup) has a file
// that is missing or does not parse, and its copy exists and parses, the
// map is served from the copy: logged at level ERROR as "MAP SERVED FROM
// ITS LAST GOOD COPY", and Config.OnStale is called. Only a map with
// neither is not served. The next good load of the file replaces it.
//
// # Held back loads
//
// A file that parses is still not loaded when it looks cut short or
// emptied, which is what a truncated file or a half-finished copy looks
// like: its last line has no newline at the end (a userdb line cut at
// "home=/var/vmail/u1" from ".../u10" would send u10's mail to u1), it has
// no entries while the map has some, or it has fewer than half the entries
// of the map's table (more than half dropped). Then the table loaded
// before keeps serving, the load is logged at level ERROR as "MAP LOAD
// HELD BACK" with the map, the file, the old and new entry counts and the
// command that confirms it, and it counts as a failed load (Config.OnResult
// gets a *HeldBack). At startup the comparison is with the map's last good
// copy (-state): with a copy, the copy is served; without one, a file whose
// last line has no newline is not served, and an empty file is served
// with a warning.
//
// The admin confirms a held back file with "mapdropd confirm FILE"
// (Confirm), which writes the SHA-256 of its content to ".FILE.confirmed"
// beside it (ConfirmName). A file whose content has that SHA-256 goes
// live; that file is watched too, so the confirmation loads the map at
// once. Any other content needs a confirmation of its own.
//
// # Watching
//
// Run watches directories, not files, with inotify: Config.Dir and the
// directory of every Config.Maps file. So it sees a file replaced by rename
// (vim, sed -i, ansible, rsync: a temporary file renamed over the map),
// written in place, created, and deleted. A file written in place is loaded
// only after its writer has closed it (IN_CLOSE_WRITE), however long the
// writer takes or pauses: while a write (IN_MODIFY) or a new file
// (IN_CREATE) has not been followed by a close, the map waits. A rename
// over the map (IN_MOVED_TO), a deletion and a symbolic or hard link are
// complete at once, and so is a change of its mode, owner or times
// (IN_ATTRIB: a file made readable is loaded) unless a writer is at work.
// Events for one map are then debounced: its load waits until
// Config.Debounce has passed without another event for it, but no longer
// than ten times Config.Debounce after the first, so a stream of complete
// writes cannot starve it. A file read while it changes (its size
// or time differs after the read) is read again, and left for its writer's
// close when it keeps changing. A file that appears and disappears between
// two loads (a tool's temporary file such as vim's "4913") is never loaded.
// A file that is not a regular file is never read with a blocking open (a
// FIFO does not hang the server). LoadAll (SIGHUP) leaves alone a map
// whose file a writer is at work on (logged), so it cannot read it
// half-written either. A change that no writer's close ends, truncate(2) as
// truncate(1) does it, is therefore loaded only on the file's next close,
// a rename over it, or its confirmation. A writer that started before the
// watch (at startup, or lost with an event-queue overflow) is known from
// the kernel instead: a file that some process holds open for writing (a
// read lease on it is refused, fcntl(2) F_SETLEASE) is not read, by Run,
// LoadAll, Check or Confirm alike; its map keeps its table (or is served
// from its last good copy, or not at all) until the writer's close. That
// needs a process that owns the map files or has CAP_LEASE (root has it;
// the shipped systemd unit, without capabilities, does not); without it,
// LoadAll reads what is there, and the guard still applies.
//
// Symlinked map files are read through the link, but only a change of the
// link itself (in the watched directory) is seen, not one of its target; a
// kernel event-queue overflow reloads every map. The parent of every
// watched directory is watched as well: when a watched directory is removed
// or renamed (logged; the tables keep serving), it is watched again as soon
// as a directory of that name is back, and its maps are loaded from it;
// LoadAll (SIGHUP) also watches again any directory whose watch was lost.
// A reload that drops FreeMemoryDrop entries or more from a map returns
// the freed memory to the system at once.
package reload

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/userdb"
	"github.com/mapdrop/mapdrop/tables/export"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/store"
)

// DefaultDebounce is the debounce delay when Config.Debounce is zero.
const DefaultDebounce = 50 * time.Millisecond

// UserdbMap is the name of the map whose values are validated with
// userdb.Parse.
const UserdbMap = "userdb"

// Config says where the maps are and what to do when one is loaded.
type Config struct {
	Dir      string                 // tables directory: every map file in it is a map (see package doc); may be "" when Maps is not empty
	Maps     map[string]string      // extra maps: name → file path (-map NAME=PATH)
	Matches  map[string]store.Match // overrides of store.MatchForName
	Debounce time.Duration          // quiet time before a changed file is loaded; 0 means DefaultDebounce
	Logger   *slog.Logger           // nil discards logs
	// OnLoad, if set, is called after each successful swap, with the map's
	// name and its new entries in file order, each key once (the first of
	// equal keys), which it must not modify. Loads are
	// serialised, so calls come in load order and never overlap.
	OnLoad func(name string, entries []mapfile.Entry)
	// OnResult, if set, is called after every attempt to load a map's
	// file (at startup, on SIGHUP, after a change): err nil and the new
	// table's size when it was swapped in, or the reason it was not (the
	// previous table, if any, keeps serving). A file that vanished before
	// it could be read after a change is no attempt. For metrics; calls
	// are serialised like OnLoad's.
	OnResult func(name string, entries int, err error)
	// StateDir, if set, is where the last good source text of every map is
	// kept (see "Last good copies" in the package documentation).
	StateDir string
	// OnStale, if set, is called when a map that never loaded from its
	// file is served from its last good copy instead, with the copy's path.
	OnStale func(name, copyPath string)
}

// Reloader loads the configured maps into a store and keeps them current.
type Reloader struct {
	dir      string
	extras   map[string]string // name → cleaned path
	matches  map[string]store.Match
	debounce time.Duration
	log      *slog.Logger
	onLoad   func(string, []mapfile.Entry)
	onResult func(string, int, error)
	stateDir string
	onStale  func(string, string)
	st       *store.Store
	seed     maphash.Seed // for the sums

	mu      sync.Mutex             // serialises loads
	loaded  map[string]bool        // maps in the store
	stamps  map[string]os.FileInfo // what each map's last load attempt read
	from    map[string]string      // the file each loaded map's text came from
	sums    map[string]uint64      // maphash of that text
	entries map[string]int         // entries of each loaded map
	failing map[string]bool        // maps whose last load attempt failed
	writing map[string]bool        // maps whose file a writer has modified and not closed yet (Run sets it)

	rearm chan struct{} // LoadAll asks Run to watch again what it lost
	armed bool          // Run has armed its watches once (Run's goroutine only)
}

// New checks cfg and returns a Reloader that loads into st. It loads
// nothing yet: call LoadAll, then Run. A tables directory that is missing or
// unreadable, or a map name that is not [a-z0-9_.-]+, is a Permanent failure.
func New(cfg Config, st *store.Store) (*Reloader, error) {
	if st == nil {
		return nil, failure.Perm("reload: no store")
	}
	if cfg.Dir == "" && len(cfg.Maps) == 0 {
		return nil, failure.Perm("no tables: give a tables directory or maps")
	}
	r := &Reloader{
		extras:   map[string]string{},
		matches:  cfg.Matches,
		debounce: cfg.Debounce,
		log:      cfg.Logger,
		onLoad:   cfg.OnLoad,
		onResult: cfg.OnResult,
		stateDir: cfg.StateDir,
		onStale:  cfg.OnStale,
		st:       st,
		seed:     maphash.MakeSeed(),
		loaded:   map[string]bool{},
		stamps:   map[string]os.FileInfo{},
		from:     map[string]string{},
		sums:     map[string]uint64{},
		entries:  map[string]int{},
		failing:  map[string]bool{},
		writing:  map[string]bool{},
		rearm:    make(chan struct{}, 1),
	}
	if r.debounce <= 0 {
		r.debounce = DefaultDebounce
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.stateDir != "" {
		if fi, err := os.Stat(r.stateDir); err != nil || !fi.IsDir() {
			return nil, failure.Perm("state directory %s: not a directory", r.stateDir)
		}
	}
	if cfg.Dir != "" {
		r.dir = filepath.Clean(cfg.Dir)
		if _, err := os.ReadDir(r.dir); err != nil {
			return nil, failure.Wrap(failure.Permanent, err, "tables directory")
		}
	}
	for name, path := range cfg.Maps {
		if !ValidName(name) {
			return nil, failure.Perm("map name %q: must match [a-z0-9_.-]+ and not start with a dot", name)
		}
		if path == "" {
			return nil, failure.Perm("map %s: empty file name", name)
		}
		r.extras[name] = filepath.Clean(path)
	}
	return r, nil
}

// ValidName reports whether name can name a map: [a-z0-9_.-]+, not
// starting with a dot. Map names from files and from etcd follow it.
func ValidName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

var ignoredSuffixes = []string{
	"~", ".swp", ".swo", ".swx", ".tmp", ".bak", ".orig", ".rej",
	".db", ".lmdb", ".cdb",
	".dpkg-old", ".dpkg-new", ".dpkg-dist", ".rpmnew", ".rpmsave",
}

// IsMapFileName reports whether a file of this name in the tables directory
// is a map (if it is a regular file): see the package documentation.
func IsMapFileName(name string) bool {
	if !ValidName(name) {
		return false // also dotfiles, "#...#", "...~"
	}
	for _, s := range ignoredSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// dirMaps lists the map files of dir: name → path. Entries named as maps
// that cannot be maps are problems: a dangling symbolic link, a symbolic
// link loop, and anything but a regular file or a directory (a FIFO, a
// socket, a device). A directory is skipped without a word.
func dirMaps(dir string) (maps map[string]string, problems []error, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	maps = map[string]string{}
	for _, de := range des {
		if !IsMapFileName(de.Name()) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		fi, err := os.Stat(path)
		if err != nil {
			problems = append(problems, &mapfile.Error{File: path, Reason: notAMap(path, err)})
			continue
		}
		switch {
		case fi.IsDir():
			continue
		case !fi.Mode().IsRegular():
			problems = append(problems, &mapfile.Error{File: path, Reason: "not a regular file (" + fileType(fi.Mode()) + "), not a map"})
			continue
		}
		maps[de.Name()] = path
	}
	return maps, problems, nil
}

// Names returns the names of the maps that cfg gives now: the map files of
// cfg.Dir, as LoadAll lists them, and the names of cfg.Maps. A tables
// directory that cannot be read gives no names.
func Names(cfg Config) map[string]bool {
	names := map[string]bool{}
	if cfg.Dir != "" {
		files, _, _ := dirMaps(cfg.Dir)
		for name := range files {
			names[name] = true
		}
	}
	for name := range cfg.Maps {
		names[name] = true
	}
	return names
}

// notAMap says why os.Stat of path failed, for a map file whose directory
// entry exists.
func notAMap(path string, err error) string {
	switch {
	case errors.Is(err, unix.ELOOP):
		return "symbolic link loop, not a map"
	case errors.Is(err, fs.ErrNotExist):
		if target, lerr := os.Readlink(path); lerr == nil {
			return "dangling symbolic link (to " + target + ", which does not exist), not a map"
		}
		return "vanished, not a map"
	}
	return err.Error()
}

// fileType names a file type that is not a regular file.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "type " + m.Type().String()
}

// allMaps is every configured map now: directory files, then extras over
// them; and the directory's entries that cannot be maps (dirMaps).
func (r *Reloader) allMaps() (map[string]string, []error, error) {
	maps := map[string]string{}
	var problems []error
	var err error
	if r.dir != "" {
		if maps, problems, err = dirMaps(r.dir); err != nil {
			err = failure.Wrap(failure.Permanent, err, "tables directory")
			maps = map[string]string{}
		}
	}
	for name, path := range r.extras {
		if dirPath, ok := maps[name]; ok && dirPath != path {
			r.log.Warn("map file ignored: -map gives another file for this map", "map", name, "file", dirPath, "used", path)
		}
		maps[name] = path
	}
	return maps, problems, err
}

// LoadAll loads every map now, as at startup or on SIGHUP. Maps whose file
// is good are loaded even when others fail. It returns nil or a Permanent
// failure listing every error, one "FILE:LINE: REASON" per line. It skips
// a map that Run has seen a writer modify in place and not close yet: that
// one is loaded when its writer closes the file. It also has Run watch
// again any directory whose watch was lost.
func (r *Reloader) LoadAll() error {
	select {
	case r.rearm <- struct{}{}:
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	maps, problems, err := r.allMaps()
	var errs []error
	if err != nil {
		r.log.Error("cannot list maps", "error", err)
		errs = append(errs, err)
	}
	for _, p := range problems {
		r.log.Error(p.Error())
	}
	for _, name := range sortedKeys(maps) {
		if r.writing[name] && r.loaded[name] {
			r.log.Info("map file is being written in place and not closed yet: not read now, it is loaded once its writer closes it", "map", name, "file", maps[name])
			continue
		}
		if err := r.loadLocked(name, maps[name], true); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range r.loaded {
		if _, ok := maps[name]; !ok {
			r.log.Warn("map file gone, keeping last good table", "map", name)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return failure.Wrap(failure.Permanent, errors.Join(errs...), "")
}

// LoadName loads map name from its file now, when a file gives it and no
// writer is at work on it. It is for a name that another source (etcd)
// held until now and no longer serves: the file, which the store refused
// meanwhile (or whose table the other source replaced), goes live without
// waiting for its next change. Errors are logged.
func (r *Reloader) LoadName(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	maps, _, _ := r.allMaps()
	path, ok := maps[name]
	if !ok || r.writing[name] {
		return
	}
	// Whatever was loaded under this name is no longer in the store.
	delete(r.loaded, name)
	_ = r.loadLocked(name, path, false) // logs its errors
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// loadLocked loads one map from path; called with r.mu held. A missing file
// is an error when required (LoadAll), and otherwise only logged.
func (r *Reloader) loadLocked(name, path string, required bool) error {
	start := time.Now()
	text, fi, err := readMap(path)
	busy := errors.Is(err, errWriterOpen)
	if fi != nil && !busy {
		// Not for a file a writer holds open: catchUp must read it
		// again even if the writer closes it without another change.
		r.stamps[name] = fi
	}
	if (errors.Is(err, errChanging) || busy) && !required {
		// A writer is at work again: its close brings the file back.
		r.log.Debug("map file changed while it was read, or is open for writing; waiting for its writer", "map", name, "file", path)
		return nil
	}
	if busy {
		// LoadAll (startup, SIGHUP, an event queue overflow) found a
		// writer at work that Run has not seen start: what the file holds
		// now may be half-written. Its close brings the file to Run.
		r.log.Warn("map file is open for writing by another process: not read now, it is loaded once its writer closes it", "map", name, "file", path)
		if !r.loaded[name] && !r.loadCopyLocked(name, "its file is open for writing by another process; it is loaded once the writer closes it") {
			// Not served at all: an error for LoadAll's caller (mapdropd
			// export fails on it, serve logs it), though not a failed load.
			r.log.Error("map not served until the writer of its file closes it", "map", name, "file", path)
			return err
		}
		return nil
	}
	sum := maphash.String(r.seed, text)
	if err == nil && r.loaded[name] && r.from[name] == path && r.sums[name] == sum {
		r.failing[name] = false
		r.log.Debug("map file unchanged, nothing to load", "map", name, "file", path)
		return nil
	}
	var t *mapfile.Table
	var warnings []*mapfile.Error
	if err == nil {
		t, warnings, err = parseText(name, path, text, r.onLoad != nil)
	}
	for _, w := range warnings {
		r.log.Warn(w.Error(), "map", name)
	}
	if errors.Is(err, fs.ErrNotExist) && !required {
		if r.loaded[name] {
			r.log.Warn("map file removed, keeping last good table", "map", name, "file", path)
		} else {
			r.log.Debug("map file vanished before it was loaded", "map", name, "file", path)
		}
		return nil
	}
	if err == nil {
		err = r.guardLocked(name, path, text, len(t.Map))
		if _, held := err.(*HeldBack); held {
			r.result(name, 0, err)
			return err
		}
	}
	if err != nil {
		var list mapfile.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				r.log.Error(e.Error(), "map", name)
			}
		} else {
			r.log.Error(err.Error(), "map", name)
		}
		r.failing[name] = true
		if r.loaded[name] {
			r.log.Error("map not loaded, keeping last good table", "map", name, "file", path)
		} else if !r.loadCopyLocked(name, "its file does not load, fix it (mapdropd check)") {
			r.log.Error("map not loaded, not served", "map", name, "file", path)
		}
		r.result(name, 0, err)
		return err
	}
	match, ok := r.matches[name]
	if !ok {
		match = store.MatchForName(name)
	}
	dropped := 0
	if r.loaded[name] {
		dropped = r.entries[name] - len(t.Map)
	}
	if err := r.st.ReplaceTable(name, match, t); err != nil {
		r.log.Error("map not loaded", "map", name, "file", path, "error", err)
		r.result(name, 0, err)
		return err
	}
	r.remember(name, path, sum, len(t.Map))
	r.log.Info("map loaded", "map", name, "file", path, "match", match, "entries", len(t.Map), "duration", time.Since(start).Round(time.Microsecond))
	if r.stateDir != "" {
		if err := export.WriteFile(r.stateDir, CopyName(name), text, CopyMode); err != nil {
			r.log.Error("last good copy not written; the previous one stays", "map", name, "dir", r.stateDir, "error", err)
		}
	}
	if r.onLoad != nil {
		r.onLoad(name, t.Entries)
	}
	r.result(name, len(t.Map), nil)
	if dropped >= FreeMemoryDrop {
		t0 := time.Now()
		debug.FreeOSMemory()
		r.log.Info("returned the memory of the dropped entries to the system", "map", name, "dropped", dropped, "duration", time.Since(t0).Round(time.Microsecond))
	}
	return nil
}

// FreeMemoryDrop is how many entries a load must drop from a map for the
// reloader to return the freed memory to the system at once
// (debug.FreeOSMemory), rather than leave the process at its peak size.
const FreeMemoryDrop = 100_000

// guardLocked applies the guard to a load of map name from path, whose
// text parsed into entries: it returns a *HeldBack when the load must wait
// for the admin's confirmation, after logging it and serving the map from
// its last good copy when the map has no table yet. Called with r.mu held.
func (r *Reloader) guardLocked(name, path, text string, entries int) error {
	old, haveOld := r.entries[name], r.loaded[name]
	if !haveOld {
		old, haveOld = copyEntries(r.stateDir, name, text, entries)
	}
	reason := guard(text, entries, old, haveOld)
	if reason == "" {
		if !haveOld && entries == 0 {
			r.log.Warn("map is empty: every lookup in it answers not found", "map", name, "file", path)
		}
		return nil
	}
	if confirmed(path, text) {
		r.log.Warn("map load confirmed by the admin goes live", "map", name, "file", path, "reason", reason,
			"old_entries", old, "new_entries", entries, "confirmation", ConfirmName(path))
		return nil
	}
	hb := &HeldBack{Map: name, File: path, Old: old, HaveOld: haveOld, New: entries, Reason: reason}
	r.failing[name] = true
	served := "the table loaded before keeps serving"
	if !r.loaded[name] {
		if r.loadCopyLocked(name, "its file's load is held back (MAP LOAD HELD BACK)") {
			served = "served from its last good copy"
		} else {
			served = "not served"
		}
	}
	r.log.Error("MAP LOAD HELD BACK: "+reason+"; "+served+" until the file changes or the admin confirms it",
		"map", name, "file", path, "old_entries", old, "new_entries", entries,
		"confirm", "mapdropd confirm "+path)
	return hb
}

// copyEntries returns the entries of map name's last good copy in
// stateDir, for the guard of a map that has no table yet (and for
// CheckWith); ok is false when there is no copy that parses. When the
// copy's text is the file's, text (the usual start), its entries are the
// file's, entries, and it is not parsed again.
func copyEntries(stateDir, name, text string, entries int) (n int, ok bool) {
	if stateDir == "" {
		return 0, false
	}
	path := filepath.Join(stateDir, CopyName(name))
	ctext, _, err := readMap(path)
	if err != nil {
		return 0, false
	}
	if ctext == text {
		return entries, true
	}
	t, _, err := parseText(name, path, ctext, false)
	if err != nil {
		return 0, false
	}
	return len(t.Map), true
}

// result calls Config.OnResult, if set.
func (r *Reloader) result(name string, entries int, err error) {
	if r.onResult != nil {
		r.onResult(name, entries, err)
	}
}

// remember records a successful load of map name from file. Called with
// r.mu held.
func (r *Reloader) remember(name, file string, sum uint64, entries int) {
	r.loaded[name] = true
	r.failing[name] = false
	r.from[name], r.sums[name], r.entries[name] = file, sum, entries
}

// loadCopyLocked serves map name from its last good copy in the state
// directory, for a map whose file does not load and that is not in the
// store; it reports whether it did, and logs why (which says why the
// file is not served). Called with r.mu held.
func (r *Reloader) loadCopyLocked(name, why string) bool {
	if r.stateDir == "" {
		return false
	}
	path := filepath.Join(r.stateDir, CopyName(name))
	text, fi, err := readMap(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	var t *mapfile.Table
	if err == nil {
		t, _, err = parseText(name, path, text, r.onLoad != nil)
	}
	if err != nil {
		r.log.Error("last good copy does not load either", "map", name, "copy", path, "error", err)
		return false
	}
	match, ok := r.matches[name]
	if !ok {
		match = store.MatchForName(name)
	}
	if err := r.st.ReplaceTable(name, match, t); err != nil {
		r.log.Error("last good copy not loaded", "map", name, "copy", path, "error", err)
		return false
	}
	r.remember(name, path, maphash.String(r.seed, text), len(t.Map))
	r.failing[name] = true
	r.log.Error("MAP SERVED FROM ITS LAST GOOD COPY: "+why+"; lookups answer from the copy until then",
		"map", name, "copy", path, "copy_written", fi.ModTime().UTC().Format(time.RFC3339), "entries", len(t.Map))
	if r.onStale != nil {
		r.onStale(name, path)
	}
	if r.onLoad != nil {
		r.onLoad(name, t.Entries)
	}
	return true
}

// CopyMode is the permission of the last good copies: the tables may hold
// what not every local user may read (userdb), and only mapdropd (and the
// admin's mapdropd check) reads the copies.
const CopyMode os.FileMode = 0o640

// CopyName is the file name of map name's last good copy in the state
// directory: NAME.last-good.
func CopyName(name string) string { return name + ".last-good" }

// Status is a summary of the maps for a one-line status.
type Status struct {
	Maps    int      // maps in the store
	Entries int      // entries over all of them
	Failing []string // maps whose file did not load the last time it was tried, sorted
}

// Status returns the current summary.
func (r *Reloader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st Status
	for name := range r.loaded {
		st.Maps++
		st.Entries += r.entries[name]
	}
	for name, bad := range r.failing {
		if bad {
			st.Failing = append(st.Failing, name)
		}
	}
	slices.Sort(st.Failing)
	return st
}

// Source returns the text that map name was last loaded from, and the file
// that holds it: the map's file when it has not changed since, or its last
// good copy in the state directory. It is for finding the line of an entry
// (mapfile.LineOf). When neither file holds that text any more, it returns
// the map's file and an error saying so; an unknown map is a Permanent
// failure.
func (r *Reloader) Source(name string) (file, text string, err error) {
	r.mu.Lock()
	from, sum, ok := r.from[name], r.sums[name], r.loaded[name]
	r.mu.Unlock()
	if !ok {
		return "", "", failure.Perm("unknown map %s", name)
	}
	candidates := []string{from}
	if r.stateDir != "" {
		if c := filepath.Join(r.stateDir, CopyName(name)); c != from {
			candidates = append(candidates, c)
		}
	}
	for _, c := range candidates {
		if text, _, err := readMap(c); err == nil && maphash.String(r.seed, text) == sum {
			return c, text, nil
		}
	}
	return from, "", failure.Temp("%s changed since map %s was loaded from it", from, name)
}

// errChanging is the error of readMap for a file that kept changing while
// it was read.
var errChanging = errors.New("the file changed while it was read (a writer is at work)")

// errWriterOpen is the error of readMap for a file that another process
// holds open for writing: whatever it holds now may be half-written.
var errWriterOpen = errors.New("the file is open for writing by another process (a writer is at work); it is read once the writer closes it")

// readMap reads the map source file path. fi describes the file read, when
// it could be opened. err is an *fs.PathError for a file that cannot be
// read, or that is not a regular file (it is opened without blocking, so a
// FIFO does not hang the reader); or wraps errChanging when the file's
// size or modification time changed during each of three reads; or wraps
// errWriterOpen when the kernel says that a writer has the file open,
// before or after a read (see writerOpen).
func readMap(path string) (text string, fi os.FileInfo, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for try := 0; ; try++ {
		if fi, err = f.Stat(); err != nil {
			return "", nil, err
		}
		if !fi.Mode().IsRegular() {
			return "", fi, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file (" + fileType(fi.Mode()) + ")")}
		}
		if writerOpen(f) {
			return "", fi, &fs.PathError{Op: "read", Path: path, Err: errWriterOpen}
		}
		if text, err = mapfile.ReadAll(f); err != nil {
			return "", fi, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		after, err := f.Stat()
		if err != nil {
			return "", nil, err
		}
		if writerOpen(f) {
			return "", after, &fs.PathError{Op: "read", Path: path, Err: errWriterOpen}
		}
		if after.Size() == fi.Size() && after.ModTime().Equal(fi.ModTime()) && int64(len(text)) == fi.Size() {
			return text, fi, nil
		}
		if try == 2 {
			return "", after, &fs.PathError{Op: "read", Path: path, Err: errChanging}
		}
		time.Sleep(10 * time.Millisecond)
		if _, err := f.Seek(0, 0); err != nil {
			return "", nil, err
		}
	}
}

// writerOpen reports whether the kernel says that some process has f's
// file open for writing: a read lease (fcntl F_SETLEASE F_RDLCK, fcntl(2))
// is refused with EAGAIN exactly then, and is released at once when it is
// granted. It is how a writer that started before the watch (at startup,
// or when the kernel's event queue overflowed) is known. When no lease can
// be taken at all (the process neither owns the file nor has CAP_LEASE,
// leases are disabled in /proc/sys/fs/leases-enable, a file system without
// leases) nothing is known and it reports false: the checks on what was
// read still apply.
func writerOpen(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK)
		if err == nil {
			_, _ = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
		}
		open = errors.Is(err, unix.EAGAIN)
	})
	return open
}

// parseText parses the text of map name, read from path; the userdb map's
// values are validated. err is a mapfile.ErrorList.
func parseText(name, path, text string, withEntries bool) (t *mapfile.Table, warnings []*mapfile.Error, err error) {
	t, warnings, err = mapfile.ParseText(text, path, withEntries || name == UserdbMap)
	if err != nil || name != UserdbMap {
		return t, warnings, err
	}
	var list mapfile.ErrorList
	for _, e := range t.Entries {
		if _, uerr := userdb.Parse(e.Value); uerr != nil {
			list = append(list, &mapfile.Error{File: path, Line: e.Line, Reason: uerr.Error()})
		}
	}
	if len(list) > 0 {
		return nil, warnings, list
	}
	return t, warnings, nil
}

// Check parses map files as LoadAll would, without loading them, for
// "mapdropd check". Each path is a file, parsed as the map named by its base
// name (so a file named userdb has its values validated), or a directory,
// whose map files are checked as in a tables directory. It returns every
// error, each "FILE:LINE: REASON" or "FILE: REASON" (none means all is
// well), and the warnings (duplicate keys, a byte order mark), which do not
// stop a file from loading.
//
// Besides parse errors, these are errors: a file that a running server
// would hold back whatever it replaces (its last line has no newline, or
// it has no entries), unless the admin confirmed its content (Confirm); a
// dangling symbolic link or a symbolic link loop; a path that is neither
// a regular file nor a directory (a FIFO is reported, never opened for a
// blocking read). A missing path is a failure.NoInput error.
func Check(paths ...string) (errs, warnings []error) {
	_, _, errs, warnings = CheckWith(CheckOptions{}, paths...)
	return errs, warnings
}

// CheckOptions are the options of CheckWith.
type CheckOptions struct {
	// StateDir, if set, is a server's state directory (Config.StateDir):
	// each map is compared with its last good copy there, as a running
	// server compares it with its table, so a map that drops more than
	// half of the copy's entries is an error too.
	StateDir string
	// OnMap, if set, is called for every map file that parses, with the
	// map's name, the file's path and its entries in file order, each key
	// once (folded; the first of equal keys): the very text that was
	// checked, read once.
	OnMap func(name, path string, entries []mapfile.Entry)
}

// CheckWith is Check with options, also counting the map files found and
// the entries of those that parse.
func CheckWith(opts CheckOptions, paths ...string) (maps, entries int, errs, warnings []error) {
	check := func(name, path string) {
		maps++
		text, _, err := readMap(path)
		var t *mapfile.Table
		var ws []*mapfile.Error
		if err == nil {
			t, ws, err = parseText(name, path, text, opts.OnMap != nil)
		}
		for _, w := range ws {
			warnings = append(warnings, w)
		}
		var list mapfile.ErrorList
		switch {
		case errors.As(err, &list):
			for _, e := range list {
				errs = append(errs, e)
			}
		case err != nil:
			errs = append(errs, err)
		}
		if t == nil {
			return
		}
		entries += len(t.Map)
		if opts.OnMap != nil {
			opts.OnMap(name, path, t.Entries)
		}
		if confirmed(path, text) {
			return
		}
		old, haveOld := copyEntries(opts.StateDir, name, text, len(t.Map))
		line, reason := 0, guard(text, len(t.Map), old, haveOld)
		switch {
		case strings.HasPrefix(reason, "its last line"):
			line = lastLine(text)
		case reason == "" && len(t.Map) == 0 && (!haveOld || old > 0):
			reason = "it has no entries"
		case reason != "":
			reason += fmt.Sprintf(" (%d in the last good copy, %d in the file)", old, len(t.Map))
		}
		if reason != "" {
			errs = append(errs, &mapfile.Error{File: path, Line: line,
				Reason: reason + ": a running mapdropd holds this file back; if it is meant, run: mapdropd confirm " + path})
		}
	}
	for _, path := range paths {
		if _, err := os.Lstat(path); err != nil {
			errs = append(errs, failure.Wrap(failure.NoInput, err, ""))
			continue
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, &mapfile.Error{File: path, Reason: notAMap(path, err)})
			continue
		case fi.IsDir():
		case !fi.Mode().IsRegular():
			errs = append(errs, &mapfile.Error{File: path, Reason: "not a regular file (" + fileType(fi.Mode()) + "), not a map"})
			continue
		default:
			check(filepath.Base(path), path)
			continue
		}
		files, problems, err := dirMaps(path)
		if err != nil {
			errs = append(errs, failure.Wrap(failure.NoInput, err, ""))
			continue
		}
		errs = append(errs, problems...)
		for _, name := range sortedKeys(files) {
			check(name, files[name])
		}
	}
	return maps, entries, errs, warnings
}

// pending is a map waiting to be loaded after events for its file.
type pending struct {
	path        string
	first, last time.Time
	// writing is set while a writer has modified the file and not closed
	// it yet (IN_MODIFY, or a new file created, with no IN_CLOSE_WRITE
	// since): such a map waits for the close, however long it takes.
	writing bool
}

// Run watches the map files and reloads each map that changes, until ctx is
// done; then it returns nil. It first reloads any map whose file changed
// since its last load (LoadAll should have run before). It returns an error
// only when it cannot watch at all (no inotify instance); a directory that
// cannot be watched is logged and watched as soon as it can be (when it
// appears in its parent, or on the next LoadAll).
func (r *Reloader) Run(ctx context.Context) error {
	in, err := newInotify()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "watching map files")
	}
	defer in.close()
	r.arm(in)
	r.catchUp()
	r.log.Debug("watching map files", "dirs", strings.Join(r.watchedDirs(), " "))

	waiting := map[string]*pending{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armTimer := func(now time.Time) {
		var next time.Time
		for _, p := range waiting {
			if p.writing {
				continue
			}
			if due := r.due(p); next.IsZero() || due.Before(next) {
				next = due
			}
		}
		if !next.IsZero() {
			timer.Reset(max(next.Sub(now), 0))
		}
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-r.rearm:
			if r.arm(in) {
				r.catchUp()
			}
		case batch := <-in.events:
			now := time.Now()
			rearm := false
			for _, ev := range batch {
				if ev.mask&unix.IN_Q_OVERFLOW != 0 {
					r.log.Error("watching map files: kernel event queue overflowed; reloading every map")
					// Which writers are at work is lost with the events.
					for _, p := range waiting {
						p.writing = false
					}
					r.setWriting(nil)
					_ = r.LoadAll() // logs its errors
					continue
				}
				if r.dirEvent(in, ev) {
					rearm = true
					continue
				}
				r.fileEvent(in, ev, waiting, now)
			}
			if rearm && r.arm(in) {
				r.catchUp()
			}
			armTimer(now)
		case err := <-in.errs:
			return failure.Wrap(failure.Temporary, err, "watching map files")
		case now := <-timer.C:
			for _, name := range sortedKeys(waiting) {
				if p := waiting[name]; !p.writing && !r.due(p).After(now) {
					delete(waiting, name)
					r.reload(name, p.path)
				}
			}
			armTimer(time.Now())
		}
	}
}

// watchedDirs are the directories that hold maps: the tables directory
// and the directory of every extra map file.
func (r *Reloader) watchedDirs() []string {
	var dirs []string
	if r.dir != "" {
		dirs = append(dirs, r.dir)
	}
	for _, path := range r.extras {
		dirs = append(dirs, filepath.Dir(path))
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// arm watches every directory of watchSet that is not watched yet. It
// reports whether a directory holding maps got a new watch after having
// had none (at the start every one does): its files may have changed
// unseen.
func (r *Reloader) arm(in *inotify) (rearmed bool) {
	dirs := r.watchedDirs()
	holds := map[string]bool{}
	for _, d := range dirs {
		holds[d] = true
	}
	set := watchSet(dirs)
	for _, path := range sortedKeys(set) {
		if _, ok := in.byPath[path]; ok {
			continue
		}
		if err := in.add(path, set[path]); err != nil {
			if holds[path] {
				r.log.Error("cannot watch a directory of map files; its maps keep serving and it is watched again when it comes back (or on SIGHUP)", "dir", path, "error", err)
			} else {
				r.log.Debug("cannot watch a parent directory", "dir", path, "error", err)
			}
			continue
		}
		if holds[path] {
			rearmed = true
			if r.armed {
				r.log.Info("watching a directory of map files again", "dir", path)
			}
		}
	}
	r.armed = true
	return rearmed
}

// dirEvent handles the events about watched directories themselves: one
// removed or renamed (its watch is dropped), or a directory appearing in a
// parent under the name of a directory that holds maps. It reports whether
// the watches should be armed again.
func (r *Reloader) dirEvent(in *inotify, ev inotifyEvent) (rearm bool) {
	path, ok := in.wds[ev.wd]
	if !ok {
		return false
	}
	switch {
	case ev.mask&unix.IN_IGNORED != 0:
		in.forget(ev.wd)
		return false
	case ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
		in.remove(path)
		if slices.Contains(r.watchedDirs(), path) {
			r.log.Error("a directory of map files was removed or renamed: its maps keep serving, and it is watched again when it comes back", "dir", path)
		}
		return true
	case ev.name != "" && ev.mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && ev.mask&unix.IN_ISDIR != 0:
		child := filepath.Join(path, ev.name)
		if _, watched := in.byPath[child]; !watched && slices.Contains(r.watchedDirs(), child) {
			return true
		}
	}
	return false
}

// fileEvent records an event for a file in a watched directory in waiting.
func (r *Reloader) fileEvent(in *inotify, ev inotifyEvent, waiting map[string]*pending, now time.Time) {
	dir, ok := in.wds[ev.wd]
	if !ok || ev.name == "" || ev.mask&unix.IN_ISDIR != 0 {
		return
	}
	path := filepath.Join(dir, ev.name)
	maps := r.mapsFor(path)
	if len(maps) == 0 {
		return
	}
	writing := false
	switch {
	case ev.mask&unix.IN_ATTRIB != 0:
		// chmod, chown, touch: the content is complete unless a writer
		// is still at work.
		for name := range maps {
			if w := waiting[name]; w != nil && w.writing {
				writing = true
			}
		}
	case ev.mask&unix.IN_MODIFY != 0:
		writing = true
	case ev.mask&unix.IN_CREATE != 0:
		// A new file is being written, unless it was made whole: a
		// symbolic link, or a hard link to an existing file.
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 {
			writing = true
		}
	}
	for name, p := range maps {
		was := waiting[name] != nil && waiting[name].writing
		if writing && !was {
			r.log.Debug("map file being written: it is loaded once its writer closes it", "map", name, "file", p)
		}
		if w := waiting[name]; w != nil {
			w.path, w.last, w.writing = p, now, writing
		} else {
			waiting[name] = &pending{path: p, first: now, last: now, writing: writing}
		}
		if writing != was {
			r.setWriting(map[string]bool{name: writing})
		}
	}
}

// setWriting records which maps a writer is at work on, for LoadAll and
// catchUp, which leave them alone; nil forgets them all.
func (r *Reloader) setWriting(m map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m == nil {
		clear(r.writing)
	}
	for name, w := range m {
		if w {
			r.writing[name] = true
		} else {
			delete(r.writing, name)
		}
	}
}

// due is when a pending map gets loaded, once no writer is at work on it.
func (r *Reloader) due(p *pending) time.Time {
	quiet, limit := p.last.Add(r.debounce), p.first.Add(10*r.debounce)
	if limit.Before(quiet) {
		return limit
	}
	return quiet
}

// mapsFor returns the maps an event on the file path concerns: name →
// path of the map file. The confirmation file of a map (ConfirmName)
// concerns that map.
func (r *Reloader) mapsFor(path string) map[string]string {
	path = filepath.Clean(path)
	if target, ok := confirmedFile(path); ok {
		path = target
	}
	maps := map[string]string{}
	for name, p := range r.extras {
		if p == path {
			maps[name] = p
		}
	}
	if r.dir == "" || filepath.Dir(path) != r.dir {
		return maps
	}
	name := filepath.Base(path)
	if _, extra := r.extras[name]; !extra && IsMapFileName(name) {
		maps[name] = path
	}
	return maps
}

// reload loads one map after a file event.
func (r *Reloader) reload(name, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		r.log.Debug("not a regular file, not a map", "map", name, "file", path)
		return
	}
	_ = r.loadLocked(name, path, false) // logs its errors
}

// catchUp loads the maps whose files changed, appeared or were deleted since
// their last load attempt: the changes made before the watches were set.
func (r *Reloader) catchUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	maps, _, _ := r.allMaps()
	for _, name := range sortedKeys(maps) {
		path := maps[name]
		if r.writing[name] {
			continue
		}
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) && r.loaded[name] {
			r.log.Warn("map file removed, keeping last good table", "map", name, "file", path)
		}
		if err != nil {
			continue
		}
		if old := r.stamps[name]; old != nil && os.SameFile(old, fi) &&
			old.ModTime().Equal(fi.ModTime()) && old.Size() == fi.Size() {
			continue
		}
		_ = r.loadLocked(name, path, false)
	}
	for name := range r.loaded {
		if _, ok := maps[name]; !ok {
			r.log.Warn("map file removed, keeping last good table", "map", name)
		}
	}
}
