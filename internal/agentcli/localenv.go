package agentcli

import (
	"fmt"
	"strings"
)

// The environment local(8) exports to mailbox_command,
// mailbox_command_maps and .forward commands (local(8), "EXTERNAL COMMAND
// DELIVERY"): USER is the recipient's user name, LOCAL the whole local
// part, EXTENSION the address extension ("" for none), RECIPIENT the whole
// address.
//
// fromLocal returns EXTENSION and RECIPIENT when mapdrop was started with
// no argument after -d USER and that environment describes user:
//
//   - USER, LOCAL and RECIPIENT are set;
//   - LOCAL is USER, or, with EXTENSION set, USER, one of the recipient
//     delimiter characters and EXTENSION;
//   - RECIPIENT's local part (before its last "@") is LOCAL;
//   - user's local part is USER or LOCAL.
//
// All comparisons ignore case (local(8) folds the local part). When any
// check fails, the environment belongs to something else (a shell that
// happens to export USER, another recipient) and ok is false: the
// extension then comes from user itself, as without local(8). When
// EXTENSION was set all the same, ignored says why it was not used (for
// the log line: a recipient_delimiter that differs from mapdrop's is the
// likely cause).
func fromLocal(user, delims string, getenv func(string) string) (ext, rcpt string, ok bool, ignored string) {
	u, local, rcpt, ext := getenv("USER"), getenv("LOCAL"), getenv("RECIPIENT"), getenv("EXTENSION")
	why := ""
	switch {
	case u == "" || local == "" || rcpt == "":
		why = "USER, LOCAL or RECIPIENT is not set"
	case ext == "" && !strings.EqualFold(local, u):
		why = "LOCAL is not USER"
	case ext != "" && (len(local) != len(u)+1+len(ext) || !strings.EqualFold(local[:len(u)], u) ||
		!strings.EqualFold(local[len(u)+1:], ext) || !strings.ContainsRune(delims, rune(local[len(u)]))):
		why = fmt.Sprintf("LOCAL %q is not USER %q, one of the -recipient-delimiter characters %q and EXTENSION", local, u, delims)
	case !strings.EqualFold(localPart(rcpt), local):
		why = fmt.Sprintf("RECIPIENT %q does not start with LOCAL %q", rcpt, local)
	case !strings.EqualFold(localPart(user), u) && !strings.EqualFold(localPart(user), local):
		why = fmt.Sprintf("-d %q names neither USER %q nor LOCAL %q", user, u, local)
	}
	if why != "" {
		if ext != "" {
			return "", "", false, fmt.Sprintf("local(8)'s EXTENSION=%q ignored: %s", ext, why)
		}
		return "", "", false, ""
	}
	return ext, rcpt, true, ""
}

// localPart returns addr up to its last "@", or all of it.
func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}
