package export_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/cdb"
	"github.com/mapdrop/mapdrop/tables/export"
)

// pairs iterates over kv in the given order: k1, v1, k2, v2, ...
func pairs(kv ...string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if !yield(kv[i], kv[i+1]) {
				return
			}
		}
	}
}

// numbered yields n entries keyN@example.com -> value N.
func numbered(n int) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range n {
			if !yield("key"+strconv.Itoa(i)+"@example.com", "value "+strconv.Itoa(i)) {
				return
			}
		}
	}
}

func lookup(t *testing.T, path, key string) (string, bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, ok, err := cdb.Lookup(f, []byte(key))
	if err != nil {
		t.Fatalf("Lookup(%s, %q): %v", path, key, err)
	}
	return string(v), ok
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// temps lists the temporary files of table name in dir.
func temps(t *testing.T, dir, name string) []string {
	t.Helper()
	var out []string
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, "."+name+".cdb.tmp-") {
			out = append(out, n)
		}
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{
		"foo@example.com":   "bar",
		"ümläut@exämple.de": "ÜBER Value",
		"a b":               "with space",
		"empty":             "",
		"long":              strings.Repeat("x", 5000),
	}
	if err := export.Snapshot(dir, "users", maps.All(want)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users.cdb")
	if export.Path(dir, "users") != path {
		t.Errorf("Path = %q, want %q", export.Path(dir, "users"), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
	for k, v := range want {
		if got, ok := lookup(t, path, k); !ok || got != v {
			t.Errorf("%q = %q, %v; want %q", k, got, ok, v)
		}
	}
	if _, ok := lookup(t, path, "foo@example.com\x00"); ok {
		t.Error("key stored with a trailing NUL")
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("dir holds %q, want only users.cdb", got)
	}

	// A second snapshot replaces the first entirely.
	if err := export.Snapshot(dir, "users", pairs("new@example.com", "new")); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookup(t, path, "foo@example.com"); ok {
		t.Error("old key still there after a new snapshot")
	}
	if got, ok := lookup(t, path, "new@example.com"); !ok || got != "new" {
		t.Errorf("new key = %q, %v", got, ok)
	}
	// An empty table is a valid, empty cdb.
	if err := export.Snapshot(dir, "empty", pairs()); err != nil {
		t.Fatal(err)
	}
	if n := len(readFile(t, filepath.Join(dir, "empty.cdb"))); n != 2048 {
		t.Errorf("empty table: %d bytes, want 2048", n)
	}
}

func TestDuplicateFirstWins(t *testing.T) {
	dir := t.TempDir()
	if err := export.Snapshot(dir, "t", pairs("k", "first", "k", "second")); err != nil {
		t.Fatal(err)
	}
	if got, _ := lookup(t, filepath.Join(dir, "t.cdb"), "k"); got != "first" {
		t.Errorf("got %q, want first", got)
	}
}

func TestBadNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "../x", "nul\x00"} {
		err := export.Snapshot(dir, name, pairs("k", "v"))
		if failure.KindOf(err) != failure.Permanent || err == nil {
			t.Errorf("Snapshot(%q) = %v, want a permanent error", name, err)
		}
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("bad names created %q", got)
	}
}

func TestMissingDir(t *testing.T) {
	err := export.Snapshot(filepath.Join(t.TempDir(), "nonexistent"), "t", pairs("k", "v"))
	if err == nil || failure.KindOf(err) != failure.Temporary {
		t.Fatalf("err = %v, want a temporary error", err)
	}
}

// oldSnapshot writes a first version of table t and returns its bytes.
func oldSnapshot(t *testing.T, dir string) []byte {
	t.Helper()
	if err := export.Snapshot(dir, "t", pairs("old@example.com", "old value")); err != nil {
		t.Fatal(err)
	}
	return readFile(t, filepath.Join(dir, "t.cdb"))
}

func assertOld(t *testing.T, dir string, old []byte) {
	t.Helper()
	if got := readFile(t, filepath.Join(dir, "t.cdb")); !bytes.Equal(got, old) {
		t.Fatalf("t.cdb changed: %d bytes, was %d", len(got), len(old))
	}
}

func TestFailedSnapshotKeepsOld(t *testing.T) {
	dir := t.TempDir()
	old := oldSnapshot(t, dir)

	// A NUL byte, after enough entries that the temporary file has data.
	bad := func(yield func(string, string) bool) {
		for k, v := range numbered(20000) {
			if !yield(k, v) {
				return
			}
		}
		yield("bad\x00key", "v")
	}
	err := export.Snapshot(dir, "t", bad)
	if err == nil || failure.KindOf(err) != failure.Permanent {
		t.Fatalf("NUL in key: err = %v, want permanent", err)
	}
	assertOld(t, dir, old)
	if got := temps(t, dir, "t"); len(got) != 0 {
		t.Errorf("temporary files left: %q", got)
	}
	err = export.Snapshot(dir, "t", pairs("k", "bad\x00value"))
	if err == nil || failure.KindOf(err) != failure.Permanent {
		t.Fatalf("NUL in value: err = %v, want permanent", err)
	}
	assertOld(t, dir, old)

	// A panicking iterator: the panic goes on, the temporary file goes away.
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		export.Snapshot(dir, "t", func(yield func(string, string) bool) {
			yield("k", "v")
			panic("boom")
		})
	}()
	assertOld(t, dir, old)
	if got := temps(t, dir, "t"); len(got) != 0 {
		t.Errorf("temporary files left after panic: %q", got)
	}
}

// TestHelperProcess is not a test: it is the child process of the tests
// below, selected by MAPDROP_EXPORT_HELPER.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("MAPDROP_EXPORT_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	dir := os.Getenv("MAPDROP_EXPORT_DIR")
	switch mode {
	case "pause":
		// Write part of a large table, say so, then wait to be killed.
		// The wait is bounded, in case the parent is gone.
		entries := func(yield func(string, string) bool) {
			for i := range 1_000_000 {
				if i == 100_000 {
					fmt.Println("paused")
					for range 600 {
						time.Sleep(100 * time.Millisecond)
					}
					os.Exit(3)
				}
				if !yield("key"+strconv.Itoa(i)+"@example.com", "new "+strconv.Itoa(i)) {
					return
				}
			}
		}
		err := export.Snapshot(dir, "t", entries)
		fmt.Println("unexpected end:", err)
		os.Exit(4)
	case "fsize":
		// A file size limit makes every write past 64 KiB fail with
		// EFBIG, like a full disk. Go ignores SIGXFSZ already; be explicit.
		signal.Ignore(syscall.SIGXFSZ)
		lim := syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(5)
		}
		err := export.Snapshot(dir, "t", numbered(100_000))
		fmt.Printf("kind=%v err=%v\n", failure.KindOf(err), err)
		os.Exit(failure.ExitCode(err))
	}
	t.Fatalf("unknown helper mode %q", mode)
}

func helper(t *testing.T, mode, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAPDROP_EXPORT_HELPER="+mode, "MAPDROP_EXPORT_DIR="+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestDiskFullKeepsOld(t *testing.T) {
	dir := t.TempDir()
	old := oldSnapshot(t, dir)
	out, err := helper(t, "fsize", dir).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 75 {
		t.Fatalf("helper: %v, output %q; want exit 75 (temporary)", err, out)
	}
	if !bytes.Contains(out, []byte("file too large")) {
		t.Errorf("helper output %q does not mention EFBIG", out)
	}
	assertOld(t, dir, old)
	if got := temps(t, dir, "t"); len(got) != 0 {
		t.Errorf("temporary files left: %q", got)
	}
}

// startPaused runs a helper that writes a large snapshot of table t in dir
// and waits in the middle of it; it returns once the helper said so.
func startPaused(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := helper(t, "pause", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "paused\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	return cmd
}

func TestCrashMidExport(t *testing.T) {
	dir := t.TempDir()
	old := oldSnapshot(t, dir)
	cmd := startPaused(t, dir)
	tmp := temps(t, dir, "t")
	if len(tmp) != 1 {
		t.Fatalf("temporary files during the export: %q, want one", tmp)
	}
	fi, err := os.Stat(filepath.Join(dir, tmp[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 1<<20 {
		t.Fatalf("temporary file holds %d bytes; the helper should have written megabytes", fi.Size())
	}

	// A snapshot while the other writer is alive leaves its file alone.
	if err := export.Snapshot(dir, "other", pairs("k", "v")); err != nil {
		t.Fatal(err)
	}
	if got := temps(t, dir, "t"); len(got) != 1 {
		t.Fatalf("a live writer's temporary file was removed: %q", got)
	}

	// kill -9 in the middle of the write.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed", err)
	}
	assertOld(t, dir, old)
	if got, ok := lookup(t, filepath.Join(dir, "t.cdb"), "old@example.com"); !ok || got != "old value" {
		t.Errorf("old table after the crash: %q, %v", got, ok)
	}
	if got := temps(t, dir, "t"); len(got) != 1 {
		t.Fatalf("stale temporary files after the crash: %q, want one", got)
	}

	// The next snapshot of the table cleans up the stale file.
	if err := export.Snapshot(dir, "t", pairs("next@example.com", "next")); err != nil {
		t.Fatal(err)
	}
	if got := temps(t, dir, "t"); len(got) != 0 {
		t.Errorf("stale temporary files after the next snapshot: %q", got)
	}
	if got, ok := lookup(t, filepath.Join(dir, "t.cdb"), "next@example.com"); !ok || got != "next" {
		t.Errorf("next snapshot: %q, %v", got, ok)
	}
}

// WriteFile replaces a text file the way Snapshot replaces a cdb file.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, text := range []string{"first\n", "second, longer\n", ""} {
		if err := export.WriteFile(dir, "virtual_alias.last-good", text, export.FileMode); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "virtual_alias.last-good"))
		if err != nil || string(got) != text {
			t.Errorf("after WriteFile(%q): %q, %v", text, got, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "virtual_alias.last-good"))
	if err != nil || fi.Mode().Perm() != export.FileMode {
		t.Errorf("mode %v, %v; want %v", fi.Mode(), err, export.FileMode)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want only the one written", len(ents))
	}
	if err := export.WriteFile(dir, "../x", "y", export.FileMode); failure.KindOf(err) != failure.Permanent {
		t.Errorf("WriteFile(../x): %v, want Permanent", err)
	}
}

// WriteWith writes what its function writes, with the mode asked for; an
// identical file of that mode stays; an error or a panic of the function
// leaves the file in place and no temporary file, and the error keeps its
// kind.
func TestWriteWith(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.3.map")
	fill := func(text string) func(io.Writer) error {
		return func(w io.Writer) error {
			_, err := io.WriteString(w, text)
			return err
		}
	}
	if err := export.WriteWith(dir, "m.3.map", 0o640, fill("one\n")); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil || before.Mode().Perm() != 0o640 || string(readFile(t, path)) != "one\n" {
		t.Fatalf("after WriteWith: mode %v, %q, %v; want 0640, %q", before.Mode(), readFile(t, path), err, "one\n")
	}
	if err := export.WriteWith(dir, "m.3.map", 0o640, fill("one\n")); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("an identical WriteWith of the same mode replaced the file")
	}
	// The same bytes but another mode: replaced, with the new mode.
	if err := export.WriteWith(dir, "m.3.map", 0o600, fill("one\n")); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); os.SameFile(before, after) || after.Mode().Perm() != 0o600 {
		t.Errorf("WriteWith of mode 0600 over a file of mode 0640: same file %v, mode %v", os.SameFile(before, after), after.Mode())
	}

	bad := failure.Perm("bad entry")
	err = export.WriteWith(dir, "m.3.map", 0o640, func(w io.Writer) error {
		io.WriteString(w, "half")
		return bad
	})
	if !errors.Is(err, bad) || failure.KindOf(err) != failure.Permanent {
		t.Errorf("WriteWith whose function fails: %v (%v), want the Permanent error", err, failure.KindOf(err))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on")
			}
		}()
		export.WriteWith(dir, "m.3.map", 0o640, func(w io.Writer) error {
			io.WriteString(w, "half")
			panic("boom")
		})
	}()
	if got := string(readFile(t, path)); got != "one\n" {
		t.Errorf("after the failed writes: %q, want the file in place", got)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("dir holds %q, want only m.3.map", got)
	}
	if err := export.WriteWith(dir, "", 0o640, fill("x")); failure.KindOf(err) != failure.Permanent {
		t.Errorf("WriteWith of an empty name: %v, want Permanent", err)
	}
}

// RemoveStale removes the temporary files of writers that died, of any
// name, and leaves a live writer's (it holds an flock) and every other
// file.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := oldSnapshot(t, dir)
	write := func(n string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{".gone.cdb.tmp-1", ".m.3.map.tmp-2", ".manifest.tmp-3", // dead writers'
		".tmp-legacy", "x.tmp-1", ".x", "notes"} { // not temporary files of this package
		write(n)
	}
	cmd := startPaused(t, dir) // a live writer of t.cdb
	live := temps(t, dir, "t")
	if len(live) != 1 {
		t.Fatalf("temporary files of the live writer: %q, want one", live)
	}
	export.RemoveStale(dir)
	got := strings.Join(dirNames(t, dir), " ")
	want := []string{".tmp-legacy", live[0], ".x", "notes", "t.cdb", "x.tmp-1"}
	slices.Sort(want) // as os.ReadDir sorts
	if want := strings.Join(want, " "); got != want {
		t.Errorf("after RemoveStale: %s\nwant %s", got, want)
	}
	cmd.Process.Kill()
	cmd.Wait()
	export.RemoveStale(dir)
	if got := temps(t, dir, "t"); len(got) != 0 {
		t.Errorf("the dead writer's temporary file stayed: %q", got)
	}
	assertOld(t, dir, old)
}

// A snapshot or file identical to the one in place leaves it alone (same
// inode and mtime, no temporary file left); a different one replaces it,
// and so does an identical one whose mode is not 0644.
func TestUnchangedFileStays(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.cdb")
	if err := export.Snapshot(dir, "users", numbered(3000)); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := export.Snapshot(dir, "users", numbered(3000)); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("an identical snapshot replaced the file in place")
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("dir holds %q, want only users.cdb", got)
	}
	if err := export.Snapshot(dir, "users", numbered(3001)); err != nil {
		t.Fatal(err)
	}
	if changed, err := os.Stat(path); err != nil || os.SameFile(before, changed) {
		t.Errorf("a different snapshot did not replace the file (%v)", err)
	}
	if _, ok := lookup(t, path, "key3000@example.com"); !ok {
		t.Error("the new entry is not in the new snapshot")
	}

	if err := export.WriteFile(dir, "copy", "a b\n", export.FileMode); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy")
	before, _ = os.Stat(cp)
	if err := export.WriteFile(dir, "copy", "a b\n", export.FileMode); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(cp); !os.SameFile(before, after) {
		t.Error("an identical WriteFile replaced the file in place")
	}
	os.Chmod(cp, 0o600)
	if err := export.WriteFile(dir, "copy", "a b\n", export.FileMode); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(cp); os.SameFile(before, after) || after.Mode().Perm() != 0o644 {
		t.Errorf("an identical file of mode 0600 was left in place (mode now %v)", after.Mode())
	}
}
