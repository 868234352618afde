package maildir

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomaildir "github.com/emersion/go-maildir"
)

func TestMailboxDir(t *testing.T) {
	for in, want := range map[string]string{
		"Lists/Go": ".Lists.Go", "Lists.Go": ".Lists.Go", "Entwürfe": ".Entw&APw-rfe",
		"A&B": ".A&-B", "Junk": ".Junk", "INBOX.Sub": ".INBOX.Sub",
	} {
		got, inbox, err := MailboxDir(in)
		if err != nil || inbox || got != want {
			t.Errorf("MailboxDir(%q) = %q %v %v, want %q", in, got, inbox, err, want)
		}
	}
	for _, in := range []string{"inbox", "INBOX", "Inbox"} {
		if _, inbox, err := MailboxDir(in); !inbox || err != nil {
			t.Errorf("MailboxDir(%q) not the inbox", in)
		}
	}
	for _, bad := range []string{"", "/A", "A/", "A..B", ".", "A\x01", "\xff"} {
		if _, _, err := MailboxDir(bad); err == nil {
			t.Errorf("MailboxDir(%q) accepted", bad)
		}
	}
}

func TestInfoFlags(t *testing.T) {
	if got := InfoFlags([]string{`\seen`, "$label", `\Flagged`, `\DELETED`, `\Answered`, `\Draft`, `\Seen`}); got != "DFRST" {
		t.Errorf("InfoFlags = %q", got)
	}
	if got := InfoFlags(nil); got != "" {
		t.Errorf("InfoFlags(nil) = %q", got)
	}
}

func TestSubAndLink(t *testing.T) {
	d, path := openMaildir(t)
	if err := os.Mkdir(filepath.Join(path, ".Lists"), 0o700); err != nil {
		t.Fatal(err)
	}
	if sub, found, err := d.Sub(".Missing", false); sub != nil || found || err != nil {
		t.Fatalf("Sub(.Missing) = %v %v %v", sub, found, err)
	}
	lists, found, err := d.Sub(".LISTS", false)
	if err != nil || !found || lists.Name() != ".Lists" {
		t.Fatalf("Sub(.LISTS) = %v %v", found, err)
	}
	defer lists.Close()
	created, found, err := d.Sub(".New.Sub", true)
	if err != nil || !found {
		t.Fatalf("Sub create: %v", err)
	}
	defer created.Close()
	if _, err := os.Stat(filepath.Join(path, ".New.Sub", "maildirfolder")); err != nil {
		t.Errorf("maildirfolder: %v", err)
	}
	dl, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: hi\r\n\r\nbody\r\n"
	if _, err := dl.Write(strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	r1, err := dl.Link(d, "")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := dl.Link(lists, "FS")
	if err != nil {
		t.Fatal(err)
	}
	r3, err := dl.Link(created, "")
	if err != nil {
		t.Fatal(err)
	}
	dl.Abort()
	if ents, _ := os.ReadDir(filepath.Join(path, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	if !strings.HasPrefix(r1, "new/") || !strings.HasPrefix(r2, "cur/") || !strings.HasSuffix(r2, ":2,FS") || !strings.HasPrefix(r3, "new/") {
		t.Errorf("paths %q %q %q", r1, r2, r3)
	}
	// Read back with go-maildir.
	gl := gomaildir.Dir(filepath.Join(path, ".Lists"))
	msgs, err := gl.Messages()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("go-maildir .Lists: %v %v", msgs, err)
	}
	flags := msgs[0].Flags()
	if len(flags) != 2 || flags[0] != gomaildir.FlagFlagged || flags[1] != gomaildir.FlagSeen {
		t.Errorf("flags %v", flags)
	}
	rc, err := msgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != msg {
		t.Errorf("content %q", b)
	}
	if err := lists.Remove(r2); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := gl.Messages(); len(msgs) != 0 {
		t.Errorf("Remove left %v", msgs)
	}
}
