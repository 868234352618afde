package mapfile

import "testing"

func TestLineOf(t *testing.T) {
	text := "# comment\n" +
		"user1@some.domain   a\n" + // 2
		"\n" +
		"postmaster@some.domain  user1@some.domain,\n" + // 4
		"    user2@some.domain\n" +
		"  # a comment inside\n" +
		"\tuser3@some.domain\n" +
		"@catchall.domain    user2@some.domain\n" + // 8
		"USER1@some.domain   duplicate\n" + // 9
		"Ümläut@x            u\n" // 10
	tbl, _, err := ParseText(text, "f", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tbl.Entries {
		if got := LineOf(text, e.Key); got != e.Line {
			t.Errorf("LineOf(%q) = %d, want %d (the parser's)", e.Key, got, e.Line)
		}
	}
	for key, want := range map[string]int{
		"user1@some.domain":      2,
		"postmaster@some.domain": 4,
		"@catchall.domain":       8,
		"ümläut@x":               10,
		"nobody@x":               0,
		"":                       0,
	} {
		if got := LineOf(text, key); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", key, got, want)
		}
	}
}
