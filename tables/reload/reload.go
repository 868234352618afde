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
// line; a line it refuses is an error at that line.
//
// # Loading
//
// A file is parsed whole (mapfile.Parse); if it has any error, the table
// already in the store keeps serving and every error is logged as
// "FILE:LINE: REASON" at level ERROR. A file that is deleted leaves its last
// table serving, with a warning; a map is never removed while mapdropd runs.
// Every successful load logs one INFO line with map, file, entries and
// duration, replaces the table in one store transaction, and then calls
// Config.OnLoad. A file whose text is byte for byte the text of the map's
// last load (a SIGHUP with nothing changed, a file rewritten with the same
// content) is not loaded again: nothing is swapped, written or called.
//
// # Last good copies
//
// With Config.StateDir, every successful load also writes the file's text
// to STATEDIR/NAME.last-good (CopyName), atomically as export.WriteFile
// does. When a map that is not in the store yet (at startup) has a file
// that is missing or does not parse, and its copy exists and parses, the
// map is served from the copy: logged at level ERROR as "MAP SERVED FROM
// ITS LAST GOOD COPY", and Config.OnStale is called. Only a map with
// neither is not served. The next good load of the file replaces it.
//
// # Watching
//
// Run watches directories, not files: Config.Dir and the parent directory of
// every Config.Maps file. So it sees a file replaced by rename (vim, sed -i,
// ansible, rsync: a temporary file renamed over the map), written in place,
// created, and deleted. Events for one map are debounced: its load waits
// until Config.Debounce has passed without another event for it, but no
// longer than ten times Config.Debounce after the first, so a stream of
// writes cannot starve it. A file that appears and disappears between two
// loads (a tool's temporary file such as vim's "4913") is never loaded.
// A file written in place can be read half-written when its writer pauses
// for longer than the debounce delay; its next write loads it again, but
// only a rename gives an atomic switch from one content to the next.
// Symlinked map files are read through the link, but only a change of the
// link itself (in the watched directory) is seen, not one of its target; a
// kernel event-queue overflow reloads every map. If a watched directory is
// itself removed, watching it stops (logged); the tables keep serving.
package reload

import (
	"context"
	"errors"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

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
		if !validName(name) {
			return nil, failure.Perm("map name %q: must match [a-z0-9_.-]+ and not start with a dot", name)
		}
		if path == "" {
			return nil, failure.Perm("map %s: empty file name", name)
		}
		r.extras[name] = filepath.Clean(path)
	}
	return r, nil
}

// validName reports whether name can name a map.
func validName(name string) bool {
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
	if !validName(name) {
		return false // also dotfiles, "#...#", "...~"
	}
	for _, s := range ignoredSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// dirMaps lists the map files of dir: name → path.
func dirMaps(dir string) (map[string]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	maps := map[string]string{}
	for _, de := range des {
		if !IsMapFileName(de.Name()) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue // a directory, a dangling link, a socket...
		}
		maps[de.Name()] = path
	}
	return maps, nil
}

// allMaps is every configured map now: directory files, then extras over
// them.
func (r *Reloader) allMaps() (map[string]string, error) {
	maps := map[string]string{}
	var err error
	if r.dir != "" {
		if maps, err = dirMaps(r.dir); err != nil {
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
	return maps, err
}

// LoadAll loads every map now, as at startup or on SIGHUP. Maps whose file
// is good are loaded even when others fail. It returns nil or a Permanent
// failure listing every error, one "FILE:LINE: REASON" per line.
func (r *Reloader) LoadAll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	maps, err := r.allMaps()
	var errs []error
	if err != nil {
		r.log.Error("cannot list maps", "error", err)
		errs = append(errs, err)
	}
	for _, name := range sortedKeys(maps) {
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

func sortedKeys(m map[string]string) []string {
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
	if fi != nil {
		r.stamps[name] = fi
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
		} else if !r.loadCopyLocked(name) {
			r.log.Error("map not loaded, not served", "map", name, "file", path)
		}
		r.result(name, 0, err)
		return err
	}
	match, ok := r.matches[name]
	if !ok {
		match = store.MatchForName(name)
	}
	if err := r.st.ReplaceTable(name, match, t); err != nil {
		r.log.Error("map not loaded", "map", name, "file", path, "error", err)
		r.result(name, 0, err)
		return err
	}
	r.remember(name, path, sum, len(t.Map))
	r.log.Info("map loaded", "map", name, "file", path, "match", match, "entries", len(t.Map), "duration", time.Since(start).Round(time.Microsecond))
	if r.stateDir != "" {
		if err := export.WriteFile(r.stateDir, CopyName(name), text); err != nil {
			r.log.Error("last good copy not written; the previous one stays", "map", name, "dir", r.stateDir, "error", err)
		}
	}
	if r.onLoad != nil {
		r.onLoad(name, t.Entries)
	}
	r.result(name, len(t.Map), nil)
	return nil
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
// store; it reports whether it did. Called with r.mu held.
func (r *Reloader) loadCopyLocked(name string) bool {
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
	r.log.Error("MAP SERVED FROM ITS LAST GOOD COPY: its file does not load, fix it (mapdropd check); lookups answer from the copy until then",
		"map", name, "copy", path, "copy_written", fi.ModTime().UTC().Format(time.RFC3339), "entries", len(t.Map))
	if r.onStale != nil {
		r.onStale(name, path)
	}
	if r.onLoad != nil {
		r.onLoad(name, t.Entries)
	}
	return true
}

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

// parseMap reads the map source file path as map name; withEntries asks for
// the table's Entries (they are parsed anyway for the userdb map, to
// validate them). fi describes the file read, when it could be opened. err
// is an *fs.PathError for a file that cannot be read, or a
// mapfile.ErrorList.
func parseMap(name, path string, withEntries bool) (t *mapfile.Table, warnings []*mapfile.Error, fi os.FileInfo, err error) {
	text, fi, err := readMap(path)
	if err != nil {
		return nil, nil, fi, err
	}
	t, warnings, err = parseText(name, path, text, withEntries)
	return t, warnings, fi, err
}

// readMap reads the map source file path. fi describes the file read, when
// it could be opened. err is an *fs.PathError for a file that cannot be
// read.
func readMap(path string) (text string, fi os.FileInfo, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return "", nil, err
	}
	if !fi.Mode().IsRegular() {
		return "", fi, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	text, err = mapfile.ReadAll(f)
	if err != nil {
		return "", fi, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return text, fi, nil
}

// parseText parses the text of map name, read from path, as parseMap
// does. err is a mapfile.ErrorList.
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
// well), and the warnings (duplicate keys), which do not stop a file from
// loading.
func Check(paths ...string) (errs, warnings []error) {
	_, _, errs, warnings = CheckCounts(paths...)
	return errs, warnings
}

// CheckCounts is Check, also counting the map files found and the entries
// of those that parse.
func CheckCounts(paths ...string) (maps, entries int, errs, warnings []error) {
	check := func(name, path string) {
		maps++
		t, ws, _, err := parseMap(name, path, false)
		if t != nil {
			entries += len(t.Map)
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
	}
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			errs = append(errs, failure.Wrap(failure.NoInput, err, ""))
			continue
		}
		if !fi.IsDir() {
			check(filepath.Base(path), path)
			continue
		}
		files, err := dirMaps(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range sortedKeys(files) {
			check(name, files[name])
		}
	}
	return maps, entries, errs, warnings
}

// pending is a map waiting for its debounce delay.
type pending struct {
	path        string
	first, last time.Time
}

// Run watches the map files and reloads each map that changes, until ctx is
// done; then it returns nil. It first reloads any map whose file changed
// since its last load (LoadAll should have run before). It returns an error
// only when it cannot start watching.
func (r *Reloader) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "watching map files")
	}
	defer w.Close()
	var dirs []string
	if r.dir != "" {
		dirs = append(dirs, r.dir)
	}
	for _, path := range r.extras {
		dirs = append(dirs, filepath.Dir(path))
	}
	slices.Sort(dirs)
	for _, dir := range slices.Compact(dirs) {
		if err := w.Add(dir); err != nil {
			return failure.Wrap(failure.Permanent, err, "watching directory %s", dir)
		}
	}
	r.catchUp()

	waiting := map[string]*pending{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	arm := func(now time.Time) {
		var next time.Time
		for _, p := range waiting {
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
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			now := time.Now()
			for name, path := range r.mapsFor(ev) {
				if p := waiting[name]; p != nil {
					p.path, p.last = path, now
				} else {
					waiting[name] = &pending{path: path, first: now, last: now}
				}
			}
			arm(now)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Error("watching map files", "error", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				_ = r.LoadAll() // logs its errors
			}
		case now := <-timer.C:
			for _, name := range sortedPending(waiting) {
				if p := waiting[name]; !r.due(p).After(now) {
					delete(waiting, name)
					r.reload(name, p.path)
				}
			}
			arm(time.Now())
		}
	}
}

func sortedPending(m map[string]*pending) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// due is when a pending map gets loaded.
func (r *Reloader) due(p *pending) time.Time {
	quiet, limit := p.last.Add(r.debounce), p.first.Add(10*r.debounce)
	if limit.Before(quiet) {
		return limit
	}
	return quiet
}

// mapsFor returns the maps a file event concerns: name → path.
func (r *Reloader) mapsFor(ev fsnotify.Event) map[string]string {
	path := filepath.Clean(ev.Name)
	maps := map[string]string{}
	for name, p := range r.extras {
		if p == path {
			maps[name] = p
		}
	}
	if r.dir == "" {
		return maps
	}
	if path == r.dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			r.log.Error("tables directory removed or renamed: no longer watched, tables keep serving", "dir", r.dir)
		}
		return maps
	}
	if filepath.Dir(path) != r.dir {
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
	maps, _ := r.allMaps()
	for _, name := range sortedKeys(maps) {
		path := maps[name]
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
