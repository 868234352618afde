// Command mapdrop is a maildrop-compatible delivery agent for Postfix: it
// reads one message on stdin and writes it into the recipient's Maildir, as
// the uid and gid that mapdropd's userdb map names.
//
// Usage:
//
//	mapdrop [-s ADDR] [-recipient-delimiter CHARS] [-quota-bounce] [-n]
//	        [-a ADDR] [-f ADDR] [-sieve-before PATH] [-sieve-after PATH]
//	        [-sendmail PATH] [-sieve-bin PATH] [-log FILE]
//	        -d USER [EXTENSION [RECIPIENT [ARG...]]]
//
// Options (each also as --name, and as -name=value):
//
//	-s ADDR           the mapdropd socketmap server, unix:/path or inet:host:port
//	                  (a host name is resolved with getent ahosts; see lookup/oneshot).
//	                  Default: env MAPDROP_SERVER, else unix:/run/mapdrop/mapdropd.sock.
//	-recipient-delimiter CHARS
//	                  the characters that start an address extension, as Postfix's
//	                  recipient_delimiter (and mapdropd serve -recipient-delimiter).
//	                  Default: env MAPDROP_RECIPIENT_DELIMITER, else "+". The older
//	                  spellings -delimiter and MAPDROP_DELIMITER are still accepted.
//	-quota-bounce     over quota, exit 77 (Postfix bounces) instead of 75 (Postfix
//	                  retries, the default). maildrop has no such option; the name
//	                  says what it does.
//	-n                dry run: print the account, Maildir, folder(s) and Sieve
//	                  actions the message would get; write and send nothing.
//	-a ADDR           the original envelope recipient Sieve's envelope "to" sees.
//	                  Default: the argument after EXTENSION (the seed's
//	                  ${recipient}), else USER.
//	-f ADDR           the envelope sender Sieve sees ("" for <>). Default: the
//	                  Return-Path: field (pipe(8) flag R).
//	-sieve-before PATH, -sieve-after PATH
//	                  an administrator's Sieve script, or directory of *.sieve
//	                  run in name order, before/after the user's; repeatable.
//	-sendmail PATH    the sendmail command for Sieve redirects and vacation
//	                  replies. Default: /usr/sbin/sendmail.
//	-sieve-bin PATH   the binary with the Sieve engine. Default: mapdrop-sieve
//	                  in the directory of mapdrop's own executable.
//	-log FILE         append the delivery's log line to FILE (created 0600)
//	                  instead of syslog. Default: env MAPDROP_LOG_FILE, else
//	                  syslog.
//	-d USER           the recipient, "user@domain" (pipe(8)'s ${user}@${domain} or
//	                  ${recipient}) or a local user name. -d ends the options:
//	                  every argument after USER is an argument, even one that
//	                  starts with "-".
//
// The first argument after USER, when present and not empty, is the address
// extension (pipe(8)'s ${extension}); the second (${recipient}) is the
// original recipient for Sieve; further arguments (${user}, ${nexthop},
// ...) are accepted and ignored. Without any argument after USER, when
// local(8) runs mapdrop (mailbox_command, mailbox_command_maps, .forward),
// the extension is local(8)'s EXTENSION and Sieve's recipient its
// RECIPIENT, provided USER, LOCAL and RECIPIENT describe the -d user (see
// internal/agentcli): "mailbox_command = mapdrop -d ${USER}" files
// user+lists into ".lists". Otherwise the extension comes from USER when
// USER itself is not in userdb but USER with its extension cut off is (see
// package deliver/account): "-d user+work@dom" delivers to user@dom's
// folder "work". A typical master.cf entry:
//
//	mapdrop unix - n n - - pipe flags=ODRhu user=vmail argv=/usr/local/bin/mapdrop
//	  -d ${user}@${domain} ${extension} ${recipient} ${user} ${nexthop}
//
// Exit status (sysexits.h), with exactly one line "mapdrop: REASON" on
// stderr, which Postfix quotes in the bounce or defer reason:
//
//	0   delivered (written, fsynced, renamed into new/, new/ fsynced)
//	64  usage: bad command line (missing -d, unknown option, bad -s or
//	    -recipient-delimiter)
//	67  the user is in neither userdb nor (for a name without "@") passwd
//	73  the mailbox cannot be created: a file is where the home or a
//	    directory of the Maildir belongs (a missing home is created)
//	75  temporary: lookup server unreachable, slow, TEMP or PERM reply,
//	    invalid userdb entry, uid/gid 0, wrong identity, symlink in the
//	    mailbox path, full disk, mailbox full (by default), read error on
//	    stdin, an invalid MAPDROP_SERVER or MAPDROP_RECIPIENT_DELIMITER in
//	    the environment (an administrator's mistake: the mail stays queued
//	    until it is fixed), a setuid, setgid or file-capability install,
//	    and anything not understood, including a crash
//	77  mailbox full, with -quota-bounce; a Sieve reject (the stderr line
//	    is "mapdrop: " and the reason, which Postfix puts in the bounce)
//
// Every status comes from package failure.
//
// A first line "From SENDER  DATE", which local(8) puts before the message,
// is not stored; SENDER is the envelope sender when neither -f nor a
// Return-Path: field gives one, and is logged as from=<SENDER> (package
// deliver/envelope).
//
// # No setuid, setgid or file capabilities
//
// Before anything else (reading the command line or the environment,
// opening the log, connecting to the server), mapdrop exits 75 when it
// runs with privileges its caller lacks: real and effective uid or gid
// differ, or the kernel set AT_SECURE (file capabilities). Such an install
// would let any local user pick the log file and the lookup server that
// names uids and homes. Postfix runs mapdrop as the mailbox owner instead:
// pipe(8) with user=, local(8) as the recipient.
//
// # Sieve
//
// After resolving the account, mapdrop looks (stat only) for the Sieve
// scripts that apply (package deliver/sievepath). With none, it delivers as
// described above and never loads the Sieve engine. With one, it execs
// mapdrop-sieve (same arguments, environment and stdin), which is this
// agent plus the engine: see packages deliver (plan.go) and deliver/sieve.
//
// One log line per delivery goes to the file named by -log FILE or env
// MAPDROP_LOG_FILE (opened without blocking: a FIFO without a reader loses
// the line, never holds the delivery), else to syslog (facility mail) when
// /dev/log exists, else nowhere; never to stderr. See package
// deliver/maillog.
package main

import "github.com/mapdrop/mapdrop/internal/agentcli"

func main() { agentcli.Main(nil) }
