// Package maillog writes mapdrop's one log line per delivery.
//
// Where the line goes, decided once by OpenPath:
//
//   - the file named by mapdrop's -log option, else by env
//     MAPDROP_LOG_FILE, appended to, created mode 0600 when missing;
//   - otherwise (also when that file cannot be opened) syslog, facility
//     mail, tag "mapdrop", when /dev/log exists;
//   - otherwise nowhere: Postfix's own log still has each delivery's
//     status and, for a failure, mapdrop's one-line stderr message.
//
// The file is opened with O_NONBLOCK, so that neither the open nor a write
// ever waits: a FIFO without a reader fails to open (ENXIO; the line goes
// to syslog or nowhere), a full one loses the line. For a regular file
// O_NONBLOCK changes nothing.
//
// To syslog the line goes, without waiting (a syslog daemon that does not
// keep up loses the line instead of holding the delivery), as one datagram "<PRI>mapdrop[PID]: LINE" (PRI is
// mail.info, or mail.warning for a failed delivery), without a timestamp:
// rsyslog and journald stamp what arrives on /dev/log themselves, and
// formatting local time would make every delivery read the time zone file.
// In the file the line is prefixed with the time in UTC (RFC 3339) and
// "mapdrop[PID]:".
//
// Never stderr: Postfix quotes a delivery agent's stderr in bounces and
// defer reasons, and that is reserved for the one-line error message.
//
// The line is key=value pairs, values quoted with strconv.Quote when they
// contain a space, quote or control character:
//
//	user=u@dom account=userdb:u@dom folder=.Work size=1234 duration=12ms status=sent exit=0
//	user=u@dom folder=INBOX size=99 duration=3ms status=deferred exit=75 reason="mailbox full"
//	user=alice from=<bob@example.org> account=passwd:alice folder=INBOX size=99 duration=2ms status=sent exit=0
//
// from=<SENDER> (<> for the null sender) is there when the envelope
// sender is known without reading the header: from -f, or from the mbox
// "From " line local(8) puts before the message. tmp-removed=N counts the
// files older than 36 hours that killed deliveries had left in tmp/ and
// this delivery removed; it appears only when N > 0. When the log file
// could not be opened and the line went to syslog instead, the line ends
// with log-file-error="open PATH: REASON", so that the admin learns why
// the file stays empty.
//
// With a Sieve script, folder lists every stored copy (".Lists,INBOX") and
// sieve="..." says what the script did (redirects, vacation, reject,
// discard, missing folders, script errors as FILE:LINE:COL); note="..."
// carries advice such as a maildrop filter that is not run.
//
// status is sent (exit 0), deferred (exit 75), or bounced (any other exit
// status, which Postfix's pipe(8) turns into a bounce).
package maillog

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
)

// EnvFile names the environment variable that redirects the line to a file.
const EnvFile = "MAPDROP_LOG_FILE"

// devLog is the syslog socket; tests point it elsewhere.
var devLog = "/dev/log"

// Logger writes delivery lines. The zero value discards them.
type Logger struct {
	dest    dest
	fd      int    // the open file or socket, when dest is not none
	fileErr string // why the log file was not used, when it was asked for
}

// dest is where a Logger's lines go.
type dest int

const (
	none   dest = iota
	file        // fd is a file opened for appending
	syslog      // fd is a datagram socket connected to devLog
)

// Syslog priorities: facility mail (2) times 8, plus the severity.
const (
	priInfo    = 2*8 + 6
	priWarning = 2*8 + 4
)

// OpenPath opens the destination: the file path when it is not "" (the
// -log option), else the file named by EnvFile, else syslog (see the
// package documentation). It is called before privileges are dropped, so
// that a root-only log file or socket stays usable. Errors are not fatal
// to a delivery: the returned Logger then writes to syslog or discards
// lines, and the error says why the file was not used.
func OpenPath(path string) (*Logger, error) {
	if path == "" {
		path = os.Getenv(EnvFile)
	}
	var fileErr error
	if path != "" {
		// A bare descriptor rather than an os.File, which would start Go's
		// network poller (an epoll instance and an eventfd) to find out
		// that a regular file cannot use it.
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return &Logger{dest: file, fd: fd}, nil
		}
		fileErr = &os.PathError{Op: "open", Path: path, Err: err}
	}
	l, err := openSyslog()
	if fileErr != nil {
		l.fileErr = fileErr.Error()
		return l, fileErr
	}
	return l, err
}

// openSyslog connects to devLog, when it exists.
func openSyslog() (*Logger, error) {
	if _, err := os.Stat(devLog); err != nil {
		return &Logger{}, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &Logger{}, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: devLog}); err != nil {
		unix.Close(fd)
		return &Logger{}, &os.PathError{Op: "connect", Path: devLog, Err: err}
	}
	return &Logger{dest: syslog, fd: fd}, nil
}

// Entry is one delivery's outcome.
type Entry struct {
	User string // the -d argument
	// Sender is the envelope sender ("" for <>) when HaveSender: from -f,
	// or from the mbox "From " line local(8) puts before the message.
	Sender     string
	HaveSender bool
	Account    string // "userdb:KEY" or "passwd:NAME", "" when unresolved
	Folder     string // "INBOX", ".Work", "" when not reached; copies comma-separated
	Sieve      string // the Sieve actions taken and script errors, "" without a script
	Note       string // something the user or admin should know, "" for nothing
	// TmpRemoved counts the files left in tmp/ by earlier deliveries
	// that this one removed.
	TmpRemoved int
	Size       int64
	Duration   time.Duration
	Exit       int    // the process exit status
	Reason     string // the error message, "" on success
}

// Status names the outcome as Postfix will treat it.
func (e Entry) Status() string {
	switch e.Exit {
	case 0:
		return "sent"
	case failure.Temporary.ExitCode():
		return "deferred"
	}
	return "bounced"
}

// Line formats the entry (see the package documentation).
func (e Entry) Line() string {
	var b strings.Builder
	kv := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f || r == '=' }) {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
	kv("user", e.User)
	if e.HaveSender {
		kv("from", "<"+e.Sender+">")
	}
	if e.Account != "" {
		kv("account", e.Account)
	}
	if e.Folder != "" {
		kv("folder", e.Folder)
	}
	if e.Sieve != "" {
		kv("sieve", e.Sieve)
	}
	if e.Note != "" {
		kv("note", e.Note)
	}
	if e.TmpRemoved > 0 {
		kv("tmp-removed", strconv.Itoa(e.TmpRemoved))
	}
	kv("size", strconv.FormatInt(e.Size, 10))
	kv("duration", e.Duration.Round(time.Millisecond).String())
	kv("status", e.Status())
	kv("exit", strconv.Itoa(e.Exit))
	if e.Reason != "" {
		kv("reason", e.Reason)
	}
	return b.String()
}

// Log writes the entry's line. Errors are ignored: logging never changes
// a delivery's outcome.
func (l *Logger) Log(e Entry) {
	if l == nil || l.dest == none {
		return
	}
	line := e.Line()
	if l.fileErr != "" {
		line += " log-file-error=" + strconv.Quote(l.fileErr)
	}
	tag := "mapdrop[" + strconv.Itoa(os.Getpid()) + "]: "
	switch l.dest {
	case file:
		unix.Write(l.fd, []byte(time.Now().UTC().Format(time.RFC3339)+" "+tag+line+"\n"))
	case syslog:
		pri := priInfo
		if e.Exit != 0 {
			pri = priWarning
		}
		unix.Write(l.fd, []byte("<"+strconv.Itoa(pri)+">"+tag+line))
	}
}

// Close closes the destination.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	if l.dest == none {
		return nil
	}
	l.dest = none
	return unix.Close(l.fd)
}
