package deliver

// Delivery with a filter (mapdrop-sieve), after the account is resolved,
// the owner's identity taken and the Maildir opened:
//
//  1. write the message once into tmp/ and fsync it;
//  2. ask the filter for a plan (action.Plan);
//  3. reject: remove the file, fail with failure.Bounce and the reason
//     (Postfix bounces the message to the sender with it);
//  4. redirects, in order, through sendmail, each prefixed with
//     "X-Sieve-Redirected-From: RECIPIENT"; one that fails is
//     failure.Temporary and nothing is stored. A message that already
//     carries that field naming this recipient is not redirected again
//     (a loop): the redirect is dropped and, when nothing else stores it,
//     the message is kept;
//  5. the vacation reply, when the rules of package notify allow it; a
//     reply that cannot be sent is logged, never retried;
//  6. the stores: each named mailbox is resolved to a Maildir++ folder
//     (maildir.MailboxDir; an existing folder matched ignoring case; a
//     missing one created only with :create, otherwise the copy goes to
//     INBOX and the miss is logged); keep goes where delivery without a
//     script would go. One copy per folder. With a quota, the copies
//     together are checked. Each copy is a hard link of the tmp/ file
//     into new/, or into cur/ with ":2,FLAGS" when flags are set, and
//     its directory is fsynced; a failure removes the copies made and is
//     failure.Temporary;
//  7. the tmp/ file is removed; exit 0 means every copy is durable.
//
// Retries: redirects and vacation replies are recorded (package notify,
// HOME/.mapdrop/sent/) by the SHA-256 of the message and the target, so a
// delivery retried after a temporary failure does not submit them again.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/maildir"
	"github.com/mapdrop/mapdrop/deliver/maildirsize"
	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/deliver/msghdr"
	"github.com/mapdrop/mapdrop/deliver/notify"
	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
)

// RedirectTrace is the header field that marks a redirected message.
const RedirectTrace = "X-Sieve-Redirected-From"

// envelope returns the envelope the filter sees.
func (a *Agent) envelope(user string, h *msghdr.Header) (from, to string) {
	to = a.Recipient
	if to == "" {
		to = user
	}
	if a.HaveSender {
		from = a.Sender
	} else if rp, ok := h.ReturnPath(); ok {
		from = rp
	} else if a.haveFromLine {
		from = a.fromLine
	}
	return from, to
}

// myAddresses are the recipient's addresses for the vacation rules.
func myAddresses(to, user string, acct account.Account, delims string, extra []string) []string {
	mine := []string{to}
	if base, _, ok := address.Split(to, delims); ok {
		mine = append(mine, base)
	}
	for _, a := range []string{user, acct.Name} {
		if strings.Contains(a, "@") {
			mine = append(mine, a)
		}
	}
	return append(mine, extra...)
}

func (a *Agent) filtered(ctx context.Context, user string, acct account.Account, box, deflt *maildir.Dir, msg io.Reader, e *maillog.Entry) error {
	var acts []string
	defer func() { e.Sieve = strings.Join(acts, " ") }()
	dl, err := box.Create()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	defer dl.Abort()
	size, err := dl.Write(msg)
	e.Size = size
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	f, err := dl.Open()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	defer f.Close()
	h, err := msghdr.Read(f, size)
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s: reading the message back", user)
	}
	from, to := a.envelope(user, h)
	plan := a.Filter.Plan(ctx, action.Input{Home: acct.Home, Sieve: acct.Sieve, From: from, To: to, Msg: f, Size: size,
		MailboxExists: func(mb string) bool { return mailboxExists(box, mb) }})
	for _, er := range plan.Errors {
		acts = append(acts, "error="+er)
	}
	acts = append(acts, plan.Notes...)

	if plan.Rejected {
		acts = append(acts, "reject")
		return failure.New(failure.Bounce, "%s", oneLine(plan.RejectReason))
	}
	// A redirect loop: drop the redirects, keep the message.
	if len(plan.Redirects) > 0 {
		for _, v := range h.Values(RedirectTrace) {
			if strings.EqualFold(strings.TrimSpace(v), to) {
				acts = append(acts, "redirect-loop")
				if len(plan.Stores) == 0 {
					plan.Stores = []action.Store{{Mailbox: "INBOX", Default: true}}
				}
				plan.Redirects = nil
				break
			}
		}
	}
	records := notify.Records{Dir: filepath.Join(acct.Home, ".mapdrop")}
	var hash string
	if len(plan.Redirects) > 0 || plan.Vacation != nil {
		sum := sha256.New()
		if _, err := io.Copy(sum, io.NewSectionReader(f, 0, size)); err != nil {
			return failure.Wrap(failure.Temporary, err, "%s: reading the message back", user)
		}
		hash = hex.EncodeToString(sum.Sum(nil))
	}
	for _, r := range plan.Redirects {
		key := hash + "\x00" + strings.ToLower(r.Addr)
		if _, done := records.When("redirect", key); done {
			acts = append(acts, "redirect="+r.Addr+"(already-sent)")
			continue
		}
		body := io.MultiReader(strings.NewReader(RedirectTrace+": "+oneLine(to)+"\n"), io.NewSectionReader(f, 0, size))
		if err := notify.Send(ctx, a.Sendmail, from, r.Addr, body); err != nil {
			return failure.Wrap(failure.Temporary, err, "%s: redirect", user)
		}
		records.Mark("redirect", key)
		acts = append(acts, "redirect="+r.Addr)
	}
	if v := plan.Vacation; v != nil {
		acts = append(acts, a.vacation(ctx, v, h, to, user, acct, records))
	}

	if len(plan.Stores) == 0 {
		acts = append(acts, "discard")
		e.Folder = ""
		return nil
	}
	type target struct {
		dir   *maildir.Dir
		flags []string
	}
	var targets []target
	for _, s := range plan.Stores {
		dir, note, err := resolveStore(box, deflt, s)
		if err != nil {
			return failure.Wrap(failure.Temporary, err, "%s", user)
		}
		if note != "" {
			acts = append(acts, note)
		}
		if dir != box && dir != deflt {
			defer dir.Close()
		}
		dup := false
		for i := range targets {
			if targets[i].dir.Path() == dir.Path() {
				dup = true
				targets[i].flags = append(targets[i].flags, s.Flags...)
			}
		}
		if !dup {
			targets = append(targets, target{dir, s.Flags})
		}
	}
	lim := acct.Quota
	n := int64(len(targets))
	if lim.Enabled() {
		if _, err := maildirsize.Check(box.Root(), lim, n*size, time.Now()); err != nil {
			kind := failure.Temporary
			if errors.Is(err, maildirsize.ErrOverQuota) && a.QuotaBounce {
				kind = failure.Bounce
			}
			return failure.Wrap(kind, err, "%s", user)
		}
	}
	var done []string
	var names []string
	for _, t := range targets {
		flags := maildir.InfoFlags(t.flags)
		rel, err := dl.Link(t.dir, flags)
		if err != nil {
			for j := range done {
				targets[j].dir.Remove(done[j])
			}
			return failure.Wrap(failure.Temporary, err, "%s", user)
		}
		done = append(done, rel)
		name := t.dir.Name()
		if flags != "" {
			name += ":" + flags
		}
		names = append(names, name)
	}
	e.Folder = strings.Join(names, ",")
	dl.Abort() // the copies are durable; remove the tmp/ file
	if lim.Enabled() {
		maildirsize.Add(box.Root(), n*size, n)
	}
	return nil
}

// mailboxExists reports whether the IMAP mailbox exists in box: INBOX, or
// a folder that resolveStore would find without creating it.
func mailboxExists(box *maildir.Dir, mailbox string) bool {
	name, inbox, err := maildir.MailboxDir(mailbox)
	if err != nil || inbox {
		return inbox
	}
	sub, found, err := box.Sub(name, false)
	if err != nil || !found {
		return false
	}
	sub.Close()
	return true
}

// resolveStore finds the folder for one store (see the steps above).
func resolveStore(box, deflt *maildir.Dir, s action.Store) (*maildir.Dir, string, error) {
	if s.Default {
		return deflt, "", nil
	}
	name, inbox, err := maildir.MailboxDir(s.Mailbox)
	if err != nil {
		return box, fmt.Sprintf("fileinto-invalid=%q(INBOX)", s.Mailbox), nil
	}
	if inbox {
		return box, "", nil
	}
	sub, found, err := box.Sub(name, s.Create)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return box, fmt.Sprintf("fileinto-missing=%q(INBOX)", s.Mailbox), nil
	}
	return sub, "", nil
}

// vacation sends the auto-reply when allowed and returns the log word.
func (a *Agent) vacation(ctx context.Context, v *action.Vacation, h *msghdr.Header, to, user string, acct account.Account, records notify.Records) string {
	mine := myAddresses(to, user, acct, a.Resolver.Delimiters, v.Addresses)
	if err := notify.VacationAllowed(h, v.To, mine); err != nil {
		return fmt.Sprintf("vacation=%s(not-sent:%s)", v.To, strings.TrimPrefix(err.Error(), notify.ErrNoVacation.Error()+": "))
	}
	handle := v.Handle
	if handle == "" {
		handle = v.Subject + "\x00" + v.From + "\x00" + v.Body
	}
	key := handle + "\x00" + strings.ToLower(v.To)
	if when, ok := records.When("vacation", key); ok && time.Since(when) < time.Duration(v.Days)*24*time.Hour {
		return "vacation=" + v.To + "(already-replied)"
	}
	from := v.From
	if from == "" {
		from = to
		if base, _, ok := address.Split(to, a.Resolver.Delimiters); ok {
			from = base
		}
	}
	host, _ := os.Hostname()
	rnd := sha256.Sum256([]byte(fmt.Sprint(time.Now().UnixNano(), os.Getpid(), v.To)))
	reply := notify.Reply{From: from, To: replyTo(h, v.To), Subject: v.Subject, Body: v.Body, Mime: v.Mime,
		OrigMessageID: h.Get("message-id"), OrigRefs: h.Get("references"), OrigSubject: h.Get("subject"),
		Date: time.Now(), MessageID: hex.EncodeToString(rnd[:8]) + ".vacation@" + host}
	if err := notify.Send(ctx, a.Sendmail, "", v.To, strings.NewReader(string(reply.Compose()))); err != nil {
		return "vacation=" + v.To + "(failed:" + oneLine(err.Error()) + ")"
	}
	records.Mark("vacation", key)
	return "vacation=" + v.To
}

// replyTo returns the To: field of an auto-reply to sender: the original
// From: field, display name included, when it names the sender (as
// Pigeonhole does), else the bare address.
func replyTo(h *msghdr.Header, sender string) string {
	from := strings.TrimSpace(h.Get("from"))
	addr := from
	if i := strings.LastIndexByte(from, '<'); i >= 0 {
		if j := strings.IndexByte(from[i:], '>'); j > 0 {
			addr = from[i+1 : i+j]
		}
	}
	if from != "" && !strings.Contains(from, ",") && strings.EqualFold(strings.TrimSpace(addr), sender) {
		return from
	}
	return sender
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}
