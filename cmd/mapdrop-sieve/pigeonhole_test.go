package main

// The differential test: every case's script runs on the same message and
// envelope through mapdrop (which execs this command) and through Dovecot's
// dovecot-lda with Pigeonhole, each into a fresh home; then Dovecot's
// doveadm, a reader nobody here wrote, reads both Maildirs. Where a
// message lands (the mailbox as IMAP names it) and its flags, what was
// submitted through sendmail (redirects, vacation replies) and whether the
// message was rejected must agree, except in the differences each case
// names (README, "Sieve: differences from Pigeonhole").

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/mapdrop/mapdrop/deliver/mutf7"
	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const (
	ldaPath      = "/usr/lib/dovecot/dovecot-lda"
	doveadmPath  = "/usr/bin/doveadm"
	sievePlugin  = "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"
	nobodyID     = 65534
	phDomain     = "ph.example"
	phSender     = "alice@example.net"
	phRecipient  = "bob@example.org"
	phMessageFmt = "Return-Path: <%s>\n" +
		"From: Alice <alice@example.net>\n" +
		"To: Bob <bob@example.org>\n" +
		"Subject: %s\n" +
		"Message-ID: <%s@example.net>\n" +
		"Date: Mon, 1 Jan 2024 00:00:00 +0000\n" +
		"%s" + // extra header fields
		"\n" +
		"%s" // body
)

// requireDovecot stops the test unless dovecot-lda with Pigeonhole and
// doveadm are installed: it fails when postfixtest.Required (CI=true or
// MAPDROP_REQUIRE_POSTFIX=1; scripts/test installs them), skips otherwise.
func requireDovecot(t *testing.T) {
	t.Helper()
	roottest.Require(t)
	for _, p := range []string{ldaPath, doveadmPath, sievePlugin} {
		if _, err := os.Stat(p); err != nil {
			if postfixtest.Required() {
				t.Fatalf("dovecot-core and dovecot-sieve are needed: %v", err)
			}
			t.Skipf("dovecot-core and dovecot-sieve are needed: %v", err)
		}
	}
}

// phCase is one script, message and envelope. want is where mapdrop puts
// the message; Pigeonhole must agree unless ph names its own outcome (a
// documented difference).
type phCase struct {
	name    string
	script  string
	subject string
	headers string   // extra header fields, each ending in "\n"
	body    string   // default "hello\n"
	to      string   // envelope recipient; default phRecipient
	from    string   // envelope sender; default phSender; "<>": the null sender, in Return-Path only (no -f)
	folders []string // Maildir++ folders made beforehand, e.g. ".Work"
	want    string   // mapdrop's outcome (see outcome)
	ph      string   // Pigeonhole's, when it differs
	log     string   // text mapdrop's log line must contain
	before  string   // an administrator's script run first (-sieve-before, sieve_before)
	twice   bool     // deliver the same message twice (vacation once per sender, duplicates)
	after   string   // an administrator's script run last (-sieve-after, sieve_after)
}

// phWorld is the shared setup: mapdropd with one userdb entry per case,
// the sendmail recorder, the Dovecot configuration.
type phWorld struct {
	details []string // what outcome saw of each submission, for comparison
	base    string
	sock    string
	logFile string
	bins    testkit.Binaries
}

func (w *phWorld) home(side, name string) string {
	return filepath.Join(w.base, side, name)
}

func mkdirNobody(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		var made []string
		for p := d; ; p = filepath.Dir(p) {
			if _, err := os.Stat(p); err == nil {
				break
			}
			made = append(made, p)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range made {
			if err := os.Chown(p, nobodyID, nobodyID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func writeNobody(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, nobodyID, nobodyID); err != nil {
		t.Fatal(err)
	}
}

// recorder is a sendmail that stores its arguments and input in
// HOME/sent/ (one file per submission), then exits 0. Each home has its
// own, since dovecot-lda clears the environment.
const recorder = `#!/bin/sh
f=$(mktemp "HOME/sent/m.XXXXXX") || exit 75
{ printf 'ARGS: %s\n' "$*"; cat; } > "$f"
`

const dovecotConf = `base_dir = BASE/dovecot-run
log_path = BASE/lda.log
mail_location = maildir:~/Maildir
mail_fsync = always
protocol lda {
  mail_plugins = sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
`

func newPHWorld(t *testing.T, cases []phCase) *phWorld {
	w := &phWorld{base: roottest.TempDir(t), bins: testkit.Build(t)}
	w.sock = "unix:" + filepath.Join(w.base, "mapdropd.sock")
	w.logFile = filepath.Join(w.base, "maillog")
	writeNobody(t, w.logFile, "", 0o644)
	mkdirNobody(t, filepath.Join(w.base, "dovecot-run"))
	writeNobody(t, filepath.Join(w.base, "lda.log"), "", 0o644)
	if err := os.WriteFile(filepath.Join(w.base, "dovecot.conf"), []byte(strings.ReplaceAll(dovecotConf, "BASE", w.base)), 0o644); err != nil {
		t.Fatal(err)
	}
	tables := filepath.Join(w.base, "tables")
	mkdirNobody(t, tables, filepath.Join(w.base, "mapdrop"), filepath.Join(w.base, "pigeonhole"))
	var userdb strings.Builder
	for i := range cases {
		fmt.Fprintf(&userdb, "c%d@%s uid=%d|gid=%d|home=%s\n", i, phDomain, nobodyID, nobodyID, w.home("mapdrop", fmt.Sprint("c", i)))
	}
	if err := os.WriteFile(filepath.Join(tables, "userdb"), []byte(userdb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin:       w.bins.Mapdropd(),
		Args:      []string{"-tables", tables, "-socketmap", w.sock, "-socket-mode", "0666"},
		ProbeAddr: w.sock, ProbeMap: "userdb", ProbeKey: "c0@" + phDomain,
	})
	return w
}

// prepare makes a home with the script, the Maildir and its folders.
func (w *phWorld) prepare(t *testing.T, side string, i int, c phCase) string {
	h := w.home(side, fmt.Sprint("c", i))
	md := filepath.Join(h, "Maildir")
	mkdirNobody(t, h, filepath.Join(h, "sent"))
	for _, f := range append([]string{""}, c.folders...) {
		for _, s := range []string{"cur", "new", "tmp"} {
			mkdirNobody(t, filepath.Join(md, f, s))
		}
	}
	writeNobody(t, filepath.Join(h, ".dovecot.sieve"), c.script, 0o600)
	writeNobody(t, filepath.Join(h, "sendmail"), strings.ReplaceAll(recorder, "HOME", h), 0o755)
	if c.before != "" {
		mkdirNobody(t, filepath.Join(h, "before"))
		writeNobody(t, filepath.Join(h, "before", "admin.sieve"), c.before, 0o644)
	}
	if c.after != "" {
		mkdirNobody(t, filepath.Join(h, "after"))
		writeNobody(t, filepath.Join(h, "after", "admin.sieve"), c.after, 0o644)
	}
	return h
}

// runAs runs argv as nobody with the environment env and stdin, and
// returns the exit status and stderr.
func runAs(t *testing.T, stdin string, env []string, argv ...string) (int, string) {
	t.Helper()
	return runNobody(t, stdin, env, false, argv...)
}

// runAsOut is runAs returning stdout and stderr together.
func runAsOut(t *testing.T, stdin string, env []string, argv ...string) (int, string) {
	t.Helper()
	return runNobody(t, stdin, env, true, argv...)
}

// runNobody is runAs, with stdout in the returned text too when withStdout.
func runNobody(t *testing.T, stdin string, env []string, withStdout bool, argv ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	var out bytes.Buffer
	cmd.Stderr = &out
	if withStdout {
		cmd.Stdout = &out
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return 0, out.String()
}

// dryOutcome turns mapdrop -n's report into the words of outcome: folder
// directories into IMAP names (modified UTF-7 decoded), Maildir flag
// letters into flags, vacation replies only when they would be sent.
func dryOutcome(t *testing.T, report string) string {
	t.Helper()
	letters := map[rune]string{'D': `\Draft`, 'F': `\Flagged`, 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}
	var words []string
	for _, line := range strings.Split(report, "\n") {
		key, v, _ := strings.Cut(line, ": ")
		switch key {
		case "store":
			f := strings.Fields(v)
			name := "INBOX"
			if f[0] != "INBOX" {
				dec, err := mutf7.Decode(strings.TrimPrefix(f[0], "."))
				if err != nil {
					t.Fatalf("-n store %q: %v", f[0], err)
				}
				name = dec
			}
			var flags []string
			if len(f) > 1 {
				if l, ok := strings.CutPrefix(f[1], "flags="); ok {
					for _, r := range l {
						flags = append(flags, letters[r])
					}
				}
			}
			sort.Strings(flags)
			if len(flags) > 0 {
				name += ":" + strings.Join(flags, ",")
			}
			words = append(words, name)
		case "redirect":
			words = append(words, "redirect:"+strings.Fields(v)[0])
		case "vacation":
			if !strings.Contains(v, "not sent") {
				words = append(words, "vacation:"+strings.Fields(v)[0])
			}
		case "reject":
			words = append(words, "reject")
		}
	}
	sort.Strings(words)
	if len(words) == 0 {
		return "none"
	}
	return strings.Join(words, " ")
}

func userEnv(home string, extra ...string) []string {
	return append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "USER=nobody", "LOGNAME=nobody"}, extra...)
}

// outcome describes where the message in home went, as doveadm reads the
// Maildir and as the recorder saw submissions: sorted words "MAILBOX" or
// "MAILBOX:FLAG,FLAG" per stored copy (\Recent dropped), "redirect:ADDR",
// "vacation:ADDR", "reject" (mapdrop: exit 77; Pigeonhole: a rejection
// message to the sender); "none" when nothing at all happened.
func (w *phWorld) outcome(t *testing.T, home string, code int, msg string) string {
	t.Helper()
	var words []string
	if code == 77 {
		words = append(words, "reject")
	}
	cmd := exec.Command(doveadmPath, "-f", "json", "-c", filepath.Join(w.base, "dovecot.conf"), "fetch", "mailbox flags text", "all")
	cmd.Env = userEnv(home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("doveadm fetch in %s: %v\n%s", home, err, stderr.String())
	}
	var stored []struct{ Mailbox, Flags, Text string }
	if err := json.Unmarshal(out, &stored); err != nil {
		t.Fatalf("doveadm fetch in %s: %v\n%s", home, err, out)
	}
	for _, m := range stored {
		// Every stored copy is the message as delivered, byte for byte.
		if m.Text != msg {
			t.Errorf("%s in %s: doveadm reads %q, want the message as delivered", m.Mailbox, home, m.Text)
		}
		var fl []string
		for _, f := range strings.Fields(m.Flags) {
			if f != `\Recent` {
				fl = append(fl, f)
			}
		}
		sort.Strings(fl)
		word := m.Mailbox
		if len(fl) > 0 {
			word += ":" + strings.Join(fl, ",")
		}
		words = append(words, word)
	}
	sent, _ := filepath.Glob(filepath.Join(home, "sent", "m.*"))
	for _, p := range sent {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		args, msg, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(args)
		rcpt := f[len(f)-1]
		sender := "?"
		for i := range f[:len(f)-1] {
			if f[i] == "-f" {
				sender = f[i+1]
			} else if v, ok := strings.CutPrefix(f[i], "-f"); ok && v != "" {
				sender = v
			}
		}
		if sender == "" || sender == "<>" || sender == `""` {
			sender = "<>"
		}
		switch {
		case strings.Contains(msg, "disposition-notification"):
			words = append(words, "reject")
		case strings.Contains(strings.ToLower(msg), "auto-submitted: auto-replied"):
			words = append(words, "vacation:"+rcpt)
			w.details = append(w.details, fmt.Sprintf("vacation to %s from %s: %s", rcpt, sender, replyFields(msg)))
		default:
			words = append(words, "redirect:"+rcpt)
			trace := ""
			for _, line := range strings.Split(msg, "\n") {
				if v, ok := strings.CutPrefix(line, "X-Sieve-Redirected-From:"); ok {
					trace = strings.TrimSpace(v)
					break
				}
			}
			w.details = append(w.details, fmt.Sprintf("redirect to %s from %s, X-Sieve-Redirected-From %s", rcpt, sender, trace))
		}
	}
	sort.Strings(words)
	if len(words) == 0 {
		return "none"
	}
	return strings.Join(words, " ")
}

// replyFields returns the header fields of an auto-reply that the two
// implementations should agree on, values with the random parts dropped.
func replyFields(msg string) string {
	head, _, _ := strings.Cut(strings.ReplaceAll(msg, "\r\n", "\n"), "\n\n")
	var out []string
	for _, line := range strings.Split(head, "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(name) {
		case "subject", "auto-submitted", "in-reply-to", "references", "to":
			out = append(out, strings.ToLower(name)+"="+strings.TrimSpace(v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (c phCase) message(i int) string {
	body := c.body
	if body == "" {
		body = "hello\n"
	}
	subj := c.subject
	if subj == "" {
		subj = "case " + c.name
	}
	from := strings.Trim(c.from, "<>")
	if c.from == "" {
		from = phSender
	}
	return fmt.Sprintf(phMessageFmt, from, subj, fmt.Sprint("c", i), c.headers, body)
}

func TestPigeonholeDifferential(t *testing.T) {
	requireDovecot(t)
	cases := phCases
	w := newPHWorld(t, cases)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			to, from := c.to, c.from
			if to == "" {
				to = phRecipient
			}
			if from == "" {
				from = phSender
			}
			msg := c.message(i)

			w.details = nil
			mh := w.prepare(t, "mapdrop", i, c)
			before, _ := os.ReadFile(w.logFile)
			var fromArgs []string
			if from != "<>" {
				fromArgs = []string{"-f", from}
			}
			margs := append([]string{w.bins.Mapdrop(), "-s", w.sock, "-sendmail", filepath.Join(mh, "sendmail")}, fromArgs...)
			margs = append(margs, "-a", to)
			if c.before != "" {
				margs = append(margs, "-sieve-before", filepath.Join(mh, "before", "admin.sieve"))
			}
			if c.after != "" {
				margs = append(margs, "-sieve-after", filepath.Join(mh, "after", "admin.sieve"))
			}
			margs = append(margs, "-d", fmt.Sprintf("c%d@%s", i, phDomain))
			// The dry run first: it must predict what the delivery does.
			dargs := append([]string{margs[0], "-n"}, margs[1:]...)
			dcode, dout := runAsOut(t, msg, userEnv(mh, "MAPDROP_LOG_FILE="+w.logFile), dargs...)
			if dcode != 0 {
				t.Fatalf("mapdrop -n exit %d:\n%s", dcode, dout)
			}
			code, stderr := runAs(t, msg, userEnv(mh, "MAPDROP_LOG_FILE="+w.logFile), margs...)
			if c.twice && code == 0 {
				code, stderr = runAs(t, msg, userEnv(mh, "MAPDROP_LOG_FILE="+w.logFile), margs...)
			}
			after, _ := os.ReadFile(w.logFile)
			logLine := string(after[len(before):])
			if code != 0 && code != 77 {
				t.Fatalf("mapdrop exit %d: %s\nlog: %s", code, stderr, logLine)
			}
			got := w.outcome(t, mh, code, msg)
			if predicted := dryOutcome(t, dout); !c.twice && predicted != got {
				t.Errorf("mapdrop -n predicted %s, delivery did %s:\n%s", predicted, got, dout)
			}
			mdetails := w.details
			w.details = nil

			ph := w.prepare(t, "pigeonhole", i, c)
			pargs := []string{ldaPath, "-c", filepath.Join(w.base, "dovecot.conf"),
				"-o", "sendmail_path=" + filepath.Join(ph, "sendmail")}
			if c.before != "" {
				pargs = append(pargs, "-o", "plugin/sieve_before="+filepath.Join(ph, "before", "admin.sieve"))
			}
			if c.after != "" {
				pargs = append(pargs, "-o", "plugin/sieve_after="+filepath.Join(ph, "after", "admin.sieve"))
			}
			pargs = append(append(pargs, fromArgs...), "-a", to)
			pcode, pstderr := runAs(t, msg, userEnv(ph), pargs...)
			if c.twice && pcode == 0 {
				pcode, pstderr = runAs(t, msg, userEnv(ph), pargs...)
			}
			if pcode != 0 {
				lda, _ := os.ReadFile(filepath.Join(w.base, "lda.log"))
				t.Fatalf("dovecot-lda exit %d: %s\n%s", pcode, pstderr, lda)
			}
			pgot := w.outcome(t, ph, pcode, msg)
			sort.Strings(mdetails)
			sort.Strings(w.details)
			if c.ph == "" && strings.Join(mdetails, "\n") != strings.Join(w.details, "\n") {
				t.Errorf("submissions differ:\nmapdrop:    %q\nPigeonhole: %q", mdetails, w.details)
			}

			wantPH := c.want
			if c.ph != "" {
				wantPH = c.ph
			}
			if got != c.want {
				t.Errorf("mapdrop: %s, want %s (Pigeonhole: %s)\nlog: %s", got, c.want, pgot, logLine)
			}
			if pgot != wantPH {
				t.Errorf("Pigeonhole: %s, want %s (mapdrop: %s)", pgot, wantPH, got)
			}
			if c.log != "" && !strings.Contains(logLine, c.log) {
				t.Errorf("mapdrop's log %q lacks %q", logLine, c.log)
			}
		})
	}
}
