package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeOwned writes a file owned by the mailbox owner.
func (w *world) writeOwned(p, content string) {
	w.t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chown(p, int(w.uid), int(w.gid)); err != nil {
		w.t.Fatal(err)
	}
}

const sieveMsg = "Return-Path: <alice@example.org>\nTo: u1@some.domain\nSubject: [list] hi\n\nbody\n"

// A user with a script: mapdrop hands the delivery to mapdrop-sieve, which
// files by the envelope recipient's detail (the seed's ${recipient}) and
// the subject.
func TestSieveHandoff(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1", ".Lists")
	w.writeOwned(filepath.Join(w.home("u1"), ".dovecot.sieve"), `require ["fileinto","envelope","subaddress","imap4flags"];
if envelope :detail "to" "news" { fileinto :flags "\\Seen" "News"; stop; }
if header :contains "subject" "[list]" { fileinto "lists"; }`)
	w.run(strings.NewReader(sieveMsg), "-d", "u1@some.domain", "", "u1+news@some.domain", "u1", "some.domain").want(t, 0, "")
	if _, err := os.ReadDir(filepath.Join(md, ".News")); err == nil {
		t.Error(".News created without :create")
	}
	if got := only(t, filepath.Join(md, "cur")); string(got) != sieveMsg {
		t.Errorf("INBOX/cur: %q", got)
	}
	if !strings.Contains(w.log(), `fileinto-missing=\"News\"(INBOX)`) {
		t.Errorf("log: %s", w.log())
	}
	w.run(strings.NewReader(sieveMsg), "-d", "u1@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(md, ".Lists", "new")); string(got) != sieveMsg {
		t.Errorf(".Lists: %q", got)
	}
	// Dry run: prints, writes nothing.
	cmd := w.command(runOpts{stdin: strings.NewReader(sieveMsg)}, "-s", w.sock, "-n", "-d", "u1@some.domain")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "store: .Lists\n") || !strings.Contains(string(out), "script: "+filepath.Join(w.home("u1"), ".dovecot.sieve")) {
		t.Errorf("-n: %v\n%s", err, out)
	}
	if es, _ := os.ReadDir(filepath.Join(md, ".Lists", "new")); len(es) != 1 {
		t.Errorf("-n delivered: %d in .Lists/new", len(es))
	}
	// mapdrop-sieve missing: the mail stays queued.
	w.run(strings.NewReader(sieveMsg), "-sieve-bin", "/nonexistent/mapdrop-sieve", "-d", "u1@some.domain").
		want(t, 75, "a Sieve script applies, but /nonexistent/mapdrop-sieve cannot be run")
}

// A maildrop user without a Sieve script is told, in the log, that the
// filter is not run.
func TestMailfilterNote(t *testing.T) {
	w := newWorld(t, userdb)
	w.maildirFor("u1")
	w.writeOwned(filepath.Join(w.home("u1"), ".mailfilter"), "to Maildir/\n")
	w.run(strings.NewReader("x\n"), "-d", "u1@some.domain").want(t, 0, "")
	if !strings.Contains(w.log(), "note=") || !strings.Contains(w.log(), ".mailfilter") {
		t.Errorf("log: %s", w.log())
	}
}
