package postfixtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSmoke starts a real Postfix, delivers one message over SMTP to a
// local user through plain local(8) Maildir delivery, and sees an unknown
// local user refused at RCPT.
func TestSmoke(t *testing.T) {
	Require(t)
	const name = "mdtest-smoke"
	uid, gid := EnsureUser(t, name)
	base, err := os.MkdirTemp("", "postfixtest-smoke-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	home := filepath.Join(base, "home")
	MkdirOwned(t, home, 0o700, uid, gid)
	SetHome(t, name, home)

	inst := Start(t, Config{MainCF: []string{
		"mydestination = local.test",
		"home_mailbox = Maildir/",
	}})
	if got := inst.Postconf(t, "mydestination"); got != "local.test" {
		t.Fatalf("postconf mydestination = %q", got)
	}

	body := "smoke body " + time.Now().Format(time.RFC3339Nano) + "\n.leading dot line\n"
	r := inst.Send(t, "sender@example.net", name+"@local.test", Message("sender@example.net", name+"@local.test", "smoke", body))
	if r.Code != 250 || r.QueueID == "" {
		t.Fatalf("send: %v", r)
	}
	inst.WaitLog(t, regexp.MustCompile(regexp.QuoteMeta(r.QueueID)+`: to=<`+name+`@local.test>.*status=sent`), 60*time.Second)

	files, err := filepath.Glob(filepath.Join(home, "Maildir", "new", "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("Maildir/new holds %v (%v), want one message", files, err)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(Body(got)), body) {
		t.Errorf("delivered body %q does not contain %q", Body(got), body)
	}
	if !strings.Contains(string(got), "Delivered-To: "+name+"@local.test") {
		t.Errorf("no Delivered-To header in:\n%s", got)
	}

	r = inst.Send(t, "sender@example.net", "nosuchuser@local.test", Message("sender@example.net", "nosuchuser@local.test", "x", "x\n"))
	if r.Stage != "RCPT" || r.Code != 550 {
		t.Errorf("unknown local user: got %v, want 550 at RCPT", r)
	}
	if ids := inst.QueueIDs(t); len(ids) != 0 {
		t.Errorf("queue not empty after delivery: %v", ids)
	}

	// Debian's chroot as shipped: Postfix reads these columns from the
	// instance's master.cf, and the processes that served the two
	// messages above really run with the queue directory as root, except
	// proxymap (local_recipient_maps = proxy:unix:passwd.byname).
	want := map[string]bool{"smtpd": true, "cleanup": true, "trivial-rewrite": true, "proxymap": false, "local": false}
	seen := map[string]bool{}
	for _, s := range inst.Services(t) {
		if c, ok := want[s.Command]; ok && !(s.Command == "smtpd" && s.Type != "inet") {
			seen[s.Command] = true
			if s.Chroot() != c {
				t.Errorf("postconf -M: %s/%s %s chroot column %q, want chroot %v", s.Name, s.Type, s.Command, s.ChrootColumn, c)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("postconf -M lists %v of %v", seen, want)
	}
	for _, prog := range []string{"smtpd", "cleanup", "trivial-rewrite"} {
		if !inst.Chrooted(t, prog) {
			t.Errorf("%s does not run chrooted in %s", prog, inst.QueueDir)
		}
	}
	if inst.Chrooted(t, "proxymap") {
		t.Errorf("proxymap runs chrooted; Debian ships it without")
	}
	// configure-instance.sh copied the host's files into the chroot.
	for _, f := range []string{"etc/services", "etc/resolv.conf", "etc/hosts", "etc/nsswitch.conf"} {
		if _, err := os.Stat("/" + f); err != nil {
			continue // nothing to copy on this host
		}
		if _, err := os.Stat(filepath.Join(inst.QueueDir, f)); err != nil {
			t.Errorf("chroot lacks %s: %v", f, err)
		}
	}
}
