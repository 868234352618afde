// Package failure is the one place that defines the kinds of failure mapdrop
// knows about. Every package returns errors built here (or plain errors, which
// count as temporary), and only the edges translate a kind into a wire reply
// or a process exit status:
//
//	Kind        socketmap  tcp_table  exit status (sysexits.h)
//	Temporary   TEMP       400        75 EX_TEMPFAIL  Postfix keeps the mail and retries
//	Permanent   PERM       400        78 EX_CONFIG    configuration error
//	NotFound    NOTFOUND   500        67 EX_NOUSER    "user unknown"
//	Usage       -          -          64 EX_USAGE     bad command line
//	CantCreate  -          -          73 EX_CANTCREAT a mailbox could not be created
//	Bounce      -          -          77 EX_NOPERM    delivery refused on purpose, so Postfix bounces
//	                                                  (mailbox full with -quota-bounce)
//	Invalid     -          -          65 EX_DATAERR   input data is malformed (a table that does not parse)
//	NoInput     -          -          66 EX_NOINPUT   an input file is missing or unreadable
//
// What Postfix makes of them differs by edge. A TEMP or PERM table answer
// makes Postfix defer ("temporary lookup failure"); only NOTFOUND means the
// key does not exist. An exit status is read by pipe(8) and local(8) through
// sys_exits: only 75 (and 71, EX_OSERR) defer; every other non-zero status,
// 78 included (5.3.5), bounces. A delivery agent that wants mail to stay
// queued after a configuration mistake therefore returns Temporary, not
// Permanent.
//
// An error that carries no kind is Temporary: mail whose failure is not
// understood stays queued.
//
// A command that answers a lookup, as postmap -q does, exits 0 when the key
// was found and 1 when it was not (LookupExitCode); every other status of
// mapdrop and mapdropd is ExitCode of the failure, 0 on success.
package failure

import (
	"errors"
	"fmt"
)

// Kind classifies a failure by what the caller should do about it.
type Kind int

// The kinds of failure. The zero value is Temporary, so that an unclassified
// error never turns into a bounce.
const (
	Temporary Kind = iota
	Permanent
	NotFound
	Usage
	CantCreate
	Bounce
	Invalid
	NoInput
)

// String names the kind in lower case, as used in log lines.
func (k Kind) String() string {
	switch k {
	case Temporary:
		return "temporary"
	case Permanent:
		return "permanent"
	case NotFound:
		return "notfound"
	case Usage:
		return "usage"
	case CantCreate:
		return "cantcreate"
	case Bounce:
		return "bounce"
	case Invalid:
		return "invalid"
	case NoInput:
		return "noinput"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ExitCode is the sysexits.h status a command exits with for this kind.
func (k Kind) ExitCode() int {
	switch k {
	case Permanent:
		return 78
	case NotFound:
		return 67
	case Usage:
		return 64
	case CantCreate:
		return 73
	case Bounce:
		return 77
	case Invalid:
		return 65
	case NoInput:
		return 66
	}
	return 75
}

// Error is an error with a Kind. Its message is the text a person reads: in a
// log line, on stderr where Postfix quotes it in a bounce, or after TEMP/PERM.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the underlying cause, if any; its text is not repeated in Msg
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	if e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind with a formatted message.
func New(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind that describes err, prefixed with a
// formatted message. Wrap(kind, nil, ...) returns nil.
func Wrap(kind Kind, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: err}
}

// Temp is New(Temporary, ...).
func Temp(format string, args ...any) error { return New(Temporary, format, args...) }

// Perm is New(Permanent, ...).
func Perm(format string, args ...any) error { return New(Permanent, format, args...) }

// ErrNotFound is the answer for a key that is not in a table. Test for it with
// KindOf(err) == NotFound or errors.Is(err, ErrNotFound).
var ErrNotFound = &Error{Kind: NotFound, Msg: "not found"}

// Is reports whether target is an *Error of the same kind with no message of
// its own beyond ErrNotFound's, so that errors.Is(err, ErrNotFound) holds for
// every NotFound error.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Kind == NotFound
}

// KindOf returns the kind of the outermost *Error in err's chain, or
// Temporary when there is none. KindOf(nil) is Temporary too; callers check
// for nil first.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Temporary
}

// ExitCode returns 0 for nil and the exit status of err's kind otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return KindOf(err).ExitCode()
}

// ExitNotFound is LookupExitCode's status for a key that is not there, as
// postmap -q exits.
const ExitNotFound = 1

// LookupExitCode is ExitCode for a command that answers a lookup: 0 for nil,
// ExitNotFound for NotFound, ExitCode otherwise.
func LookupExitCode(err error) int {
	if err != nil && KindOf(err) == NotFound {
		return ExitNotFound
	}
	return ExitCode(err)
}
