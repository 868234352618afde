// Package userdb parses the values of mapdrop's userdb map: where a user's
// mail goes and as whom it is written, in the style of a Courier userdb
// record.
//
// # Format
//
// A value is a list of NAME=VALUE fields separated by "|":
//
//	uid=5000|gid=5000|home=/var/vmail/some.domain/user1|mail=/var/vmail/some.domain/user1/Maildir/|quota=104857600S
//
// Spaces and TABs around a field are ignored (so a long value can be split
// over continuation lines in a map file); inside a field they are kept. The
// fields are:
//
//	uid    required; decimal user id, 1 to 4294967294 (0 is root, 4294967295 is (uid_t)-1)
//	gid    required; decimal group id, same range
//	home   required; absolute path
//	mail   optional; absolute path of the Maildir, default HOME/Maildir/
//	quota  optional; Maildir++ quota definition, parsed strictly by
//	       package format/quota: "NNNS" (bytes), "NNNC" (messages), or both
//	       separated by a comma in either order ("NNNS,MMMC"); decimal, 0
//	       means no limit of that kind
//	sieve  optional; absolute path of the user's Sieve script, instead of
//	       HOME/.dovecot.sieve (see package deliver/sievepath)
//
// A path must be absolute and clean: no empty, "." or ".." segments (one
// trailing "/" is allowed and dropped from home; mail always ends in "/" once
// parsed, being a Maildir). Paths must not contain control characters.
//
// Everything else is an error: a field without "=", an empty field, a field
// given twice, and an unknown field name. Unknown names are refused rather
// than ignored because the map decides which uid mail is written as: a typo
// such as "qouta=" or "hmoe=" must not silently change what happens.
// Courier's other fields (shell, systempw, ...) therefore do not belong in
// mapdrop's userdb.
package userdb

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/mapdrop/mapdrop/format/quota"
)

// User is what the userdb map says about one user.
type User struct {
	UID, GID uint32
	Home     string       // absolute, clean, no trailing slash (except "/")
	Maildir  string       // absolute, clean, always ending in "/"
	Quota    quota.Limits // zero: no limit
	Sieve    string       // absolute, clean; "" for the default script
}

// Parse parses a userdb value. Its error text names the offending field and
// is meant to follow "FILE:LINE: " in a message.
func Parse(value string) (User, error) {
	var u User
	seen := map[string]bool{}
	var haveMail bool
	for _, field := range strings.Split(value, "|") {
		field = strings.Trim(field, " \t")
		if field == "" {
			return User{}, errors.New("userdb: empty field")
		}
		name, val, ok := strings.Cut(field, "=")
		if !ok {
			return User{}, fmt.Errorf("userdb: field %q is not NAME=VALUE", field)
		}
		if seen[name] {
			return User{}, fmt.Errorf("userdb: field %q given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "uid":
			u.UID, err = parseID(val)
		case "gid":
			u.GID, err = parseID(val)
		case "home":
			u.Home, err = cleanPath(val)
		case "mail":
			haveMail = true
			u.Maildir, err = cleanPath(val)
		case "quota":
			u.Quota, err = quota.Parse(val)
		case "sieve":
			u.Sieve, err = cleanPath(val)
			if err == nil && strings.HasSuffix(val, "/") {
				err = errors.New("not a file name")
			}
		default:
			return User{}, fmt.Errorf("userdb: unknown field %q (known: uid, gid, home, mail, quota, sieve)", name)
		}
		if err != nil {
			return User{}, fmt.Errorf("userdb: %s=%q: %v", name, val, err)
		}
	}
	for _, name := range []string{"uid", "gid", "home"} {
		if !seen[name] {
			return User{}, fmt.Errorf("userdb: missing field %s", name)
		}
	}
	if !haveMail {
		u.Maildir = path.Join(u.Home, "Maildir")
	}
	if u.Maildir != "/" {
		u.Maildir += "/"
	}
	return u, nil
}

// String returns the canonical value form of u: uid, gid, home, mail, and
// quota when there is one, in that order. Parse(u.String()) == u for every
// User that Parse returns.
func (u User) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "uid=%d|gid=%d|home=%s|mail=%s", u.UID, u.GID, u.Home, u.Maildir)
	if u.Quota.Enabled() {
		b.WriteString("|quota=" + u.Quota.String())
	}
	if u.Sieve != "" {
		b.WriteString("|sieve=" + u.Sieve)
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseID(s string) (uint32, error) {
	if !isDigits(s) {
		return 0, errors.New("not a decimal number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("out of range")
	}
	switch n {
	case 0:
		return 0, errors.New("must not be 0 (root)")
	case 1<<32 - 1:
		return 0, errors.New("must not be 4294967295 ((uid_t)-1)")
	}
	return uint32(n), nil
}

// cleanPath checks that p is absolute and clean, allowing one trailing
// slash, and returns it without that slash.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("not an absolute path")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("control character in path")
		}
	}
	trimmed := p
	if len(p) > 1 {
		trimmed = strings.TrimSuffix(p, "/")
	}
	if path.Clean(trimmed) != trimmed {
		return "", errors.New("path is not clean (empty, \".\" or \"..\" segments)")
	}
	return trimmed, nil
}
