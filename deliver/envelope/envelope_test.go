package envelope

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStrip(t *testing.T) {
	long := "From " + strings.Repeat("x", MaxLine) + "\nSubject: s\n\nbody\n"
	for _, c := range []struct {
		in, out, sender string
		found           bool
	}{
		// As local(8) writes it.
		{"From alice@example.org  Tue Dec  1 23:20:27 2026\nReturn-Path: <alice@example.org>\n\nhi\n",
			"Return-Path: <alice@example.org>\n\nhi\n", "alice@example.org", true},
		{"From MAILER-DAEMON  Wed Jan 14 09:05:00 2026\r\nSubject: bounce\r\n\r\n", "Subject: bounce\r\n\r\n", "", true},
		{"From mailer-daemon  Wed Jan 14 09:05:00 2026\n", "", "", true},
		{"From \"a b\"@example.org  Wed Jan 14 09:05:00 2026\nX: y\n", "X: y\n", `"a b"@example.org`, true},
		// Another program's mbox line: the first word.
		{"From bob@example.net Sat Jan  3 01:05:34 1996\nX: y\n", "X: y\n", "bob@example.net", true},
		{"From bob@example.net\nX: y\n", "X: y\n", "bob@example.net", true},
		// Not an envelope line: passed through.
		{"From: alice@example.org\n\nhi\n", "From: alice@example.org\n\nhi\n", "", false},
		{"From : alice@example.org\n\nhi\n", "From : alice@example.org\n\nhi\n", "", false},
		{"From \t: alice@example.org\n\nhi\n", "From \t: alice@example.org\n\nhi\n", "", false},
		{"Subject: x\nFrom alice  Tue Dec  1 23:20:27 2026\n", "Subject: x\nFrom alice  Tue Dec  1 23:20:27 2026\n", "", false},
		{">From alice\n", ">From alice\n", "", false},
		{"From", "From", "", false},
		{"", "", "", false},
		{"From alice  Tue Dec  1 23:20:27 2026", "From alice  Tue Dec  1 23:20:27 2026", "", false}, // no line end
		{long, long, "", false},
	} {
		r, sender, found := Strip(strings.NewReader(c.in))
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != c.out || sender != c.sender || found != c.found {
			t.Errorf("Strip(%q) = %q, %q, %v; want %q, %q, %v", shorten(c.in), shorten(string(out)), sender, found, shorten(c.out), c.sender, c.found)
		}
	}
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// TestStripLargeMessage passes a message much larger than the buffer
// through byte for byte.
func TestStripLargeMessage(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef\n"), 1<<16)
	in := append([]byte("From a@b  Tue Dec  1 23:20:27 2026\n"), body...)
	r, sender, found := Strip(bytes.NewReader(in))
	out, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(out, body) || sender != "a@b" || !found {
		t.Errorf("large message: %d bytes (want %d), %q, %v, %v", len(out), len(body), sender, found, err)
	}
}

// TestStripReadsOnlyTheLine feeds a pipe that stays open: Strip returns
// after the first line arrived, without waiting for the rest.
func TestStripReadsOnlyTheLine(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, err := pw.WriteString("From a@b  Tue Dec  1 23:20:27 2026\nSubj"); err != nil {
		t.Fatal(err)
	}
	type res struct {
		sender string
		r      io.Reader
	}
	done := make(chan res, 1)
	go func() {
		r, s, _ := Strip(pr)
		done <- res{s, r}
	}()
	var got res
	select {
	case got = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Strip waited for more than the first line")
	}
	if got.sender != "a@b" {
		t.Errorf("sender %q", got.sender)
	}
	pw.WriteString("ect: x\n\nbody\n")
	pw.Close()
	out, err := io.ReadAll(got.r)
	if err != nil || string(out) != "Subject: x\n\nbody\n" {
		t.Errorf("rest %q, %v", out, err)
	}
}

func TestSender(t *testing.T) {
	for in, want := range map[string]string{
		"From alice@example.org  Tue Dec  1 23:20:27 2026\n": "alice@example.org",
		"From MAILER-DAEMON  Tue Dec  1 23:20:27 2026":       "",
		"From x y  Tue Dec  1 23:20:27 2026":                 "x y",
		"From x  not a date":                                 "x",
	} {
		if got := Sender(in); got != want {
			t.Errorf("Sender(%q) = %q, want %q", in, got, want)
		}
	}
}
