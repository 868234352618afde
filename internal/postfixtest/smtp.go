package postfixtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Reply is the outcome of one SMTP transaction: the first reply that was not
// a success, or the reply to the end of DATA.
type Reply struct {
	Stage   string // "MAIL", "RCPT", "DATA" (the DATA command) or "END" (end of data)
	Code    int    // e.g. 250, 550, 451
	Msg     string // reply text without the code (lines joined by "\n")
	QueueID string // from "250 2.0.0 Ok: queued as QUEUEID", else ""
}

// String prints the reply as it came over the wire, with its stage.
func (r Reply) String() string { return fmt.Sprintf("%s: %d %s", r.Stage, r.Code, r.Msg) }

var queuedAs = regexp.MustCompile(`queued as ([0-9A-Za-z]+)`)

// Message builds a small RFC 5322 message with the given subject and body.
// Line ends may be LF: Send converts them to CRLF.
func Message(from, to, subject, body string) []byte {
	now := time.Now()
	return []byte(fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: %s\nDate: %s\nMessage-ID: <%d.postfixtest@%s>\n\n%s",
		from, to, subject, now.Format(time.RFC1123Z), now.UnixNano(), Hostname, body))
}

// Send submits msg over SMTP to the instance's smtpd (EHLO, MAIL FROM:<from>,
// RCPT TO:<to>, DATA) and returns the first refusing reply or the reply to
// the end of the data. Only a failure to talk SMTP at all (connection,
// garbled reply) fails the test.
func (inst *Instance) Send(t testing.TB, from, to string, msg []byte) Reply {
	t.Helper()
	r, err := Send(fmt.Sprintf("127.0.0.1:%d", inst.SMTPPort), from, to, msg)
	if err != nil {
		t.Fatalf("postfixtest: SMTP to 127.0.0.1:%d: %v", inst.SMTPPort, err)
	}
	return r
}

// Send is Instance.Send for any SMTP server address (host:port). The whole
// transaction is limited to one minute.
func Send(hostport, from, to string, msg []byte) (Reply, error) {
	conn, err := net.DialTimeout("tcp", hostport, 10*time.Second)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := textproto.NewConn(conn)
	// step sends line (none when empty) and reads the reply; ok is false for
	// a reply other than want, err is set only for I/O or garbled replies.
	step := func(stage string, want int, line string) (r Reply, ok bool, err error) {
		if line != "" {
			if err := c.PrintfLine("%s", line); err != nil {
				return Reply{}, false, err
			}
		}
		code, text, err := c.ReadResponse(want)
		r = Reply{Stage: stage, Code: code, Msg: text}
		var te *textproto.Error
		if err != nil && !errors.As(err, &te) {
			return r, false, err
		}
		return r, err == nil, nil
	}
	steps := []struct {
		stage string
		want  int
		line  string
	}{
		{"CONNECT", 220, ""},
		{"EHLO", 250, "EHLO client.postfixtest"},
		{"MAIL", 250, "MAIL FROM:<" + from + ">"},
		{"RCPT", 250, "RCPT TO:<" + to + ">"},
		{"DATA", 354, "DATA"},
	}
	for _, s := range steps {
		r, ok, err := step(s.stage, s.want, s.line)
		if err != nil || !ok {
			c.PrintfLine("QUIT")
			return r, err
		}
	}
	w := c.DotWriter()
	if _, err := w.Write(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))); err != nil {
		return Reply{}, err
	}
	if err := w.Close(); err != nil {
		return Reply{}, err
	}
	r, _, err := step("END", 250, "")
	if err != nil {
		return r, err
	}
	if m := queuedAs.FindStringSubmatch(r.Msg); m != nil {
		r.QueueID = m[1]
	}
	c.PrintfLine("QUIT")
	return r, nil
}

// Body returns everything after the header of a stored message.
func Body(msg []byte) []byte {
	s := strings.ReplaceAll(string(msg), "\r\n", "\n")
	if i := strings.Index(s, "\n\n"); i >= 0 {
		return []byte(s[i+2:])
	}
	return nil
}
