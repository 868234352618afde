package reload

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/store"
)

func (f *fixture) hooks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hook)
}

// A reload of files that did not change does nothing: no swap, no OnLoad
// (which writes the cdb export), no new last good copy; one that changed
// content does all three.
func TestLoadAllUnchangedDoesNothing(t *testing.T) {
	state := t.TempDir()
	f := newFixture(t, map[string]string{"virtual_alias": "a@x b@y\n", "other": "k v\n"},
		func(c *Config) { c.StateDir = state })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(state, "virtual_alias.last-good")
	before, err := os.Stat(copyPath)
	if err != nil {
		t.Fatalf("no last good copy after a load: %v", err)
	}
	if got, _ := os.ReadFile(copyPath); string(got) != "a@x b@y\n" {
		t.Errorf("last good copy holds %q", got)
	}
	if m := before.Mode().Perm(); m != CopyMode {
		t.Errorf("last good copy has mode %v, want %v: the tables may hold what not every user may read", m, CopyMode)
	}
	hooks := f.hooks()
	// Same content, rewritten (a new inode and mtime, as ansible or rsync
	// would leave it): still nothing to do.
	time.Sleep(10 * time.Millisecond)
	renameOver(t, f.path("virtual_alias"), "a@x b@y\n")
	for range 2 {
		if err := f.r.LoadAll(); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.hooks(); !slices.Equal(got, hooks) {
		t.Errorf("OnLoad calls after reloads of unchanged files: %v, before %v", got, hooks)
	}
	after, err := os.Stat(copyPath)
	if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the last good copy was rewritten by a reload of an unchanged file")
	}
	if !strings.Contains(f.log.String(), "map file unchanged") {
		t.Error("no debug line for the unchanged map")
	}

	renameOver(t, f.path("virtual_alias"), "a@x c@z\n")
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "virtual_alias", "a@x", "c@z")
	if got := f.hooks(); len(got) != len(hooks)+1 || got[len(got)-1] != "virtual_alias:1" {
		t.Errorf("OnLoad calls after a changed file: %v, before %v", got, hooks)
	}
	if got, _ := os.ReadFile(copyPath); string(got) != "a@x c@z\n" {
		t.Errorf("last good copy after the change holds %q", got)
	}
}

// At startup a map whose file does not parse is served from its last good
// copy, with a loud log line and the OnStale hook; a map with no copy is
// not served.
func TestStartFromLastGoodCopy(t *testing.T) {
	state := t.TempDir()
	good := "a@x b@y\n# comment\nlong@x first,\n   second\n"
	f := newFixture(t, map[string]string{"virtual_alias": good}, func(c *Config) { c.StateDir = state })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}

	// The next start: the file was broken meanwhile, and a new map is broken too.
	writeFile(t, f.path("virtual_alias"), "a@x\n")
	writeFile(t, f.path("virtual_mailbox"), "nokey\n")
	var stale []string
	g := newFixture(t, nil, func(c *Config) {
		c.Dir, c.StateDir = f.dir, state
		c.OnStale = func(name, copyPath string) { stale = append(stale, name+"="+copyPath) }
	})
	err := g.r.LoadAll()
	if err == nil || !strings.Contains(err.Error(), "virtual_alias:1") {
		t.Errorf("LoadAll with broken files: %v, want the errors", err)
	}
	g.expect(t, "virtual_alias", "a@x", "b@y")
	if _, err := g.st.Lookup("virtual_mailbox", "x"); failure.KindOf(err) != failure.Permanent {
		t.Errorf("a map that never loaded: %v, want PERM", err)
	}
	copyPath := filepath.Join(state, "virtual_alias.last-good")
	if want := []string{"virtual_alias=" + copyPath}; !slices.Equal(stale, want) {
		t.Errorf("OnStale calls %v, want %v", stale, want)
	}
	if !strings.Contains(g.log.String(), "MAP SERVED FROM ITS LAST GOOD COPY") {
		t.Errorf("no loud log line for the stale map:\n%s", g.log)
	}
	if st := g.r.Status(); st.Maps != 1 || st.Entries != 2 || !slices.Equal(st.Failing, []string{"virtual_alias", "virtual_mailbox"}) {
		t.Errorf("Status = %+v", st)
	}
	// The lines are those of the copy.
	file, text, err := g.r.Source("virtual_alias")
	if err != nil || file != copyPath || text != good {
		t.Errorf("Source = %q, %q, %v; want the copy", file, text, err)
	}

	// Fixed: loaded from the file again, and the map is no longer failing.
	writeFile(t, f.path("virtual_alias"), good)
	if err := g.r.LoadAll(); err == nil {
		t.Error("virtual_mailbox is still broken, LoadAll says nothing")
	}
	if file, _, err := g.r.Source("virtual_alias"); err != nil || file != f.path("virtual_alias") {
		t.Errorf("Source after the fix = %q, %v; want the map's file", file, err)
	}
	if st := g.r.Status(); !slices.Equal(st.Failing, []string{"virtual_mailbox"}) {
		t.Errorf("Status after the fix = %+v", st)
	}
}

// Source finds the text a map was loaded from while its file has a broken
// edit, through the last good copy; without a state directory it says the
// file changed.
func TestSourceAfterBrokenEdit(t *testing.T) {
	for _, withState := range []bool{true, false} {
		state := ""
		if withState {
			state = t.TempDir()
		}
		f := newFixture(t, map[string]string{"virtual_alias": "a@x b@y\n"}, func(c *Config) { c.StateDir = state })
		if err := f.r.LoadAll(); err != nil {
			t.Fatal(err)
		}
		if file, text, err := f.r.Source("virtual_alias"); err != nil || file != f.path("virtual_alias") || text != "a@x b@y\n" {
			t.Errorf("Source = %q, %q, %v", file, text, err)
		}
		writeFile(t, f.path("virtual_alias"), "broken\n")
		if err := f.r.LoadAll(); err == nil {
			t.Fatal("broken file loaded")
		}
		file, text, err := f.r.Source("virtual_alias")
		switch {
		case withState && (err != nil || file != filepath.Join(state, "virtual_alias.last-good") || text != "a@x b@y\n"):
			t.Errorf("with a state directory: Source = %q, %q, %v; want the copy", file, text, err)
		case !withState && (err == nil || !strings.Contains(err.Error(), "changed since")):
			t.Errorf("without a state directory: Source = %q, %q, %v; want an error", file, text, err)
		}
		if _, _, err := f.r.Source("nosuch"); failure.KindOf(err) != failure.Permanent {
			t.Errorf("Source of an unknown map: %v", err)
		}
	}
}

func TestStateDirMustExist(t *testing.T) {
	st, _ := store.New("+")
	if _, err := New(Config{Dir: t.TempDir(), StateDir: filepath.Join(t.TempDir(), "missing")}, st); failure.KindOf(err) != failure.Permanent {
		t.Errorf("missing state directory: %v, want Permanent", err)
	}
}
