package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
)

// sieveScript is user3's script; user3 is delivered by the seed's
// extension-form master.cf line (mapdropx: -d ${user}@${domain}
// ${extension} ${recipient} ${user} ${nexthop}).
const sieveScript = `require ["fileinto","mailbox","envelope","subaddress","imap4flags","reject","copy","vacation"];
if header :is "subject" "discard" { discard; stop; }
if header :is "subject" "reject" { reject "no thanks"; stop; }
if header :is "subject" "redirect" { redirect "user1@some.domain"; stop; }
if header :is "subject" "copy" { redirect :copy "user2@some.domain"; stop; }
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
	if _, err := d.Unseen(); err != nil {
		t.Fatal(err)
	}
	msgs, err := d.Messages()
	if err != nil {
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
	// Redirect and vacation through a real Postfix are not tested here:
	// the sendmail they run reaches a throwaway instance only through
	// MAIL_CONFIG, which setgid postdrop honours only for directories
	// listed in alternate_config_directories of /etc/postfix/main.cf.
	// package deliver tests them with a recording sendmail.
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
