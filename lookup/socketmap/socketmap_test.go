package socketmap

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mapdrop/mapdrop/failure"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct{ in, name, key string }{
		{"virtual_mailbox user1@some.domain", "virtual_mailbox", "user1@some.domain"},
		{"userdb a b  c ", "userdb", "a b  c "},
		{"m ümläut@dömain", "m", "ümläut@dömain"},
		{"m ", "m", ""},
		{"m USER1@Some.Domain", "m", "USER1@Some.Domain"},
	} {
		name, key, err := ParseRequest([]byte(tc.in))
		if err != nil || name != tc.name || key != tc.key {
			t.Errorf("ParseRequest(%q) = %q, %q, %v; want %q, %q", tc.in, name, key, err, tc.name, tc.key)
		}
	}
	for _, in := range []string{"", "nospace", " key", "  key"} {
		_, _, err := ParseRequest([]byte(in))
		if !errors.Is(err, ErrMalformed) || failure.KindOf(err) != failure.Permanent {
			t.Errorf("ParseRequest(%q) error = %v, want permanent ErrMalformed", in, err)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	got, err := AppendRequest(nil, "userdb", "a b")
	if err != nil || string(got) != "userdb a b" {
		t.Fatalf("AppendRequest = %q, %v", got, err)
	}
	for _, tc := range []struct{ name, key string }{
		{"", "k"},
		{"a b", "k"},
		{"m", strings.Repeat("k", MaxSize-1)},
	} {
		got, err := AppendRequest([]byte("x"), tc.name, tc.key)
		if failure.KindOf(err) != failure.Permanent || string(got) != "x" {
			t.Errorf("AppendRequest(%q, %d bytes) = %q, %v; want permanent error", tc.name, len(tc.key), got, err)
		}
	}
	if _, err := AppendRequest(nil, "m", strings.Repeat("k", MaxSize-2)); err != nil {
		t.Errorf("AppendRequest of exactly MaxSize: %v", err)
	}
}

func TestAppendReply(t *testing.T) {
	long := strings.Repeat("v", MaxSize-len("OK "))
	for _, tc := range []struct {
		value string
		err   error
		want  string
	}{
		{"/home/u", nil, "OK /home/u"},
		{"a b ü", nil, "OK a b ü"},
		{long, nil, "OK " + long},
		{long + "v", nil, "TEMP reply too long"},
		{"", nil, "PERM empty value"},
		{"", failure.ErrNotFound, "NOTFOUND "},
		{"", failure.New(failure.NotFound, "no such user"), "NOTFOUND "},
		{"", failure.Perm("unknown map %q", "nomap"), `PERM unknown map "nomap"`},
		{"", failure.Temp("reloading"), "TEMP reloading"},
		{"", errors.New("plain"), "TEMP plain"},
		{"", failure.New(failure.Bounce, "refused"), "TEMP refused"},
		{"", fmt.Errorf("wrapped: %w", failure.ErrNotFound), "NOTFOUND "},
		{"", failure.Temp("line1\r\nline2\tx\x00\x7f"), "TEMP line1  line2 x  "},
	} {
		got := string(AppendReply(nil, tc.value, tc.err))
		if got != tc.want {
			t.Errorf("AppendReply(%.20q, %v) = %.40q, want %.40q", tc.value, tc.err, got, tc.want)
		}
		if len(got) > MaxSize {
			t.Errorf("reply of %d bytes", len(got))
		}
	}
}

func TestReasonCut(t *testing.T) {
	reason := strings.Repeat("ü", MaxReason) // 2 bytes each
	got := string(AppendReply(nil, "", failure.Perm("%s", reason)))
	r := strings.TrimPrefix(got, "PERM ")
	if len(r) > MaxReason || !utf8.ValidString(r) || len(r) < MaxReason-1 {
		t.Fatalf("cut reason: %d bytes, valid UTF-8 %v", len(r), utf8.ValidString(r))
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in    string
		value string
		kind  failure.Kind
		msg   string
	}{
		{"OK /home/u", "/home/u", -1, ""},
		{"OK a b ", "a b ", -1, ""},
		{"OK", "", failure.Permanent, "empty value"},
		{"OK ", "", failure.Permanent, "empty value"},
		{"NOTFOUND ", "", failure.NotFound, "not found"},
		{"NOTFOUND", "", failure.NotFound, "not found"},
		{"TEMP busy", "", failure.Temporary, "busy"},
		{"TIMEOUT slow", "", failure.Temporary, "slow"},
		{"PERM unknown map \"x\"", "", failure.Permanent, "unknown map"},
		{"PERM bad\nline", "", failure.Permanent, "bad line"},
		{"WHAT ever", "", failure.Temporary, "unexpected reply"},
		{"", "", failure.Temporary, "unexpected reply"},
	} {
		v, err := ParseReply([]byte(tc.in))
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
	if _, err := ParseReply([]byte("NOTFOUND ")); !errors.Is(err, failure.ErrNotFound) {
		t.Errorf("NOTFOUND is not failure.ErrNotFound: %v", err)
	}
}

// Every reply AppendReply writes decodes back to the same outcome.
func TestReplyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		value string
		err   error
	}{
		{"x", nil},
		{" leading and trailing ", nil},
		{"", failure.ErrNotFound},
		{"", failure.Perm("p")},
		{"", failure.Temp("t")},
	} {
		v, err := ParseReply(AppendReply(nil, tc.value, tc.err))
		if v != tc.value || (err == nil) != (tc.err == nil) || (err != nil && failure.KindOf(err) != failure.KindOf(tc.err)) {
			t.Errorf("round trip of %q, %v = %q, %v", tc.value, tc.err, v, err)
		}
	}
}
