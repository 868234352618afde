// Package account decides whose mailbox a recipient is: the userdb map
// first, then the system's passwd database, as maildrop -d does.
//
// # Resolution order for "mapdrop -d NAME [EXTENSION]"
//
//  1. userdb is asked for NAME, case-folded (tables/key.Fold). Found:
//     that entry, with EXTENSION.
//  2. Not found, and NAME's local part (before the last "@", or all of it)
//     contains a recipient delimiter character after its first character:
//     the local part is cut at the first delimiter ("user+work@dom" →
//     "user@dom"), and userdb is asked for that. Found: that entry, with
//     EXTENSION when one was given, else the cut-off part ("work").
//     Delimiters are a set of characters, as Postfix's recipient_delimiter
//     is (Resolver.Delimiters; none: this step never applies). Package
//     format/address lists the local parts that are never cut, as in Postfix.
//  3. Not found, and NAME has no "@": the passwd account NAME (as given, not
//     folded), then the account named by the cut local part. Found: its
//     uid, gid and home directory, Maildir HOME/Maildir/, no quota.
//  4. Otherwise the user is unknown: failure.NotFound with the message
//     "NAME: user unknown".
//
// Any other failure of a lookup (server unreachable, timeout, TEMP or PERM
// reply, an invalid userdb entry, a broken passwd database) ends the
// resolution at once with failure.Temporary: an address that may exist is
// never reported unknown, and a temporarily unavailable userdb never lets
// a passwd account of the same name receive the mail.
package account

import (
	"context"
	"errors"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/mapdrop/mapdrop/format/key"
	"github.com/mapdrop/mapdrop/format/quota"
	"github.com/mapdrop/mapdrop/format/userdb"
)

// Account is a resolved mailbox owner.
type Account struct {
	Name      string // the userdb key or passwd name that matched
	Source    string // "userdb" or "passwd"
	UID, GID  uint32
	Home      string
	Maildir   string       // absolute, ends in "/"
	Quota     quota.Limits // zero: no limit
	Sieve     string       // userdb sieve=PATH, "" for none
	Extension string       // address extension, "" for none
}

// LookupFunc asks the userdb map for key. A key that is not there is
// failure.NotFound (failure.ErrNotFound); any other error is a failed lookup.
type LookupFunc func(ctx context.Context, key string) (string, error)

// Resolver resolves recipients. Its zero value is not usable: Lookup is
// required.
type Resolver struct {
	Lookup     LookupFunc
	Delimiters string // recipient_delimiter characters; "" means none
	// System looks up a passwd account; nil means SystemLookup.
	System func(name string) (*user.User, error)
}

// Resolve finds the account for name, as the package documentation
// describes. ext is the extension given on the command line ("" for none).
func (r *Resolver) Resolve(ctx context.Context, name, ext string) (Account, error) {
	key := key.Fold(name)
	a, found, err := r.fromUserdb(ctx, key, ext)
	if err != nil || found {
		return a, err
	}
	base, cut, split := address.Split(key, r.Delimiters)
	if split {
		a, found, err := r.fromUserdb(ctx, base, orDefault(ext, cut))
		if err != nil || found {
			return a, err
		}
	}
	if !strings.Contains(name, "@") {
		a, found, err := r.fromPasswd(name, ext)
		if err != nil || found {
			return a, err
		}
		if base, cut, split := address.Split(name, r.Delimiters); split {
			a, found, err := r.fromPasswd(base, orDefault(ext, cut))
			if err != nil || found {
				return a, err
			}
		}
	}
	return Account{}, failure.New(failure.NotFound, "%s: user unknown", name)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func (r *Resolver) fromUserdb(ctx context.Context, key, ext string) (Account, bool, error) {
	v, err := r.Lookup(ctx, key)
	if err != nil {
		if failure.KindOf(err) == failure.NotFound {
			return Account{}, false, nil
		}
		return Account{}, false, failure.Wrap(failure.Temporary, err, "userdb lookup of %s failed", key)
	}
	u, err := userdb.Parse(v)
	if err != nil {
		return Account{}, false, failure.Wrap(failure.Temporary, err, "userdb entry for %s is invalid", key)
	}
	return Account{
		Name: key, Source: "userdb",
		UID: u.UID, GID: u.GID, Home: u.Home, Maildir: u.Maildir,
		Quota:     u.Quota,
		Sieve:     u.Sieve,
		Extension: ext,
	}, true, nil
}

func (r *Resolver) fromPasswd(name, ext string) (Account, bool, error) {
	lookup := r.System
	if lookup == nil {
		lookup = SystemLookup
	}
	u, err := lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return Account{}, false, nil
		}
		return Account{}, false, failure.Wrap(failure.Temporary, err, "passwd lookup of %s failed", name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return Account{}, false, failure.Temp("passwd entry for %s has uid %q gid %q", name, u.Uid, u.Gid)
	}
	if !filepath.IsAbs(u.HomeDir) {
		return Account{}, false, failure.Temp("passwd entry for %s has home directory %q, not an absolute path", name, u.HomeDir)
	}
	home := filepath.Clean(u.HomeDir)
	return Account{
		Name: u.Username, Source: "passwd",
		UID: uint32(uid), GID: uint32(gid), Home: home,
		Maildir:   filepath.Join(home, "Maildir") + "/",
		Extension: ext,
	}, true, nil
}
