package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestPostfix runs every end-to-end case against one Postfix instance and
// one pair of mapdropd servers; the subtests run in order.
func TestPostfix(t *testing.T) {
	e := newEnv(t)

	t.Run("virtual/delivered with headers", func(t *testing.T) {
		const rcpt = "user1@some.domain"
		qid, body := e.accepted(t, rcpt, "direct")
		path, msg := e.delivered(t, qid, rcpt, e.vmailMaildir(rcpt), body)
		for name, want := range map[string]string{
			"Delivered-To":  rcpt,
			"X-Original-To": rcpt,
			"Return-Path":   "<" + sender + ">",
			"Subject":       "direct",
		} {
			if got := header(msg, name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if uid, gid := owner(t, path); uid != e.uid || gid != e.gid {
			t.Errorf("%s owned by %d:%d, want the pipe user %d:%d", path, uid, gid, e.uid, e.gid)
		}
		if !strings.Contains(e.pf.Log(), qid+": to=<"+rcpt+">, relay=mapdrop,") {
			t.Errorf("delivery of %s did not go through the mapdrop transport", qid)
		}
	})

	t.Run("chroot on as Debian ships it", func(t *testing.T) {
		// The mail above went through smtpd, cleanup and trivial-rewrite
		// running chrooted in the queue directory, proxymap outside it.
		for _, p := range []string{"smtpd", "cleanup", "trivial-rewrite"} {
			if !e.pf.Chrooted(t, p) {
				t.Errorf("%s does not run chrooted", p)
			}
		}
		if e.pf.Chrooted(t, "proxymap") {
			t.Errorf("proxymap runs chrooted")
		}
		servicesChrooted(t, e.pf)
	})

	t.Run("virtual/alias to another mailbox", func(t *testing.T) {
		const rcpt, target = "postmaster@some.domain", "user2@some.domain"
		qid, body := e.accepted(t, rcpt, "alias")
		// user2's Maildir did not exist: mapdrop creates it.
		_, msg := e.delivered(t, qid, target, e.vmailMaildir(target), body)
		if got := header(msg, "X-Original-To"); got != rcpt {
			t.Errorf("X-Original-To: %q, want %q", got, rcpt)
		}
		if got := header(msg, "Delivered-To"); got != target {
			t.Errorf("Delivered-To: %q, want %q", got, target)
		}
	})

	t.Run("virtual/unknown user refused at RCPT", func(t *testing.T) {
		r, _ := e.send(t, "nosuchuser@some.domain", "unknown")
		if r.Stage != "RCPT" || r.Code != 550 {
			t.Fatalf("got %v, want 550 at RCPT", r)
		}
		if !strings.Contains(r.Msg, "User unknown in virtual mailbox table") {
			t.Errorf("reply %q does not say User unknown in virtual mailbox table", r.Msg)
		}
	})

	t.Run("virtual/extension folder from recipient", func(t *testing.T) {
		const rcpt = "user1+work@some.domain"
		maildir := e.vmailMaildir("user1@some.domain")
		qid, body := e.accepted(t, rcpt, "extension")
		_, msg := e.delivered(t, qid, rcpt, filepath.Join(maildir, ".work"), body)
		if got := header(msg, "Delivered-To"); got != rcpt {
			t.Errorf("Delivered-To: %q, want %q", got, rcpt)
		}
		if n := len(findBody(t, maildir, body)); n != 0 {
			t.Errorf("the message is also in INBOX (%d copies)", n)
		}
	})

	t.Run("virtual/alias keeps the extension", func(t *testing.T) {
		// work@some.domain -> user1@some.domain; Postfix asks the server
		// for work+work@some.domain only, and mapdropd answers
		// user1+work@some.domain, as propagate_unmatched_extensions would.
		const rcpt, target = "work+work@some.domain", "user1+work@some.domain"
		maildir := e.vmailMaildir("user1@some.domain")
		qid, body := e.accepted(t, rcpt, "alias extension")
		_, msg := e.delivered(t, qid, target, filepath.Join(maildir, ".work"), body)
		if got := header(msg, "X-Original-To"); got != rcpt {
			t.Errorf("X-Original-To: %q, want %q", got, rcpt)
		}
	})

	t.Run("virtual/extension folder from pipe arguments", func(t *testing.T) {
		// Routed by transport_maps to mapdropx:
		// -d ${user}@${domain} ${extension} ${recipient} ${user} ${nexthop}
		// into the folder .Work (the extension matches case-insensitively).
		const rcpt = "user3+work@someother.domain"
		maildir := e.vmailMaildir("user3@someother.domain")
		qid, body := e.accepted(t, rcpt, "pipe arguments")
		_, msg := e.delivered(t, qid, rcpt, filepath.Join(maildir, ".Work"), body)
		if got := header(msg, "Return-Path"); got != "<"+sender+">" {
			t.Errorf("Return-Path: %q, want <%s>", got, sender)
		}
		if got := header(msg, "Delivered-To"); got != rcpt {
			t.Errorf("Delivered-To: %q, want %q", got, rcpt)
		}
		if !strings.Contains(e.pf.Log(), qid+": to=<"+rcpt+">, relay=mapdropx,") {
			t.Errorf("delivery of %s did not go through the mapdropx transport", qid)
		}
		if n := len(findBody(t, maildir, body)); n != 0 {
			t.Errorf("the message is also in INBOX (%d copies)", n)
		}
	})

	t.Run("virtual/deferred while the server is down", func(t *testing.T) {
		const rcpt = "user1@some.domain"
		maildir := e.vmailMaildir(rcpt)
		if code := e.deliver.Stop(t); code != 0 {
			t.Errorf("mapdropd exited %d after SIGTERM, want 0", code)
		}
		// Postfix's own lookups still work (the maps server is up): the
		// mail is accepted, and the mapdrop that pipe(8) runs finds no server.
		qid, body := e.accepted(t, rcpt, "deferred")
		status, line := e.outcome(t, qid, rcpt)
		if status != "deferred" {
			t.Fatalf("with the server down: %s", line)
		}
		// pipe(8) words exit status 75 (EX_TEMPFAIL) as "temporary failure".
		if !strings.Contains(line, "relay=mapdrop,") || !strings.Contains(line, "(temporary failure") {
			t.Errorf("deferral is not mapdrop's exit 75: %s", line)
		}
		testkit.Eventually(t, "the message in the deferred queue", func() bool {
			q := e.pf.Queued(t, qid)
			return q != nil && q.QueueName == "deferred"
		})
		if n := len(findBody(t, maildir, body)); n != 0 {
			t.Fatalf("delivered %d copies while the server was down", n)
		}

		e.deliver.Start(t)
		e.pf.Flush(t)
		e.pf.WaitLog(t, regexp.MustCompile(regexp.QuoteMeta(qid)+`: to=<`+regexp.QuoteMeta(rcpt)+`>.*status=sent`), waitLonger)
		e.pf.WaitLog(t, regexp.MustCompile(regexp.QuoteMeta(qid)+`: removed`), waitLonger)
		if n := len(findBody(t, maildir, body)); n != 1 {
			t.Errorf("after the server came back: %d copies in %s/new, want exactly 1", n, maildir)
		}
		if q := e.pf.Queued(t, qid); q != nil {
			t.Errorf("still queued after delivery: %+v", q)
		}
		if lines := e.pf.LogLines(regexp.MustCompile(regexp.QuoteMeta(qid) + `: .*status=bounced|` + regexp.QuoteMeta(qid) + `: sender non-delivery notification`)); len(lines) != 0 {
			t.Errorf("bounced: %q", lines)
		}
	})

	t.Run("virtual/tables server down: 451 at RCPT, then accepted again", func(t *testing.T) {
		// With the server behind Postfix's own maps stopped, smtpd cannot
		// tell whether the recipient exists: a temporary 451, never 550.
		if code := e.maps.Stop(t); code != 0 {
			t.Errorf("mapdropd exited %d after SIGTERM, want 0", code)
		}
		r, _ := e.send(t, "user1@some.domain", "maps down")
		if r.Stage != "RCPT" || r.Code != 451 {
			t.Errorf("with the maps server down: %v, want 451 at RCPT", r)
		}
		e.maps.Start(t)
		// smtpd keeps a failed lookup's connection state briefly; a bounded
		// retry shows it accepts again once the server is back.
		var got postfixtest.Reply
		testkit.Poll(testkit.Patience, func() bool {
			got, _ = e.send(t, "user1@some.domain", "maps back")
			return got.Code == 250
		})
		if got.Code != 250 {
			t.Errorf("after the maps server came back: %v, want 250", got)
		}
	})

	t.Run("local/mailbox_command with the passwd account", func(t *testing.T) {
		rcpt := localCmd + "@" + localDom
		qid, body := e.accepted(t, rcpt, "mailbox_command")
		path, msg := e.delivered(t, qid, rcpt, filepath.Join(e.homes, localCmd, "Maildir"), body)
		if got := header(msg, "Delivered-To"); got != rcpt {
			t.Errorf("Delivered-To: %q, want %q", got, rcpt)
		}
		uid, gid := owner(t, path)
		if wantUID, wantGID := ids(t, localCmd); uid != wantUID || gid != wantGID {
			t.Errorf("%s owned by %d:%d, want %s's %d:%d", path, uid, gid, localCmd, wantUID, wantGID)
		}
	})

	// Issue 10 item 2: local(8) runs the README's commands with the
	// extension in EXTENSION, and the message starts with an mbox "From "
	// line. Each way files user+lists into .lists, stores no "From " line,
	// and keeps local(8)'s Return-Path: the envelope sender (here not the
	// header From:).
	t.Run("local/extension, From line, Return-Path", func(t *testing.T) {
		const envSender = "bounces+list@lists.example.org"
		for _, c := range []struct{ user, bin string }{
			{localCmd, filepath.Join(e.mapdropDir, "mapdrop")}, // mailbox_command
			{localMap, filepath.Join(e.binMaps, "mapdrop")},    // mailbox_command_maps (cdb)
			{localFwd, filepath.Join(e.binFwd, "mapdrop")},     // ~/.forward
		} {
			t.Run(c.user, func(t *testing.T) {
				rcpt := c.user + "+lists@" + localDom
				maildir := filepath.Join(e.homes, c.user, "Maildir")
				body := fmt.Sprintf("marker local extension %s %d\nFrom here on a body line\n", c.user, time.Now().UnixNano())
				r := e.pf.Send(t, envSender, rcpt, postfixtest.Message(sender, rcpt, "lists", body))
				if r.Code != 250 || r.QueueID == "" {
					t.Fatalf("sending to %s: %v", rcpt, r)
				}
				status, line := e.outcome(t, r.QueueID, rcpt)
				if status != "sent" {
					t.Fatalf("delivery to %s: %s", rcpt, line)
				}
				if !strings.Contains(line, "delivered to command: "+c.bin+" ") {
					t.Errorf("not delivered by the command under test (%s): %s", c.bin, line)
				}
				inLists := findBody(t, filepath.Join(maildir, ".lists"), body)
				inInbox := findBody(t, maildir, body)
				if len(inLists) != 1 || len(inInbox) != 0 {
					t.Errorf("%s: %d copies in .lists, %d in INBOX; want the extension from local(8)'s EXTENSION to pick .lists", rcpt, len(inLists), len(inInbox))
				}
				files := append(inLists, inInbox...)
				if len(files) == 0 {
					t.Fatalf("%s: the message is in neither .lists nor INBOX", rcpt)
				}
				msg, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(string(msg), "From ") {
					first, _, _ := strings.Cut(string(msg), "\n")
					t.Errorf("stored message starts with local(8)'s mbox line %q", first)
				}
				if got := header(msg, "Return-Path"); got != "<"+envSender+">" {
					t.Errorf("Return-Path: %q, want the envelope sender <%s>", got, envSender)
				}
				if got := header(msg, "Delivered-To"); got != rcpt {
					t.Errorf("Delivered-To: %q, want %q", got, rcpt)
				}
				if !strings.HasSuffix(string(msg), "\n\n"+body) {
					t.Errorf("body changed: %q", postfixtest.Body(msg))
				}
			})
		}
	})

	t.Run("local/mailbox_command_maps exported as cdb", func(t *testing.T) {
		rcpt := localMap + "@" + localDom
		maildir := filepath.Join(e.homes, localMap, "Maildir")
		qid, body := e.accepted(t, rcpt, "mailbox_command_maps")
		e.delivered(t, qid, rcpt, maildir, body)

		// Change the command by rename-over: the same command with the
		// extension argument "somefolder". mapdropd re-exports the cdb;
		// Postfix notices the changed table without a reload.
		before, err := os.ReadFile(e.cdbPath())
		if err != nil {
			t.Fatal(err)
		}
		replaceFile(t, filepath.Join(e.tables, "mailbox_command"), e.mailboxCommandTable("somefolder"))
		testkit.Eventually(t, "a new mailbox_command.cdb", func() bool {
			after, err := os.ReadFile(e.cdbPath())
			return err == nil && string(after) != string(before) && strings.Contains(string(after), "somefolder")
		})
		qid, body = e.accepted(t, rcpt, "mailbox_command_maps changed")
		e.delivered(t, qid, rcpt, filepath.Join(maildir, ".somefolder"), body)
		if n := len(findBody(t, maildir, body)); n != 0 {
			t.Errorf("the message is also in INBOX: the old command ran")
		}
	})

	t.Run("local/forward file", func(t *testing.T) {
		rcpt := localFwd + "@" + localDom
		qid, body := e.accepted(t, rcpt, "forward")
		_, line := e.outcome(t, qid, rcpt)
		e.delivered(t, qid, rcpt, filepath.Join(e.homes, localFwd, "Maildir"), body)
		if !strings.Contains(line, "delivered to command: "+filepath.Join(e.binFwd, "mapdrop")) {
			t.Errorf("not delivered by the .forward command: %s", line)
		}
	})

	t.Run("local/socketmap refused for mailbox_command_maps", func(t *testing.T) {
		// Documents Postfix's behaviour for the README: local(8) will not
		// take a command from a socketmap; the mail stays queued.
		rcpt := localSock + "@" + localDom
		qid, _ := e.accepted(t, rcpt, "socketmap mailbox_command_maps")
		e.pf.WaitLog(t, regexp.MustCompile(`socketmap:unix:\S+:mailbox_command map is not allowed for security-sensitive data`), waitLonger)
		if status, line := e.outcome(t, qid, rcpt); status != "deferred" {
			t.Errorf("want deferred: %s", line)
		}
	})

	// No mail to a real recipient may have bounced in any case above.
	if lines := e.pf.LogLines(regexp.MustCompile(`status=bounced`)); len(lines) != 0 {
		t.Errorf("bounces: %q", lines)
	}
}

// ids returns the uid and gid of a system user (creating it if needed).
func ids(t *testing.T, name string) (uint32, uint32) {
	t.Helper()
	return postfixtest.EnsureUser(t, name)
}
