package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What local(8) pipes to mailbox_command, mailbox_command_maps and .forward
// commands: an mbox "From " line, then the envelope fields it adds.
const (
	localHeader = "Return-Path: <bob@example.net>\nX-Original-To: u1@some.domain\nDelivered-To: u1@some.domain\n"
	localBody   = "Subject: hi\n\nbody\nFrom the body, not an envelope line\n"
)

func localEnv(user, ext, domain string) []string {
	local := user
	if ext != "" {
		local += "+" + ext
	}
	return []string{"USER=" + user, "LOCAL=" + local, "EXTENSION=" + ext, "DOMAIN=" + domain,
		"RECIPIENT=" + local + "@" + domain, "SENDER=bob@example.net", "HOME=/nonexistent", "SHELL=/bin/sh"}
}

// TestLocalFromLine: the "From " line is not stored, and its sender is
// logged, for <> too.
func TestLocalFromLine(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1")
	in := "From bob@example.net  Tue Dec  1 23:20:27 2026\n" + localHeader + localBody
	w.run(strings.NewReader(in), "-d", "u1@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(md, "new")); string(got) != localHeader+localBody {
		t.Errorf("stored %q, want %q", got, localHeader+localBody)
	}
	if l := w.log(); !strings.Contains(l, " user=u1@some.domain from=<bob@example.net> account=") {
		t.Errorf("log %q lacks from=<bob@example.net>", l)
	}
	os.Remove(w.logFile)
	bounce := "From MAILER-DAEMON  Wed Jan 14 09:05:00 2026\r\nReturn-Path: <>\r\n\r\nbounce\r\n"
	w.run(strings.NewReader(bounce), "-d", "u1@some.domain").want(t, 0, "")
	if !strings.Contains(w.log(), " from=<> ") {
		t.Errorf("log %q lacks from=<>", w.log())
	}
	// pipe(8)'s input, without the line: stored as it is, no from=.
	os.Remove(w.logFile)
	w.run(strings.NewReader(localHeader+localBody), "-d", "u1@some.domain").want(t, 0, "")
	if strings.Contains(w.log(), "from=") {
		t.Errorf("log %q has from= without a From line or -f", w.log())
	}
	if n := len(files(t, filepath.Join(md, "new"))); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
}

// TestLocalFromLineSieve: with a script, mapdrop hands stdin over untouched
// and mapdrop-sieve removes the line; without a Return-Path: field the
// line's sender is Sieve's envelope "from".
func TestLocalFromLineSieve(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1", ".Bob")
	w.writeOwned(filepath.Join(w.home("u1"), ".dovecot.sieve"), `require ["fileinto","envelope"];
if envelope :is "from" "carol@example.org" { fileinto "Bob"; }`)
	msg := "X-Original-To: u1@some.domain\n" + localBody
	in := "From carol@example.org  Tue Dec  1 23:20:27 2026\n" + msg
	cmd := w.command(runOpts{stdin: strings.NewReader(in)}, "-s", w.sock, "-n", "-d", "u1@some.domain")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "envelope: from=<carol@example.org> ") || !strings.Contains(string(out), "store: .Bob\n") {
		t.Errorf("-n: %v\n%s", err, out)
	}
	w.run(strings.NewReader(in), "-d", "u1@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(md, ".Bob", "new")); string(got) != msg {
		t.Errorf(".Bob: %q, want %q", got, msg)
	}
	// A Return-Path: field wins over the line.
	w.run(strings.NewReader("From carol@example.org  Tue Dec  1 23:20:27 2026\n"+localHeader+localBody), "-d", "u1@some.domain").want(t, 0, "")
	if got := only(t, filepath.Join(md, "new")); string(got) != localHeader+localBody {
		t.Errorf("INBOX: %q", got)
	}
}

// TestLocalExtension: "mailbox_command = mapdrop -d ${USER}" gets the
// extension from local(8)'s environment; an explicit argument wins, and an
// environment that does not describe the -d user is ignored.
func TestLocalExtension(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("ext", ".Work", ".Lists.Go")
	cases := []struct {
		env    []string
		args   []string
		folder string
	}{
		{localEnv("ext", "work", "some.domain"), []string{"-d", "ext@some.domain"}, ".Work"},
		{localEnv("ext", "WORK", "some.domain"), []string{"-d", "ext@some.domain"}, ".Work"},
		{localEnv("ext", "lists.go", "some.domain"), []string{"-d", "ext@some.domain"}, ".Lists.Go"},
		{localEnv("ext", "nosuch", "some.domain"), []string{"-d", "ext@some.domain"}, ""},
		{localEnv("ext", "", "some.domain"), []string{"-d", "ext@some.domain"}, ""},
		// An explicit argument wins, even an empty one.
		{localEnv("ext", "work", "some.domain"), []string{"-d", "ext@some.domain", "lists.go"}, ".Lists.Go"},
		{localEnv("ext", "work", "some.domain"), []string{"-d", "ext@some.domain", ""}, ""},
		// Not this user's environment, or a delimiter mapdrop does not use.
		{localEnv("other", "work", "some.domain"), []string{"-d", "ext@some.domain"}, ""},
		{append(localEnv("ext", "work", "some.domain"), "LOCAL=ext-work"), []string{"-d", "ext@some.domain"}, ""},
		{[]string{"USER=ext", "EXTENSION=work"}, []string{"-d", "ext@some.domain"}, ""},
	}
	want := map[string]int{}
	for _, c := range cases {
		w.runOpts(runOpts{stdin: strings.NewReader(strings.Join(c.env, " ")), env: c.env}, append([]string{"-s", w.sock}, c.args...)...).want(t, 0, "")
		want[c.folder]++
	}
	for folder, n := range want {
		if got := len(files(t, filepath.Join(md, folder, "new"))); got != n {
			t.Errorf("folder %q holds %d messages, want %d", folder, got, n)
		}
	}
	// Why the environment was not used is in the log line.
	if l := w.log(); !strings.Contains(l, `note="local(8)'s EXTENSION=\"work\" ignored: LOCAL \"ext-work\" is not USER \"ext\", one of the -recipient-delimiter characters \"+\" and EXTENSION"`) {
		t.Errorf("log lacks the note on the delimiter:\n%s", l)
	}
	// The same with "-" as the delimiter on both sides.
	env := append(localEnv("ext", "work", "some.domain"), "LOCAL=ext-work", "RECIPIENT=ext-work@some.domain")
	w.runOpts(runOpts{stdin: strings.NewReader("dash"), env: env}, "-s", w.sock, "-recipient-delimiter", "-", "-d", "ext@some.domain").want(t, 0, "")
	if got := len(files(t, filepath.Join(md, ".Work", "new"))); got != want[".Work"]+1 {
		t.Errorf(".Work holds %d messages, want %d", got, want[".Work"]+1)
	}
}

// TestLocalRecipientForSieve: without -a or a recipient argument, Sieve's
// envelope "to" is local(8)'s RECIPIENT, extension included.
func TestLocalRecipientForSieve(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1", ".News")
	w.writeOwned(filepath.Join(w.home("u1"), ".dovecot.sieve"), `require ["fileinto","envelope","subaddress"];
if envelope :detail "to" "digest" { fileinto "News"; }`)
	w.runOpts(runOpts{stdin: strings.NewReader(localBody), env: localEnv("u1", "digest", "some.domain")}, "-s", w.sock, "-d", "u1@some.domain").want(t, 0, "")
	if n := len(files(t, filepath.Join(md, ".News", "new"))); n != 1 {
		t.Errorf(".News holds %d messages, want 1; log %s", n, w.log())
	}
}
