package msghdr

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary messages to Read. It must not fail on an
// in-memory message, the body must start within the message, the header
// read from the bytes before the body alone must be the same, names must
// match in any ASCII case, and Get must return one line.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"Return-Path: <a@b>\nSubject: hi\n\nbody\n",
		"From a@b  Mon Jan  1 00:00:00 2024\nReturn-Path: <>\nTo: x\r\n\tfolded\r\n\r\nbody",
		"no colon line\nX: 1\n x\nX: 2\n",
		":empty name\nSubject:\n\n",
		"\n\nbody only",
		"From \n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		r := strings.NewReader(msg)
		h, err := Read(r, int64(len(msg)))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if h.BodyOffset < 0 || h.BodyOffset > int64(len(msg)) || h.BodyOffset > MaxBytes {
			t.Fatalf("BodyOffset %d outside the message (%d bytes)", h.BodyOffset, len(msg))
		}
		prefix := msg[:h.BodyOffset]
		h2, err := Read(strings.NewReader(prefix), int64(len(prefix)))
		if err != nil {
			t.Fatalf("Read(prefix): %v", err)
		}
		if !reflect.DeepEqual(h.fields, h2.fields) || h2.BodyOffset != h.BodyOffset {
			t.Fatalf("header of the prefix differs:\n%q\n%q", h.fields, h2.fields)
		}
		for name, vals := range h.fields {
			if name != lowerASCII(name) {
				t.Fatalf("name %q not lower case", name)
			}
			upper := []byte(name)
			for i, c := range upper {
				if 'a' <= c && c <= 'z' {
					upper[i] = c - 'a' + 'A'
				}
			}
			if !reflect.DeepEqual(h.Values(string(upper)), vals) {
				t.Fatalf("Values(%q) differs by case", name)
			}
			if g := h.Get(name); strings.ContainsAny(g, "\r\n") {
				t.Fatalf("Get(%q) = %q spans lines", name, g)
			}
		}
		if rp, ok := h.ReturnPath(); ok != h.Has("return-path") || strings.ContainsAny(rp, "\r\n") || rp != strings.TrimSpace(rp) {
			t.Fatalf("ReturnPath = %q, %v", rp, ok)
		}
	})
}
