package reload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

func mkfifo(path string) error { return unix.Mkfifo(path, 0o644) }

// lines returns n entries "userK@x vG" for K in 0..n-1.
func lines(n int, gen string) string {
	var b strings.Builder
	for k := 0; k < n; k++ {
		fmt.Fprintf(&b, "user%d@x %s\n", k, gen)
	}
	return b.String()
}

// results records Config.OnResult calls.
type results struct {
	mu   sync.Mutex
	errs []error
}

func (rs *results) hook(c *Config) {
	c.OnResult = func(_ string, _ int, err error) {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		rs.errs = append(rs.errs, err)
	}
}

func (rs *results) heldBack() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, err := range rs.errs {
		var hb *HeldBack
		if errors.As(err, &hb) {
			n++
		}
	}
	return n
}

// A slow writer rewrites a 4000-line map in place, pausing between its
// writes for longer than any debounce (over a second in all), while
// readers look up every key: no reader may ever miss a key that is in both
// versions or see the old value after the new one, and the map is loaded
// once, whole, after the writer closes the file.
func TestRunSlowInPlaceWriterNeverHalfLoaded(t *testing.T) {
	const n, chunks = 4000, 40
	f := newFixture(t, map[string]string{"virtual_alias": lines(n, "v1")}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	var lookups sync.Map
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seenNew, count := false, 0
			defer func() { lookups.Store(r, count) }()
			for i := r; ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				count++
				key := fmt.Sprintf("user%d@x", i%n)
				v := f.lookup("virtual_alias", key)
				switch {
				case v == "v2":
					seenNew = true
				case v == "v1" && !seenNew:
				default:
					errs <- fmt.Errorf("lookup %d of %s = %q (new version seen before: %v)", count, key, v, seenNew)
					return
				}
			}
		}()
	}
	fh, err := os.OpenFile(f.path("virtual_alias"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Whole lines at a time: every pause leaves a file that parses, ends
	// in a newline, and has more than half the entries after chunk 20, so
	// that only waiting for the close keeps it from going live.
	for c := 0; c < chunks; c++ {
		var b strings.Builder
		for k := c * n / chunks; k < (c+1)*n/chunks; k++ {
			fmt.Fprintf(&b, "user%d@x v2\n", k)
		}
		if _, err := fh.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // more than the debounce delay
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the writer took %v, want over 1s", took)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "virtual_alias", fmt.Sprintf("user%d@x", n-1), "v2")
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	lookups.Range(func(_, v any) bool { total += v.(int); return true })
	if total < 1000 {
		t.Errorf("only %d lookups during the write", total)
	}
	if got := strings.Count(f.log.String(), `msg="map loaded" map=virtual_alias`); got != 2 {
		t.Errorf("map loaded %d times, want 2 (start, then once after the close):\n%s", got, f.log)
	}
	if logHas(f.log, "HELD BACK") || !logHas(f.log, "entries=4000") {
		t.Errorf("unexpected loads:\n%s", f.log)
	}
}

// A file emptied, cut short, or shrunk by more than half is held back: the
// old table serves, ERROR "MAP LOAD HELD BACK" with the counts and the
// command, a failed result. Confirming it makes it go live; any further
// such edit needs a confirmation of its own.
func TestRunHeldBackUntilConfirmed(t *testing.T) {
	users := "u1@x uid=5001|gid=5000|home=/var/vmail/u1\nu10@x uid=5010|gid=5000|home=/var/vmail/u10\n"
	var rs results
	f := newFixture(t, map[string]string{"virtual_alias": lines(10, "v1"), "userdb": users}, rs.hook)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	path := f.path("virtual_alias")

	heldBack := func(what, file string, old, new int, edit func()) {
		t.Helper()
		want := fmt.Sprintf("file=%s old_entries=%d new_entries=%d confirm=\"mapdropd confirm %s\"", file, old, new, file)
		before := strings.Count(f.log.String(), want)
		edit()
		testkit.Eventually(t, what+" held back", func() bool { return strings.Count(f.log.String(), want) > before })
		if !logHas(f.log, "level=ERROR msg=\"MAP LOAD HELD BACK: ") {
			t.Errorf("%s: not logged at ERROR:\n%s", what, f.log)
		}
	}
	// Emptied in place (": > file").
	heldBack("emptied file", path, 10, 0, func() { writeFile(t, path, "") })
	f.expect(t, "virtual_alias", "user3@x", "v1")
	// More than half dropped: 10 → 4.
	heldBack("shrunk file", path, 10, 4, func() { renameOver(t, path, lines(4, "v2")) })
	f.expect(t, "virtual_alias", "user0@x", "v1")
	// Exactly half dropped goes live.
	renameOver(t, path, lines(5, "v3"))
	f.waitValue(t, "virtual_alias", "user0@x", "v3")
	// The userdb line of u10 cut at home=/var/vmail/u1: it parses, and
	// would send u10's mail to u1.
	cut := strings.TrimSuffix(users, "0\n")
	heldBack("cut userdb", f.path("userdb"), 2, 2, func() { writeFile(t, f.path("userdb"), cut) })
	f.expect(t, "userdb", "u10@x", "uid=5010|gid=5000|home=/var/vmail/u10")
	if n := rs.heldBack(); n != 3 {
		t.Errorf("%d held back results, want 3", n)
	}
	if f.r.Status().Failing == nil {
		t.Error("held back maps not failing in Status")
	}

	// The admin confirms the cut file: it goes live at once (the
	// confirmation file is watched).
	entries, sum, err := Confirm(f.path("userdb"))
	if err != nil || entries != 2 || len(sum) != 64 {
		t.Fatalf("Confirm = %d, %q, %v", entries, sum, err)
	}
	f.waitValue(t, "userdb", "u10@x", "uid=5010|gid=5000|home=/var/vmail/u1")
	if got, _ := os.ReadFile(ConfirmName(f.path("userdb"))); string(got) != sum+"  userdb\n" {
		t.Errorf("confirmation file holds %q", got)
	}
	// Another cut needs another confirmation.
	heldBack("second cut", f.path("userdb"), 2, 2, func() { writeFile(t, f.path("userdb"), strings.TrimSuffix(cut, "1")) })
	f.expect(t, "userdb", "u10@x", "uid=5010|gid=5000|home=/var/vmail/u1")

	// Confirm refuses a file with errors.
	writeFile(t, path, "novalue\n")
	if _, _, err := Confirm(path); err == nil || !strings.Contains(err.Error(), path+":1: expected format") {
		t.Errorf("Confirm of a broken file = %v", err)
	}
}

// At startup the guard compares with the last good copy, which is served
// instead of a cut file; without a copy a cut file is not served and an
// empty one is served with a warning.
func TestStartHeldBack(t *testing.T) {
	state := t.TempDir()
	f := newFixture(t, map[string]string{"virtual_alias": lines(10, "v1")}, func(c *Config) { c.StateDir = state })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.path("virtual_alias"), lines(3, "v2"))
	f2 := newFixture(t, nil, func(c *Config) { c.Dir, c.StateDir = f.dir, state })
	err := f2.r.LoadAll()
	var hb *HeldBack
	if !errors.As(err, &hb) || hb.Old != 10 || hb.New != 3 {
		t.Fatalf("LoadAll = %v, want held back 10 → 3", err)
	}
	f2.expect(t, "virtual_alias", "user9@x", "v1")
	if !logHas(f2.log, "MAP LOAD HELD BACK") || !logHas(f2.log, "MAP SERVED FROM ITS LAST GOOD COPY") {
		t.Errorf("log:\n%s", f2.log)
	}

	f3 := newFixture(t, map[string]string{"cut": "a@x 1\nb@x 2", "empty": "# nothing yet\n", "good": "k v\n"}, nil)
	err = f3.r.LoadAll()
	if !errors.As(err, &hb) || hb.Map != "cut" || hb.HaveOld {
		t.Fatalf("LoadAll = %v, want the cut map held back", err)
	}
	if got := f3.loaded(t); strings.Join(got, " ") != "empty good" {
		t.Errorf("loaded %v, want the empty and the good map", got)
	}
	if !logHas(f3.log, `level=WARN msg="map is empty: every lookup in it answers not found" map=empty`) {
		t.Errorf("no warning for the empty map:\n%s", f3.log)
	}
}

func TestCheckGuardAndFileTypes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cut"), "a@x 1\nb@x 2")
	writeFile(t, filepath.Join(dir, "empty"), "")
	writeFile(t, filepath.Join(dir, "bom"), "\xEF\xBB\xBFa@x 1\n")
	writeFile(t, filepath.Join(dir, "confirmed"), "a@x 1")
	if _, _, err := Confirm(filepath.Join(dir, "confirmed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(dir, "fifo")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var errs, warnings []error
	go func() {
		defer close(done)
		errs, warnings = Check(dir, filepath.Join(dir, "fifo"), filepath.Join(dir, "loop"), filepath.Join(dir, "dangling"))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Check blocks on a FIFO")
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	want := []string{
		filepath.Join(dir, "dangling") + ": dangling symbolic link (to nowhere, which does not exist)",
		filepath.Join(dir, "fifo") + ": not a regular file (a FIFO)",
		filepath.Join(dir, "loop") + ": symbolic link loop",
		filepath.Join(dir, "cut") + ":2: its last line has no newline at the end (a file cut short?): a running mapdropd holds this file back; if it is meant, run: mapdropd confirm " + filepath.Join(dir, "cut"),
		filepath.Join(dir, "empty") + ": it has no entries: a running mapdropd holds",
		filepath.Join(dir, "fifo") + ": not a regular file (a FIFO)",
		filepath.Join(dir, "loop") + ": symbolic link loop",
		filepath.Join(dir, "dangling") + ": dangling symbolic link",
	}
	if len(got) != len(want) {
		t.Fatalf("Check errors:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want %q...", i, got[i], want[i])
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0].Error(), filepath.Join(dir, "bom")+":1: UTF-8 byte order mark") {
		t.Errorf("warnings = %v", warnings)
	}
}

// With the server's state directory, check compares each map with its last
// good copy: more than half dropped is an error, half is not.
func TestCheckWithState(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(state, CopyName("virtual_alias")), lines(10, "v1"))
	writeFile(t, filepath.Join(state, CopyName("other")), lines(10, "v1"))
	writeFile(t, filepath.Join(dir, "virtual_alias"), lines(4, "v2"))
	writeFile(t, filepath.Join(dir, "other"), lines(5, "v2"))
	_, _, errs, _ := CheckWith(CheckOptions{StateDir: state}, dir)
	want := filepath.Join(dir, "virtual_alias") + ": it drops more than half of the entries (10 in the last good copy, 4 in the file): a running mapdropd holds this file back"
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("CheckWith -state: %v, want only %q", errs, want)
	}
	if _, _, errs, _ := CheckWith(CheckOptions{}, dir); len(errs) != 0 {
		t.Errorf("without -state: %v", errs)
	}
	if _, _, err := Confirm(filepath.Join(dir, "virtual_alias")); err != nil {
		t.Fatal(err)
	}
	if _, _, errs, _ := CheckWith(CheckOptions{StateDir: state}, dir); len(errs) != 0 {
		t.Errorf("confirmed: %v", errs)
	}
}

// A -map file elsewhere is guarded too, and its confirmation beside it
// (in a watched directory that is not the tables directory) loads it.
func TestRunHeldBackExtraMap(t *testing.T) {
	other := t.TempDir()
	extra := filepath.Join(other, "virtual")
	writeFile(t, extra, lines(10, "v1"))
	f := newFixture(t, nil, func(c *Config) { c.Maps = map[string]string{"virtual_alias": extra} })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	writeFile(t, extra, lines(2, "v2"))
	testkit.Eventually(t, "held back", func() bool { return logHas(f.log, "MAP LOAD HELD BACK") })
	f.expect(t, "virtual_alias", "user0@x", "v1")
	if _, _, err := Confirm(extra); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "virtual_alias", "user0@x", "v2")
	f.expect(t, "virtual_alias", "user5@x", "error: not found")
}

// LoadAll (SIGHUP) while a writer is at work on a map in place leaves the
// map alone: three quarters of the new file are there, ending in a whole
// line, which the guard alone would let through.
func TestLoadAllLeavesFileBeingWritten(t *testing.T) {
	const n = 400
	f := newFixture(t, map[string]string{"virtual_alias": lines(n, "v1")}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	fh, err := os.OpenFile(f.path("virtual_alias"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	text := lines(n, "v2")
	cut := strings.Index(text, fmt.Sprintf("user%d@", n*3/4))
	if _, err := fh.WriteString(text[:cut]); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the writer seen", func() bool { return logHas(f.log, "map file being written") })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	if !logHas(f.log, "map file is being written in place and not closed yet") {
		t.Errorf("LoadAll did not say it left the map alone:\n%s", f.log)
	}
	f.expect(t, "virtual_alias", fmt.Sprintf("user%d@x", n-1), "v1")
	if _, err := fh.WriteString(text[cut:]); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	f.waitValue(t, "virtual_alias", fmt.Sprintf("user%d@x", n-1), "v2")
}

// A -map file that is a FIFO is refused at once, not waited on.
func TestLoadAllFIFOExtraMap(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "virtual")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, map[string]string{"other": "k v\n"}, func(c *Config) { c.Maps = map[string]string{"virtual_alias": fifo} })
	done := make(chan error, 1)
	go func() { done <- f.r.LoadAll() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file (a FIFO)") {
			t.Errorf("LoadAll = %v, want the FIFO refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadAll blocks on a FIFO")
	}
	f.expect(t, "other", "k", "v")
}

// openWriter opens path for appending, as an admin's script writing the
// map in place would hold it, and closes it when the test ends.
func openWriter(t *testing.T, path string) *os.File {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	return fh
}

// A writer that started before mapdropd did (no event says so) is known
// from the kernel: at startup the file it holds open is not read, and its
// close loads it whole.
func TestStartWhileWriterOpen(t *testing.T) {
	const n = 400
	text := lines(n, "v2")
	cut := strings.Index(text, fmt.Sprintf("user%d@", n/4))
	f := newFixture(t, map[string]string{"virtual_alias": text[:cut], "other": "k v\n"}, nil)
	fh := openWriter(t, f.path("virtual_alias"))
	if err := f.r.LoadAll(); err == nil || !strings.Contains(err.Error(), "virtual_alias: the file is open for writing by another process") {
		t.Fatalf("LoadAll with a writer at work on a map without a table: %v, want it named", err)
	}
	if got := f.loaded(t); !slices.Equal(got, []string{"other"}) {
		t.Errorf("loaded %v, want only other: the file being written was read", got)
	}
	for _, want := range []string{`msg="map file is open for writing by another process: not read now, it is loaded once its writer closes it" map=virtual_alias`,
		`msg="map not served until the writer of its file closes it" map=virtual_alias`} {
		if !logHas(f.log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	f.run(t)
	if _, err := fh.WriteString(text[cut:]); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "virtual_alias", "user0@x", "error: unknown map virtual_alias")
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "virtual_alias", fmt.Sprintf("user%d@x", n-1), "v2")
	if got := f.hooks(); !slices.Equal(got, []string{"other:1", fmt.Sprintf("virtual_alias:%d", n)}) {
		t.Errorf("OnLoad calls %v, want other, then the whole virtual_alias once", got)
	}
}

// The writer closes between the startup load and the watch, with nothing
// written after the load: Run's catch-up reads the file.
func TestStartWriterClosesBeforeWatch(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "a@x v1\n"}, nil)
	fh := openWriter(t, f.path("virtual_alias"))
	if err := f.r.LoadAll(); err == nil {
		t.Fatal("LoadAll with a writer at work on a map without a table: nil, want an error")
	}
	f.expect(t, "virtual_alias", "a@x", "error: unknown map virtual_alias")
	fh.Close()
	f.run(t)
	f.waitValue(t, "virtual_alias", "a@x", "v1")
}

// With a last good copy, the map is served from it while the writer works,
// and the log says why; SIGHUP (LoadAll) during the write keeps the table
// it serves; check and confirm refuse the file too.
func TestWriterOpenServesCopyAndCheckRefuses(t *testing.T) {
	state := t.TempDir()
	f := newFixture(t, map[string]string{"virtual_alias": "a@x v1\n"}, func(c *Config) { c.StateDir = state })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	fh := openWriter(t, f.path("virtual_alias"))
	if _, err := fh.WriteString("b@x v2\n"); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, nil, func(c *Config) { c.Dir, c.StateDir = f.dir, state })
	if err := g.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, "virtual_alias", "a@x", "v1")
	g.expect(t, "virtual_alias", "b@x", "error: not found")
	if want := "MAP SERVED FROM ITS LAST GOOD COPY: its file is open for writing by another process"; !logHas(g.log, want) {
		t.Errorf("log lacks %q", want)
	}
	if err := g.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, "virtual_alias", "b@x", "error: not found")

	_, _, errs, _ := CheckWith(CheckOptions{}, f.path("virtual_alias"))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "open for writing by another process") {
		t.Errorf("check of a file being written: %v, want it refused", errs)
	}
	if _, _, err := Confirm(f.path("virtual_alias")); err == nil || !strings.Contains(err.Error(), "open for writing") {
		t.Errorf("confirm of a file being written: %v, want it refused", err)
	}
	fh.Close()
	if _, _, errs, _ := CheckWith(CheckOptions{}, f.path("virtual_alias")); len(errs) != 0 {
		t.Errorf("check after the close: %v", errs)
	}
	if err := g.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	g.expect(t, "virtual_alias", "b@x", "v2")
}
