package deliver

// The dry run (mapdrop -n): resolve the account, take its owner's
// identity, read the message into memory, run the filter when there is
// one, and print what delivery would do. Nothing is created, written,
// sent or recorded. The output is one "key: value" line per fact:
//
//	account: userdb:bob@example.com uid=5000 gid=5000
//	maildir: /var/vmail/example.com/bob/Maildir/
//	script: /var/vmail/example.com/bob/.dovecot.sieve
//	store: .Lists flags=S
//	store: .Archive.2026 (would be created)
//	store: INBOX (fileinto "Nope": no such folder)
//	redirect: carol@example.net
//	vacation: alice@example.org (would be sent)
//	reject: REASON (exit 77)
//	discard
//	error: FILE:LINE:COL: text

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/maildir"
	"github.com/mapdrop/mapdrop/deliver/msghdr"
	"github.com/mapdrop/mapdrop/deliver/notify"
	"github.com/mapdrop/mapdrop/deliver/sievepath"
	"github.com/mapdrop/mapdrop/failure"
)

// maxDryRunMessage bounds the message a dry run reads into memory.
const maxDryRunMessage = 64 << 20

// existingFolder returns the directory name of the folder of the Maildir
// at root that Dir.Sub would open for name, and whether there is one.
func existingFolder(root, name string) (string, bool) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return "", false
	}
	match := ""
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !strings.EqualFold(n, name) {
			continue
		}
		if n == name {
			return n, true
		}
		if match == "" || n < match {
			match = n
		}
	}
	return match, match != ""
}

func (a *Agent) dryRun(ctx context.Context, user string, acct account.Account, msg io.Reader) error {
	w := a.DryRun
	fmt.Fprintf(w, "account: %s:%s uid=%d gid=%d\n", acct.Source, acct.Name, acct.UID, acct.GID)
	created := ""
	if _, err := os.Stat(acct.Maildir); err != nil {
		created = " (would be created)"
	}
	fmt.Fprintf(w, "maildir: %s%s\n", acct.Maildir, created)
	deflt := "INBOX"
	if want, ok := maildir.FolderName(acct.Extension); ok {
		if n, ok := existingFolder(acct.Maildir, want); ok {
			deflt = n
		}
	}
	if a.Filter == nil {
		fmt.Fprintf(w, "store: %s\n", deflt)
		if sievepath.HasMailfilter(acct.Home) {
			fmt.Fprintf(w, "note: %s is a maildrop filter, which mapdrop does not run\n", filepath.Join(acct.Home, sievepath.Mailfilter))
		}
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(msg, maxDryRunMessage))
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "reading message")
	}
	r := bytes.NewReader(data)
	h, _ := msghdr.Read(r, int64(len(data)))
	from, to := a.envelope(user, h)
	fmt.Fprintf(w, "envelope: from=<%s> to=<%s>\n", from, to)
	plan := a.Filter.Plan(ctx, action.Input{Home: acct.Home, Sieve: acct.Sieve, From: from, To: to, Msg: r, Size: int64(len(data)),
		MailboxExists: func(mb string) bool {
			name, inbox, err := maildir.MailboxDir(mb)
			if err != nil || inbox {
				return inbox
			}
			_, ok := existingFolder(acct.Maildir, name)
			return ok
		}})
	for _, s := range plan.Scripts {
		fmt.Fprintf(w, "script: %s\n", s)
	}
	for _, e := range plan.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if plan.Rejected {
		fmt.Fprintf(w, "reject: %s (exit %d)\n", oneLine(plan.RejectReason), failure.Bounce.ExitCode())
		return nil
	}
	for _, r := range plan.Redirects {
		c := ""
		if r.Copy {
			c = " (copy)"
		}
		fmt.Fprintf(w, "redirect: %s%s\n", r.Addr, c)
	}
	if v := plan.Vacation; v != nil {
		verdict := "would be sent unless already sent to this sender within " + fmt.Sprint(v.Days) + " days"
		if err := notify.VacationAllowed(h, v.To, myAddresses(to, user, acct, a.Resolver.Delimiters, v.Addresses)); err != nil {
			verdict = "not sent: " + strings.TrimPrefix(err.Error(), notify.ErrNoVacation.Error()+": ")
		}
		fmt.Fprintf(w, "vacation: %s (%s)\n", v.To, verdict)
	}
	if len(plan.Stores) == 0 {
		fmt.Fprintln(w, "discard")
	}
	for _, s := range plan.Stores {
		flags := ""
		if f := maildir.InfoFlags(s.Flags); f != "" {
			flags = " flags=" + f
		}
		where, why := deflt, ""
		if !s.Default {
			name, inbox, err := maildir.MailboxDir(s.Mailbox)
			switch {
			case err != nil:
				where, why = "INBOX", fmt.Sprintf(" (fileinto %q: %v)", s.Mailbox, err)
			case inbox:
				where = "INBOX"
			default:
				if n, ok := existingFolder(acct.Maildir, name); ok {
					where = n
				} else if s.Create {
					where, why = name, " (would be created)"
				} else {
					where, why = "INBOX", fmt.Sprintf(" (fileinto %q: no such folder)", s.Mailbox)
				}
			}
		}
		fmt.Fprintf(w, "store: %s%s%s\n", where, flags, why)
	}
	return nil
}
