package agentcli

import (
	"fmt"
	"io"

	"github.com/mapdrop/mapdrop/internal/version"
)

// Help is the text "mapdrop -h" prints. The man page mapdrop(8)
// (doc/mapdrop.8) is generated from it by "go generate ./doc", so it is
// laid out as the man page generator reads it (see package doc): a first
// line "NAME - WHAT IT IS", then paragraphs (lines indented by eight
// spaces are kept as they are), and sections that start with a
// line "name:" whose items are indented by two spaces, an item's text
// following a tab on its line or on lines indented by four spaces and a
// tab, as package flag prints its flags.
//
// Its usage line is usageLine, the one usage errors quote.
const Help = `mapdrop - maildrop-compatible delivery agent for Postfix, with its users in mapdropd

` + usageLine + `
       mapdrop -h | -version

mapdrop reads one message on standard input and writes it into the Maildir of USER, as the uid and gid that the userdb map of mapdropd names, with write, fsync, rename into new/ and fsync of new/. Each option may also be written --name and -name=value.

The first argument after USER, when present and not empty, is the address extension (pipe(8)'s ${extension}): the message goes into the Maildir folder of that name when it exists. The second (${recipient}) is the original recipient for Sieve; further arguments (${user}, ${nexthop}, ...) are accepted and ignored. Without any argument after USER, when local(8) runs mapdrop (mailbox_command, mailbox_command_maps, .forward), the extension is local(8)'s EXTENSION and Sieve's recipient its RECIPIENT, provided USER, LOCAL and RECIPIENT describe the -d user: "mailbox_command = mapdrop -d ${USER}" files user+lists into ".lists" (when EXTENSION does not fit, the log line's note= says why). Otherwise the extension comes from USER when USER is not in userdb but USER without its extension is: "-d user+work@dom" delivers to user@dom's folder "work".

A first line "From SENDER  DATE", which local(8) puts before the message, is not stored; SENDER is the envelope sender when neither -f nor a Return-Path: field gives one, and the log line shows it as from=<SENDER>.

Each delivery removes the files that killed deliveries left in the tmp/ it writes into once they are 36 hours old (at most 128 entries looked at, about 5 ms), logged as tmp-removed=N.

mapdrop refuses to run with privileges its caller lacks (setuid, setgid, file capabilities): it exits 75 before reading anything. Postfix runs it as the mailbox owner instead: pipe(8) with user=, local(8) as the recipient.

When a Sieve script applies (the user's, or one of -sieve-before/-sieve-after), mapdrop execs mapdrop-sieve, the same agent with the Sieve engine, with the same arguments; without one it never loads the engine.

A typical master.cf entry:

        mapdrop unix - n n - - pipe flags=ODRhu user=vmail argv=/usr/local/bin/mapdrop
          -d ${user}@${domain} ${extension} ${recipient} ${user} ${nexthop}

flags:
  -s ADDR
    	the mapdropd socketmap server ADDR, unix:/path or inet:host:port (default: env MAPDROP_SERVER, else unix:/run/mapdrop/mapdropd.sock)
  -recipient-delimiter CHARS
    	the CHARS that start an address extension, as Postfix's recipient_delimiter and mapdropd serve -recipient-delimiter (default: env MAPDROP_RECIPIENT_DELIMITER, else "+"; the older spellings -delimiter and MAPDROP_DELIMITER are still accepted)
  -quota-bounce
    	over quota, exit 77 (Postfix bounces) instead of 75 (Postfix retries, the default)
  -n	dry run: print the account, Maildir, folders and Sieve actions the message would get; write and send nothing
  -a ADDR
    	the original envelope recipient ADDR that Sieve's envelope "to" sees (default: the argument after EXTENSION, else local(8)'s RECIPIENT, else USER)
  -f ADDR
    	the envelope sender ADDR that Sieve sees, "" for <> (default: the Return-Path: field, pipe(8) flag R, else the sender of local(8)'s "From " line)
  -sieve-before PATH
    	an administrator's Sieve script, or a directory of *.sieve run in name order, before the user's (repeatable)
  -sieve-after PATH
    	an administrator's Sieve script, or a directory of *.sieve run in name order, after the user's (repeatable)
  -sendmail PATH
    	the sendmail command for Sieve redirects and vacation replies (default /usr/sbin/sendmail)
  -sieve-bin PATH
    	the binary with the Sieve engine (default: mapdrop-sieve in the directory of mapdrop's own executable)
  -log FILE
    	append the delivery's log line to FILE, created mode 0600 and opened without blocking, instead of syslog (default: env MAPDROP_LOG_FILE, else syslog, facility mail, when /dev/log exists, else nowhere; never standard error)
  -d USER
    	the recipient, user@domain (pipe(8)'s ${user}@${domain} or ${recipient}) or a local user name; -d ends the options, every argument after USER is an argument even when it starts with "-"
  -h	print this help and exit 0
  -version
    	print the version and the revision it was built from, and exit 0

environment:
  MAPDROP_SERVER
    	the server when -s is not given
  MAPDROP_RECIPIENT_DELIMITER
    	the recipient delimiter when -recipient-delimiter is not given
  MAPDROP_LOG_FILE
    	the file for the delivery's log line when -log is not given

exit status:
  0	delivered: written, fsynced, renamed into new/, new/ fsynced
  64	usage: a bad command line (missing -d, unknown option, bad -s or -recipient-delimiter)
  67	the user is in neither userdb nor, for a name without "@", the passwd database
  73	the mailbox cannot be created: a file is where the home or a directory of the Maildir belongs (a missing home is created)
  75	temporary, Postfix retries: lookup server unreachable, slow, TEMP or PERM reply, invalid userdb entry, uid or gid 0, symlink in the mailbox path, full disk, mailbox full (by default), read error on standard input, a bad MAPDROP_SERVER or MAPDROP_RECIPIENT_DELIMITER, a setuid, setgid or file-capability install, a crash
  77	mailbox full with -quota-bounce, or a Sieve reject; Postfix bounces the message

Exactly one line "mapdrop: REASON" goes to standard error on failure; Postfix quotes it in the bounce or defer reason.

see also:
  mapdropd(8)
  postconf(5)
  pipe(8)
  local(8)
`

// helpOrVersion answers -h, -help, --help, -version and --version given as
// the first argument: it prints the help or the version of program on w
// and reports done with exit status 0.
func helpOrVersion(args []string, w io.Writer, program string) (code int, done bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(w, Help)
		return 0, true
	case "-version", "--version":
		fmt.Fprintln(w, version.String(program))
		return 0, true
	}
	return 0, false
}
