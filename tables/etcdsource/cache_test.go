package etcdsource

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mapdrop/mapdrop/tables/store"
)

// TestCacheRoundTrip: keys and values with spaces, quotes, backslashes,
// newlines and UTF-8 come back from the cache as they went in; a cache
// without its manifest, or with a map file of the wrong length, is not
// read.
func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x := store.NewTree().Txn()
	entries := map[string]string{
		`"a b"@example.com`:   `va lue, "quoted"`,
		"back\\slash":         "new\nline\ttab",
		"ümläut@dömäin.test":  "zïel ✓",
		"plain@example.com":   "",
		"key with\rcr@x.test": "v",
	}
	for k, v := range entries {
		x.Put(k, v)
	}
	tree := x.Commit()
	maps := map[string]cachedMap{"virtual_alias": {version: "00ff", file: "virtual_alias.7.map", tree: tree}}
	if err := writeMapFile(dir, "virtual_alias.7.map", tree); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readCache(dir, "/p/"); err == nil {
		t.Fatal("a cache without a manifest was read")
	}
	if err := writeManifest(dir, "/p/", 7, maps); err != nil {
		t.Fatal(err)
	}
	rev, got, err := readCache(dir, "/p/")
	if err != nil {
		t.Fatal(err)
	}
	if rev != 7 || len(got) != 1 || got["virtual_alias"].version != "00ff" {
		t.Fatalf("readCache: rev %d, maps %v", rev, got)
	}
	gt := got["virtual_alias"].tree
	if gt.Len() != len(entries) {
		t.Errorf("%d entries back, want %d", gt.Len(), len(entries))
	}
	for k, v := range entries {
		if g, ok := gt.Get(k); !ok || g != v {
			t.Errorf("%q: %q %v, want %q", k, g, ok, v)
		}
	}
	// A map file with a line fewer than its header says is refused.
	p := filepath.Join(dir, "virtual_alias.7.map")
	b, _ := os.ReadFile(p)
	i := len(b) - 2
	for b[i] != '\n' {
		i--
	}
	os.WriteFile(p, b[:i+1], 0o640)
	if _, _, err := readCache(dir, "/p/"); err == nil {
		t.Error("a map file with a missing line was read")
	}
	removeUnreferenced(dir, map[string]cachedMap{})
	if _, err := os.Stat(p); err == nil {
		t.Error("an unreferenced map file was left")
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest")); err != nil {
		t.Error("the manifest was removed")
	}
}

// TestCacheFiles: the cache's files have mode 0640 (the maps' data is not
// for everyone); a file rewritten with the same bytes stays as it is; the
// temporary files of a writer that died go with the unreferenced map
// files, while a live writer's (locked) and files that are not the
// cache's stay.
func TestCacheFiles(t *testing.T) {
	dir := t.TempDir()
	x := store.NewTree().Txn()
	x.Put("k", "v")
	tree := x.Commit()
	maps := map[string]cachedMap{"m": {version: "01", file: "m.3.map", tree: tree}}
	if err := writeMapFile(dir, "m.3.map", tree); err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(dir, "/p/", 3, maps); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"m.3.map", "manifest"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, %v; want 0640", n, fi.Mode(), err)
		}
	}
	before, _ := os.Stat(filepath.Join(dir, "m.3.map"))
	if err := writeMapFile(dir, "m.3.map", tree); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(filepath.Join(dir, "m.3.map")); !os.SameFile(before, after) {
		t.Error("a map file rewritten with the same bytes was replaced")
	}

	write := func(n string) string {
		t.Helper()
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := write(".m.2.map.tmp-123")     // a writer that died
	deadMan := write(".manifest.tmp-456") // another
	live := write(".m.4.map.tmp-789")     // a writer at work: it holds an flock
	lf, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := write("m.1.map")
	foreign := write("README")
	removeUnreferenced(dir, maps)
	for p, want := range map[string]bool{dead: false, deadMan: false, old: false, live: true, foreign: true,
		filepath.Join(dir, "m.3.map"): true, filepath.Join(dir, "manifest"): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
