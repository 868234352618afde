package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// requireTool finds a program the test needs. Where the suite must run
// everything (CI, scripts/test), a missing one fails the test; elsewhere
// it is skipped.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_POSTFIX") != "" {
		t.Fatalf("%s not found (scripts/test installs it): %v", name, err)
	}
	t.Skipf("%s not found: %v", name, err)
	return ""
}

// Every command, and mapdropd itself, answers -h and --help with its
// usage on stdout and exit 0; -version prints the build.
func TestHelpAndVersion(t *testing.T) {
	runs := [][]string{{"-h"}, {"--help"}, {"help"}}
	for _, c := range commands {
		runs = append(runs, []string{c.name, "-h"}, []string{c.name, "--help"})
	}
	for _, args := range runs {
		code, out, errOut := mapdropd(t, "", args...)
		if code != 0 || !strings.Contains(out, "usage:") || errOut != "" {
			t.Errorf("mapdropd %v: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"-version"}, {"--version"}, {"version"}} {
		code, out, _ := mapdropd(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "mapdropd ") || !strings.Contains(out, " go1.") {
			t.Errorf("mapdropd %v: exit %d, %q; want the version", args, code, out)
		}
	}
	code, _, errOut := mapdropd(t, "", "serve", "-no-such-flag")
	if code != 64 || !strings.Contains(errOut, "usage: mapdropd serve") {
		t.Errorf("serve -no-such-flag: exit %d, stderr %q; want 64 and the usage", code, errOut)
	}
}

func TestCheckSummaryAndEmptySet(t *testing.T) {
	dir := writeTables(t, map[string]string{"virtual_alias": "a@x b@y\nc@x d@y\n", "virtual_mailbox_domains": "x OK\n"})
	if code, out, _ := mapdropd(t, "", "check", dir); code != 0 || out != "ok: 2 maps, 3 entries, 0 warnings\n" {
		t.Errorf("check: exit %d, %q; want the summary line", code, out)
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "virtual_alias~"), []byte("a b\n"), 0o644)
	if code, out, errOut := mapdropd(t, "", "check", empty); code != 66 || !strings.Contains(errOut, "no tables") {
		t.Errorf("check of a directory without tables: exit %d, %q %q; want 66", code, out, errOut)
	}
}

// explainTables has a continuation-line entry, a catch-all and an entry
// whose extension is copied.
var explainTables = map[string]string{
	"virtual_mailbox_domains": "some.domain OK\n",
	"virtual_alias": "# aliases\n" +
		"joe@example.com         joe.user@example.net\n" +
		"postmaster@some.domain  user1@some.domain,\n" +
		"    user2@some.domain\n" +
		"@catchall.domain        user2@some.domain\n",
}

func TestQueryExplain(t *testing.T) {
	dir := writeTables(t, explainTables)
	d := startDaemon(t, dir)
	file := filepath.Join(dir, "virtual_alias")
	for _, tc := range []struct {
		key  string
		code int
		want []string
	}{
		{"Postmaster@Some.Domain", 0, []string{
			"map virtual_alias (address lookup)",
			"try 1, full key: postmaster@some.domain: hit at " + file + ":3",
			"result: found",
			"answer: user1@some.domain,    user2@some.domain"}},
		{"anyone+x@catchall.domain", 0, []string{
			"map virtual_alias (address lookup)",
			"try 1, full key: anyone+x@catchall.domain: miss",
			"try 2, without extension: anyone@catchall.domain: miss",
			"try 3, @domain catch-all: @catchall.domain: hit at " + file + ":5",
			"result: found",
			"answer: user2@some.domain"}},
		{"joe+foo@example.com", 0, []string{
			"map virtual_alias (address lookup)",
			"try 1, full key: joe+foo@example.com: miss",
			"try 2, without extension: joe@example.com: hit at " + file + ":2",
			`extension "+foo" copied into the answer`,
			"result: found",
			"answer: joe.user+foo@example.net"}},
		{"nobody@nowhere.example", 1, []string{
			"map virtual_alias (address lookup)",
			"try 1, full key: nobody@nowhere.example: miss",
			"try 2, @domain catch-all: @nowhere.example: miss",
			"result: not found"}},
	} {
		code, out, errOut := mapdropd(t, "", "query", "-s", d.sock, "-explain", "virtual_alias", tc.key)
		if want := strings.Join(tc.want, "\n") + "\n"; code != tc.code || out != want {
			t.Errorf("query -explain virtual_alias %s: exit %d, stderr %q\n%s\nwant exit %d\n%s", tc.key, code, errOut, out, tc.code, want)
		}
	}
	if code, _, errOut := mapdropd(t, "", "query", "-s", d.sock, "-explain", "no_such_map", "x"); code != 78 || !strings.Contains(errOut, "unknown map") {
		t.Errorf("explain in an unknown map: exit %d, %q; want 78", code, errOut)
	}
	if code, _, _ := mapdropd(t, "", "query", "-s", d.sock, "-explain", "virtual_alias", "a", "b"); code != 64 {
		t.Errorf("explain of two keys: exit %d, want 64", code)
	}
}

// notifySocket listens where NOTIFY_SOCKET points, as systemd does, and
// returns the channel of the messages received.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func nextNotify(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no notification from mapdropd within 20s")
		return ""
	}
}

// mapdropd started by systemd-socket-activate (as systemd starts a
// socket-activated Type=notify service): the first lookup waits in the
// passed socket's backlog until mapdropd serves it, the named socket
// speaks tcp_table, and READY, RELOADING, STOPPING reach NOTIFY_SOCKET.
func TestSystemdSocketActivationAndNotify(t *testing.T) {
	activate := requireTool(t, "systemd-socket-activate")
	dir := writeTables(t, testTables)
	notifyPath, msgs := notifySocket(t)
	sock := filepath.Join(t.TempDir(), "mapdropd.sock")
	tcp := testkit.Addr(t)
	stderr := &testkit.Buffer{}
	cmd := exec.Command(activate, "-l", sock, "-l", tcp, "--fdname=mapdropd.socket:tcp_table=virtual_alias",
		"-E", "NOTIFY_SOCKET="+notifyPath, "-E", "GORACE="+os.Getenv("GORACE"),
		bin(t), "serve", "-tables", dir)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var child *os.Process
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr)
		}
	})
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The connection that starts mapdropd waits in the backlog meanwhile.
	if code, out, errOut := mapdropd(t, "", "query", "-s", "unix:"+sock, "virtual_mailbox", "user1@some.domain"); code != 0 || out != "some.domain/user1/Maildir/\n" {
		t.Fatalf("first lookup through the activated socket: exit %d %q %q", code, out, errOut)
	}
	if got, want := nextNotify(t, msgs), "READY=1\nSTATUS=serving 3 maps, 7 entries, no errors"; got != want {
		t.Errorf("first notification %q, want %q", got, want)
	}
	child = cmd.Process // systemd-socket-activate execs mapdropd in its place
	nc, err := net.DialTimeout("tcp", tcp, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte("get postmaster@some.domain\n"))
	buf := make([]byte, 200)
	n, _ := nc.Read(buf)
	nc.Close()
	if got, want := string(buf[:n]), "200 user1@some.domain,%20user2@some.domain\n"; got != want {
		t.Errorf("tcp_table on the socket named tcp_table=virtual_alias: %q, want %q", got, want)
	}
	if strings.Contains(stderr.String(), "/run/mapdrop") {
		t.Errorf("mapdropd also opened its default socket, though systemd passed sockets:\n%s", stderr)
	}

	// A reload by the watcher, not asked by systemd, refreshes STATUS=:
	// one more entry, then an edit that does not load.
	edit := func(text string) {
		tmp := filepath.Join(dir, ".virtual_alias.tmp")
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "virtual_alias")); err != nil {
			t.Fatal(err)
		}
	}
	edit(testTables["virtual_alias"] + "new@some.domain user1@some.domain\n")
	if got, want := nextNotify(t, msgs), "STATUS=serving 3 maps, 8 entries, no errors"; got != want {
		t.Errorf("notification after the watcher's reload %q, want %q", got, want)
	}
	edit(testTables["virtual_alias"] + "new@some.domain user1@some.domain\nbroken@some.domain\n")
	if got, want := nextNotify(t, msgs), "STATUS=serving 3 maps, 8 entries, 1 failing to load: virtual_alias"; got != want {
		t.Errorf("notification after a broken edit %q, want %q", got, want)
	}
	// An emptied file is held back until confirmed: STATUS= says so.
	edit("")
	held := "serving 3 maps, 8 entries, 1 held back (mapdropd confirm): virtual_alias"
	if got, want := nextNotify(t, msgs), "STATUS="+held; got != want {
		t.Errorf("notification after emptying a map %q, want %q", got, want)
	}

	child.Signal(syscall.SIGHUP)
	got := nextNotify(t, msgs)
	usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	usec, ok2 := strings.CutSuffix(usec, "\nSTATUS=reloading")
	if v, err := strconv.ParseInt(usec, 10, 64); !ok || !ok2 || err != nil || v <= 0 {
		t.Errorf("notification on SIGHUP %q, want RELOADING=1, MONOTONIC_USEC=N, STATUS", got)
	}
	if got, want := nextNotify(t, msgs), "READY=1\nSTATUS="+held; got != want {
		t.Errorf("notification after the reload %q, want %q", got, want)
	}
	child.Signal(syscall.SIGTERM)
	if got, want := nextNotify(t, msgs), "STOPPING=1\nSTATUS=stopping"; got != want {
		t.Errorf("notification on SIGTERM %q, want %q", got, want)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mapdropd after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("mapdropd did not exit within 20s of SIGTERM")
	}
	done <- nil // for the cleanup
}

// A restart with the same tables rewrites neither the cdb export nor the
// last good copy (same inode, same mtime): Postfix's daemons restart when
// a table file they opened is replaced. A changed table still is.
func TestRestartRewritesNothingUnchanged(t *testing.T) {
	dir := writeTables(t, map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"mailbox_command":         "you  /usr/local/bin/mapdrop -d ${USER}\n",
	})
	out := t.TempDir()
	d := startDaemon(t, dir, "-export", out, "-state", out)
	files := []string{filepath.Join(out, "mailbox_command.cdb"), filepath.Join(out, "mailbox_command.last-good")}
	var before []os.FileInfo
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("after the first start: %v", err)
		}
		before = append(before, fi)
	}
	time.Sleep(20 * time.Millisecond) // a rewrite would get another mtime
	if code := d.Stop(t); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	d.Start(t)
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil || !os.SameFile(before[i], fi) || !fi.ModTime().Equal(before[i].ModTime()) {
			t.Errorf("%s rewritten by a restart with the same tables (%v)", filepath.Base(f), err)
		}
	}
	d.Stop(t)
	if err := os.WriteFile(filepath.Join(dir, "mailbox_command"), []byte("you  v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	for i, f := range files {
		if fi, err := os.Stat(f); err != nil || os.SameFile(before[i], fi) {
			t.Errorf("%s not rewritten after a restart with a changed table (%v)", filepath.Base(f), err)
		}
	}
}

// A lookup made while mapdropd restarts waits in the backlog of the socket
// the service manager holds, and is answered by the new process: the
// socket is passed (LISTEN_FDS) to one mapdropd, which is stopped, then to
// the next, as systemd does with mapdropd.socket.
func TestRestartLookupWaitsInBacklog(t *testing.T) {
	dir := writeTables(t, testTables)
	path := filepath.Join(t.TempDir(), "mapdropd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	start := func() (*exec.Cmd, <-chan error, *testkit.Buffer) {
		t.Helper()
		cmd := exec.Command("sh", "-c", `export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" serve -tables "$1"`, bin(t), dir)
		cmd.ExtraFiles = []*os.File{lf}
		log := &testkit.Buffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, done, log
	}
	query := func() (int, string, string) {
		return mapdropd(t, "", "query", "-timeout", "60s", "-s", "unix:"+path, "virtual_mailbox", "user1@some.domain")
	}
	first, done, log := start()
	if code, out, errOut := query(); code != 0 || out != "some.domain/user1/Maildir/\n" {
		t.Fatalf("through the passed socket: exit %d %q %q\n%s", code, out, errOut, log)
	}
	first.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("first mapdropd after SIGTERM: %v\n%s", err, log)
	}
	// No server now: the lookup waits.
	type result struct {
		code     int
		out, err string
	}
	answered := make(chan result, 1)
	go func() {
		code, out, errOut := query()
		answered <- result{code, out, errOut}
	}()
	select {
	case r := <-answered:
		t.Fatalf("a lookup with no server running returned at once: %+v", r)
	case <-time.After(time.Second):
	}
	_, _, log2 := start()
	select {
	case r := <-answered:
		if r.code != 0 || r.out != "some.domain/user1/Maildir/\n" {
			t.Errorf("the lookup made during the restart: %+v\n%s", r, log2)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the lookup made during the restart was not answered by the new server\n%s", log2)
	}
}
