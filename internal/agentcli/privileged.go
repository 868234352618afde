package agentcli

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
)

// atSecure is the auxiliary vector entry the kernel sets to 1 when exec
// raised the process's privileges: a setuid or setgid file, file
// capabilities, or a security module's transition (getauxval(3)).
const atSecure = 23

// Privilege is the reason a privileged start is refused, "" when the
// process runs with exactly the privileges of whoever started it.
//
// mapdrop does not support a setuid, setgid or file-capability install:
// such a process starts with an environment, a command line and standard
// streams chosen by an untrusted caller, and every one of them (the log
// file, the lookup server that names uids and homes) would be used with
// privileges the caller does not have. Postfix already runs mapdrop as the
// right user (pipe(8) user=, local(8) as the recipient), so nothing is lost.
func Privilege() string {
	ruid, euid := unix.Getuid(), unix.Geteuid()
	rgid, egid := unix.Getgid(), unix.Getegid()
	switch {
	case ruid != euid:
		return fmt.Sprintf("effective uid %d is not the real uid %d (a setuid install)", euid, ruid)
	case rgid != egid:
		return fmt.Sprintf("effective gid %d is not the real gid %d (a setgid install)", egid, rgid)
	}
	vec, err := unix.Auxv()
	if err != nil {
		// No auxiliary vector: the uids and gids above are all there is to
		// check, and they matched.
		return ""
	}
	for _, kv := range vec {
		if kv[0] == atSecure && kv[1] != 0 {
			return "started in secure-execution mode (AT_SECURE: file capabilities or a security module raised its privileges)"
		}
	}
	return ""
}

// privilegeError is the refusal: temporary, so that the mail stays queued
// while the administrator fixes the install.
func privilegeError(reason string) error {
	return failure.New(failure.Temporary,
		"refusing to run with privileges its caller lacks: %s; remove them (chmod u-s,g-s; setcap -r) and let Postfix run mapdrop as the mailbox owner: pipe(8) with user=OWNER in master.cf, or local(8), which runs mailbox_command and .forward commands as the recipient", reason)
}
