package key

import "testing"

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"user@some.domain":  "user@some.domain",
		"USER@Some.Domain":  "user@some.domain",
		"ÜMLÄUT":            "ümläut",
		"ümläut":            "ümläut",
		"A\xffB":            "a\xffb", // invalid UTF-8: ASCII folded, bytes kept
		"a\xffb":            "a\xffb",
		"\xc3\x9c\xff":      "\xc3\x9c\xff", // no ASCII upper: unchanged, even Ü
		"[1.2.3.4]":         "[1.2.3.4]",
		"\"A B\"@X.EXAMPLE": "\"a b\"@x.example",
		"abc\xffDEF":        "abc\xffdef",  // the first byte off the fast path is not a letter
		"abc\xc3\x9c":       "abc\xc3\xbc", // nor is this one (Ü)
		"ABC":               "abc",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
	for _, k := range []string{"user+ext@some.domain", "ümläut@x"} {
		if n := testing.AllocsPerRun(100, func() { _ = Fold(k) }); n != 0 {
			t.Errorf("Fold(%q) allocates %v times", k, n)
		}
	}
}
