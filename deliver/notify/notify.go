// Package notify sends the messages a mail filter asks for, redirects and
// vacation auto-replies, through Postfix's sendmail command, and keeps the
// records that make them happen once.
//
// # Submission
//
// A message is piped to "SENDMAIL -i -f SENDER -- RCPT" with the
// environment of the delivery agent (so MAIL_CONFIG, which pipe(8)
// exports, reaches the same Postfix instance). The null sender is given as
// "-f <>". A non-zero exit status or a failure to run sendmail is an error.
//
// # Records, under the user's HOME/.mapdrop/
//
// sent/KIND-HASH is an empty file whose modification time is when a
// message of KIND (redirect, vacation) was submitted; HASH is the SHA-256
// (hex) of the key the caller gives. Records older than 60 days are
// removed when a new one is written.
//
// # Vacation (RFC 5230 sections 4.5 and 4.6)
//
// No reply goes to the null sender, to a sender whose local part is
// MAILER-DAEMON, LISTSERV or majordomo, starts with "owner-" or ends in
// "-request" (any case), to a message with Auto-Submitted other than "no",
// Precedence bulk, list or junk, or any List-* field of RFC 2369/2919, to a
// sender that is one of the user's own addresses, nor when none of the
// user's addresses appears in To, Cc, Bcc, Resent-To, Resent-Cc or
// Resent-Bcc. The reply has the null envelope sender, Auto-Submitted:
// auto-replied, In-Reply-To and References naming the original, and is
// sent at most once per sender and handle within :days days.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultSendmail is Postfix's sendmail command.
const DefaultSendmail = "/usr/sbin/sendmail"

// Send submits msg to rcpt with envelope sender sender ("" for the null
// sender) through the sendmail command at path.
func Send(ctx context.Context, path, sender, rcpt string, msg io.Reader) error {
	if path == "" {
		path = DefaultSendmail
	}
	if sender == "" {
		sender = "<>"
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-i", "-f", sender, "--", rcpt)
	cmd.Stdin = msg
	cmd.Stderr = &stderr
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(strings.SplitN(stderr.String(), "\n", 2)[0])
		if msg != "" {
			return fmt.Errorf("%s to %s: %v: %s", path, rcpt, err, msg)
		}
		return fmt.Errorf("%s to %s: %v", path, rcpt, err)
	}
	return nil
}

// Records are the submission records below a home directory.
type Records struct {
	Dir string // HOME/.mapdrop
}

const recordMaxAge = 60 * 24 * time.Hour

func (r Records) path(kind, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(r.Dir, "sent", kind+"-"+hex.EncodeToString(sum[:]))
}

// When returns when the record (kind, key) was written, and false when
// there is none.
func (r Records) When(kind, key string) (time.Time, bool) {
	st, err := os.Stat(r.path(kind, key))
	if err != nil {
		return time.Time{}, false
	}
	return st.ModTime(), true
}

// Mark writes (or renews) the record (kind, key), durably, and removes
// records older than 60 days.
func (r Records) Mark(kind, key string) error {
	dir := filepath.Join(r.Dir, "sent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p := r.path(kind, key)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	now := time.Now()
	if err := os.Chtimes(p, now, now); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return err
	}
	if ents, err := d.ReadDir(-1); err == nil {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > recordMaxAge {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return nil
}

// Header is what the vacation rules read of the original message.
type Header interface {
	Values(name string) []string
	Get(name string) string
	Has(name string) bool
}

// ErrNoVacation is returned (wrapped, with the reason) when the rules
// forbid a reply.
var ErrNoVacation = errors.New("no vacation reply")

// VacationAllowed applies the RFC 5230 rules of the package documentation
// to a message from sender, for a user whose addresses are mine.
func VacationAllowed(h Header, sender string, mine []string) error {
	no := func(why string) error { return fmt.Errorf("%w: %s", ErrNoVacation, why) }
	if sender == "" {
		return no("null sender")
	}
	local := sender
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		local = sender[:i]
	}
	l := strings.ToLower(local)
	if l == "mailer-daemon" || l == "listserv" || l == "majordomo" || strings.HasPrefix(l, "owner-") || strings.HasSuffix(l, "-request") {
		return no("sender " + sender + " is a robot or list address")
	}
	if v := strings.TrimSpace(h.Get("auto-submitted")); v != "" && !strings.EqualFold(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]), "no") {
		return no("Auto-Submitted: " + v)
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("precedence"))) {
	case "bulk", "list", "junk":
		return no("Precedence: " + h.Get("precedence"))
	}
	for _, f := range []string{"list-id", "list-help", "list-subscribe", "list-unsubscribe", "list-post", "list-owner", "list-archive"} {
		if h.Has(f) {
			return no("mailing list message (" + f + ")")
		}
	}
	for _, m := range mine {
		if strings.EqualFold(m, sender) {
			return no("sender is the user")
		}
	}
	for _, f := range []string{"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"} {
		for _, v := range h.Values(f) {
			for _, m := range mine {
				if containsAddr(v, m) {
					return nil
				}
			}
		}
	}
	return no("none of the user's addresses is in To, Cc, Bcc or Resent-*")
}

// containsAddr reports whether the address addr occurs in the header
// value v as a whole address (not inside a longer one), ignoring case.
func containsAddr(v, addr string) bool {
	if addr == "" {
		return false
	}
	lv, la := strings.ToLower(v), strings.ToLower(addr)
	for i := 0; ; {
		j := strings.Index(lv[i:], la)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(la)
		if (start == 0 || !isAddrChar(lv[start-1])) && (end == len(lv) || !isAddrChar(lv[end])) {
			return true
		}
		i = start + 1
	}
}

func isAddrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.@", c) >= 0 || c >= 0x80
}

// Reply is a vacation auto-reply to compose.
type Reply struct {
	From, To      string // From: and To: addresses
	Subject       string // "" for "Auto: " and the original subject
	Body          string
	Mime          bool // Body is a MIME entity (its own header fields, blank line, body)
	OrigMessageID string
	OrigRefs      string
	OrigSubject   string
	Date          time.Time
	MessageID     string // without angle brackets
}

// Compose returns the reply message with LF line ends, as sendmail reads
// local submissions. Subject and addresses are put on one line each.
func (r Reply) Compose() []byte {
	var b bytes.Buffer
	subject := r.Subject
	if subject == "" {
		subject = "Auto: " + r.OrigSubject
	}
	fmt.Fprintf(&b, "From: %s\n", oneLine(r.From))
	fmt.Fprintf(&b, "To: %s\n", oneLine(r.To))
	fmt.Fprintf(&b, "Subject: %s\n", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	fmt.Fprintf(&b, "Date: %s\n", r.Date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\n", r.MessageID)
	if id := strings.TrimSpace(r.OrigMessageID); id != "" {
		fmt.Fprintf(&b, "In-Reply-To: %s\n", oneLine(id))
		refs := strings.TrimSpace(oneLine(r.OrigRefs))
		if refs != "" {
			refs += " "
		}
		fmt.Fprintf(&b, "References: %s%s\n", refs, oneLine(id))
	}
	b.WriteString("Auto-Submitted: auto-replied (vacation)\n")
	b.WriteString("Precedence: bulk\n")
	b.WriteString("MIME-Version: 1.0\n")
	if r.Mime {
		b.WriteString(strings.ReplaceAll(r.Body, "\r\n", "\n"))
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
		b.WriteString(strings.ReplaceAll(r.Body, "\r\n", "\n"))
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}
