// Package creds makes the process run as the mailbox owner before any
// mailbox path is touched.
//
// The rules:
//
//   - uid 0 or gid 0 is refused, whatever its source: mail is never written
//     as root. This is a configuration error that someone must fix while the
//     mail stays queued, so it is failure.Temporary (exit 75); EX_CONFIG
//     (78) would make Postfix's pipe(8) bounce the message (5.3.5).
//   - Started with effective uid 0, the process drops its supplementary
//     groups (setgroups with an empty list), then sets its gid and uid, in
//     that order. Since Go 1.16 these apply to every thread on Linux, and
//     setuid as root sets the real, effective and saved ids alike, so the
//     change cannot be undone.
//   - Started as anyone else, the real and effective uid and gid must
//     already be the mailbox owner's; otherwise failure.Temporary with a
//     message naming both identities.
package creds

import (
	"fmt"
	"syscall"

	"github.com/mapdrop/mapdrop/failure"
)

// The process's identity, replaceable in tests.
var (
	geteuid = syscall.Geteuid
	getuid  = syscall.Getuid
	getgid  = syscall.Getgid
	getegid = syscall.Getegid
)

// Become makes the process run as uid and gid, as the package
// documentation describes. who names the mailbox owner in messages.
func Become(who string, uid, gid uint32) error {
	if uid == 0 || gid == 0 {
		return failure.Temp("refusing to deliver for %s as uid %d gid %d: uid and gid must not be 0", who, uid, gid)
	}
	if geteuid() == 0 {
		if err := syscall.Setgroups([]int{}); err != nil {
			return failure.Wrap(failure.Temporary, err, "cannot clear supplementary groups")
		}
		if err := syscall.Setgid(int(gid)); err != nil {
			return failure.Wrap(failure.Temporary, err, "cannot set gid %d for %s", gid, who)
		}
		if err := syscall.Setuid(int(uid)); err != nil {
			return failure.Wrap(failure.Temporary, err, "cannot set uid %d for %s", uid, who)
		}
		return nil
	}
	if ru, eu, rg, eg := getuid(), geteuid(), getgid(), getegid(); ru != int(uid) || eu != int(uid) || rg != int(gid) || eg != int(gid) {
		return failure.Temp("%s", mismatch(who, uid, gid, ru, eu, rg, eg))
	}
	return nil
}

func mismatch(who string, uid, gid uint32, ru, eu, rg, eg int) string {
	running := fmt.Sprintf("uid %d gid %d", ru, rg)
	if eu != ru || eg != rg {
		running = fmt.Sprintf("uid %d (effective %d) gid %d (effective %d)", ru, eu, rg, eg)
	}
	return fmt.Sprintf("running as %s, not as %s's uid %d gid %d, and not as root", running, who, uid, gid)
}
