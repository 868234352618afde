package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/store"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver replaces path the way editors and config tools do: write a
// temporary dotfile next to it, then rename it over the original.
func renameOver(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	dir  string
	st   *store.Store
	r    *Reloader
	log  *testkit.Buffer
	mu   sync.Mutex
	hook []string // names passed to OnLoad
}

func newFixture(t testing.TB, files map[string]string, modify func(*Config)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), log: &testkit.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", f.log)
		}
	})
	for name, content := range files {
		writeFile(t, filepath.Join(f.dir, name), content)
	}
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	cfg := Config{
		Dir:      f.dir,
		Debounce: 20 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnLoad: func(name string, entries []mapfile.Entry) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.hook = append(f.hook, fmt.Sprintf("%s:%d", name, len(entries)))
		},
	}
	if modify != nil {
		modify(&cfg)
	}
	f.r, err = New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// loaded returns the names of the maps the reloader has put in the store,
// sorted, and checks that the store has each of them.
func (f *fixture) loaded(t *testing.T) []string {
	t.Helper()
	f.r.mu.Lock()
	names := slices.Sorted(maps.Keys(f.r.loaded))
	f.r.mu.Unlock()
	for _, name := range names {
		if _, err := f.st.Lookup(name, ""); failure.KindOf(err) != failure.NotFound {
			t.Errorf("map %s loaded but not in the store: %v", name, err)
		}
	}
	return names
}

func logHas(log *testkit.Buffer, s string) bool { return strings.Contains(log.String(), s) }

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// run starts Run and stops it when the test ends, checking that it returns.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	testkit.Eventually(t, "Run watching", func() bool { return logHas(f.log, `msg="watching map files"`) })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

func (f *fixture) lookup(name, key string) string {
	v, err := f.st.Lookup(name, key)
	if err != nil {
		return "error: " + err.Error()
	}
	return v
}

func (f *fixture) expect(t *testing.T, name, key, want string) {
	t.Helper()
	if got := f.lookup(name, key); got != want {
		t.Errorf("Lookup(%s, %q) = %q, want %q", name, key, got, want)
	}
}

func (f *fixture) waitValue(t *testing.T, name, key, want string) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%s[%s] = %q", name, key, want), func() bool { return f.lookup(name, key) == want })
}

const goodUserdb = "# users\nuser1@some.domain uid=5000|gid=5000|home=/var/vmail/u1\n"

func TestNewErrors(t *testing.T) {
	st, _ := store.New("+")
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := New(Config{Dir: missing}, st)
	if failure.KindOf(err) != failure.Permanent || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing dir: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "")
	if _, err := New(Config{Dir: file}, st); failure.KindOf(err) != failure.Permanent {
		t.Errorf("file as dir: %v", err)
	}
	if _, err := New(Config{}, st); failure.KindOf(err) != failure.Permanent {
		t.Errorf("empty config: %v", err)
	}
	for _, name := range []string{"Upper", ".dot", "a b", "", "a/b"} {
		if _, err := New(Config{Maps: map[string]string{name: file}}, st); failure.KindOf(err) != failure.Permanent {
			t.Errorf("map name %q: %v", name, err)
		}
	}
}

func TestIsMapFileName(t *testing.T) {
	for _, name := range []string{"virtual_alias", "virtual_mailbox_domains", "userdb", "a.b-c_9", "4913"} {
		if !IsMapFileName(name) {
			t.Errorf("%q should be a map", name)
		}
	}
	for _, name := range []string{".hidden", ".virtual_alias.swp", "virtual_alias~", "#virtual_alias#",
		"virtual_alias.tmp", "virtual_alias.db", "virtual_alias.lmdb", "virtual_alias.cdb", "x.swp", "x.bak",
		"x.dpkg-old", "x.rpmnew", "Virtual", "with space", "sedAbc12", ""} {
		if IsMapFileName(name) {
			t.Errorf("%q should not be a map", name)
		}
	}
}

// Names lists the maps LoadAll would load: not the ignored names, a
// subdirectory, a FIFO or a dangling link; and the -map names.
func TestNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"virtual_alias", "userdb", "virtual_alias~", ".hidden"} {
		writeFile(t, filepath.Join(dir, name), "k v\n")
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(dir, "fifo")); err != nil {
		t.Fatal(err)
	}
	got := Names(Config{Dir: dir, Maps: map[string]string{"extra": "/elsewhere/extra"}})
	if want := []string{"extra", "userdb", "virtual_alias"}; !slices.Equal(sortedKeys(got), want) {
		t.Errorf("Names = %v, want %v", sortedKeys(got), want)
	}
	if got := Names(Config{Dir: filepath.Join(dir, "missing")}); len(got) != 0 {
		t.Errorf("Names of a missing directory = %v", got)
	}
}

func TestLoadAll(t *testing.T) {
	f := newFixture(t, map[string]string{
		"virtual_alias":           "postmaster@some.domain postmaster\n@catch.domain all@some.domain\n",
		"virtual_mailbox_domains": "some.domain OK\n",
		"userdb":                  goodUserdb,
		"target":                  "linked value\n",
		".hidden":                 "x y\n",
		"virtual_alias~":          "x y\n",
		"x.swp":                   "x y\n",
		"#x#":                     "x y\n",
		"x.tmp":                   "x y\n",
		"x.db":                    "x y\n",
		"x.lmdb":                  "x y\n",
		"x.cdb":                   "x y\n",
		"Upper":                   "x y\n",
		"broken.tmp":              "novalue\n", // ignored, so no error
	}, nil)
	if err := os.Symlink("target", f.path("linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", f.path("dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.path("subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{"linked", "target", "userdb", "virtual_alias", "virtual_mailbox_domains"}
	if got := f.loaded(t); !slices.Equal(got, want) {
		t.Errorf("loaded maps = %v, want %v", got, want)
	}
	f.expect(t, "virtual_alias", "Postmaster+x@Some.Domain", "postmaster+x") // an Address map, extension propagated
	f.expect(t, "virtual_alias", "anyone@catch.domain", "all@some.domain")
	f.expect(t, "virtual_mailbox_domains", "SOME.DOMAIN", "OK")
	f.expect(t, "linked", "linked", "value")
	f.mu.Lock()
	hook := slices.Clone(f.hook)
	f.mu.Unlock()
	if want := []string{"linked:1", "target:1", "userdb:1", "virtual_alias:2", "virtual_mailbox_domains:1"}; !slices.Equal(hook, want) {
		t.Errorf("OnLoad calls %v, want %v", hook, want)
	}
	for _, s := range []string{"msg=\"map loaded\" map=virtual_alias file=" + f.path("virtual_alias"), "entries=2", "duration="} {
		if !logHas(f.log, s) {
			t.Errorf("log lacks %q:\n%s", s, f.log)
		}
	}
}

func TestLoadAllErrors(t *testing.T) {
	f := newFixture(t, map[string]string{
		"good":   "k v\n",
		"broken": "# c\nok v\nnovalue\n\"unbalanced x\n",
		"userdb": "a@x uid=1|gid=1|home=/h\nb@x uid=0|gid=1|home=/h\nc@x uid=1|gid=1|home=rel\n",
	}, nil)
	err := f.r.LoadAll()
	if failure.KindOf(err) != failure.Permanent {
		t.Fatalf("LoadAll = %v, want a Permanent failure", err)
	}
	for _, want := range []string{
		f.path("broken") + ":3: expected format: key whitespace value",
		f.path("broken") + ":4: unbalanced",
		f.path("userdb") + ":2: userdb: uid=\"0\"",
		f.path("userdb") + ":3: userdb: home=\"rel\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
		if logged, _, _ := strings.Cut(want, `"`); !logHas(f.log, logged) { // slog escapes quotes
			t.Errorf("log lacks %q", want)
		}
	}
	if got := f.loaded(t); !slices.Equal(got, []string{"good"}) {
		t.Errorf("loaded maps = %v, want only the good map", got)
	}
	if !logHas(f.log, "level=ERROR") {
		t.Errorf("errors not logged at ERROR:\n%s", f.log)
	}
}

// TestOnLoadEntries checks that OnLoad gets the entries in file order with
// their lines, and that without OnLoad (when the reloader does not ask for
// them) maps load and userdb values are still checked.
func TestOnLoadEntries(t *testing.T) {
	files := map[string]string{
		"virtual_alias": "# c\nB@x b\nA@x a\n  more\nb@x dup\n",
		"userdb":        "a@x uid=1|gid=1|home=/h\nb@x uid=1|gid=1|home=rel\n",
	}
	var got []mapfile.Entry
	f := newFixture(t, files, func(c *Config) {
		c.OnLoad = func(name string, entries []mapfile.Entry) {
			if name == "virtual_alias" {
				got = slices.Clone(entries)
			}
		}
	})
	if err := f.r.LoadAll(); err == nil {
		t.Fatal("bad userdb accepted")
	}
	want := []mapfile.Entry{{Key: "b@x", Value: "b", Line: 2}, {Key: "a@x", Value: "a  more", Line: 3}}
	if !slices.Equal(got, want) {
		t.Errorf("OnLoad entries %+v, want %+v", got, want)
	}
	if !logHas(f.log, ":5: duplicate entry") {
		t.Errorf("duplicate not logged:\n%s", f.log)
	}

	f = newFixture(t, files, func(c *Config) { c.OnLoad = nil })
	err := f.r.LoadAll()
	if err == nil || !strings.Contains(err.Error(), f.path("userdb")+":2: userdb: home=") {
		t.Fatalf("LoadAll = %v, want the userdb error at line 2", err)
	}
	f.expect(t, "virtual_alias", "A@X", "a  more")
	f.expect(t, "virtual_alias", "B@X", "b")
	if got := f.loaded(t); !slices.Equal(got, []string{"virtual_alias"}) {
		t.Errorf("loaded maps = %v", got)
	}
}

func TestExtraMapsAndKinds(t *testing.T) {
	other := t.TempDir()
	extra := filepath.Join(other, "aliases")
	writeFile(t, extra, "user@x from-extra\n")
	f := newFixture(t, map[string]string{
		"virtual_alias":   "user@x from-dir\n",
		"virtual_mailbox": "user@x box\n",
	}, func(c *Config) {
		c.Maps = map[string]string{"virtual_alias": extra}
		c.Matches = map[string]store.Match{"virtual_mailbox": store.Exact}
	})
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "virtual_alias", "user+ext@x", "from-extra+ext")
	f.expect(t, "virtual_mailbox", "user@x", "box")
	if got := f.lookup("virtual_mailbox", "user+ext@x"); !strings.Contains(got, "not found") {
		t.Errorf("Exact override: got %q", got)
	}
	if !logHas(f.log, "map file ignored") {
		t.Errorf("override not logged:\n%s", f.log)
	}
	// A missing extra file is an error at startup.
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.r.LoadAll(); err == nil || !strings.Contains(err.Error(), extra) {
		t.Errorf("LoadAll with a missing -map file = %v", err)
	}
	f.expect(t, "virtual_alias", "user@x", "from-extra") // still the last good table
}

func TestRunRenameOverAndInPlace(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	renameOver(t, f.path("virtual_alias"), "user@x v2\n")
	f.waitValue(t, "virtual_alias", "user@x", "v2")
	writeFile(t, f.path("virtual_alias"), "user@x v3\n")
	f.waitValue(t, "virtual_alias", "user@x", "v3")
}

func TestRunDeleteKeepsTable(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	if err := os.Remove(f.path("virtual_alias")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "removal warning", func() bool { return logHas(f.log, "map file removed, keeping last good table") })
	if !logHas(f.log, "level=WARN") {
		t.Errorf("removal not a warning:\n%s", f.log)
	}
	f.expect(t, "virtual_alias", "user@x", "v1")
	writeFile(t, f.path("virtual_alias"), "user@x back\n")
	f.waitValue(t, "virtual_alias", "user@x", "back")
}

func TestRunBrokenEditKeepsTable(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n", "userdb": goodUserdb}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	renameOver(t, f.path("virtual_alias"), "user@x v2\nnovalue\n")
	want := f.path("virtual_alias") + ":2: expected format"
	testkit.Eventually(t, "parse error in log", func() bool { return logHas(f.log, want) })
	f.expect(t, "virtual_alias", "user@x", "v1")

	renameOver(t, f.path("userdb"), goodUserdb+"user2@some.domain uid=5000|gid=5000|home=/a/../etc\n")
	want = f.path("userdb") + ":3: userdb: home="
	testkit.Eventually(t, "userdb error in log", func() bool { return logHas(f.log, want) })
	f.expect(t, "userdb", "user2@some.domain", "error: not found")
	f.expect(t, "userdb", "user1@some.domain", "uid=5000|gid=5000|home=/var/vmail/u1")

	// Fixing the file loads it.
	renameOver(t, f.path("virtual_alias"), "user@x v3\n")
	f.waitValue(t, "virtual_alias", "user@x", "v3")
}

func TestRunBurstEndsOnLastContent(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v0\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	for i := 1; i <= 100; i++ {
		content := fmt.Sprintf("user@x v%d\n", i)
		if i%2 == 0 {
			renameOver(t, f.path("virtual_alias"), content)
		} else {
			writeFile(t, f.path("virtual_alias"), content)
		}
	}
	f.waitValue(t, "virtual_alias", "user@x", "v100")
}

func TestRunNewFilesAndIgnoreRules(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	for _, name := range []string{"new.tmp", "new~", ".new.swp", "new.cdb", "#new#", "Upper"} {
		writeFile(t, f.path(name), "k v\n")
	}
	// A temporary file that comes and goes (vim's write test) never loads.
	writeFile(t, f.path("4913"), "")
	if err := os.Remove(f.path("4913")); err != nil {
		t.Fatal(err)
	}
	renameOver(t, f.path("newmap"), "k new\n")
	f.waitValue(t, "newmap", "k", "new")
	if got := f.loaded(t); !slices.Equal(got, []string{"newmap", "virtual_alias"}) {
		t.Errorf("loaded maps = %v", got)
	}
	if logHas(f.log, "map=4913") && (logHas(f.log, "level=WARN") || logHas(f.log, "level=ERROR")) {
		t.Errorf("vanished temporary file reported:\n%s", f.log)
	}
}

func TestRunExtraFile(t *testing.T) {
	other := t.TempDir()
	extra := filepath.Join(other, "virtual")
	writeFile(t, extra, "user@x v1\n")
	writeFile(t, filepath.Join(other, "unrelated"), "k v\n")
	f := newFixture(t, nil, func(c *Config) { c.Maps = map[string]string{"virtual_alias": extra} })
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	renameOver(t, extra, "user@x v2\n")
	f.waitValue(t, "virtual_alias", "user@x", "v2")
	writeFile(t, filepath.Join(other, "unrelated"), "k w\n")
	writeFile(t, extra, "user@x v3\n")
	f.waitValue(t, "virtual_alias", "user@x", "v3")
	if got := f.loaded(t); !slices.Equal(got, []string{"virtual_alias"}) {
		t.Errorf("loaded maps = %v: files beside a -map file are not maps", got)
	}
}

// TestRunCatchesUp: changes between LoadAll and Run are not lost.
func TestRunCatchesUp(t *testing.T) {
	f := newFixture(t, map[string]string{"virtual_alias": "user@x v1\n", "same": "k v\n"}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.path("virtual_alias"), "user@x v2 changed size\n")
	writeFile(t, f.path("added"), "k added\n")
	f.run(t)
	f.waitValue(t, "virtual_alias", "user@x", "v2 changed size")
	f.waitValue(t, "added", "k", "added")
	if n := strings.Count(f.log.String(), "map=same"); n != 1 {
		t.Errorf("unchanged map loaded %d times, want 1", n)
	}
}

// TestRunConcurrentReaders reloads a map generation after generation while
// readers look it up. In generation g every key's value is "vg". A reader
// must never miss a key, see another value, or see an older generation
// after a newer one (not even for another key).
func TestRunConcurrentReaders(t *testing.T) {
	const keys, gens, readers = 100, 25, 4
	gen := func(g int) string {
		var b strings.Builder
		for k := 0; k < keys; k++ {
			fmt.Fprintf(&b, "user%d@x v%d\n", k, g)
		}
		return b.String()
	}
	f := newFixture(t, map[string]string{"virtual_alias": gen(0)}, nil)
	if err := f.r.LoadAll(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	done := make(chan struct{})
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			last := 0
			for i := r; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				v, err := f.st.Lookup("virtual_alias", fmt.Sprintf("User%d+ext@X", i%keys))
				var g int
				if err == nil {
					_, err = fmt.Sscanf(v, "v%d", &g)
				}
				if err == nil && (g < last || g > gens || v != fmt.Sprintf("v%d+ext", g)) {
					err = fmt.Errorf("value %q after generation %d", v, last)
				}
				if err != nil {
					errs <- err
					return
				}
				last = g
			}
		}(r)
	}
	for g := 1; g <= gens; g++ {
		if g%3 == 0 {
			writeFile(t, f.path("virtual_alias"), gen(g))
		} else {
			renameOver(t, f.path("virtual_alias"), gen(g))
		}
		f.waitValue(t, "virtual_alias", fmt.Sprintf("user%d@x", keys-1), fmt.Sprintf("v%d", g))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good"), "k v\nK dup\n")
	writeFile(t, filepath.Join(dir, "bad"), "k v\nnovalue\n  \n")
	writeFile(t, filepath.Join(dir, "userdb"), "a@x uid=1|gid=1|home=/h\nb@x uid=1|gid=1|home=/h|shell=/bin/sh\n")
	writeFile(t, filepath.Join(dir, "bad.tmp"), "novalue\n") // ignored in a directory
	single := filepath.Join(t.TempDir(), "virtual")
	writeFile(t, single, "# c\n  orphan continuation\n")
	missing := filepath.Join(dir, "missing")

	errs, warnings := Check(dir, single, missing)
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	want := []string{
		filepath.Join(dir, "bad") + ":2: expected format",
		filepath.Join(dir, "userdb") + ":2: userdb: unknown field \"shell\"",
		single + ":2: continuation line",
		missing,
	}
	if len(got) != len(want) {
		t.Fatalf("Check errors:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) && !strings.Contains(got[i], want[i]) {
			t.Errorf("error %d = %q, want %q...", i, got[i], want[i])
		}
	}
	if !errors.Is(errs[3], os.ErrNotExist) {
		t.Errorf("missing path error %v", errs[3])
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0].Error(), filepath.Join(dir, "good")+":2: duplicate") {
		t.Errorf("warnings = %v", warnings)
	}
	if errs, _ := Check(filepath.Join(dir, "good")); len(errs) != 0 {
		t.Errorf("Check(good) = %v", errs)
	}
	// The repository's sample tables pass.
	if errs, _ := Check("../../testdata"); len(errs) != 0 {
		t.Errorf("Check(testdata) = %v", errs)
	}
}
