package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// These tests run the real mapdropd binary over real sockets, with Postfix's
// own postmap(1) as the client where the issue asks for it.

func TestMain(m *testing.M) { testkit.Main(m) }

// bin is the mapdropd under test, built with the race detector.
func bin(t *testing.T) string {
	t.Helper()
	return testkit.BuildRace(t).Mapdropd()
}

// tables written for these tests: a UTF-8 key, a catch-all, a value with
// spaces and commas.
var testTables = map[string]string{
	"virtual_mailbox": "user1@some.domain   some.domain/user1/Maildir/\n" +
		"user2@some.domain   some.domain/user2/Maildir/\n" +
		"ümläut@some.domain  some.domain/umlaut/Maildir/\n",
	"virtual_alias": "postmaster@some.domain  user1@some.domain, user2@some.domain\n" +
		"@catchall.domain        user2@some.domain\n",
	"virtual_mailbox_domains": "some.domain OK\nsomeother.domain OK\n",
}

func writeTables(t *testing.T, tables map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range tables {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// daemon is a running mapdropd and its listeners.
type daemon struct {
	*testkit.Mapdropd
	sock string // unix:/path of the socketmap listener
	inet string // inet:127.0.0.1:port of the socketmap listener
	tcp  string // 127.0.0.1:port of the tcp_table listener for virtual_alias
}

// startDaemon starts mapdropd serve on tablesDir, logging at debug, and
// waits until it answers. Cleanup stops it with SIGTERM and checks that it
// exits 0.
func startDaemon(t *testing.T, tablesDir string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{
		// run/mapdrop does not exist: serve creates the socket's directory.
		sock: "unix:" + filepath.Join(t.TempDir(), "run", "mapdrop", "mapdropd.sock"),
		inet: "inet:" + testkit.Addr(t),
		tcp:  testkit.Addr(t),
	}
	args := append([]string{"-tables", tablesDir, "-socketmap", d.sock, "-socketmap", d.inet,
		"-tcp", "virtual_alias=" + d.tcp, "-log-level", "debug"}, extra...)
	d.Mapdropd = testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin: bin(t), Args: args,
		ProbeAddr: d.sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
	})
	return d
}

// mapdropd runs the binary and returns its exit code, stdout and stderr.
func mapdropd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return runCmd(t, stdin, bin(t), args...)
}

func runCmd(t *testing.T, stdin, prog string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("%s %v: %v", prog, args, err)
	return -1, "", ""
}

// postmapConf returns a config directory with a minimal main.cf, so that
// postmap does not depend on the machine's /etc/postfix/main.cf.
func postmapConf(t *testing.T) string {
	t.Helper()
	postfixtest.Require(t)
	postfixtest.Postmap(t)
	dir := t.TempDir()
	cf := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(cf, []byte("compatibility_level = 3.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// postmap keeps re-reading a main.cf changed in the last seconds; an
	// old mtime spares every call those seconds.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(cf, old, old); err != nil {
		t.Fatal(err)
	}
	return dir
}

func postmapQ(t *testing.T, conf, key, table string) (int, string) {
	t.Helper()
	code, out, errOut := runCmd(t, "", "/usr/sbin/postmap", "-c", conf, "-q", key, table)
	if code != 0 && code != 1 {
		t.Fatalf("postmap -q %q %s: exit %d: %s", key, table, code, errOut)
	}
	if code == 1 && errOut != "" {
		// postmap exits 1 both for "not found" and for a server error; the
		// latter prints a warning/fatal line, which a not-found never does.
		t.Fatalf("postmap -q %q %s: exit 1 with an error: %s", key, table, errOut)
	}
	return code, strings.TrimSuffix(out, "\n")
}

// lookupCase is one postmap -q question and its expected answer.
type lookupCase struct {
	key   string
	found bool
	value string
}

func checkPostmap(t *testing.T, conf, table string, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		code, out := postmapQ(t, conf, c.key, table)
		if c.found && (code != 0 || out != c.value) {
			t.Errorf("postmap -q %q %s = exit %d %q; want exit 0 %q", c.key, table, code, out, c.value)
		}
		if !c.found && (code != 1 || out != "") {
			t.Errorf("postmap -q %q %s = exit %d %q; want exit 1, no output", c.key, table, code, out)
		}
	}
}

func TestPostmapSocketmapUnix(t *testing.T) {
	conf := postmapConf(t)
	d := startDaemon(t, writeTables(t, testTables))
	table := "socketmap:" + d.sock + ":virtual_mailbox"
	checkPostmap(t, conf, table, []lookupCase{
		{"user1@some.domain", true, "some.domain/user1/Maildir/"},
		{"USER1@Some.Domain", true, "some.domain/user1/Maildir/"}, // Postfix sends the capitals
		{"user1+news@some.domain", true, "some.domain/user1/Maildir/"},
		{"nobody@some.domain", false, ""},
		{"a b@some.domain", false, ""},
		{"ümläut@some.domain", true, "some.domain/umlaut/Maildir/"},
		{"ÜMLÄUT@some.domain", true, "some.domain/umlaut/Maildir/"},
	})
	// The server logs each query at debug level, and saw the key as sent.
	if !strings.Contains(d.Log(), "USER1@Some.Domain") {
		t.Errorf("debug log does not show the key as Postfix sent it:\n%s", d.Log())
	}
}

func TestPostmapSocketmapInet(t *testing.T) {
	conf := postmapConf(t)
	d := startDaemon(t, writeTables(t, testTables))
	table := "socketmap:" + d.inet + ":virtual_alias"
	checkPostmap(t, conf, table, []lookupCase{
		{"postmaster@some.domain", true, "user1@some.domain, user2@some.domain"},
		{"Postmaster@SOME.domain", true, "user1@some.domain, user2@some.domain"},
		{"anyone@catchall.domain", true, "user2@some.domain"},
		{"anyone@other.domain", false, ""},
	})
	// An unknown map is PERM: postmap reports a query error, never "not found".
	code, _, errOut := runCmd(t, "", "/usr/sbin/postmap", "-c", conf, "-q", "x", "socketmap:"+d.inet+":no_such_map")
	if code == 0 || !strings.Contains(errOut, "unknown map no_such_map") {
		t.Errorf("unknown map: exit %d, stderr %q; want a failure naming the map", code, errOut)
	}
}

func TestPostmapQueryStdinOneConnection(t *testing.T) {
	conf := postmapConf(t)
	d := startDaemon(t, writeTables(t, testTables))
	keys := "user1@some.domain\nnobody@some.domain\nUSER2@SOME.DOMAIN\na b@some.domain\nümläut@some.domain\n"
	code, out, errOut := runCmd(t, keys, "/usr/sbin/postmap", "-c", conf, "-q", "-", "socketmap:"+d.sock+":virtual_mailbox")
	want := "user1@some.domain\tsome.domain/user1/Maildir/\n" +
		"USER2@SOME.DOMAIN\tsome.domain/user2/Maildir/\n" +
		"ümläut@some.domain\tsome.domain/umlaut/Maildir/\n"
	if code != 0 || out != want {
		t.Errorf("postmap -q - = exit %d\n%s\nstderr %s\nwant\n%s", code, out, errOut, want)
	}
}

func TestPostmapTCPTable(t *testing.T) {
	conf := postmapConf(t)
	tables := map[string]string{
		"virtual_alias": testTables["virtual_alias"] +
			"ünï@some.domain   ünï-target@some.domain\n" +
			"pct%x@some.domain 100% sure\n",
		"virtual_mailbox_domains": testTables["virtual_mailbox_domains"],
	}
	d := startDaemon(t, writeTables(t, tables))
	table := "tcp:" + d.tcp
	checkPostmap(t, conf, table, []lookupCase{
		{"postmaster@some.domain", true, "user1@some.domain, user2@some.domain"},
		{"POSTMASTER@some.domain", true, "user1@some.domain, user2@some.domain"},
		{"ünï@some.domain", true, "ünï-target@some.domain"},
		{"pct%x@some.domain", true, "100% sure"},
		{"a b@some.domain", false, ""},
		{"nobody@nowhere.domain", false, ""},
	})
}

func TestQueryExitCodes(t *testing.T) {
	d := startDaemon(t, writeTables(t, testTables))
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-s", d.sock, "virtual_mailbox", "USER1@some.domain"}, 0, "some.domain/user1/Maildir/\n"},
		{[]string{"-s", d.inet, "virtual_mailbox", "nobody@some.domain"}, 1, ""},
		{[]string{"-s", d.sock, "no_such_map", "x"}, 78, ""},
		{[]string{"-s", d.sock, "virtual_mailbox", "user1@some.domain", "nobody@x"}, 1, "user1@some.domain\tsome.domain/user1/Maildir/\n"},
		{[]string{"-s", "unix:" + t.TempDir() + "/nothing.sock", "virtual_mailbox", "x"}, 75, ""},
		{[]string{"virtual_mailbox"}, 64, ""},
	}
	for _, c := range cases {
		code, out, errOut := mapdropd(t, "", append([]string{"query"}, c.args...)...)
		if code != c.code || out != c.out {
			t.Errorf("query %v = exit %d %q (stderr %q); want exit %d %q", c.args, code, out, errOut, c.code, c.out)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := writeTables(t, map[string]string{
		"virtual_mailbox": "good@x  v\n",
		"userdb":          "u@x uid=5000|gid=5000|home=/var/vmail/u\n",
	})
	if code, out, errOut := mapdropd(t, "", "check", dir); code != 0 {
		t.Errorf("check on good tables: exit %d\n%s%s", code, out, errOut)
	}
	dup := writeTables(t, map[string]string{"virtual_alias": "a@x  first\nA@X  second\n"})
	code, out, _ := mapdropd(t, "", "check", dup)
	if want := filepath.Join(dup, "virtual_alias") + ":2: duplicate"; code != 0 || !strings.Contains(out, "warning: "+want) {
		t.Errorf("check with a duplicate key: exit %d\n%s\nwant exit 0 and a warning %q", code, out, want)
	}
	bad := writeTables(t, map[string]string{
		"virtual_mailbox": "good@x  v\n# comment\nhalf-written@x\n",
		"userdb":          "u@x uid=0|gid=5000|home=/var/vmail/u\n",
	})
	code, out, _ = mapdropd(t, "", "check", bad)
	if code != 65 {
		t.Errorf("check on broken tables: exit %d, want 65 (EX_DATAERR)", code)
	}
	if code, _, _ := mapdropd(t, "", "check", bad, filepath.Join(bad, "missing")); code != 66 {
		t.Errorf("check with a missing path: exit %d, want 66 (EX_NOINPUT)", code)
	}
	for _, want := range []string{filepath.Join(bad, "virtual_mailbox") + ":3:", filepath.Join(bad, "userdb") + ":1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestServeMissingTablesDir(t *testing.T) {
	code, _, errOut := mapdropd(t, "", "serve", "-tables", filepath.Join(t.TempDir(), "missing"),
		"-socketmap", "unix:"+filepath.Join(t.TempDir(), "s.sock"))
	if code != 78 || !strings.Contains(errOut, "missing") {
		t.Errorf("serve with a missing -tables dir: exit %d, stderr %q; want 78 naming the directory", code, errOut)
	}
}

// waitAnswer polls query until it prints want.
func waitAnswer(t *testing.T, d *daemon, m, key, want string) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("query %s %s to print %q", m, key, want), func() bool {
		_, out, _ := mapdropd(t, "", "query", "-s", d.sock, m, key)
		return out == want+"\n"
	})
}

func TestReloadAndExport(t *testing.T) {
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"mailbox_command":         "you  /usr/local/bin/mapdrop -d ${USER}\n",
	})
	exportDir := t.TempDir()
	d := startDaemon(t, dir, "-export", exportDir)
	cdb := filepath.Join(exportDir, "mailbox_command.cdb")
	if _, err := os.Stat(cdb); err != nil {
		t.Fatalf("no snapshot after start: %v", err)
	}
	waitAnswer(t, d, "mailbox_command", "you", "/usr/local/bin/mapdrop -d ${USER}")

	// Rename-over edit: served and exported.
	tmp := filepath.Join(dir, ".mailbox_command.tmp")
	if err := os.WriteFile(tmp, []byte("you  /usr/local/bin/mapdrop -d ${USER} v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "mailbox_command")); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, d, "mailbox_command", "you", "/usr/local/bin/mapdrop -d ${USER} v2")
	var good []byte
	testkit.Eventually(t, "the snapshot rewritten after the edit", func() bool {
		good, _ = os.ReadFile(cdb)
		return bytes.Contains(good, []byte("v2"))
	})

	// A broken edit keeps the old table and the old snapshot, byte for byte.
	if err := os.WriteFile(filepath.Join(dir, "mailbox_command"), []byte("you\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the broken edit logged as file:line", func() bool {
		return strings.Contains(d.Log(), "mailbox_command:1:")
	})
	waitAnswer(t, d, "mailbox_command", "you", "/usr/local/bin/mapdrop -d ${USER} v2")
	if now, _ := os.ReadFile(cdb); !bytes.Equal(now, good) {
		t.Error("snapshot changed after a broken edit")
	}

	// SIGHUP reloads everything (here: picks up the fixed file even if the
	// watcher had not).
	if err := os.WriteFile(filepath.Join(dir, "mailbox_command"), []byte("you  v3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, d, "mailbox_command", "you", "v3")
}

func TestExportCommand(t *testing.T) {
	// A duplicate key: the first wins in the snapshot, as in lookups.
	dir := writeTables(t, map[string]string{"mailbox_command": "you  cmd one\nYOU  cmd two\n"})
	out := t.TempDir()
	if code, _, errOut := mapdropd(t, "", "export", "-tables", dir, out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	conf := postmapConf(t)
	checkPostmap(t, conf, "cdb:"+filepath.Join(out, "mailbox_command"), []lookupCase{
		{"you", true, "cmd one"},
		{"You", true, "cmd one"},
		{"me", false, ""},
	})
	if code, _, _ := mapdropd(t, "", "export", "-tables", dir, "-export-maps", "nope", out); code != 78 {
		t.Errorf("export of a map that does not exist: exit %d, want 78", code)
	}
}
