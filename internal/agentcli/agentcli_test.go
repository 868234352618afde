package agentcli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPanicIsTemporary(t *testing.T) {
	var stderr bytes.Buffer
	code := safely(&stderr, func() error { panic("boom\nsecond line") })
	if code != 75 || stderr.String() != "mapdrop: internal error: boom second line\n" {
		t.Errorf("safely = %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := safely(&stderr, func() error { return nil }); code != 0 || stderr.Len() != 0 {
		t.Errorf("safely(nil) = %d, %q", code, stderr.String())
	}
	if code := safely(io.Discard, func() error { return errors.New("plain") }); code != 75 {
		t.Errorf("plain error: %d, want 75", code)
	}
}

func TestFromLocal(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	// What local(8) exports for alice+lists@host.example.
	alice := []string{"USER", "alice", "LOCAL", "alice+lists", "EXTENSION", "lists", "RECIPIENT", "alice+lists@host.example", "DOMAIN", "host.example"}
	for _, c := range []struct {
		name      string
		user      string
		delims    string
		env       []string
		ext, rcpt string
		ok        bool
	}{
		{"mailbox_command -d ${USER}", "alice", "+", alice, "lists", "alice+lists@host.example", true},
		{"-d ${USER}@domain", "alice@host.example", "+", alice, "lists", "alice+lists@host.example", true},
		{"-d ${LOCAL}", "alice+lists", "+", alice, "lists", "alice+lists@host.example", true},
		{"case", "Alice", "+", append([]string{}, "USER", "alice", "LOCAL", "alice+lists", "EXTENSION", "lists", "RECIPIENT", "Alice+Lists@Host.Example"), "lists", "Alice+Lists@Host.Example", true},
		{"one of several delimiters", "alice", "-+", alice, "lists", "alice+lists@host.example", true},
		{"no extension", "alice", "+", []string{"USER", "alice", "LOCAL", "alice", "RECIPIENT", "alice@host.example"}, "", "alice@host.example", true},
		{"another user's environment", "bob", "+", alice, "", "", false},
		{"delimiter mapdrop does not know", "alice", "-", alice, "", "", false},
		{"no delimiters", "alice", "", alice, "", "", false},
		{"LOCAL does not hold EXTENSION", "alice", "+", []string{"USER", "alice", "LOCAL", "alice+work", "EXTENSION", "lists", "RECIPIENT", "alice+work@h"}, "", "", false},
		{"RECIPIENT of someone else", "alice", "+", []string{"USER", "alice", "LOCAL", "alice+lists", "EXTENSION", "lists", "RECIPIENT", "bob+lists@h"}, "", "", false},
		{"LOCAL not USER without EXTENSION", "alice", "+", []string{"USER", "alice", "LOCAL", "alice+lists", "RECIPIENT", "alice+lists@h"}, "", "", false},
		{"a login shell: USER only", "alice", "+", []string{"USER", "alice", "EXTENSION", "lists"}, "", "", false},
		{"nothing", "alice", "+", nil, "", "", false},
	} {
		ext, rcpt, ok, ignored := fromLocal(c.user, c.delims, env(c.env...))
		if ext != c.ext || rcpt != c.rcpt || ok != c.ok {
			t.Errorf("%s: fromLocal = %q, %q, %v; want %q, %q, %v", c.name, ext, rcpt, ok, c.ext, c.rcpt, c.ok)
		}
		// Why an EXTENSION that was set is not used, for the log.
		hasExt := env(c.env...)("EXTENSION") != ""
		if wantWhy := !c.ok && hasExt; (ignored != "") != wantWhy || (wantWhy && !strings.HasPrefix(ignored, "local(8)'s EXTENSION=")) {
			t.Errorf("%s: ignored = %q", c.name, ignored)
		}
	}
}

func TestLogOption(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-log", "/a", "-d", "u"}, "/a"},
		{[]string{"-s", "unix:/x", "--log=/b", "-quota-bounce", "-d", "u"}, "/b"},
		{[]string{"-s", "-log", "-log", "/c", "-d", "u"}, "/c"}, // the first -log is -s's value
		{[]string{"-log", "/a", "-log", "/d", "-d", "u"}, "/d"},
		{[]string{"-d", "u", "-log", "/e"}, ""}, // an argument after -d
		{[]string{"-x", "-log", "/f", "-d", "u"}, "/f"},
		{[]string{"-log"}, ""},
		{nil, ""},
	} {
		if got := logOption(c.args); got != c.want {
			t.Errorf("logOption(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
