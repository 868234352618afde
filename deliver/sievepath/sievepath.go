// Package sievepath decides which Sieve scripts apply to a delivery, by
// looking at the file system only (stat and directory listings), so that
// the delivery agent can tell whether it needs the Sieve engine at all
// without loading it.
//
// # Which scripts run, in this order
//
//  1. the administrator's "before" paths (mapdrop -sieve-before), in the
//     order given;
//  2. the user's script: the userdb field sieve=PATH when set, otherwise
//     HOME/.dovecot.sieve (a file, or a symlink to one, as ManageSieve
//     servers keep it pointing into HOME/sieve/);
//  3. the administrator's "after" paths (mapdrop -sieve-after).
//
// An administrator's path is a script file or a directory; a directory
// stands for its files whose names end in ".sieve", in byte order of their
// names (as Pigeonhole's sieve_before/sieve_after). A path that does not
// exist contributes nothing; so does a user script path that does not
// exist or is a dangling symlink. A path that exists but cannot be
// examined (permission denied, say) counts as a script: the engine then
// reports why it cannot read it and the message goes to INBOX, rather than
// filters being skipped silently.
package sievepath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// UserScript is the user's script name below the home directory.
const UserScript = ".dovecot.sieve"

// Mailfilter is Courier maildrop's filter file below the home directory.
const Mailfilter = ".mailfilter"

// Set is the scripts of one delivery.
type Set struct {
	Before []string // administrator's scripts run first
	User   string   // the user's script, "" for none
	After  []string // administrator's scripts run last
}

// Empty reports whether no script applies.
func (s Set) Empty() bool { return len(s.Before) == 0 && s.User == "" && len(s.After) == 0 }

// All returns the scripts in execution order.
func (s Set) All() []string {
	all := append([]string{}, s.Before...)
	if s.User != "" {
		all = append(all, s.User)
	}
	return append(all, s.After...)
}

// Find returns the scripts for a user with home directory home and userdb
// sieve field override ("" when unset), as the package documentation
// describes.
func Find(home, override string, before, after []string) Set {
	var s Set
	for _, p := range before {
		s.Before = append(s.Before, expand(p)...)
	}
	user := override
	if user == "" && home != "" {
		user = filepath.Join(home, UserScript)
	}
	if user != "" && present(user) {
		s.User = user
	}
	for _, p := range after {
		s.After = append(s.After, expand(p)...)
	}
	return s
}

// present reports whether p names something to run: it exists (following
// symlinks), or examining it failed for a reason other than its absence.
func present(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// expand turns an administrator's path into script files.
func expand(p string) []string {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []string{p}
	}
	if !st.IsDir() {
		return []string{p}
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return []string{p}
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".sieve") && !e.IsDir() {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// HasMailfilter reports whether home holds a maildrop filter file.
func HasMailfilter(home string) bool {
	_, err := os.Lstat(filepath.Join(home, Mailfilter))
	return err == nil
}
