package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// sieveScript is user3's script; user3 is delivered by the seed's
// extension-form master.cf line (mapdropx: -d ${user}@${domain}
// ${extension} ${recipient} ${user} ${nexthop}).
const sieveScript = `require ["fileinto","mailbox","envelope","subaddress","imap4flags","reject","copy","vacation"];
if header :is "subject" "discard" { discard; stop; }
if header :is "subject" "reject" { reject "no thanks"; stop; }
if header :is "subject" "redirect" { redirect "user1@some.domain"; stop; }
if header :is "subject" "copy" { redirect :copy "user2@some.domain"; stop; }
if header :is "subject" "four" { redirect "user1@some.domain"; redirect "user2@some.domain"; redirect "work@some.domain"; redirect "postmaster@some.domain"; stop; }
if header :is "subject" "five" { redirect "user1@some.domain"; redirect "user2@some.domain"; redirect "work@some.domain"; redirect "postmaster@some.domain"; redirect "user1+x@some.domain"; stop; }
if header :is "subject" "loop" { redirect "user1@some.domain"; stop; }
if header :is "subject" "flags" { addflag "\\Flagged"; keep; stop; }
if header :is "subject" "create" { fileinto :create "Created/Sub"; stop; }
if envelope :detail "to" "work" { fileinto "Work"; stop; }
if header :is "subject" "vacation" { vacation :days 1 :subject "away" "I am away."; }
`

// goMaildirHas returns the flags of the messages in the Maildir (or
// folder) dir whose content contains marker, as go-maildir reads them.
func goMaildirHas(t *testing.T, dir, marker string) []string {
	t.Helper()
	d := gomaildir.Dir(dir)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	// mapdrop may be creating the Maildir (new/, cur/, tmp/) right now.
	if _, err := d.Unseen(); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	msgs, err := d.Messages()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		rc, err := m.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := rc.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		rc.Close()
		if strings.Contains(b.String(), marker) {
			var fl string
			for _, f := range m.Flags() {
				fl += string(f)
			}
			out = append(out, fl)
		}
	}
	return out
}

func (e *env) sendFrom(t *testing.T, from, rcpt, subject, extraHeaders string) (qid, marker string) {
	t.Helper()
	marker = fmt.Sprintf("marker-%s-%d", strings.ReplaceAll(subject, " ", "_"), time.Now().UnixNano())
	msg := string(postfixtest.Message(from, rcpt, subject, marker+"\n"))
	msg = extraHeaders + msg
	r := e.pf.Send(t, from, rcpt, []byte(msg))
	if r.Code != 250 || r.QueueID == "" {
		t.Fatalf("sending to %s: %v", rcpt, r)
	}
	return r.QueueID, marker
}

// RedirectTraceField is the field mapdrop adds to a redirected message
// (deliver.RedirectTrace).
const RedirectTraceField = "X-Sieve-Redirected-From"

// settled waits until nothing is on its way in the instance: no message
// in the maildrop, incoming or active queue (bounces to the outside
// world stay deferred).
func settled(t *testing.T, e *env) {
	t.Helper()
	testkit.Eventually(t, "the queue to settle", func() bool {
		for _, q := range e.pf.Queue(t) {
			if q.QueueName != "deferred" && q.QueueName != "hold" {
				return false
			}
		}
		return true
	})
}

// waitCopies waits until the Maildir md holds n messages with marker,
// lets the queue settle, and checks that there are still exactly n.
func waitCopies(t *testing.T, e *env, md, marker string, n int) {
	t.Helper()
	ok := testkit.Poll(waitLonger, func() bool { return len(goMaildirHas(t, md, marker)) >= n })
	settled(t, e)
	if got := len(goMaildirHas(t, md, marker)); !ok || got != n {
		t.Fatalf("%s holds %d messages with %s, want %d", md, got, marker, n)
	}
}

// messagesWith returns the contents of the messages in Maildir md (new/
// and cur/) that contain s.
func messagesWith(t *testing.T, md, s string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(md, sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), s) {
				out = append(out, string(b))
			}
		}
	}
	return out
}

// repliesIn lets the queue settle and returns the auto-replies in md
// containing s, checking the fields RFC 5230 asks for.
func repliesIn(t *testing.T, e *env, md, s string) []string {
	t.Helper()
	settled(t, e)
	var out []string
	for _, m := range messagesWith(t, md, "Auto-Submitted: auto-replied") {
		if !strings.Contains(m, s) {
			continue
		}
		if !strings.HasPrefix(m, "Return-Path: <MAILER-DAEMON>") && !strings.HasPrefix(m, "Return-Path: <>") {
			t.Errorf("auto-reply not from the null sender:\n%s", m)
		}
		for _, want := range []string{"In-Reply-To: <", "I am away."} {
			if !strings.Contains(m, want) {
				t.Errorf("auto-reply lacks %q:\n%s", want, m)
			}
		}
		out = append(out, m)
	}
	return out
}

// headerOf returns the value of the header field in the one message in md
// with marker (see header).
func headerOf(t *testing.T, md, marker, field string) string {
	t.Helper()
	ms := messagesWith(t, md, marker)
	if len(ms) != 1 {
		t.Fatalf("%d messages with %s in %s", len(ms), marker, md)
	}
	return header([]byte(ms[0]), field)
}

func TestSieve(t *testing.T) {
	e := newEnv(t)
	u3 := "user3@someother.domain"
	home3 := filepath.Join(e.vmail, "someother.domain/user3")
	md3 := filepath.Join(home3, "Maildir")
	md1 := e.vmailMaildir("user1@some.domain")
	md2 := e.vmailMaildir("user2@some.domain")
	script := filepath.Join(home3, ".dovecot.sieve")
	writeFile(t, script, sieveScript)
	os.Chown(script, int(e.uid), int(e.gid))

	postfixtest.AllowSendmail(t, e.pf)

	sent := func(qid, rcpt string) {
		t.Helper()
		if status, line := e.outcome(t, qid, rcpt); status != "sent" {
			t.Fatalf("delivery to %s: %s", rcpt, line)
		}
	}

	t.Run("discard", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "discard", "")
		sent(qid, u3)
		if n := len(goMaildirHas(t, md3, m)); n != 0 {
			t.Errorf("discarded message stored %d times", n)
		}
	})
	t.Run("reject", func(t *testing.T) {
		qid, _ := e.sendFrom(t, sender, u3, "reject", "")
		status, line := e.outcome(t, qid, u3)
		if status != "bounced" || !strings.Contains(line, "no thanks") {
			t.Errorf("reject: %s", line)
		}
	})
	t.Run("flags", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "flags", "")
		sent(qid, u3)
		if got := goMaildirHas(t, md3, m); len(got) != 1 || got[0] != "F" {
			t.Errorf("flags: %q", got)
		}
	})
	t.Run("fileinto create", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "create", "")
		sent(qid, u3)
		if got := goMaildirHas(t, filepath.Join(md3, ".Created.Sub"), m); len(got) != 1 {
			t.Errorf(".Created.Sub: %q", got)
		}
	})
	t.Run("envelope detail into existing folder", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, "user3+work@someother.domain", "hello", "")
		sent(qid, "user3+work@someother.domain")
		if got := goMaildirHas(t, filepath.Join(md3, ".Work"), m); len(got) != 1 {
			t.Errorf(".Work: %q", got)
		}
	})
	// Redirects and vacation replies: mapdrop runs /usr/sbin/sendmail with
	// the MAIL_CONFIG that pipe(8) passes, so they go back into this
	// instance (AllowSendmail above) and arrive at other users.
	t.Run("redirect arrives at another user", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "redirect", "")
		sent(qid, u3)
		waitCopies(t, e, md1, m, 1)
		if n := len(goMaildirHas(t, md3, m)); n != 0 {
			t.Errorf("redirected message also stored for user3 (%d)", n)
		}
		if got := headerOf(t, md1, m, RedirectTraceField); got != u3 {
			t.Errorf("%s: %q, want %q", RedirectTraceField, got, u3)
		}
	})
	t.Run("redirect copy", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "copy", "")
		sent(qid, u3)
		waitCopies(t, e, md2, m, 1)
		if n := len(goMaildirHas(t, md3, m)); n != 1 {
			t.Errorf(":copy: %d copies for user3, want 1", n)
		}
	})
	t.Run("four redirects", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "four", "")
		sent(qid, u3)
		// work@ is an alias of user1, postmaster@ of user2.
		waitCopies(t, e, md1, m, 2)
		waitCopies(t, e, md2, m, 2)
		if n := len(goMaildirHas(t, md3, m)); n != 0 {
			t.Errorf("redirected message also stored for user3 (%d)", n)
		}
	})
	t.Run("fifth redirect is an error: INBOX only", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, u3, "five", "")
		sent(qid, u3)
		waitCopies(t, e, md3, m, 1)
		if n := len(goMaildirHas(t, md1, m)) + len(goMaildirHas(t, md2, m)); n != 0 {
			t.Errorf("%d redirects made, want none", n)
		}
	})
	t.Run("loop", func(t *testing.T) {
		// user3 redirects to user1, whose script sends it back. The
		// redirected copy keeps the Delivered-To: user3 that pipe(8)
		// flag D added, so Postfix itself stops the loop when the
		// message comes back (5.4.6, a bounce to the sender); nobody
		// stores it and it is not redirected a second time. mapdrop's
		// own check (X-Sieve-Redirected-From) is for transports without
		// D; package deliver tests it.
		p := filepath.Join(e.vmail, "some.domain/user1/.dovecot.sieve")
		writeFile(t, p, `if header :is "subject" "loop" { redirect "user3@someother.domain"; }`)
		os.Chown(p, int(e.uid), int(e.gid))
		defer os.Remove(p)
		toUser1 := regexp.MustCompile(`to=<user1@some.domain>.*status=sent`)
		before := len(e.pf.LogLines(toUser1))
		qid, m := e.sendFrom(t, sender, u3, "loop", "")
		sent(qid, u3)
		e.pf.WaitLog(t, regexp.MustCompile(`to=<user3@someother.domain>.*status=bounced \(mail forwarding loop`), waitLonger)
		settled(t, e)
		if n := len(goMaildirHas(t, md1, m)) + len(goMaildirHas(t, md3, m)); n != 0 {
			t.Errorf("the looping message was stored %d times", n)
		}
		if got := len(e.pf.LogLines(toUser1)); got != before+1 {
			t.Errorf("delivered to user1 %d times, want once (the first redirect)", got-before)
		}
	})
	t.Run("vacation once per sender", func(t *testing.T) {
		for range 2 {
			qid, m := e.sendFrom(t, "user1@some.domain", u3, "vacation", "")
			sent(qid, u3)
			waitCopies(t, e, md3, m, 1)
		}
		if n := len(repliesIn(t, e, md1, "Subject: away")); n != 1 {
			t.Errorf("user1 got %d vacation replies, want 1", n)
		}
	})
	t.Run("vacation not to a list", func(t *testing.T) {
		qid, m := e.sendFrom(t, "user2@some.domain", u3, "vacation", "List-Id: <news.some.domain>\n")
		sent(qid, u3)
		waitCopies(t, e, md3, m, 1)
		if n := len(repliesIn(t, e, md2, "Subject: away")); n != 0 {
			t.Errorf("list sender user2 got %d vacation replies, want 0", n)
		}
	})
	t.Run("indirect path: local(8) and a system account", func(t *testing.T) {
		// localCmd is not in userdb: mapdrop delivers it as the passwd
		// account, run by local(8)'s mailbox_command.
		uid, gid := postfixtest.EnsureUser(t, localCmd)
		home := filepath.Join(e.homes, localCmd)
		p := filepath.Join(home, ".dovecot.sieve")
		writeFile(t, p, `require ["fileinto","mailbox","imap4flags"];
if header :is "subject" "local" { fileinto :create :flags "\\Seen" "ViaLocal"; }`)
		os.Chown(p, int(uid), int(gid))
		defer os.Remove(p)
		rcpt := localCmd + "@" + localDom
		qid, m := e.sendFrom(t, sender, rcpt, "local", "")
		sent(qid, rcpt)
		if got := goMaildirHas(t, filepath.Join(home, "Maildir", ".ViaLocal"), m); len(got) != 1 || got[0] != "S" {
			t.Errorf(".ViaLocal: %q", got)
		}
	})
	t.Run("broken script to INBOX", func(t *testing.T) {
		home2 := filepath.Join(e.vmail, "some.domain/user2")
		p := filepath.Join(home2, ".dovecot.sieve")
		writeFile(t, p, "require \"fileinto\";\nif true {\n")
		os.Chown(p, int(e.uid), int(e.gid))
		defer os.Remove(p)
		qid, m := e.sendFrom(t, sender, "user2@some.domain", "broken", "")
		sent(qid, "user2@some.domain")
		if got := goMaildirHas(t, md2, m); len(got) != 1 {
			t.Errorf("broken script: %q", got)
		}
	})
	t.Run("no script unchanged", func(t *testing.T) {
		qid, m := e.sendFrom(t, sender, "user1@some.domain", "plain", "")
		sent(qid, "user1@some.domain")
		if files := findBody(t, md1, m+"\n"); len(files) != 1 {
			t.Errorf("plain delivery: %v", files)
		}
	})
}
