package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// userLines returns n virtual_alias entries "userK@some.domain GEN".
func userLines(from, to int, gen string) string {
	var b strings.Builder
	for k := from; k < to; k++ {
		fmt.Fprintf(&b, "user%d@some.domain %s\n", k, gen)
	}
	return b.String()
}

// waitLog waits until the daemon's log holds s more than before times.
func waitLog(t *testing.T, d *daemon, what, s string, before int) {
	t.Helper()
	testkit.Eventually(t, what, func() bool { return strings.Count(d.Log(), s) > before })
}

// Issue 10, item 5: a slow writer rewrites a 4000-line map in place, whole
// lines at a time with pauses, for over a second, while a client keeps
// querying the real server over its socket. No answer may be NOTFOUND (every
// key is in both versions) or go back to the old value, and the server
// loads the map once, whole, after the writer closes it.
func TestSlowInPlaceWriterThroughServer(t *testing.T) {
	const n, chunks = 4000, 40
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"virtual_alias":           userLines(0, n, "v1@x"),
	})
	d := startDaemon(t, dir, "-log-level", "info")
	addr, err := sockaddr.Parse(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	total := 0
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(context.Background(), addr)
			if err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
				return
			}
			defer c.Close()
			seenNew, count := false, 0
			defer func() { mu.Lock(); total += count; mu.Unlock() }()
			for i := r * 1333; ; i += 11 {
				select {
				case <-stop:
					return
				default:
				}
				count++
				key := fmt.Sprintf("user%d@some.domain", i%n)
				v, err := c.Lookup(context.Background(), "virtual_alias", key)
				switch {
				case err == nil && v == "v2@x":
					seenNew = true
				case err == nil && v == "v1@x" && !seenNew:
				default:
					mu.Lock()
					problems = append(problems, fmt.Sprintf("lookup %d of %s: %q, %v (new version seen before: %v)", count, key, v, err, seenNew))
					mu.Unlock()
					return
				}
			}
		}()
	}
	fh, err := os.OpenFile(filepath.Join(dir, "virtual_alias"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for c := 0; c < chunks; c++ {
		if _, err := fh.WriteString(userLines(c*n/chunks, (c+1)*n/chunks, "v2@x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the writer took %v, want over 1s", took)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "new version served", func() bool {
		code, out, _ := mapdropd(t, "", "query", "-s", d.sock, "virtual_alias", fmt.Sprintf("user%d@some.domain", n-1))
		return code == 0 && out == "v2@x\n"
	})
	close(stop)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if total < 100 {
		t.Errorf("only %d lookups during the write", total)
	}
	if got := strings.Count(d.Log(), `msg="map loaded" map=virtual_alias`); got != 2 {
		t.Errorf("virtual_alias loaded %d times, want 2 (start, and once after the close)", got)
	}
	if strings.Contains(d.Log(), "HELD BACK") {
		t.Errorf("a load was held back: the file was read before its writer closed it")
	}
}

func metricsBody(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// `: > file`, a cut userdb line, and a shrink by more than half are held
// back by the running server (old answers, ERROR log, reload error metric);
// check reports the first two; "mapdropd confirm" lets it go live.
func TestHeldBackThroughServer(t *testing.T) {
	users := "u1@some.domain uid=5001|gid=5000|home=/var/vmail/u1\nu10@some.domain uid=5010|gid=5000|home=/var/vmail/u10\n"
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"virtual_alias":           userLines(0, 10, "v1@x"),
		"userdb":                  users,
	})
	maddr := testkit.Addr(t)
	d := startDaemon(t, dir, "-metrics", maddr)
	alias, userdb := filepath.Join(dir, "virtual_alias"), filepath.Join(dir, "userdb")
	query := func(m, key string) (int, string) {
		code, out, _ := mapdropd(t, "", "query", "-s", d.sock, m, key)
		return code, strings.TrimSuffix(out, "\n")
	}

	held := `level=ERROR msg="MAP LOAD HELD BACK: `
	before := strings.Count(d.Log(), held)
	// truncate(2) opens nothing, so no writer closes the file: not even
	// SIGHUP reads it while it counts as being written.
	if err := os.Truncate(alias, 0); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "truncate seen", `msg="map file being written: it is loaded once its writer closes it" map=virtual_alias`, 0)
	d.Signal(syscall.SIGHUP)
	waitLog(t, d, "SIGHUP leaves the file alone", `msg="map file is being written in place and not closed yet`, 0)
	if strings.Count(d.Log(), held) != before {
		t.Fatalf("truncate(2) loaded without a close")
	}
	if code, out := query("virtual_alias", "user3@some.domain"); code != 0 || out != "v1@x" {
		t.Errorf("query after truncate(2) and SIGHUP: exit %d %q, want the old value", code, out)
	}
	if err := os.WriteFile(alias, nil, 0o644); err != nil { // : > virtual_alias
		t.Fatal(err)
	}
	waitLog(t, d, "emptied map held back", held, before)
	want := fmt.Sprintf("map=virtual_alias file=%s old_entries=10 new_entries=0 confirm=\"mapdropd confirm %s\"", alias, alias)
	if !strings.Contains(d.Log(), want) {
		t.Errorf("held back log lacks %q", want)
	}
	if code, out := query("virtual_alias", "user3@some.domain"); code != 0 || out != "v1@x" {
		t.Errorf("query after the held back load: exit %d %q, want the old value", code, out)
	}
	if code, out, _ := mapdropd(t, "", "check", alias); code != 65 || !strings.Contains(out, alias+": it has no entries") ||
		!strings.Contains(out, "mapdropd confirm "+alias) {
		t.Errorf("check of the emptied file: exit %d %q, want 65 and the reason", code, out)
	}

	before = strings.Count(d.Log(), held)
	cut := strings.TrimSuffix(users, "0\n") // u10's home cut to /var/vmail/u1
	if err := os.WriteFile(userdb, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "cut userdb held back", held, before)
	if code, out := query("userdb", "u10@some.domain"); code != 0 || out != "uid=5010|gid=5000|home=/var/vmail/u10" {
		t.Errorf("userdb after the cut: exit %d %q, want u10's own home", code, out)
	}
	if code, out, _ := mapdropd(t, "", "check", dir); code != 65 || !strings.Contains(out, userdb+":2: its last line has no newline") {
		t.Errorf("check of the cut userdb: exit %d %q, want 65 at line 2", code, out)
	}
	if body := metricsBody(t, maddr); !strings.Contains(body, `mapdropd_reloads_total{map="virtual_alias",result="error"} 1`) ||
		!strings.Contains(body, `mapdropd_reloads_total{map="userdb",result="error"} 1`) {
		t.Errorf("held back loads not counted as reload errors:\n%s", body)
	}

	// The admin confirms the emptied map: it goes live without a SIGHUP.
	code, out, errOut := mapdropd(t, "", "confirm", alias)
	if code != 0 || !strings.HasPrefix(out, "confirmed "+alias+": 0 entries, sha256 ") {
		t.Fatalf("confirm: exit %d %q %q", code, out, errOut)
	}
	testkit.Eventually(t, "confirmed empty map live", func() bool { code, _ := query("virtual_alias", "user3@some.domain"); return code == 1 })
	if code, out, _ := mapdropd(t, "", "check", alias); code != 0 {
		t.Errorf("check of the confirmed file: exit %d %q, want 0", code, out)
	}
	// Refilled, then shrunk by more than half: held back again.
	os.WriteFile(alias, []byte(userLines(0, 10, "v2@x")), 0o644)
	testkit.Eventually(t, "refilled map live", func() bool { _, out := query("virtual_alias", "user9@some.domain"); return out == "v2@x" })
	before = strings.Count(d.Log(), held)
	os.WriteFile(alias, []byte(userLines(0, 4, "v3@x")), 0o644)
	waitLog(t, d, "shrunk map held back", held, before)
	if _, out := query("virtual_alias", "user0@some.domain"); out != "v2@x" {
		t.Errorf("shrunk map went live: %q", out)
	}
	if code, _, errOut := mapdropd(t, "", "confirm", filepath.Join(dir, "missing")); code != 66 || errOut == "" {
		t.Errorf("confirm of a missing file: exit %d %q, want 66", code, errOut)
	}
	os.WriteFile(alias, []byte("novalue\n"), 0o644)
	if code, out, errOut := mapdropd(t, "", "confirm", alias); code != 65 || !strings.Contains(out, alias+":1: expected format") ||
		!strings.Contains(errOut, "not confirmed") {
		t.Errorf("confirm of a file with errors: exit %d %q %q, want 65 and the error", code, out, errOut)
	}
}

// At startup a cut file is served from its last good copy (-state); with
// no copy it is refused (lookups in it are PERM), while an empty file is
// served with a warning.
func TestStartWithCutFiles(t *testing.T) {
	state := t.TempDir()
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"userdb":                  "u1@some.domain uid=5001|gid=5000|home=/var/vmail/u1\nu10@some.domain uid=5010|gid=5000|home=/var/vmail/u10\n",
	})
	d := startDaemon(t, dir, "-state", state)
	d.Stop(t)
	os.WriteFile(filepath.Join(dir, "userdb"), []byte("u1@some.domain uid=5001|gid=5000|home=/var/vmail/u1\nu10@some.domain uid=5010|gid=5000|home=/var/vmail/u1"), 0o644)
	os.WriteFile(filepath.Join(dir, "virtual_alias"), nil, 0o644)
	d.Start(t)
	if code, out, _ := mapdropd(t, "", "query", "-s", d.sock, "userdb", "u10@some.domain"); code != 0 || !strings.Contains(out, "home=/var/vmail/u10") {
		t.Errorf("userdb from the last good copy: exit %d %q", code, out)
	}
	for _, want := range []string{"MAP LOAD HELD BACK", "MAP SERVED FROM ITS LAST GOOD COPY"} {
		if !strings.Contains(d.Log(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	d.Stop(t)

	d2 := startDaemon(t, dir) // no -state: no copy
	if code, _, errOut := mapdropd(t, "", "query", "-s", d2.sock, "userdb", "u10@some.domain"); code != failure.Permanent.ExitCode() {
		t.Errorf("cut userdb without a copy: exit %d %s, want PERM (78)", code, errOut)
	}
	if code, _, _ := mapdropd(t, "", "query", "-s", d2.sock, "virtual_alias", "x@some.domain"); code != 1 {
		t.Errorf("empty map at startup: exit %d, want served (not found, 1)", code)
	}
	if !strings.Contains(d2.Log(), `level=WARN msg="map is empty: every lookup in it answers not found" map=virtual_alias`) {
		t.Errorf("no warning for the empty map")
	}
}

// check fails (65) on a dangling symbolic link and a symbolic link loop,
// reports a FIFO without blocking on it, and warns about a byte order mark
// at file:1.
func TestCheckLinksFIFOAndBOM(t *testing.T) {
	dir := writeTables(t, map[string]string{"virtual_alias": "\xEF\xBB\xBFa@x b@y\n"})
	code, out, _ := mapdropd(t, "", "check", dir)
	if code != 0 || !strings.Contains(out, "warning: "+filepath.Join(dir, "virtual_alias")+":1: UTF-8 byte order mark") {
		t.Errorf("check with a BOM: exit %d %q, want 0 and a warning at line 1", code, out)
	}
	os.Symlink("nowhere", filepath.Join(dir, "dangling"))
	os.Symlink("loop", filepath.Join(dir, "loop"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{dir}, {filepath.Join(dir, "fifo")}, {filepath.Join(dir, "loop")}, {filepath.Join(dir, "dangling")}} {
		code, out, _ := mapdropd(t, "", append([]string{"check"}, args...)...)
		if code != 65 {
			t.Errorf("check %v: exit %d %q, want 65", args, code, out)
		}
	}
	_, out, _ = mapdropd(t, "", "check", dir)
	for _, want := range []string{"dangling: dangling symbolic link", "loop: symbolic link loop", "fifo: not a regular file (a FIFO)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// serve logs them, does not hang on the FIFO, and serves the rest.
	os.WriteFile(filepath.Join(dir, "virtual_mailbox_domains"), []byte("some.domain OK\n"), 0o644)
	d := startDaemon(t, dir)
	if code, out, _ := mapdropd(t, "", "query", "-s", d.sock, "virtual_alias", "a@x"); code != 0 || out != "b@y\n" {
		t.Errorf("first key of a file with a BOM: exit %d %q", code, out)
	}
	for _, want := range []string{"level=ERROR msg=\"" + filepath.Join(dir, "dangling") + ": dangling symbolic link",
		"level=ERROR msg=\"" + filepath.Join(dir, "fifo") + ": not a regular file (a FIFO)"} {
		if !strings.Contains(d.Log(), want) {
			t.Errorf("serve's log lacks %q", want)
		}
	}
}

// The tables directory deleted and created again is watched again; with its
// parent gone as well, SIGHUP re-arms the watch.
func TestTablesDirectoryComesBack(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "etc")
	dir := filepath.Join(parent, "tables")
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir, 0o755)
	write("virtual_mailbox_domains", "some.domain OK\n")
	write("virtual_alias", "a@some.domain v1\n")
	d := startDaemon(t, dir)
	value := func() string {
		_, out, _ := mapdropd(t, "", "query", "-s", d.sock, "virtual_alias", "a@some.domain")
		return strings.TrimSuffix(out, "\n")
	}
	os.RemoveAll(dir)
	waitLog(t, d, "removal logged", "a directory of map files was removed or renamed", 0)
	os.Mkdir(dir, 0o755)
	write("virtual_mailbox_domains", "some.domain OK\n")
	write("virtual_alias", "a@some.domain v2\n")
	testkit.Eventually(t, "v2 from the recreated directory", func() bool { return value() == "v2" })

	// Parent and directory gone: nothing watches the place until SIGHUP.
	removed := `msg="map file removed, keeping last good table" map=virtual_alias`
	before := strings.Count(d.Log(), removed)
	os.RemoveAll(parent)
	waitLog(t, d, "file removal seen", removed, before)
	waitLog(t, d, "parent not watchable", `msg="cannot watch a parent directory" dir=`+parent+" ", 0)
	time.Sleep(200 * time.Millisecond)
	os.MkdirAll(dir, 0o755)
	write("virtual_mailbox_domains", "some.domain OK\n")
	write("virtual_alias", "a@some.domain v3\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "v3 after SIGHUP", func() bool { return value() == "v3" })
	write("virtual_alias", "a@some.domain v4\n")
	testkit.Eventually(t, "v4 through the re-armed watch", func() bool { return value() == "v4" })
}

// check -state DIR compares with the last good copies serve -state wrote.
func TestCheckState(t *testing.T) {
	state := t.TempDir()
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"virtual_alias":           userLines(0, 10, "v1@x"),
	})
	d := startDaemon(t, dir, "-state", state)
	d.Stop(t)
	alias := filepath.Join(dir, "virtual_alias")
	os.WriteFile(alias, []byte(userLines(0, 3, "v2@x")), 0o644)
	code, out, _ := mapdropd(t, "", "check", "-state", state, dir)
	if code != 65 || !strings.Contains(out, alias+": it drops more than half of the entries (10 in the last good copy, 3 in the file)") {
		t.Errorf("check -state: exit %d %q, want 65 and the counts", code, out)
	}
	if code, out, _ := mapdropd(t, "", "check", dir); code != 0 {
		t.Errorf("check without -state: exit %d %q, want 0", code, out)
	}
}

// residentBytes reads process_resident_memory_bytes from the server's
// metrics.
func residentBytes(t *testing.T, addr string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsBody(t, addr), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no process_resident_memory_bytes in the metrics")
	return 0
}

// Issue 10, item 7: a big map replaced by a small one gives its memory
// back at once, measured on a real server (built without the race
// detector, whose shadow memory would blur RSS).
func TestBigMapShrinkReturnsMemory(t *testing.T) {
	const n = 300_000
	var b strings.Builder
	for k := range n {
		fmt.Fprintf(&b, "user%07d@some.domain  some.domain/user%07d/Maildir/\n", k, k)
	}
	dir := writeTables(t, map[string]string{"virtual_mailbox_domains": "some.domain OK\n", "virtual_mailbox": b.String()})
	sock := "unix:" + filepath.Join(t.TempDir(), "s.sock")
	maddr := testkit.Addr(t)
	d := testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin:       testkit.Build(t).Mapdropd(),
		Args:      []string{"-tables", dir, "-socketmap", sock, "-metrics", maddr},
		ProbeAddr: sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
	})
	loaded := residentBytes(t, maddr)
	mailbox := filepath.Join(dir, "virtual_mailbox")
	if err := os.WriteFile(mailbox, []byte("user0000001@some.domain  small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := mapdropd(t, "", "confirm", mailbox); code != 0 {
		t.Fatalf("confirm: exit %d %s %s", code, out, errOut)
	}
	testkit.Eventually(t, "memory returned", func() bool {
		return strings.Contains(d.Log(), `msg="returned the memory of the dropped entries to the system" map=virtual_mailbox dropped=299999`)
	})
	after := residentBytes(t, maddr)
	t.Logf("server RSS: %.0f MB with %d entries, %.0f MB right after a 1-entry file replaced them", loaded/(1<<20), n, after/(1<<20))
	if after > loaded/2 {
		t.Errorf("RSS %.0f MB after the big map went, want at most half of the %.0f MB it had", after/(1<<20), loaded/(1<<20))
	}
}
