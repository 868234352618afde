// Package agentcli is the command line of the delivery agent, shared by
// mapdrop and mapdrop-sieve (its usage is Help). The two
// binaries differ only in the filter they pass to Main: mapdrop passes
// none and execs mapdrop-sieve when a Sieve script applies, so that
// recipients without a script never load the Sieve engine.
package agentcli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/mapdrop/mapdrop/deliver"
	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/deliver/sievepath"
	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

const (
	userdbMap = "userdb"
	// lookupTimeout bounds all userdb lookups of one delivery.
	lookupTimeout = 30 * time.Second
	usageLine     = "usage: mapdrop [-s ADDR] [-recipient-delimiter CHARS] [-quota-bounce] [-n] [-a ADDR] [-f ADDR] [-sieve-before PATH] [-sieve-after PATH] [-sendmail PATH] [-sieve-bin PATH] [-log FILE] -d USER [EXTENSION [RECIPIENT [ARG...]]]"
	// SieveBinary is the name of the binary with the Sieve engine, looked
	// for next to mapdrop's own executable.
	SieveBinary = "mapdrop-sieve"
)

// FilterFunc makes the filter of a delivery from the command line's
// settings; mapdrop-sieve passes one that runs the Sieve engine.
type FilterFunc func(s FilterSettings) action.Filter

// FilterSettings are the command line settings a filter needs.
type FilterSettings struct {
	Delimiters    string
	Before, After []string // -sieve-before, -sieve-after
}

// Main runs the delivery agent and exits. newFilter is nil for mapdrop.
//
// The first thing it does is refuse a privileged start (see Privilege):
// exit 75 before reading the command line or the environment, opening a
// log or connecting anywhere.
func Main(newFilter FilterFunc) {
	if reason := Privilege(); reason != "" {
		fmt.Fprintf(os.Stderr, "mapdrop: %s\n", privilegeError(reason))
		os.Exit(failure.Temporary.ExitCode())
	}
	if code, done := helpOrVersion(os.Args[1:], os.Stdout, filepath.Base(os.Args[0])); done {
		os.Exit(code)
	}
	log, _ := maillog.OpenPath(logOption(os.Args[1:]))
	code := safely(os.Stderr, func() error { return run(os.Args[1:], os.Stdin, log, newFilter) })
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
	recipient   string // -a, else the argument after EXTENSION, else ""
	sender      string
	haveSender  bool
	dryRun      bool
	before      []string
	after       []string
	sendmail    string
	sieveBin    string
	note        string // for the log line
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
		name, value, hasValue, isOpt := splitOption(a)
		if !isOpt {
			return o, usageErr("unexpected argument %q before -d USER", a)
		}
		switch {
		case valueOption[name]:
			if !hasValue {
				if i+1 >= len(args) {
					return o, usageErr("option -%s needs a value", name)
				}
				i++
				value = args[i]
			}
		case name == "quota-bounce":
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
		case name == "n":
			if hasValue {
				return o, usageErr("-n takes no value")
			}
			o.dryRun = true
			continue
		default:
			return o, usageErr("unknown option %q", a)
		}
		switch name {
		case "s":
			o.server, haveS = value, true
		case "recipient-delimiter", "delimiter":
			o.delimiters, haveDelim = value, true
		case "a":
			o.recipient = value
		case "f":
			o.sender, o.haveSender = value, true
		case "sieve-before", "sieve-after":
			if !filepath.IsAbs(value) {
				return o, usageErr("-%s %q: not an absolute path", name, value)
			}
			if name == "sieve-before" {
				o.before = append(o.before, value)
			} else {
				o.after = append(o.after, value)
			}
		case "sendmail":
			o.sendmail = value
		case "sieve-bin":
			o.sieveBin = value
		case "log":
			// Opened by Main (logOption) before parsing, so that usage
			// errors are logged too.
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
	if len(rest) > 1 && o.recipient == "" {
		o.recipient = rest[1]
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
	if len(rest) == 0 {
		// Started by local(8) as "mapdrop -d ${USER}": the extension and
		// the recipient are in the environment.
		ext, rcpt, ok, ignored := fromLocal(o.user, o.delimiters, os.Getenv)
		if ok {
			o.ext = ext
			if o.recipient == "" {
				o.recipient = rcpt
			}
		}
		o.note = ignored
	}
	return o, nil
}

// splitOption splits a command-line word "-name", "--name", "-name=value"
// or "--name=value"; isOpt is false for a word that is no option: one not
// starting with "-", "-" or "--".
func splitOption(a string) (name, value string, hasValue, isOpt bool) {
	if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
		return "", "", false, false
	}
	name, value, hasValue = strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
	return name, value, hasValue, true
}

// valueOption holds the options that take a value.
var valueOption = map[string]bool{"s": true, "d": true, "recipient-delimiter": true, "delimiter": true, "a": true, "f": true,
	"sieve-before": true, "sieve-after": true, "sendmail": true, "sieve-bin": true, "log": true}

// logOption returns the value of the last -log option before -d, "" for
// none, without checking anything else.
func logOption(args []string) string {
	v := ""
	for i := 0; i < len(args); i++ {
		name, value, hasValue, isOpt := splitOption(args[i])
		if !isOpt || name == "d" {
			return v
		}
		if !valueOption[name] || hasValue {
			if name == "log" {
				v = value
			}
			continue
		}
		if i+1 < len(args) {
			i++
			if name == "log" {
				v = args[i]
			}
		}
	}
	return v
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

func run(args []string, stdin io.Reader, log *maillog.Logger, newFilter FilterFunc) error {
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
		Recipient:   o.recipient,
		Sender:      o.sender,
		HaveSender:  o.haveSender,
		Sendmail:    o.sendmail,
		Note:        o.note,
	}
	if o.dryRun {
		agent.DryRun = os.Stdout
	}
	if newFilter != nil {
		agent.Filter = newFilter(FilterSettings{Delimiters: o.delimiters, Before: o.before, After: o.after})
	} else {
		agent.Handoff = func(acct account.Account) error {
			if sievepath.Find(acct.Home, acct.Sieve, o.before, o.after).Empty() {
				return nil
			}
			return handoff(o.sieveBin)
		}
	}
	return agent.Deliver(ctx, o.user, o.ext, stdin)
}

// handoff replaces the process with mapdrop-sieve, same arguments, same
// environment, stdin untouched. It returns only on failure.
func handoff(bin string) error {
	if bin == "" {
		self, err := os.Readlink("/proc/self/exe")
		if err != nil {
			return failure.Wrap(failure.Temporary, err, "a Sieve script applies, but mapdrop cannot find its own executable")
		}
		bin = filepath.Join(filepath.Dir(self), SieveBinary)
	}
	err := syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ())
	return failure.Wrap(failure.Temporary, err, "a Sieve script applies, but %s cannot be run", bin)
}
