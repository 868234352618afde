package msghdr

import (
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	m := "From alice@x  Mon Jan  1 00:00:00 2026\n" +
		"Return-Path: <alice@example.org>\n" +
		"Subject: one\n two\n" +
		"garbage line\n" +
		"X-A: 1\nx-a: 2\n" +
		"\n" + "body\n"
	h, err := Read(strings.NewReader(m), int64(len(m)))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("SUBJECT"); got != "one two" {
		t.Errorf("Subject = %q", got)
	}
	if got := h.Values("x-a"); len(got) != 2 || got[1] != "2" {
		t.Errorf("X-A = %q", got)
	}
	if rp, ok := h.ReturnPath(); !ok || rp != "alice@example.org" {
		t.Errorf("ReturnPath = %q %v", rp, ok)
	}
	if m[h.BodyOffset:] != "body\n" {
		t.Errorf("body at %d: %q", h.BodyOffset, m[h.BodyOffset:])
	}
	h, _ = Read(strings.NewReader("Return-Path: <>\r\n"), 17)
	if rp, ok := h.ReturnPath(); !ok || rp != "" {
		t.Errorf("null ReturnPath = %q %v", rp, ok)
	}
	if _, ok := (&Header{}).ReturnPath(); ok {
		t.Error("ReturnPath on an empty header")
	}
}

// A first line "From :" or "From \t:" is the obsolete-syntax From field
// (RFC 5322 section 4.5.2), which envelope.Strip keeps in the message: it
// is read as the field, not skipped as an mbox "From " line.
func TestObsFromFieldFirst(t *testing.T) {
	for _, m := range []string{"From : alice@example.org\nSubject: s\n\nbody\n", "From \t: alice@example.org\nSubject: s\n\nbody\n"} {
		h, err := Read(strings.NewReader(m), int64(len(m)))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Get("from"); got != "alice@example.org" {
			t.Errorf("%q: From = %q, want alice@example.org", m, got)
		}
		if got := h.Get("subject"); got != "s" {
			t.Errorf("%q: Subject = %q, want s", m, got)
		}
	}
}
