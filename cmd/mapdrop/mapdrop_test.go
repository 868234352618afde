package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

var userdb = map[string]string{
	"u1@some.domain":    "uid=UID|gid=GID|home=BASE/homes/u1",
	"mail@some.domain":  "uid=UID|gid=GID|home=BASE/homes/mail|mail=BASE/homes/mail/boxes/inbox/",
	"ext@some.domain":   "uid=UID|gid=GID|home=BASE/homes/ext",
	"link@some.domain":  "uid=UID|gid=GID|home=BASE/homes/link",
	"file@some.domain":  "uid=UID|gid=GID|home=BASE/homes/file",
	"gone@some.domain":  "uid=UID|gid=GID|home=BASE/homes/gone",
	"many@some.domain":  "uid=UID|gid=GID|home=BASE/homes/many",
	"kill@some.domain":  "uid=UID|gid=GID|home=BASE/homes/kill",
	"full@some.domain":  "uid=UID|gid=GID|home=BASE/full/home",
	"qs@some.domain":    "uid=UID|gid=GID|home=BASE/homes/qs|quota=100S",
	"qc@some.domain":    "uid=UID|gid=GID|home=BASE/homes/qc|quota=2C",
	"other@some.domain": "uid=5000|gid=5000|home=BASE/homes/other",
}

func randomMessage(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return append([]byte("Return-Path: <a@b>\r\nDelivered-To: u1@some.domain\r\n\r\n"), b...)
}

func TestDeliverCreatesMaildir(t *testing.T) {
	w := newWorld(t, userdb)
	home := w.home("u1")
	msg := randomMessage(t, 10000)
	w.run(bytes.NewReader(msg), "-d", "u1@some.domain", "", "u1@some.domain", "u1", "some.domain").want(t, 0, "")
	md := filepath.Join(home, "Maildir")
	if got := only(t, filepath.Join(md, "new")); !bytes.Equal(got, msg) {
		t.Errorf("delivered message differs from the input (%d vs %d bytes)", len(got), len(msg))
	}
	for _, p := range []string{md, md + "/tmp", md + "/new", md + "/cur"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != 0o700 || sys.Uid != w.uid || sys.Gid != w.gid {
			t.Errorf("%s: mode %v owner %d:%d, want 0700 %d:%d", p, st.Mode().Perm(), sys.Uid, sys.Gid, w.uid, w.gid)
		}
	}
	es, _ := os.ReadDir(filepath.Join(md, "new"))
	st, _ := os.Stat(filepath.Join(md, "new", es[0].Name()))
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != w.uid || sys.Gid != w.gid || st.Mode().Perm() != 0o600 {
		t.Errorf("message owner %d:%d mode %v, want %d:%d 0600", sys.Uid, sys.Gid, st.Mode().Perm(), w.uid, w.gid)
	}
	if !strings.HasSuffix(es[0].Name(), fmt.Sprintf(",S=%d", len(msg))) {
		t.Errorf("name %q lacks ,S=%d", es[0].Name(), len(msg))
	}
	line := regexp.MustCompile(`mapdrop\[\d+\]: user=u1@some.domain account=userdb:u1@some.domain folder=INBOX size=` +
		fmt.Sprint(len(msg)) + ` duration=\S+ status=sent exit=0\n$`)
	if l := w.log(); !line.MatchString(l) || strings.Count(l, "\n") != 1 {
		t.Errorf("log %q does not match %s", l, line)
	}
	// The Maildir from the mail= field, with missing parents under home.
	w.home("mail")
	w.run(strings.NewReader("x\n"), "-d", "mail@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(w.base, "homes/mail/boxes/inbox/new")); string(got) != "x\n" {
		t.Errorf("got %q", got)
	}
}

func TestRootSwitchesToOwner(t *testing.T) {
	roottest.Require(t)
	w := newWorld(t, userdb)
	home := w.home("u1")
	// home is owned by nobody and 0700: only a process that really became
	// nobody (or root) can deliver; the file must be nobody's.
	w.run(strings.NewReader("hello\n"), "-d", "u1@some.domain").want(t, 0, "")
	es, err := os.ReadDir(filepath.Join(home, "Maildir", "new"))
	if err != nil || len(es) != 1 {
		t.Fatalf("new/: %v %v", es, err)
	}
	st, _ := os.Stat(filepath.Join(home, "Maildir", "new", es[0].Name()))
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
		t.Errorf("message owned by %d:%d, want 65534:65534", sys.Uid, sys.Gid)
	}
}

func TestUnknownUser(t *testing.T) {
	w := newWorld(t, userdb)
	for _, u := range []string{"who@some.domain", "who+ext@some.domain", "no-such-mapdrop-user"} {
		r := w.run(strings.NewReader("x"), "-d", u)
		if r.code != 67 || r.stderr != "mapdrop: "+u+": user unknown\n" {
			t.Errorf("-d %s: exit %d, stderr %q; want 67, %q", u, r.code, r.stderr, "mapdrop: "+u+": user unknown\n")
		}
	}
	if l := w.log(); !strings.Contains(l, `user=who@some.domain size=0 duration=`) ||
		!strings.Contains(l, `status=bounced exit=67 reason="who@some.domain: user unknown"`) {
		t.Errorf("log %q", l)
	}
}

func TestDeadServerIsTemporary(t *testing.T) {
	w := newWorld(t, userdb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	for _, server := range []string{"unix:" + filepath.Join(w.base, "no.sock"), "inet:" + closedPort} {
		// "nobody" exists in passwd: a dead userdb must not fall back to it,
		// nor call anyone unknown.
		for _, u := range []string{"u1@some.domain", "who@some.domain", "nobody"} {
			r := w.runOpts(runOpts{stdin: strings.NewReader("x")}, "-s", server, "-d", u)
			r.want(t, 75, "unreachable")
		}
	}
}

func TestSystemAccount(t *testing.T) {
	w := newWorld(t, userdb)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody account")
	}
	if os.Geteuid() != 0 && fmt.Sprint(os.Getuid()) != nobody.Uid {
		// Neither root nor nobody: the identity check refuses.
		w.run(strings.NewReader("x"), "-d", "nobody").want(t, 75, "not as nobody's uid 65534")
		return
	}
	// nobody is not in userdb but in passwd, with home /nonexistent that it
	// may not create: a temporary failure, the mail stays queued.
	if _, err := os.Stat(nobody.HomeDir); err == nil {
		t.Skipf("nobody's home %s exists here", nobody.HomeDir)
	}
	w.run(strings.NewReader("x"), "-d", "nobody").want(t, 75, "mkdir "+nobody.HomeDir+": permission denied")
	w.run(strings.NewReader("x"), "-d", "nobody+ext").want(t, 75, "mkdir "+nobody.HomeDir+": permission denied")
	if l := w.log(); !strings.Contains(l, "account=passwd:nobody") {
		t.Errorf("log %q", l)
	}
	if os.Geteuid() != 0 {
		return // running as nobody
	}
	// root is in passwd, with uid 0: refused, the mail stays queued, and
	// nothing is written to root's Maildir (whether or not there is one).
	rootUser, err := user.Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(rootUser.HomeDir, "Maildir")
	before := maildirState(md)
	w.run(strings.NewReader("x"), "-d", "root").want(t, 75, "uid and gid must not be 0")
	if after := maildirState(md); after != before {
		t.Errorf("the refused delivery to root changed %s: %q, then %q", md, before, after)
	}
}

// maildirState lists the entries of a Maildir and of its new/ and tmp/,
// "-" for each that is missing.
func maildirState(md string) string {
	var b strings.Builder
	for _, sub := range []string{"", "new", "tmp"} {
		es, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			fmt.Fprintf(&b, "%s: -; ", sub)
			continue
		}
		fmt.Fprintf(&b, "%s:", sub)
		for _, e := range es {
			b.WriteString(" " + e.Name())
		}
		b.WriteString("; ")
	}
	return b.String()
}

func TestIdentityMismatch(t *testing.T) {
	roottest.Require(t)
	w := newWorld(t, userdb)
	w.home("u1")
	w.home("other")
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	// Started as nobody for a user whose uid is 5000: refused.
	r := w.runOpts(runOpts{stdin: strings.NewReader("x"), cred: nobody}, "-s", w.sock, "-d", "other@some.domain")
	r.want(t, 75, "running as uid 65534 gid 65534, not as other@some.domain's uid 5000 gid 5000")
	if _, err := os.Stat(filepath.Join(w.base, "homes/other/Maildir")); err == nil {
		t.Error("Maildir created despite the refusal")
	}
	// Started as nobody for a user who is nobody: delivered.
	r = w.runOpts(runOpts{stdin: strings.NewReader("y\n"), cred: nobody}, "-s", w.sock, "-d", "u1@some.domain")
	r.want(t, 0, "")
	if got := only(t, filepath.Join(w.base, "homes/u1/Maildir/new")); string(got) != "y\n" {
		t.Errorf("got %q", got)
	}
}

func TestSymlinkRefused(t *testing.T) {
	w := newWorld(t, userdb)
	elsewhere := filepath.Join(w.base, "elsewhere")
	w.mkdirOwned(elsewhere)
	home := w.home("link")
	// home/Maildir -> elsewhere
	if err := os.Symlink(elsewhere, filepath.Join(home, "Maildir")); err != nil {
		t.Fatal(err)
	}
	w.run(strings.NewReader("x"), "-d", "link@some.domain").want(t, 75, "refusing to follow symlink "+filepath.Join(home, "Maildir"))
	// Maildir/new -> elsewhere
	os.Remove(filepath.Join(home, "Maildir"))
	w.maildirFor("link")
	os.Remove(filepath.Join(home, "Maildir", "new"))
	if err := os.Symlink(elsewhere, filepath.Join(home, "Maildir", "new")); err != nil {
		t.Fatal(err)
	}
	w.run(strings.NewReader("x"), "-d", "link@some.domain").want(t, 75, "refusing to follow symlink "+filepath.Join(home, "Maildir", "new"))
	if fs := files(t, elsewhere); len(fs) != 0 {
		t.Errorf("written through the symlink: %v", fs)
	}
	if fs := files(t, filepath.Join(home, "Maildir", "tmp")); len(fs) != 0 {
		t.Errorf("tmp/ holds %d files", len(fs))
	}
}

func TestCannotCreate(t *testing.T) {
	w := newWorld(t, userdb)
	// A file where the Maildir belongs.
	home := w.home("file")
	if err := os.WriteFile(filepath.Join(home, "Maildir"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(home, "Maildir"), int(w.uid), int(w.gid))
	w.run(strings.NewReader("x"), "-d", "file@some.domain").want(t, 73, "is not a directory")
	// The home directory does not exist and the user may not create it:
	// temporary, so the mail waits for the administrator.
	w.run(strings.NewReader("x"), "-d", "gone@some.domain").want(t, 75, "homes/gone: permission denied")
}

func TestConcurrentDeliveries(t *testing.T) {
	w := newWorld(t, userdb)
	w.maildirFor("many")
	const n = 100
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = append([]byte(fmt.Sprintf("Subject: %d\n\n", i)), randomMessage(t, 100*i)...)
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := w.command(runOpts{stdin: bytes.NewReader(msgs[i])}, "-s", w.sock, "-d", "many@some.domain")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				results[i] = result{ee.ExitCode(), stderr.String()}
			case err != nil:
				results[i] = result{-1, err.Error()}
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("delivery %d: exit %d, %q", i, r.code, r.stderr)
		}
	}
	got := files(t, filepath.Join(w.base, "homes/many/Maildir/new"))
	if len(got) != n {
		t.Fatalf("%d files in new/, want %d", len(got), n)
	}
	byContent := map[string]bool{}
	for _, b := range got {
		byContent[string(b)] = true
	}
	for i, m := range msgs {
		if !byContent[string(m)] {
			t.Errorf("message %d not delivered byte-identical", i)
		}
	}
}

func TestKilledMidWrite(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("kill")
	cmd := w.command(runOpts{}, "-s", w.sock, "-d", "kill@some.domain")
	cmd.Stdin = nil
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Feed the message slowly: a chunk at a time, at most 64 MiB in all.
	chunk := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1024)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for range 1024 {
			if _, err := in.Write(chunk); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Wait (bounded) until part of the message is in tmp/.
	partial := testkit.Poll(testkit.Patience, func() bool {
		for _, b := range files(t, filepath.Join(md, "tmp")) {
			if len(b) > 0 {
				return true
			}
		}
		return false
	})
	cmd.Process.Kill()
	err = cmd.Wait()
	in.Close()
	<-fed
	if !partial {
		t.Fatalf("no partial message appeared in tmp/ (exit: %v)", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("mapdrop was not killed mid-write: %v", err)
	}
	if fs := files(t, filepath.Join(md, "new")); len(fs) != 0 {
		t.Errorf("new/ holds %d files after the kill", len(fs))
	}
	// 36 hours later, the next delivery removes the partial file.
	left := names(t, filepath.Join(md, "tmp"))
	for _, name := range left {
		ageFile(t, filepath.Join(md, "tmp", name), 37*time.Hour)
	}
	w.run(strings.NewReader("next\n"), "-d", "kill@some.domain").want(t, 0, "")
	if fs := names(t, filepath.Join(md, "tmp")); len(fs) != 0 || len(left) == 0 || !strings.Contains(w.log(), fmt.Sprintf(" tmp-removed=%d ", len(left))) {
		t.Errorf("after the next delivery tmp/ holds %d files; log %q", len(fs), w.log())
	}
}

func TestFullFilesystem(t *testing.T) {
	roottest.Require(t)
	w := newWorld(t, userdb)
	mnt := filepath.Join(w.base, "full")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	md := filepath.Join(mnt, "home", "Maildir")
	for _, s := range []string{"", "tmp", "new", "cur"} {
		w.mkdirOwned(filepath.Join(md, s))
	}
	w.mkdirOwned(filepath.Join(mnt, "home"))
	w.run(bytes.NewReader(randomMessage(t, 1<<20)), "-d", "full@some.domain").want(t, 75, "no space left on device")
	for _, s := range []string{"tmp", "new"} {
		if fs := files(t, filepath.Join(md, s)); len(fs) != 0 {
			t.Errorf("%s/ holds %d files", s, len(fs))
		}
	}
	// A message that fits is delivered.
	msg := randomMessage(t, 100<<10)
	w.run(bytes.NewReader(msg), "-d", "full@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(md, "new")); !bytes.Equal(got, msg) {
		t.Error("message differs")
	}
}

func TestExtensionFolders(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("ext", ".Work", ".Lists.Go")
	cases := []struct {
		args   []string
		folder string
	}{
		{[]string{"-d", "ext@some.domain", "work", "ext+work@some.domain", "ext", "some.domain"}, ".Work"},
		{[]string{"-d", "ext@some.domain", "WORK"}, ".Work"},
		{[]string{"-d", "ext+Work@some.domain"}, ".Work"},
		{[]string{"-d", "EXT+work@Some.Domain"}, ".Work"},
		{[]string{"-d", "ext@some.domain", "lists.go"}, ".Lists.Go"},
		{[]string{"-d", "ext+nosuch@some.domain"}, ""},
		{[]string{"-d", "ext@some.domain", "nosuch"}, ""},
		{[]string{"-d", "ext@some.domain", "../Work"}, ""},
		{[]string{"-d", "ext@some.domain", ".Work"}, ""},
		{[]string{"-d", "ext@some.domain", "Wo\x01rk"}, ""},
		{[]string{"-d", "ext@some.domain", "-work"}, ""}, // an argument, not an option
		{[]string{"-d", "ext@some.domain", ""}, ""},
	}
	want := map[string]int{}
	for _, c := range cases {
		w.run(strings.NewReader(strings.Join(c.args, " ")), c.args...).want(t, 0, "")
		want[c.folder]++
	}
	for folder, n := range want {
		if got := len(files(t, filepath.Join(md, folder, "new"))); got != n {
			t.Errorf("folder %q holds %d messages, want %d", folder, got, n)
		}
	}
	if l := w.log(); strings.Count(l, "folder=.Work ") != 4 || strings.Count(l, "folder=INBOX ") != 7 {
		t.Errorf("log %q", l)
	}
	// Another delimiter.
	w.runOpts(runOpts{stdin: strings.NewReader("d")}, "-s", w.sock, "-recipient-delimiter", "-", "-d", "ext-work@some.domain").want(t, 0, "")
	w.runOpts(runOpts{stdin: strings.NewReader("d"), env: []string{"MAPDROP_RECIPIENT_DELIMITER=-+"}}, "-s", w.sock, "-d", "ext-work@some.domain").want(t, 0, "")
	if got := len(files(t, filepath.Join(md, ".Work", "new"))); got != 6 {
		t.Errorf(".Work holds %d messages, want 6", got)
	}
}

func TestQuota(t *testing.T) {
	w := newWorld(t, userdb)
	// Bytes: 100S.
	mds := w.maildirFor("qs")
	w.run(strings.NewReader(strings.Repeat("a", 60)), "-d", "qs@some.domain").want(t, 0, "")
	w.run(strings.NewReader(strings.Repeat("b", 40)), "-d", "qs@some.domain").want(t, 0, "") // at the quota
	w.run(strings.NewReader("c"), "-d", "qs@some.domain").want(t, 75, "qs@some.domain: mailbox full")
	w.run(strings.NewReader("c"), "-quota-bounce", "-d", "qs@some.domain").want(t, 77, "qs@some.domain: mailbox full")
	if n := len(files(t, filepath.Join(mds, "new"))); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	if n := len(files(t, filepath.Join(mds, "tmp"))); n != 0 {
		t.Errorf("tmp/ holds %d files", n)
	}
	if got, _ := os.ReadFile(filepath.Join(mds, "maildirsize")); string(got) != "100S\n       0    0\n      60    1\n      40    1\n" {
		t.Errorf("maildirsize %q", got)
	}
	// Messages: 2C.
	mdc := w.maildirFor("qc")
	w.run(strings.NewReader("1"), "-d", "qc@some.domain").want(t, 0, "")
	w.run(strings.NewReader("2"), "-d", "qc@some.domain").want(t, 0, "")
	w.run(strings.NewReader("3"), "-d", "qc@some.domain").want(t, 75, "mailbox full")
	w.run(strings.NewReader("3"), "--quota-bounce", "-d", "qc@some.domain").want(t, 77, "mailbox full")
	if n := len(files(t, filepath.Join(mdc, "new"))); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	if got, _ := os.ReadFile(filepath.Join(mdc, "maildirsize")); string(got) != "2C\n       0    0\n       1    1\n       1    1\n" {
		t.Errorf("maildirsize %q", got)
	}
	if l := w.log(); !strings.Contains(l, "status=deferred exit=75") || !strings.Contains(l, "status=bounced exit=77") {
		t.Errorf("log %q", l)
	}
}

func TestUsage(t *testing.T) {
	w := newWorld(t, userdb)
	for _, args := range [][]string{
		{},
		{"-d"},
		{"-x", "-d", "u1@some.domain"},
		{"u1@some.domain"},
		{"-d", ""},
		{"-s", "bogus", "-d", "u1@some.domain"},
		{"-s", "unix:relative", "-d", "u1@some.domain"},
		{"-recipient-delimiter", "@", "-d", "u1@some.domain"},
		{"-recipient-delimiter", " ", "-d", "u1@some.domain"},
		{"-delimiter", "@", "-d", "u1@some.domain"}, // the older spelling
		{"-quota-bounce=maybe", "-d", "u1@some.domain"},
	} {
		r := w.runOpts(runOpts{stdin: strings.NewReader("x")}, args...)
		if r.code != 64 {
			t.Errorf("%q: exit %d, want 64 (%q)", args, r.code, r.stderr)
		}
		r.want(t, r.code, "usage: mapdrop")
	}
}

func TestEnvironment(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1")
	// The server from the environment.
	w.runOpts(runOpts{stdin: strings.NewReader("1"), env: []string{"MAPDROP_SERVER=" + w.sock}}, "-d", "u1@some.domain").want(t, 0, "")
	// -s wins over the environment.
	dead := "MAPDROP_SERVER=unix:" + filepath.Join(w.base, "dead.sock")
	w.runOpts(runOpts{stdin: strings.NewReader("2"), env: []string{dead}}, "-s", w.sock, "-d", "u1@some.domain").want(t, 0, "")
	w.runOpts(runOpts{stdin: strings.NewReader("3"), env: []string{dead}}, "-d", "u1@some.domain").want(t, 75, "unreachable")
	if n := len(files(t, filepath.Join(md, "new"))); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	// A broken environment is an administrator's mistake: 75, the mail stays
	// queued until it is fixed.
	w.runOpts(runOpts{stdin: strings.NewReader("4"), env: []string{"MAPDROP_SERVER=bogus"}}, "-d", "u1@some.domain").want(t, 75, "env MAPDROP_SERVER")
	w.runOpts(runOpts{stdin: strings.NewReader("4"), env: []string{"MAPDROP_RECIPIENT_DELIMITER=@"}}, "-s", w.sock, "-d", "u1@some.domain").want(t, 75, "env MAPDROP_RECIPIENT_DELIMITER")
	w.runOpts(runOpts{stdin: strings.NewReader("4"), env: []string{"MAPDROP_DELIMITER=@"}}, "-s", w.sock, "-d", "u1@some.domain").want(t, 75, "env MAPDROP_DELIMITER")
	if n := len(files(t, filepath.Join(md, "new"))); n != 2 {
		t.Errorf("%d messages after the broken environments, want 2", n)
	}
}

func TestStdinReadError(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1")
	dir, err := os.Open(w.base) // reading a directory fails with EISDIR
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	w.run(dir, "-d", "u1@some.domain").want(t, 75, "reading message")
	for _, s := range []string{"tmp", "new"} {
		if n := len(files(t, filepath.Join(md, s))); n != 0 {
			t.Errorf("%s/ holds %d files", s, n)
		}
	}
}

// TestDurableOrderStrace watches the real binary's system calls: the
// message file is fsynced, then renamed from tmp/ into new/, then new/ is
// fsynced, and only then does mapdrop exit 0.
func TestDurableOrderStrace(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_ROOT") == "1" {
			t.Fatal("strace is not installed (scripts/test installs it)")
		}
		t.Skip("strace is not installed")
	}
	w := newWorld(t, userdb)
	w.maildirFor("u1")
	out := filepath.Join(w.base, "strace.out")
	cmd := w.command(runOpts{stdin: strings.NewReader("durable\n")}, "-s", w.sock, "-d", "u1@some.domain")
	cmd.Args = append([]string{strace, "-f", "-qq", "-o", out, "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,exit_group"}, cmd.Args...)
	cmd.Path = strace
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "Operation not permitted") {
			t.Skip("strace cannot trace here:", stderr.String())
		}
		t.Fatalf("strace mapdrop: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	trace := joinResumed(string(raw))
	// Which descriptor is which: the directories new/ and tmp/ and the file.
	fdOf := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(trace)
		if m == nil {
			t.Fatalf("no %s in the trace:\n%s", re, trace)
		}
		return m[1]
	}
	newFd := fdOf(`openat\(\d+, "new", O_RDONLY\|O_NOFOLLOW\|O_CLOEXEC\|O_DIRECTORY\) = (\d+)`)
	tmpFd := fdOf(`openat\(\d+, "tmp", O_RDONLY\|O_NOFOLLOW\|O_CLOEXEC\|O_DIRECTORY\) = (\d+)`)
	fileFd := fdOf(`openat\(` + tmpFd + `, "[^"]+", O_WRONLY\|O_CREAT\|O_EXCL\|O_NOFOLLOW\|O_CLOEXEC, 0600\) = (\d+)`)
	var steps []string
	for _, line := range strings.Split(trace, "\n") {
		switch {
		case regexp.MustCompile(`\bfsync\(` + fileFd + `\)\s+= 0`).MatchString(line):
			steps = append(steps, "fsync file")
		case regexp.MustCompile(`\brenameat2?\(` + tmpFd + `, "[^"]+", ` + newFd + `, "[^"]+,S=8"`).MatchString(line):
			steps = append(steps, "rename tmp->new")
		case regexp.MustCompile(`\bfsync\(` + newFd + `\)\s+= 0`).MatchString(line):
			steps = append(steps, "fsync new/")
		case strings.Contains(line, "exit_group(0)"):
			steps = append(steps, "exit 0")
		}
	}
	want := []string{"fsync file", "rename tmp->new", "fsync new/", "exit 0"}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("steps %q, want %q\n%s", steps, want, trace)
	}
}

// mapdrop starts once per message, so what it links costs every delivery:
// Go's net package (its initialization, and the network poller it starts)
// was measured at about 0.1 ms of a 2 ms delivery. The lookup client is
// lookup/oneshot, which does without it. And the delivery agent shares
// formats with mapdropd through format/..., never by reaching into the
// server's tables/... packages. The Sieve engine (go-sieve, and the
// go-message charsets and x/text encodings it initializes, measured at
// several milliseconds per start) lives in mapdrop-sieve only, which
// mapdrop execs when a script applies.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net" || pkg == "net/netip" || pkg == "github.com/mapdrop/mapdrop/lookup/client" ||
			strings.HasPrefix(pkg, "github.com/mapdrop/mapdrop/tables/") ||
			strings.HasPrefix(pkg, "github.com/migadu/go-sieve") || strings.HasPrefix(pkg, "github.com/emersion/go-message") ||
			strings.HasPrefix(pkg, "golang.org/x/text") || pkg == "github.com/mapdrop/mapdrop/deliver/sieve" {
			t.Errorf("mapdrop links %s", pkg)
		}
	}
}

// joinResumed rejoins the system calls that strace -f splits when another
// thread runs in between ("PID call(args <unfinished ...>" ... "PID <...
// call resumed>rest"), so that each call is on one line, where it resumed.
func joinResumed(trace string) string {
	pending := map[string]string{}
	var out []string
	for _, line := range strings.Split(trace, "\n") {
		// strace -f writes "PID  call(...)": the PID, then two spaces.
		pid, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimLeft(rest, " ")
		if head, ok := strings.CutSuffix(line, " <unfinished ...>"); ok {
			pending[pid] = head
			continue
		}
		if strings.HasPrefix(rest, "<... ") {
			if _, tail, ok := strings.Cut(rest, " resumed>"); ok && pending[pid] != "" {
				line = pending[pid] + tail
				delete(pending, pid)
			}
		}
		out = append(out, line)
	}
	// A call still unfinished when the trace ends (the process exited in
	// it) is kept as it was written, not dropped.
	for _, head := range pending {
		out = append(out, head+" <unfinished ...>")
	}
	return strings.Join(out, "\n")
}

func TestJoinResumed(t *testing.T) {
	for _, sep := range []string{" ", "  "} {
		in := "7" + sep + "openat(8, \"new\", O_RDONLY <unfinished ...>\n9" + sep + "fsync(3) = 0\n7" + sep + "<... openat resumed>)             = 9\n7" + sep + "fsync(9) = 0"
		want := "9" + sep + "fsync(3) = 0\n7" + sep + "openat(8, \"new\", O_RDONLY)             = 9\n7" + sep + "fsync(9) = 0"
		if got := joinResumed(in); got != want {
			t.Errorf("joinResumed(%q) = %q, want %q", in, got, want)
		}
	}
	// The trace CI printed when the file's fsync was split (strace's real
	// format, two spaces after the PID): it must be found whole again.
	in := "6491  fsync(9 <unfinished ...>\n6486  --- SIGURG {si_signo=SIGURG} ---\n6491  <... fsync resumed>)              = 0"
	if got := joinResumed(in); !strings.Contains(got, "6491  fsync(9)              = 0") {
		t.Errorf("joinResumed(%q) = %q, want the fsync rejoined", in, got)
	}
}
