package tcptable

import (
	"errors"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
)

func TestEncode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a b%c", "a%20b%25c"},
		{"ün", "%C3%BCn"},
		{"ünï", "%C3%BCn%C3%AF"},
		{"user1@some.domain", "user1@some.domain"},
		{"\t\r\n\x00\x7f~!", "%09%0D%0A%00%7F~!"},
		{"", ""},
	} {
		if got := Encode(tc.in); got != tc.want {
			t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := encodedLen(tc.in); n != len(tc.want) {
			t.Errorf("encodedLen(%q) = %d, want %d", tc.in, n, len(tc.want))
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a%20b%25c", "a b%c"},
		{"%C3%BCn", "ün"},
		{"%c3%bcn", "ün"},
		{"%c3%Bcn", "ün"},
		{"plain", "plain"},
		{"raw ü passes", "raw ü passes"},
		{"", ""},
	} {
		got, err := Decode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Decode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"%", "%2", "a%2", "%zz", "%2g", "%%", "ok%G0"} {
		if got, err := Decode(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %q, %v; want ErrMalformed", in, got, err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct{ in, key string }{
		{"get a%20b%25c\n", "a b%c"},
		{"get %C3%BCn", "ün"},
		{"get user1@some.domain\r\n", "user1@some.domain"},
		{"get USER1@Some.Domain\n", "USER1@Some.Domain"},
		{"get \n", ""},
		{"get\t k \n", "k"},
	} {
		req, err := ParseRequest(tc.in)
		if err != nil || req.Command != "get" || req.Key != tc.key {
			t.Errorf("ParseRequest(%q) = %+v, %v; want key %q", tc.in, req, err, tc.key)
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"\n", ErrMalformed},
		{"get a b\n", ErrMalformed},
		{"get a%2\n", ErrMalformed},
		{"put k v\n", ErrUnsupported},
		{"GET k\n", ErrUnsupported},
		{"del k\n", ErrUnsupported},
	} {
		if _, err := ParseRequest(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("ParseRequest(%q) error = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	if got := string(AppendRequest(nil, "a b%c")); got != "get a%20b%25c\n" {
		t.Fatalf("AppendRequest = %q", got)
	}
}

func TestAppendReply(t *testing.T) {
	max := strings.Repeat("v", MaxLine-len("200 \n"))
	maxEnc := strings.Repeat("ü", 681) + "vvvvv" // 681*6+5 encoded bytes fill the line exactly
	for _, tc := range []struct {
		value string
		err   error
		want  string
	}{
		{"/home/u 1", nil, "200 /home/u%201\n"},
		{"ün", nil, "200 %C3%BCn\n"},
		{"", nil, "400 empty%20value\n"},
		{max, nil, "200 " + max + "\n"},
		{max + "v", nil, "400 value%20too%20long\n"},
		{maxEnc, nil, "200 " + Encode(maxEnc) + "\n"},
		{maxEnc + " ", nil, "400 value%20too%20long\n"},
		{"", failure.ErrNotFound, "500 not%20found\n"},
		{"", failure.Perm("unknown map"), "400 unknown%20map\n"},
		{"", failure.Temp("%s", "a\nb%"), "400 a%0Ab%25\n"},
		{"", errors.New("plain"), "400 plain\n"},
	} {
		got := string(AppendReply(nil, tc.value, tc.err))
		if got != tc.want {
			t.Errorf("AppendReply(%.20q, %v) = %.60q, want %.60q", tc.value, tc.err, got, tc.want)
		}
		if len(got) > MaxLine {
			t.Errorf("reply line of %d bytes", len(got))
		}
	}
	long := AppendReply(nil, "", failure.Temp("%s", strings.Repeat("% ", MaxLine)))
	if len(long) > MaxLine || long[len(long)-1] != '\n' || !strings.HasPrefix(string(long), "400 %25%20") {
		t.Errorf("long error reply: %d bytes, %.20q", len(long), long)
	}
	if _, err := ParseReply(string(long)); failure.KindOf(err) != failure.Temporary || strings.Contains(err.Error(), "malformed") {
		t.Errorf("long error reply does not decode: %v", err)
	}
}

func TestAppendRequestError(t *testing.T) {
	req, err := ParseRequest("put k v\n")
	if got := string(AppendRequestError(nil, req, err)); got != "500 put%20not%20supported\n" {
		t.Errorf("put reply = %q", got)
	}
	req, err = ParseRequest("get a%zz\n")
	if got := string(AppendRequestError(nil, req, err)); !strings.HasPrefix(got, "400 malformed") || strings.Count(got, "\n") != 1 {
		t.Errorf("malformed reply = %q", got)
	}
	req, err = ParseRequest("frob x\n")
	if got := string(AppendRequestError(nil, req, err)); !strings.HasPrefix(got, "400 unsupported") {
		t.Errorf("unknown command reply = %q", got)
	}
	if got := string(AppendTooLong(nil)); got != "400 request%20too%20long\n" {
		t.Errorf("too long reply = %q", got)
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in    string
		value string
		kind  failure.Kind
		msg   string
	}{
		{"200 a%20b%25c\n", "a b%c", -1, ""},
		{"200 %c3%bcn", "ün", -1, ""},
		{"500 not found\n", "", failure.NotFound, "not found"},
		{"500 whatever\n", "", failure.NotFound, "not found"},
		{"400 try%20later\n", "", failure.Temporary, "try later"},
		{"400 a%0Ab\n", "", failure.Temporary, "a b"},
		{"300 x\n", "", failure.Temporary, "unexpected"},
		{"200\n", "", failure.Temporary, "malformed"},
		{"200 %zz\n", "", failure.Temporary, "malformed"},
		{"", "", failure.Temporary, "malformed"},
		{"HELLO\n", "", failure.Temporary, "malformed"},
	} {
		v, err := ParseReply(tc.in)
		if tc.kind < 0 {
			if err != nil || v != tc.value {
				t.Errorf("ParseReply(%q) = %q, %v; want %q", tc.in, v, err, tc.value)
			}
			continue
		}
		if err == nil || failure.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseReply(%q) = %q, %v; want %v error containing %q", tc.in, v, err, tc.kind, tc.msg)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		enc := Encode(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("Encode(%q) = %q contains byte %#x", s, enc, c)
			}
		}
		got, err := Decode(enc)
		if err != nil || got != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, got, err)
		}
		// Arbitrary input must not panic; what decodes re-encodes to
		// something that decodes to the same thing.
		if d, err := Decode(s); err == nil {
			if d2, err := Decode(Encode(d)); err != nil || d2 != d {
				t.Fatalf("re-encoding %q: %q, %v", d, d2, err)
			}
		}
		_, _ = ParseRequest(s)
		_, _ = ParseReply(s)
		// A request built from any key parses back to that key.
		req, err := ParseRequest(string(AppendRequest(nil, s)))
		if err != nil || req.Key != s {
			t.Fatalf("request round trip of %q: %+v, %v", s, req, err)
		}
	})
}
