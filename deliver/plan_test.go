package deliver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomaildir "github.com/emersion/go-maildir"
	"github.com/mapdrop/mapdrop/deliver/msghdr"
	"github.com/mapdrop/mapdrop/deliver/sieve"
	"github.com/mapdrop/mapdrop/failure"
)

const sieveMsg = "Return-Path: <alice@example.org>\n" +
	"From: alice@example.org\n" +
	"To: u@d\n" +
	"Subject: hello\n" +
	"Message-ID: <m1@example.org>\n" +
	"\n" +
	"body\n"

// sieveFixture is a fixture whose agent runs the real Sieve engine on
// HOME/.dovecot.sieve, with a fake sendmail that appends each submission
// (arguments, then the message) to a file.
func sieveFixture(t *testing.T, script string) (*fixture, string) {
	t.Helper()
	f := newFixture(t, "")
	if err := os.WriteFile(filepath.Join(f.home, ".dovecot.sieve"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "sent")
	fake := filepath.Join(dir, "sendmail")
	os.WriteFile(fake, []byte("#!/bin/sh\n{ echo \"ARGS $*\"; cat; echo '.'; } >> "+out+"\n"), 0o755)
	f.preset = 1
	f.agent.Filter = sieve.Filter{Delimiters: "+"}
	f.agent.Sendmail = fake
	return f, out
}

// readFolder returns the messages of a folder as go-maildir reads them:
// content by file name, and flags.
func readFolder(t *testing.T, path string) (msgs []string, flags []string) {
	t.Helper()
	d := gomaildir.Dir(path)
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	if _, err := d.Unseen(); err != nil { // moves new/ into cur/ as an IMAP server would
		t.Fatal(err)
	}
	ms, err := d.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		rc, err := m.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		msgs = append(msgs, b.String())
		var fl []string
		for _, x := range m.Flags() {
			fl = append(fl, string(x))
		}
		flags = append(flags, strings.Join(fl, ""))
	}
	return msgs, flags
}

func TestSieveStores(t *testing.T) {
	f, _ := sieveFixture(t, `require ["fileinto","imap4flags","mailbox","copy"];
fileinto :copy :flags ["\\Seen","\\Flagged"] "Lists";
fileinto :create "Archive/2026";
fileinto "Nope";
keep;`)
	os.MkdirAll(filepath.Join(f.home, "Maildir", ".lists", "cur"), 0o700)
	f.preset = 2
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(f.home, "Maildir")
	for dir, wantFlags := range map[string]string{".lists": "FS", ".Archive.2026": "", "": ""} {
		msgs, flags := readFolder(t, filepath.Join(md, dir))
		if len(msgs) != 1 || msgs[0] != sieveMsg || flags[0] != wantFlags {
			t.Errorf("folder %q: %d messages, flags %q", dir, len(msgs), flags)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(md, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %v", ents)
	}
	log := f.log(t)
	if !strings.Contains(log, `fileinto-missing=\"Nope\"(INBOX)`) || !strings.Contains(log, "folder=.lists:FS,.Archive.2026,INBOX") {
		t.Errorf("log: %s", log)
	}
}

func TestSieveDiscardRejectBroken(t *testing.T) {
	f, _ := sieveFixture(t, `discard;`)
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 0 {
		t.Errorf("discard stored %d", len(msgs))
	}
	if !strings.Contains(f.log(t), "sieve=discard") {
		t.Errorf("log: %s", f.log(t))
	}

	f, _ = sieveFixture(t, `require "reject"; reject "not here, go away";`)
	err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg))
	if failure.KindOf(err) != failure.Bounce || err.Error() != "not here, go away" {
		t.Errorf("reject: %v", err)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 0 {
		t.Errorf("reject stored %d", len(msgs))
	}

	f, _ = sieveFixture(t, "require \"fileinto\";\nif header :is \"subject\" \"hello\" {\n  fileinto \"A\"\n}\n")
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 1 {
		t.Errorf("broken script: %d in INBOX", len(msgs))
	}
	if !strings.Contains(f.log(t), ".dovecot.sieve:3:12:") {
		t.Errorf("log lacks the position: %s", f.log(t))
	}
}

func TestSieveExtensionKeep(t *testing.T) {
	f, _ := sieveFixture(t, `require ["envelope","subaddress","fileinto"]; if envelope :detail "to" "work" { keep; }`)
	os.MkdirAll(filepath.Join(f.home, "Maildir", ".work"), 0o700)
	f.preset = 2
	f.agent.Recipient = "u+work@d"
	if err := f.agent.Deliver(context.Background(), "u@d", "work", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir", ".work")); len(msgs) != 1 {
		t.Errorf("keep with extension: %d in .work", len(msgs))
	}
}

func TestSieveRedirectOnce(t *testing.T) {
	f, out := sieveFixture(t, `require "copy"; redirect :copy "carol@example.net"; redirect "dave@example.net";`)
	for i := 0; i < 2; i++ {
		if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
			t.Fatal(err)
		}
	}
	sent, _ := os.ReadFile(out)
	if n := strings.Count(string(sent), "ARGS"); n != 2 {
		t.Errorf("%d submissions, want 2 (the second delivery is a retry):\n%s", n, sent)
	}
	if !strings.Contains(string(sent), "ARGS -i -f alice@example.org -- carol@example.net\nX-Sieve-Redirected-From: u@d\nReturn-Path:") {
		t.Errorf("submission:\n%s", sent)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 0 {
		t.Errorf("redirect (without :copy) kept %d", len(msgs))
	}
	// A loop: the message already passed this recipient's redirect.
	os.Remove(out)
	looped := "X-Sieve-Redirected-From: u@d\n" + strings.Replace(sieveMsg, "m1@", "m2@", 1)
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(looped)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("looping message redirected again")
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 1 {
		t.Errorf("looping message not kept: %d", len(msgs))
	}
}

func TestSieveVacation(t *testing.T) {
	f, out := sieveFixture(t, `require "vacation"; vacation :days 2 :subject "Away" "I am away.";`)
	for i := 0; i < 2; i++ {
		if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
			t.Fatal(err)
		}
	}
	list := strings.Replace(sieveMsg, "Subject:", "List-Id: <l.example.org>\nSubject:", 1)
	list = strings.Replace(list, "alice@", "bob@", -1)
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(list)); err != nil {
		t.Fatal(err)
	}
	sent, _ := os.ReadFile(out)
	s := string(sent)
	if strings.Count(s, "ARGS") != 1 || !strings.Contains(s, "ARGS -i -f <> -- alice@example.org\n") ||
		!strings.Contains(s, "In-Reply-To: <m1@example.org>") || !strings.Contains(s, "Auto-Submitted: auto-replied") ||
		!strings.Contains(s, "Subject: Away") || !strings.Contains(s, "\nI am away.\n") {
		t.Errorf("replies:\n%s", s)
	}
	if msgs, _ := readFolder(t, filepath.Join(f.home, "Maildir")); len(msgs) != 3 {
		t.Errorf("vacation kept %d, want 3", len(msgs))
	}
}

func TestDryRun(t *testing.T) {
	f, out := sieveFixture(t, `require ["fileinto","mailbox","imap4flags"]; redirect "c@x"; fileinto :create :flags "\\Seen" "New"; vacation_typo;`)
	var buf bytes.Buffer
	f.agent.DryRun = &buf
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "error: "+filepath.Join(f.home, ".dovecot.sieve")+":1:") || !strings.Contains(buf.String(), "store: INBOX\n") {
		t.Errorf("dry run of a broken script:\n%s", buf.String())
	}
	os.WriteFile(filepath.Join(f.home, ".dovecot.sieve"), []byte(`require ["fileinto","mailbox","imap4flags","copy"]; redirect :copy "c@x"; fileinto :create :flags "\\Seen" "New";`), 0o600)
	buf.Reset()
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader(sieveMsg)); err != nil {
		t.Fatal(err)
	}
	want := "account: userdb:u@d"
	for _, w := range []string{want, "maildir: " + filepath.Join(f.home, "Maildir") + "/ (would be created)", "redirect: c@x", "store: .New flags=S (would be created)", "envelope: from=<alice@example.org> to=<u@d>"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("dry run lacks %q:\n%s", w, buf.String())
		}
	}
	if ents, _ := os.ReadDir(f.home); len(ents) != 1 {
		t.Errorf("dry run wrote into home: %v", ents)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("dry run sent mail")
	}
}

func TestReplyTo(t *testing.T) {
	for _, c := range []struct{ from, sender, want string }{
		{"Alice <alice@example.net>", "alice@example.net", "Alice <alice@example.net>"},
		{"\"Alice A.\" <ALICE@example.net>", "alice@example.net", "\"Alice A.\" <ALICE@example.net>"},
		{"alice@example.net", "alice@example.net", "alice@example.net"},
		{"Bob <bob@example.net>", "alice@example.net", "alice@example.net"},
		{"Alice <alice@example.net>, Bob <bob@example.net>", "bob@example.net", "bob@example.net"},
		{"", "alice@example.net", "alice@example.net"},
	} {
		msg := "From: " + c.from + "\n\nbody\n"
		if c.from == "" {
			msg = "Subject: x\n\nbody\n"
		}
		h, err := msghdr.Read(strings.NewReader(msg), int64(len(msg)))
		if err != nil {
			t.Fatal(err)
		}
		if got := replyTo(h, c.sender); got != c.want {
			t.Errorf("From %q, sender %q: %q, want %q", c.from, c.sender, got, c.want)
		}
	}
}
