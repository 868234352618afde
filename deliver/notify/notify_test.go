package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/deliver/msghdr"
)

func hdr(t *testing.T, s string) *msghdr.Header {
	t.Helper()
	h, err := msghdr.Read(strings.NewReader(s+"\n"), int64(len(s)+1))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVacationAllowed(t *testing.T) {
	mine := []string{"bob@example.com", "robert@example.com"}
	to := "To: Bob <bob@example.com>\n"
	cases := []struct {
		sender, header string
		ok             bool
	}{
		{"alice@x", to, true},
		{"alice@x", "Cc: x@y, ROBERT@example.com\n", true},
		{"alice@x", "Resent-To: bob@example.com\n", true},
		{"alice@x", "To: notbob@example.com, bob@example.com.evil\n", false},
		{"alice@x", "To: everyone@example.com\n", false},
		{"", to, false},
		{"MAILER-DAEMON@x", to, false},
		{"owner-list@x", to, false},
		{"list-request@x", to, false},
		{"alice@x", to + "Auto-Submitted: auto-replied\n", false},
		{"alice@x", to + "Auto-Submitted: no\n", true},
		{"alice@x", to + "Precedence: bulk\n", false},
		{"alice@x", to + "Precedence: junk\n", false},
		{"alice@x", to + "List-Id: <x.y>\n", false},
		{"bob@example.com", to, false},
	}
	for _, c := range cases {
		err := VacationAllowed(hdr(t, c.header), c.sender, mine)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrNoVacation)) {
			t.Errorf("VacationAllowed(%q, %q) = %v, want ok=%v", c.sender, c.header, err, c.ok)
		}
	}
}

func TestCompose(t *testing.T) {
	r := Reply{From: "bob@example.com", To: "alice@x", Body: "Away.\r\nBack Monday.", OrigSubject: "Grüße\n there",
		OrigMessageID: "<1@x>", OrigRefs: "<0@x>", Date: time.Unix(0, 0).UTC(), MessageID: "r1@host"}
	got := string(r.Compose())
	for _, want := range []string{"From: bob@example.com\n", "To: alice@x\n", "Subject: =?utf-8?q?Auto:_Gr=C3=BC=C3=9Fe_there?=\n",
		"In-Reply-To: <1@x>\n", "References: <0@x> <1@x>\n", "Auto-Submitted: auto-replied (vacation)\n",
		"Message-ID: <r1@host>\n", "\n\nAway.\nBack Monday.\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("reply lacks %q:\n%s", want, got)
		}
	}
}

func TestRecords(t *testing.T) {
	r := Records{Dir: filepath.Join(t.TempDir(), ".mapdrop")}
	if _, ok := r.When("redirect", "k"); ok {
		t.Fatal("record before Mark")
	}
	old := filepath.Join(r.Dir, "sent", "redirect-old")
	os.MkdirAll(filepath.Dir(old), 0o700)
	os.WriteFile(old, nil, 0o600)
	os.Chtimes(old, time.Now().Add(-100*24*time.Hour), time.Now().Add(-100*24*time.Hour))
	if err := r.Mark("redirect", "k"); err != nil {
		t.Fatal(err)
	}
	if when, ok := r.When("redirect", "k"); !ok || time.Since(when) > time.Minute {
		t.Fatalf("When = %v %v", when, ok)
	}
	if _, ok := r.When("vacation", "k"); ok {
		t.Fatal("kinds are not separate")
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old record kept: %v", err)
	}
}

func TestSend(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "sendmail")
	os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$OUT.args\"\ncat > \"$OUT.msg\"\n[ \"$5\" != fail@x ] || { echo 'bad recipient' >&2; exit 67; }\n"), 0o755)
	t.Setenv("OUT", filepath.Join(dir, "out"))
	if err := Send(context.Background(), fake, "", "carol@x", strings.NewReader("Subject: s\n\nb\n")); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "out.args"))
	if string(args) != "-i\n-f\n<>\n--\ncarol@x\n" {
		t.Errorf("args %q", args)
	}
	if msg, _ := os.ReadFile(filepath.Join(dir, "out.msg")); string(msg) != "Subject: s\n\nb\n" {
		t.Errorf("msg %q", msg)
	}
	err := Send(context.Background(), fake, "a@x", "fail@x", strings.NewReader(""))
	if err == nil || !strings.Contains(err.Error(), "bad recipient") {
		t.Errorf("failing sendmail: %v", err)
	}
}
