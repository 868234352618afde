package reload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/tables/store"
)

// nestedFixture is a fixture whose tables directory is TMP/etc/tables, so
// that the test can remove and recreate it and its parent.
func nestedFixture(t *testing.T, files map[string]string) (f *fixture, parent string) {
	t.Helper()
	parent = filepath.Join(t.TempDir(), "etc")
	dir := filepath.Join(parent, "tables")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	f = newFixture(t, nil, func(c *Config) { c.Dir = dir })
	f.dir = dir
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	return f, parent
}

// Deleting the tables directory and creating it again (a config tool that
// replaces the whole directory) keeps hot reload working: the parent's
// watch sees it come back, and the maps are loaded from it.
func TestRunTablesDirectoryRecreated(t *testing.T) {
	f, _ := nestedFixture(t, map[string]string{"virtual_alias": "user@x v1\n"})
	f.run(t)
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "removal logged", func() bool { return logHas(f.log, "a directory of map files was removed or renamed") })
	f.expect(t, "virtual_alias", "user@x", "v1")
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.path("virtual_alias"), "user@x v2\n")
	f.waitValue(t, "virtual_alias", "user@x", "v2")
	if !logHas(f.log, "watching a directory of map files again") {
		t.Errorf("re-arm not logged:\n%s", f.log)
	}
	// And again: it keeps working after the first re-arm.
	writeFile(t, f.path("virtual_alias"), "user@x v3\n")
	f.waitValue(t, "virtual_alias", "user@x", "v3")

	// A directory renamed away and another one renamed into its place.
	staged := f.dir + ".new"
	if err := os.Mkdir(staged, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(staged, "virtual_alias"), "user@x v4\n")
	if err := os.Rename(f.dir, f.dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, f.dir); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "virtual_alias", "user@x", "v4")
	writeFile(t, f.dir+".old/virtual_alias", "user@x from the old directory\n")
	writeFile(t, f.path("virtual_alias"), "user@x v5\n")
	f.waitValue(t, "virtual_alias", "user@x", "v5")
}

// When the parent goes too, nothing watches the place any more: LoadAll
// (what SIGHUP runs) watches the directory again.
func TestRunLoadAllRearms(t *testing.T) {
	f, parent := nestedFixture(t, map[string]string{"virtual_alias": "user@x v1\n"})
	f.run(t)
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	// Both watches are gone once the parent could not be watched again.
	testkit.Eventually(t, "removal logged", func() bool {
		return logHas(f.log, `msg="cannot watch a parent directory" dir=`+parent+" ") &&
			logHas(f.log, "map file removed, keeping last good table")
	})
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.path("virtual_alias"), "user@x v2\n")
	time.Sleep(200 * time.Millisecond) // ten debounce delays: not seen
	f.expect(t, "virtual_alias", "user@x", "v1")
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "virtual_alias", "user@x", "v2")
	writeFile(t, f.path("virtual_alias"), "user@x v3\n")
	f.waitValue(t, "virtual_alias", "user@x", "v3")
}

// A change of a file's attributes (chmod after a file was unreadable,
// touch) makes the reloader read it again (IN_ATTRIB); its own reads do
// not set it off again.
func TestRunAttribRereads(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	if err := os.Chmod(f.path("virtual_alias"), 0o600); err != nil {
		t.Fatal(err)
	}
	unchanged := `msg="map file unchanged, nothing to load" map=virtual_alias`
	testkit.Eventually(t, "file read again after chmod", func() bool { return logHas(f.log, unchanged) })
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(f.log.String(), unchanged); n != 1 {
		t.Errorf("file read %d times after one chmod, want 1", n)
	}
}

// A map that appears whole, as a hard link or a symbolic link (no writer
// will close it), is loaded at once; a new file being written waits for
// its close.
func TestRunLinksAppearWhole(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, "k hard\n")
	if err := os.Link(src, f.path("hardlinked")); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "hardlinked", "k", "hard")
	if err := os.Symlink(src, f.path("symlinked")); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "symlinked", "k", "hard")

	fh, err := os.OpenFile(f.path("new"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("k new\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten debounce delays
	if got := f.lookup("new", "k"); got == "new" {
		t.Errorf("a new file was loaded before its writer closed it")
	}
	fh.WriteString("k2 more\n")
	fh.Close()
	f.waitValue(t, "new", "k2", "more")
}

// A map file that appears while mapdropd runs with the name of a map that
// the store holds from etcd (an incremental map, set by Apply as the etcd
// source does) is refused and logged: the etcd map keeps answering, and
// the other maps keep reloading.
func TestRunFileDoesNotReplaceEtcdMap(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	x := store.NewTree().Txn()
	x.Put("k", "from-etcd")
	var b store.Batch
	b.SetMap("etcd_map", store.Exact, x.Commit())
	if err := f.st.Apply(2, &b); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	renameOver(t, f.path("etcd_map"), "k from-file\n")
	testkit.Eventually(t, "the refusal logged", func() bool {
		return logHas(f.log, `msg="map not loaded" map=etcd_map`) && logHas(f.log, "a file cannot replace it")
	})
	f.expect(t, "etcd_map", "k", "from-etcd")
	writeFile(t, f.path("etcd_map"), "k from-file-2\n")
	renameOver(t, f.path("virtual_alias"), "user@x v2\n")
	f.waitValue(t, "virtual_alias", "user@x", "v2")
	f.expect(t, "etcd_map", "k", "from-etcd")
	if got := f.loaded(t); len(got) != 1 || got[0] != "virtual_alias" {
		t.Errorf("loaded maps = %v, want [virtual_alias]", got)
	}
}
