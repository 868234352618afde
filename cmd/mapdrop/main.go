// Command mapdrop is a maildrop-compatible delivery agent for Postfix: it
// reads one message on stdin and writes it into the recipient's Maildir, as
// the uid and gid that mapdropd's userdb map names.
//
// Usage:
//
//	mapdrop [-s ADDR] [-recipient-delimiter CHARS] [-quota-bounce] -d USER [EXTENSION [ARG...]]
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
//	-d USER           the recipient, "user@domain" (pipe(8)'s ${user}@${domain} or
//	                  ${recipient}) or a local user name. -d ends the options:
//	                  every argument after USER is an argument, even one that
//	                  starts with "-".
//
// The first argument after USER, when present and not empty, is the address
// extension (pipe(8)'s ${extension}); further arguments (${recipient},
// ${user}, ${nexthop}, ...) are accepted and ignored. Without it, the
// extension comes from USER when USER itself is not in userdb but USER with
// its extension cut off is (see package deliver/account): "-d
// user+work@dom" delivers to user@dom's folder "work". A typical master.cf
// entry:
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
//	    until it is fixed), and anything not understood, including a crash
//	77  mailbox full, with -quota-bounce
//
// Every status comes from package failure.
//
// One log line per delivery goes to syslog (facility mail) when /dev/log
// exists, or to the file named by env MAPDROP_LOG_FILE; never to stderr.
// See package deliver/maillog.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mapdrop/mapdrop/deliver"
	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

const (
	userdbMap = "userdb"
	// lookupTimeout bounds all userdb lookups of one delivery.
	lookupTimeout = 30 * time.Second
	usageLine     = "usage: mapdrop [-s ADDR] [-recipient-delimiter CHARS] [-quota-bounce] -d USER [EXTENSION [ARG...]]"
)

func main() {
	log, _ := maillog.Open()
	code := safely(os.Stderr, func() error { return run(os.Args[1:], os.Stdin, log) })
	log.Close()
	os.Exit(code)
}

// safely runs f and turns its outcome into an exit status, printing the
// one stderr line. A panic is exit 75: the mail stays queued.
func safely(stderr io.Writer, f func() error) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mapdrop: %s\n", oneLine(fmt.Sprintf("internal error: %v", r)))
			code = failure.Temporary.ExitCode()
		}
	}()
	err := f()
	if err != nil {
		fmt.Fprintf(stderr, "mapdrop: %s\n", oneLine(err.Error()))
	}
	return failure.ExitCode(err)
}

// oneLine keeps a message on one line, as Postfix reads only the first.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

// options are the parsed command line.
type options struct {
	server      string
	delimiters  string
	quotaBounce bool
	user        string
	ext         string
}

func usageErr(format string, args ...any) error {
	return failure.New(failure.Usage, "%s (%s)", fmt.Sprintf(format, args...), usageLine)
}

// parse reads the command line and the environment.
func parse(args []string) (options, error) {
	var o options
	haveS, haveDelim, haveD := false, false, false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return o, usageErr("unexpected argument %q before -d USER", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		switch name {
		case "s", "d", "recipient-delimiter", "delimiter":
			if !hasValue {
				if i+1 >= len(args) {
					return o, usageErr("option -%s needs a value", name)
				}
				i++
				value = args[i]
			}
		case "quota-bounce":
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return o, usageErr("bad value %q for -quota-bounce", value)
				}
				o.quotaBounce = b
			} else {
				o.quotaBounce = true
			}
			continue
		default:
			return o, usageErr("unknown option %q", a)
		}
		switch name {
		case "s":
			o.server, haveS = value, true
		case "recipient-delimiter", "delimiter":
			o.delimiters, haveDelim = value, true
		case "d":
			o.user, haveD = value, true
			rest = args[i+1:]
			i = len(args)
		}
	}
	if !haveD {
		return o, usageErr("missing -d USER")
	}
	if o.user == "" || strings.ContainsFunc(o.user, unicode.IsControl) {
		return o, usageErr("bad user %q", o.user)
	}
	if len(rest) > 0 {
		o.ext = rest[0]
	}
	if haveS {
		if _, err := sockaddr.Parse(o.server); err != nil {
			return o, usageErr("-s: %v", err)
		}
	} else if env := os.Getenv("MAPDROP_SERVER"); env != "" {
		if _, err := sockaddr.Parse(env); err != nil {
			return o, failure.New(failure.Temporary, "env MAPDROP_SERVER: %v", err)
		}
		o.server = env
	} else {
		o.server = sockaddr.DefaultServer
	}
	if haveDelim {
		if err := address.CheckDelimiters(o.delimiters); err != nil {
			return o, usageErr("-recipient-delimiter: %v", err)
		}
	} else if name, env, ok := delimiterEnv(); ok {
		if err := address.CheckDelimiters(env); err != nil {
			return o, failure.New(failure.Temporary, "env %s: %v", name, err)
		}
		o.delimiters = env
	} else {
		o.delimiters = "+"
	}
	return o, nil
}

// delimiterEnv returns the recipient delimiter set in the environment, under
// its name or the older MAPDROP_DELIMITER.
func delimiterEnv() (name, value string, ok bool) {
	for _, name := range []string{"MAPDROP_RECIPIENT_DELIMITER", "MAPDROP_DELIMITER"} {
		if v, ok := os.LookupEnv(name); ok {
			return name, v, true
		}
	}
	return "", "", false
}

func run(args []string, stdin io.Reader, log *maillog.Logger) error {
	o, err := parse(args)
	if err != nil {
		log.Log(maillog.Entry{User: o.user, Exit: failure.ExitCode(err), Reason: err.Error()})
		return err
	}
	server, _ := sockaddr.Parse(o.server) // checked by parse
	ctx := context.Background()
	// A deadline, not a context timeout: see oneshot.Lookup.
	lookupDeadline := time.Now().Add(lookupTimeout)
	agent := &deliver.Agent{
		Resolver: &account.Resolver{
			Delimiters: o.delimiters,
			Lookup: func(ctx context.Context, key string) (string, error) {
				return oneshot.Lookup(ctx, lookupDeadline, server, userdbMap, key)
			},
		},
		QuotaBounce: o.quotaBounce,
		Log:         log,
	}
	return agent.Deliver(ctx, o.user, o.ext, stdin)
}
