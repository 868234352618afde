package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestStockChroot runs the README's map lines in a Postfix on Debian's
// stock master.cf, chroots on, one instance per variant: the plain
// socketmap:unix: line fails as the README documents (451 4.3.0 at RCPT,
// the chrooted daemon's connect warning in the log); the README's proxy:
// lines, the socketmap:inet: lines and the tcp: line work (a mailbox is
// accepted, an alias resolved, an unknown user refused with 550).
func TestStockChroot(t *testing.T) {
	bins := requireBinaries(t)
	base, err := os.MkdirTemp("", "mapdrop-chroot-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	tables := filepath.Join(base, "tables")
	for _, d := range []string{tables, filepath.Join(base, "export"), filepath.Join(base, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tables, "virtual_mailbox_domains"), "some.domain OK\n")
	writeFile(t, filepath.Join(tables, "virtual_mailbox"), "user1@some.domain  some.domain/user1/Maildir/\nuser2@some.domain  some.domain/user2/Maildir/\n")
	writeFile(t, filepath.Join(tables, "virtual_alias"), "postmaster@some.domain  user2@some.domain\n")
	sock := filepath.Join(base, "run", "mapdropd.sock")
	subst := readmeSubst{
		Socket: sock, Inet: testkit.Port(t), TCP: testkit.Port(t), BinDir: bins.Dir,
		Export: filepath.Join(base, "export"), Tables: tables,
	}
	testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin:       bins.Mapdropd(),
		Args:      strings.Fields(subst.apply(strings.Join(serveArgs(t, readmeBlock(t, "serve")), " "))),
		ProbeAddr: "unix:" + sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
		LogFile: sock + ".log",
	})

	// start runs a Postfix with the given main.cf lines (a later block's
	// line replaces an earlier one: see postfixtest); mail for the
	// virtual domain is discarded once routed, so the queue drains.
	start := func(t *testing.T, lines []string) *postfixtest.Instance {
		t.Helper()
		mainCF := append(append([]string{}, lines...), "virtual_transport = discard:", "recipient_delimiter = +")
		inst := postfixtest.Start(t, postfixtest.Config{MainCF: mainCF})
		servicesChrooted(t, inst)
		return inst
	}
	chrooted := func(t *testing.T, inst *postfixtest.Instance, programs ...string) {
		t.Helper()
		for _, p := range programs {
			if !inst.Chrooted(t, p) {
				t.Errorf("%s does not run chrooted in %s", p, inst.QueueDir)
			}
		}
	}
	// works checks that the lines serve smtpd, trivial-rewrite and cleanup
	// from inside their chroot.
	works := func(t *testing.T, lines []string) {
		t.Helper()
		inst := start(t, lines)
		r := inst.Send(t, sender, "user1@some.domain", postfixtest.Message(sender, "user1@some.domain", "chroot", "x\n"))
		if r.Code != 250 || r.QueueID == "" {
			t.Fatalf("user1@some.domain: %v, want 250 queued", r)
		}
		inst.WaitLog(t, regexp.MustCompile(regexp.QuoteMeta(r.QueueID)+`: to=<user1@some\.domain>, relay=none, .*status=sent`), waitLonger)
		// The alias is resolved by cleanup (virtual_alias_maps).
		r = inst.Send(t, sender, "postmaster@some.domain", postfixtest.Message(sender, "postmaster@some.domain", "alias", "x\n"))
		if r.Code != 250 || r.QueueID == "" {
			t.Fatalf("postmaster@some.domain: %v, want 250 queued", r)
		}
		inst.WaitLog(t, regexp.MustCompile(regexp.QuoteMeta(r.QueueID)+`: to=<user2@some\.domain>, orig_to=<postmaster@some\.domain>, .*status=sent`), waitLonger)
		r = inst.Send(t, sender, "nosuchuser@some.domain", postfixtest.Message(sender, "nosuchuser@some.domain", "unknown", "x\n"))
		if r.Stage != "RCPT" || r.Code != 550 {
			t.Errorf("nosuchuser@some.domain: %v, want 550 at RCPT", r)
		}
		chrooted(t, inst, "smtpd", "cleanup", "trivial-rewrite")
		if lines := inst.LogLines(regexp.MustCompile(`warning|error|fatal`)); len(lines) != 0 {
			t.Errorf("maillog warnings:\n%s", strings.Join(lines, "\n"))
		}
	}

	t.Run("socketmap:unix fails as documented", func(t *testing.T) {
		block := subst.apply(readmeBlock(t, "maps-chroot-fail"))
		var reply, logLine string
		for _, l := range strings.Split(block, "\n") {
			switch {
			case regexp.MustCompile(`^[45]\d\d `).MatchString(l):
				reply = l
			case strings.HasPrefix(l, "postfix/"):
				logLine = l
			}
		}
		if reply == "" || logLine == "" {
			t.Fatalf("README block maps-chroot-fail lacks the SMTP reply or the log line:\n%s", block)
		}
		inst := start(t, mainCFLines(block))
		r := inst.Send(t, sender, "user1@some.domain", postfixtest.Message(sender, "user1@some.domain", "fail", "x\n"))
		if got := fmt.Sprintf("%d %s", r.Code, r.Msg); r.Stage != "RCPT" || got != reply {
			t.Errorf("got %v, want %q at RCPT as the README says", r, reply)
		}
		// "postfix/trivial-rewrite[...]: warning: ..." with any pid.
		pat := regexp.QuoteMeta(logLine)
		pat = strings.Replace(pat, regexp.QuoteMeta("[...]"), `\[\d+\]`, 1)
		inst.WaitLog(t, regexp.MustCompile(pat), waitLonger)
		daemon := strings.TrimPrefix(logLine[:strings.IndexByte(logLine, '[')], "postfix/")
		chrooted(t, inst, "smtpd", daemon)
	})
	t.Run("proxy:socketmap:unix works", func(t *testing.T) {
		works(t, mainCFLines(subst.apply(readmeBlock(t, "maps"))))
	})
	t.Run("default proxy_read_maps has the map parameters", func(t *testing.T) {
		// The README says so; a map outside proxy_read_maps makes smtpd
		// exit at start ("proxymap service is not configured for table").
		def := defaultParam(t, "proxy_read_maps")
		for _, p := range mapParams {
			if !strings.Contains(" "+def+" ", " $"+p+" ") {
				t.Errorf("postconf -d proxy_read_maps lacks $%s: %s", p, def)
			}
		}
	})
	t.Run("socketmap:inet works", func(t *testing.T) {
		works(t, mainCFLines(subst.apply(readmeBlock(t, "maps-inet"))))
	})
	t.Run("tcp works", func(t *testing.T) {
		lines := mainCFLines(subst.apply(readmeBlock(t, "maps")))
		lines = append(lines, mainCFLines(subst.apply(readmeBlock(t, "maps-tcp")))...)
		if !strings.Contains(strings.Join(lines, "\n"), "virtual_alias_maps = tcp:127.0.0.1:") {
			t.Fatalf("the tcp block does not set virtual_alias_maps: %q", lines)
		}
		works(t, lines)
	})
}

// servicesChrooted checks with Postfix's own "postconf -M" that inst has
// smtpd, cleanup and trivial-rewrite services (three at least) and that
// every one of them runs chrooted.
func servicesChrooted(t *testing.T, inst *postfixtest.Instance) {
	t.Helper()
	n := 0
	for _, s := range inst.Services(t) {
		switch s.Command {
		case "smtpd", "cleanup", "trivial-rewrite":
			n++
			if !s.Chroot() {
				t.Errorf("postconf -M: %s/%s runs %s without chroot", s.Name, s.Type, s.Command)
			}
		}
	}
	if n < 3 {
		t.Errorf("postconf -M lists %d smtpd/cleanup/trivial-rewrite services, want at least 3", n)
	}
}
