package mapfile

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
)

func parseString(t *testing.T, src string) ([]Entry, []*Error, error) {
	t.Helper()
	return Parse(strings.NewReader(src), "f")
}

func mustParse(t *testing.T, src string) []Entry {
	t.Helper()
	entries, _, err := parseString(t, src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return entries
}

func TestParseEntries(t *testing.T) {
	src := "# a comment\n" +
		"\n" +
		"User1@Some.Domain   user1@elsewhere.example\n" +
		"@some.domain\tcatchall@some.domain\n" +
		"[1.2.3.4] OK\n" +
		"   # indented comment\n" +
		"list@x a@x, b@x,  c@x\n" +
		"crlf\tvalue with spaces \r\n" +
		"long first\n" +
		"  second\n" +
		"\tthird\n" +
		"last v\n"
	got := mustParse(t, src)
	want := []Entry{
		{"user1@some.domain", "user1@elsewhere.example", 3},
		{"@some.domain", "catchall@some.domain", 4},
		{"[1.2.3.4]", "OK", 5},
		{"list@x", "a@x, b@x,  c@x", 7},
		{"crlf", "value with spaces", 8},
		{"long", "first  second\tthird", 9},
		{"last", "v", 12},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestContinuationAcrossCommentsAndBlankLines(t *testing.T) {
	// postmap: comment and blank lines do not end a logical line.
	got := mustParse(t, "k first\n\n# comment\n  second\n")
	if len(got) != 1 || got[0].Value != "first  second" || got[0].Line != 1 {
		t.Fatalf("got %+v", got)
	}
	// The value may start on a continuation line.
	got = mustParse(t, "k\n  value\n")
	if len(got) != 1 || got[0].Key != "k" || got[0].Value != "value" {
		t.Fatalf("got %+v", got)
	}
}

func TestNoFinalNewline(t *testing.T) {
	got := mustParse(t, "a b\nc d")
	if len(got) != 2 || got[1] != (Entry{"c", "d", 2}) {
		t.Fatalf("got %+v", got)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only\n   \n\t\n"} {
		entries, warnings, err := parseString(t, src)
		if err != nil || len(entries) != 0 || len(warnings) != 0 {
			t.Errorf("Parse(%q) = %v, %v, %v", src, entries, warnings, err)
		}
	}
}

func TestQuotedKeys(t *testing.T) {
	// Matches Postfix 3.7 postmap: whitespace inside double quotes or after
	// a backslash does not end the key; the quotes stay in the key.
	got := mustParse(t, "\"A b\"@x val1\na\\ b v2\n\"a\\\"b c\"@d v3\nx\\\"y z\" w4\n\"\" v5\nk \"quoted value\" tail\n")
	want := map[string]string{
		`"a b"@x`:    "val1",
		`a\ b`:       "v2",
		`"a\"b c"@d`: "v3",
		`x\"y`:       `z" w4`,
		`""`:         "v5",
		"k":          `"quoted value" tail`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for _, e := range got {
		if want[e.Key] != e.Value {
			t.Errorf("key %q = %q, want %q", e.Key, e.Value, want[e.Key])
		}
	}
}

func TestErrorsAllReported(t *testing.T) {
	src := "good value\n" + // 1
		"novalue\n" + // 2
		"  \tcont after nothing?\n" + // 3: continues line 2, so line 2 has a value
		"\"unbalanced key value\n" + // 4
		"nul\x00 x\n" + // 5
		"bad \xff\xfe utf8\n" + // 6
		"  continuation of a bad line\n" + // 7: silently part of line 6
		"alone\n" + // 8
		"ok2 v\n" // 9
	entries, _, err := parseString(t, src)
	if entries != nil {
		t.Errorf("entries = %v, want nil on error", entries)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %T %v, want ErrorList", err, err)
	}
	var lines []int
	for _, e := range list {
		lines = append(lines, e.Line)
		if e.File != "f" || e.Reason == "" {
			t.Errorf("bad error %+v", e)
		}
	}
	if want := []int{4, 5, 6, 8}; !equalInts(lines, want) {
		t.Errorf("error lines = %v, want %v\n%v", lines, want, err)
	}
	if !strings.Contains(err.Error(), "f:8: expected format: key whitespace value") {
		t.Errorf("error text %q lacks the no-value error", err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(list)-1 {
		t.Errorf("ErrorList.Error() has %d newlines for %d errors", n, len(list))
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 4 {
		t.Errorf("errors.As(*Error) = %v", one)
	}
}

func TestContinuationWithoutEntry(t *testing.T) {
	_, _, err := parseString(t, "# header\n  lead x\nk v\n")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 2 {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicateFirstWins(t *testing.T) {
	entries, warnings, err := parseString(t, "Key1 v\nother x\nkey1 w\nKEY1 z\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0] != (Entry{"key1", "v", 1}) {
		t.Errorf("entries = %+v", entries)
	}
	if len(warnings) != 2 || warnings[0].Line != 3 || warnings[1].Line != 4 {
		t.Fatalf("warnings = %v", warnings)
	}
	if got := warnings[0].Error(); !strings.HasPrefix(got, "f:3: duplicate entry \"key1\"") || !strings.Contains(got, "line 1") {
		t.Errorf("warning text = %q", got)
	}
}

func TestUnicodeFolding(t *testing.T) {
	entries := mustParse(t, "ÜMLÄUT@Example.COM Wert MIT Großbuchstaben\n")
	if entries[0].Key != "ümläut@example.com" || entries[0].Value != "Wert MIT Großbuchstaben" {
		t.Errorf("got %+v", entries[0])
	}
}

func TestLongLines(t *testing.T) {
	// A physical line over the limit is one error; parsing goes on.
	big := strings.Repeat("x", MaxLineBytes+10)
	_, _, err := parseString(t, "a b\nk "+big+"\n  more\nnovalue\n")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || list[0].Line != 2 || list[1].Line != 4 {
		t.Fatalf("err = %v", trunc(err))
	}
	// Continuations adding up over the limit.
	half := strings.Repeat("y", MaxLineBytes/2)
	_, _, err = parseString(t, "k v\n "+half+"\n "+half+"\n "+half+"\nnext v\n")
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 1 {
		t.Fatalf("err = %v", trunc(err))
	}
	// Just under the limit is fine, even longer than bufio's buffer.
	ok := "k " + strings.Repeat("z", MaxLineBytes-2)
	entries := mustParse(t, ok+"\nn v")
	if len(entries) != 2 || len(entries[0].Value) != MaxLineBytes-2 {
		t.Fatalf("got %d entries", len(entries))
	}
}

func TestTooManyErrors(t *testing.T) {
	src := strings.Repeat("novalue\n", maxReported+5)
	_, _, err := parseString(t, src)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxReported+1 {
		t.Fatalf("got %d errors", len(list))
	}
	if last := list[len(list)-1]; !strings.Contains(last.Reason, "5 more errors") {
		t.Errorf("last = %v", last)
	}
}

type failingReader struct{ r *strings.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	if f.r.Len() == 0 {
		return 0, errors.New("disk on fire")
	}
	return f.r.Read(p)
}

func TestReadError(t *testing.T) {
	entries, _, err := Parse(failingReader{strings.NewReader("a b\n")}, "f")
	if entries != nil || err == nil || !strings.Contains(err.Error(), "f: read: disk on fire") {
		t.Fatalf("entries %v, err %v", entries, err)
	}
}

func TestErrorFormat(t *testing.T) {
	if got := (&Error{File: "/etc/x", Line: 7, Reason: "bad"}).Error(); got != "/etc/x:7: bad" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{File: "/etc/x", Reason: "gone"}).Error(); got != "/etc/x: gone" {
		t.Errorf("got %q", got)
	}
}

// TestMatchesPostmap compares Parse with Postfix's own postmap on the same
// file, when postmap is installed: every key/value postmap stores, Parse
// returns too, and nothing else.
func TestMatchesPostmap(t *testing.T) {
	postmap := postfixtest.Postmap(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src := "# comment\n" +
		"User1@Some.Domain   user1@elsewhere.example\n" +
		"@some.domain\tcatchall@some.domain\n" +
		"[1.2.3.4] OK\n" +
		"list@x a@x, b@x,  c@x  \r\n" +
		"long first\n\n# c\n  second\n\tthird\n" +
		"\"a b\"@x quoted\n" +
		"a\\ b escaped\n" +
		"\"a\\\"b c\"@d v3\n" +
		"dup first\nDUP second\n" +
		"k\n  value on next line\n"
	file := filepath.Join(dir, "map")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MAIL_CONFIG="+dir)
	build := exec.Command(postmap, "lmdb:"+file)
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v\n%s", err, out)
	}
	dump := exec.Command(postmap, "-s", "lmdb:"+file)
	dump.Env = env
	out, err := dump.Output()
	if err != nil {
		t.Fatalf("postmap -s: %v", err)
	}
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "\t")
		want[k] = v
	}
	entries := mustParse(t, src)
	got := map[string]string{}
	for _, e := range entries {
		got[e.Key] = e.Value
	}
	if len(want) < 10 {
		t.Fatalf("postmap stored only %v", want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("postmap has %q → %q, Parse has %q", k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Parse has %q, postmap does not", k)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func trunc(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// A UTF-8 byte order mark at the start is removed with a warning at line
// 1; it is not part of the first key (and LineOf finds that key). One
// anywhere else is kept as any other character.
func TestByteOrderMark(t *testing.T) {
	text := BOM + "user1@x a\nuser2@x b\n"
	tbl, warnings, err := ParseText(text, "f", true)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := tbl.Map["user1@x"]; !ok || v != "a" {
		t.Errorf("first key with a BOM: map %q", tbl.Map)
	}
	if len(warnings) != 1 || warnings[0].Line != 1 || !strings.Contains(warnings[0].Error(), "f:1: UTF-8 byte order mark") {
		t.Errorf("warnings %v, want one at f:1 for the BOM", warnings)
	}
	if got := LineOf(text, "user1@x"); got != 1 {
		t.Errorf("LineOf(first key) = %d, want 1", got)
	}
	tbl, warnings, err = ParseText("k v"+BOM+"\n", "f", false)
	if err != nil || len(warnings) != 0 || tbl.Map["k"] != "v"+BOM {
		t.Errorf("BOM inside a value: %v %v %q", err, warnings, tbl.Map)
	}
}
