package userdb

import (
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/format/quota"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want User
	}{
		{"uid=5000|gid=5000|home=/var/vmail/some.domain/user1|mail=/var/vmail/some.domain/user1/Maildir/|quota=104857600S",
			User{5000, 5000, "/var/vmail/some.domain/user1", "/var/vmail/some.domain/user1/Maildir/", quota.Limits{Bytes: 104857600, Messages: 0}, ""}},
		{"uid=5000|gid=5001|home=/var/vmail/some.domain/user2",
			User{5000, 5001, "/var/vmail/some.domain/user2", "/var/vmail/some.domain/user2/Maildir/", quota.Limits{Bytes: 0, Messages: 0}, ""}},
		{"uid=5000|gid=5000|home=/var/vmail/x/u3|quota=52428800S,1000C",
			User{5000, 5000, "/var/vmail/x/u3", "/var/vmail/x/u3/Maildir/", quota.Limits{Bytes: 52428800, Messages: 1000}, ""}},
		{"quota=7C,9S|home=/h/|mail=/m/box|gid=1|uid=4294967294",
			User{4294967294, 1, "/h", "/m/box/", quota.Limits{Bytes: 9, Messages: 7}, ""}},
		// Spaces around fields, as continuation lines in a map file leave them.
		{"uid=1|gid=2|  home=/home/John Doe \t| mail=/srv/mail/John Doe/Maildir/",
			User{1, 2, "/home/John Doe", "/srv/mail/John Doe/Maildir/", quota.Limits{Bytes: 0, Messages: 0}, ""}},
		{"uid=1|gid=2|home=/", User{1, 2, "/", "/Maildir/", quota.Limits{Bytes: 0, Messages: 0}, ""}},
		{"uid=1|gid=2|home=/h|sieve=/etc/sieve/u.sieve", User{1, 2, "/h", "/h/Maildir/", quota.Limits{}, "/etc/sieve/u.sieve"}},
		{"uid=007|gid=2|home=/h|quota=0S", User{7, 2, "/h", "/h/Maildir/", quota.Limits{Bytes: 0, Messages: 0}, ""}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		again, err := Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(%q.String()=%q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestString(t *testing.T) {
	u := User{UID: 5000, GID: 5000, Home: "/var/vmail/d/u", Maildir: "/var/vmail/d/u/Maildir/", Quota: quota.Limits{Bytes: 100, Messages: 10}}
	if got, want := u.String(), "uid=5000|gid=5000|home=/var/vmail/d/u|mail=/var/vmail/d/u/Maildir/|quota=100S,10C"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	u.Quota.Bytes = 0
	if got := u.String(); !strings.HasSuffix(got, "|quota=10C") {
		t.Errorf("String() = %q", got)
	}
	u.Quota.Messages = 0
	if got := u.String(); strings.Contains(got, "quota") {
		t.Errorf("String() = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                                "empty field",
		"uid=1|gid=1|home=/h|":                            "empty field",
		"uid=1||gid=1|home=/h":                            "empty field",
		"uid=1|gid=1":                                     "missing field home",
		"gid=1|home=/h":                                   "missing field uid",
		"uid=1|home=/h":                                   "missing field gid",
		"uid=0|gid=1|home=/h":                             "root",
		"uid=1|gid=0|home=/h":                             "root",
		"uid=4294967295|gid=1|home=/h":                    "uid_t",
		"uid=4294967296|gid=1|home=/h":                    "out of range",
		"uid=-1|gid=1|home=/h":                            "not a decimal",
		"uid=+1|gid=1|home=/h":                            "not a decimal",
		"uid=|gid=1|home=/h":                              "not a decimal",
		"uid=1 2|gid=1|home=/h":                           "not a decimal",
		"uid=0x10|gid=1|home=/h":                          "not a decimal",
		"uid=1|uid=2|gid=1|home=/h":                       "given twice",
		"uid=1|gid=1|home=/h|home=/g":                     "given twice",
		"uid=1|gid=1|home=relative/h":                     "absolute",
		"uid=1|gid=1|home=/h/../etc":                      "not clean",
		"uid=1|gid=1|home=/h/./x":                         "not clean",
		"uid=1|gid=1|home=/h//x":                          "not clean",
		"uid=1|gid=1|home=/h//":                           "not clean",
		"uid=1|gid=1|home=/h|mail=/m/..":                  "not clean",
		"uid=1|gid=1|home=/h|mail=Maildir/":               "absolute",
		"uid=1|gid=1|home=/h|sieve=.dovecot.sieve":        "absolute",
		"uid=1|gid=1|home=/h|sieve=/s/":                   "not a file name",
		"uid=1|gid=1|home=/h\n/x":                         "control",
		"uid=1|gid=1|home=/h|shell=/bin/sh":               "unknown field \"shell\"",
		"uid=1|gid=1|home=/h|qouta=1S":                    "unknown field",
		"uid=1|gid=1|home=/h|nonsense":                    "not NAME=VALUE",
		"uid=1|gid=1|home=/h|quota=":                      "NNNS",
		"uid=1|gid=1|home=/h|quota=100":                   "NNNS",
		"uid=1|gid=1|home=/h|quota=S":                     "NNNS",
		"uid=1|gid=1|home=/h|quota=1S,2S":                 "S given twice",
		"uid=1|gid=1|home=/h|quota=1C,2C":                 "C given twice",
		"uid=1|gid=1|home=/h|quota=1S,":                   "NNNS",
		"uid=1|gid=1|home=/h|quota=-1S":                   "NNNS",
		"uid=1|gid=1|home=/h|quota=1s":                    "NNNS",
		"uid=1|gid=1|home=/h|quota=99999999999999999999S": "out of range",
	} {
		u, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error containing %q", in, u, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", in, err, want)
		}
		if u != (User{}) {
			t.Errorf("Parse(%q) returned %+v with its error", in, u)
		}
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is valid,
// and that String is its inverse. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		u, err := Parse(value)
		if err != nil {
			return
		}
		if u.UID == 0 || u.GID == 0 || !strings.HasPrefix(u.Home, "/") || !strings.HasSuffix(u.Maildir, "/") ||
			strings.Contains(u.Home, "/../") || strings.Contains(u.Maildir, "/../") ||
			strings.HasSuffix(u.Home, "/..") || u.Quota.Bytes < 0 || u.Quota.Messages < 0 {
			t.Fatalf("Parse(%q) accepted %+v", value, u)
		}
		again, err := Parse(u.String())
		if err != nil || again != u {
			t.Fatalf("Parse(%q) = %+v; Parse(String()) = %+v, %v", value, u, again, err)
		}
	})
}
