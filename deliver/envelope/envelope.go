// Package envelope removes the mbox "From " line that Postfix's local(8)
// puts before a message it pipes to a command (mailbox_command,
// mailbox_command_maps, "|command" in .forward or aliases), and reads the
// envelope sender from it, as maildrop and dovecot-lda do.
//
// # The line
//
// local(8) writes, before the message's first header line:
//
//	From SENDER  DATE
//
// SENDER is the envelope sender (quoted as an RFC 5322 local part when it
// needs to be), "MAILER-DAEMON" for the null sender <>; DATE is 24
// characters in asctime(3) form ("Tue Dec  1 23:20:27 2026"), after two
// spaces. The line ends in LF (or CRLF).
//
// # What Strip does
//
// When the input starts with the five bytes "From " and its first line
// (at most MaxLine bytes, LF included) is not an obsolete-syntax "From :"
// header field (RFC 5322 section 4.5.2 allows blanks before the colon),
// that line is removed and its SENDER returned: the text between "From "
// and the two spaces before a DATE that parses as asctime(3); without
// such a date (a traditional mbox line written by another program), the
// first blank-separated word. "MAILER-DAEMON" (any case) is returned as
// "", the null sender. Anything else — a message that does not start with
// "From ", a first line longer than MaxLine, an input shorter than five
// bytes — is passed through unchanged and found is false.
//
// The body is not unquoted: local(8) does not quote ">From " lines for
// commands, only for mbox files.
package envelope

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"
)

// MaxLine bounds the "From " line Strip removes.
const MaxLine = 64 << 10

// bufSize is the read buffer: one whole "From " line fits.
const bufSize = MaxLine

// Strip returns the message read from r without a leading "From " line,
// that line's envelope sender, and whether there was one (see the package
// documentation). Reading the first line happens at once; read errors are
// left for the returned reader to report.
func Strip(r io.Reader) (msg io.Reader, sender string, found bool) {
	br := bufio.NewReaderSize(r, bufSize)
	head, err := br.Peek(5)
	if err != nil || string(head) != "From " {
		return br, "", false
	}
	line, ok := firstLine(br)
	if !ok {
		return br, "", false // longer than MaxLine, or no line end
	}
	if !IsFromLine(string(line)) {
		return br, "", false
	}
	br.Discard(len(line))
	return br, Sender(string(line)), true
}

// firstLine returns the buffered first line, LF included, reading no
// more than needed to find its end.
func firstLine(br *bufio.Reader) ([]byte, bool) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], true
		}
		if len(buf) >= bufSize {
			return nil, false
		}
		if _, err := br.Peek(len(buf) + 1); err != nil && br.Buffered() == len(buf) {
			return nil, false // EOF or a read error with nothing new
		}
	}
}

// IsFromLine reports whether line, a message's first line, is an mbox
// "From " line: it starts with "From " and is not the obsolete-syntax
// header field "From" with blanks before its colon.
func IsFromLine(line string) bool {
	if !strings.HasPrefix(line, "From ") {
		return false
	}
	rest := strings.TrimLeft(line[len("From"):], " \t")
	return len(rest) == 0 || rest[0] != ':'
}

// Sender returns the envelope sender of a "From " line (with or without
// its line end), "" for MAILER-DAEMON.
func Sender(line string) string {
	line = strings.TrimRight(strings.TrimPrefix(line, "From "), "\r\n")
	var s string
	dated := false
	if n := len(time.ANSIC); len(line) >= n+2 && strings.HasSuffix(line[:len(line)-n], "  ") {
		if _, err := time.Parse(time.ANSIC, line[len(line)-n:]); err == nil {
			s, dated = line[:len(line)-n-2], true
		}
	}
	if !dated {
		s, _, _ = strings.Cut(strings.TrimLeft(line, " \t"), " ")
	}
	if strings.EqualFold(s, "MAILER-DAEMON") {
		return ""
	}
	return s
}
