// Package deliver is mapdrop's delivery of one message, in this order:
//
//  1. resolve the recipient (package account: userdb, then passwd);
//  2. become the mailbox owner (package creds) — nothing below touches a
//     mailbox path before this step;
//  3. open or create the Maildir below the home directory without following
//     symlinks, and pick the Maildir++ folder for the address extension
//     (package maildir); remove files older than 36 hours from the tmp/
//     the message will be written into (left by killed deliveries; at
//     most 128 entries looked at, at most about 5 ms), logged as
//     tmp-removed=N;
//  4. write the whole message from the input into tmp/ and fsync it,
//     without the mbox "From " line local(8) puts first (package
//     envelope), whose sender is the envelope sender when neither -f nor
//     a Return-Path: field gives one;
//  5. when the account has a quota, check it with the message's size
//     (package maildirsize); over quota, the file is removed;
//  6. rename the file into new/ and fsync new/;
//  7. append the message to maildirsize (when there is a quota);
//  8. write one log line (package maillog).
//
// Apart from that first line, the message is written exactly as read: no
// header is added and nothing is converted (Postfix's pipe(8) with
// flags=ODRhu prepends the envelope headers itself).
//
// Errors are failure kinds, and their text is the one line that mapdrop
// prints on stderr for Postfix to quote. The extra decisions made here: over
// quota is failure.Temporary ("mailbox full", Postfix retries) unless
// Agent.QuotaBounce makes it failure.Bounce; every other failure that
// is not NotFound (unknown user) or CantCreate (a non-directory where the
// home or the Maildir belongs) is Temporary. A missing home is created.
package deliver

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/creds"
	"github.com/mapdrop/mapdrop/deliver/envelope"
	"github.com/mapdrop/mapdrop/deliver/maildir"
	"github.com/mapdrop/mapdrop/deliver/maildirsize"
	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/deliver/sievepath"
	"github.com/mapdrop/mapdrop/failure"
)

// The bounds of the tmp/ cleaning each delivery does.
const (
	tmpCleanEntries = 128
	tmpCleanBudget  = 5 * time.Millisecond
)

// Agent delivers messages.
type Agent struct {
	// Resolver finds the recipient's account. Required.
	Resolver *account.Resolver
	// QuotaBounce makes over quota failure.Bounce (exit 77, a bounce)
	// instead of failure.Temporary (exit 75).
	QuotaBounce bool
	// Log receives one line per delivery; nil discards it.
	Log *maillog.Logger
	// Become switches to the mailbox owner; nil means creds.Become. Tests
	// that run in-process replace it, since a switch cannot be undone.
	Become func(who string, uid, gid uint32) error

	// Handoff, when set, is called with the resolved account before the
	// switch to its owner. mapdrop uses it to exec mapdrop-sieve when a
	// Sieve script applies; when it returns nil, delivery goes on here.
	Handoff func(acct account.Account) error
	// Filter, when set, decides where the message goes once it is written
	// to tmp/ (see plan.go). Without it, the message goes to the address
	// extension's folder or INBOX.
	Filter action.Filter
	// Recipient is the original envelope recipient filters see; "" means
	// the -d argument.
	Recipient string
	// Sender is the envelope sender given on the command line; when
	// HaveSender is false, filters see the Return-Path: field's address.
	Sender     string
	HaveSender bool
	// Sendmail is the command redirects and auto-replies are submitted
	// with; "" means notify.DefaultSendmail.
	Sendmail string
	// DryRun, when set, receives a description of what delivery would do,
	// and nothing is written (see dryrun.go).
	DryRun io.Writer
	// Note is something the administrator should know about this
	// delivery's command line or environment, logged as note=.
	Note string

	// fromLine is the sender of the message's mbox "From " line, when
	// haveFromLine; set by Deliver.
	fromLine     string
	haveFromLine bool
}

// Deliver delivers the message read from msg to user (the -d argument),
// with the address extension ext ("" for none).
func (a *Agent) Deliver(ctx context.Context, user, ext string, msg io.Reader) error {
	start := time.Now()
	e := maillog.Entry{User: user, Note: a.Note}
	err := a.deliver(ctx, user, ext, msg, &e)
	e.Duration = time.Since(start)
	e.Exit = failure.ExitCode(err)
	if err != nil {
		e.Reason = err.Error()
	}
	a.Log.Log(e)
	return err
}

func (a *Agent) deliver(ctx context.Context, user, ext string, msg io.Reader, e *maillog.Entry) error {
	acct, err := a.Resolver.Resolve(ctx, user, ext)
	if err != nil {
		if failure.KindOf(err) == failure.NotFound {
			return err // already "USER: user unknown"
		}
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	e.Account = acct.Source + ":" + acct.Name
	if a.Handoff != nil {
		if err := a.Handoff(acct); err != nil {
			return failure.Wrap(failure.Temporary, err, "%s", user)
		}
	}
	become := a.Become
	if become == nil {
		become = creds.Become
	}
	if err := become(acct.Name, acct.UID, acct.GID); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	syscall.Umask(0o077)
	// Only now is the input read: a handoff passes it on untouched.
	msg, a.fromLine, a.haveFromLine = envelope.Strip(msg)
	switch {
	case a.HaveSender:
		e.Sender, e.HaveSender = a.Sender, true
	case a.haveFromLine:
		e.Sender, e.HaveSender = a.fromLine, true
	}
	if a.DryRun != nil {
		return a.dryRun(ctx, user, acct, msg)
	}

	box, err := maildir.Open(acct.Home, acct.Maildir)
	if err != nil {
		return failure.Wrap(failure.KindOf(err), err, "%s", user)
	}
	defer box.Close()
	folder, err := box.Folder(acct.Extension)
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	if folder != box {
		defer folder.Close()
	}
	e.Folder = folder.Name()
	// Each path first cleans the tmp/ it writes into: what killed
	// deliveries left there (bounded, see maildir.CleanTmp).
	if a.Filter != nil {
		e.TmpRemoved = box.CleanTmp(time.Now(), tmpCleanEntries, tmpCleanBudget)
		return a.filtered(ctx, user, acct, box, folder, msg, e)
	}
	e.TmpRemoved = folder.CleanTmp(time.Now(), tmpCleanEntries, tmpCleanBudget)
	if sievepath.HasMailfilter(acct.Home) {
		e.Note = joinNotes(e.Note, "HOME/"+sievepath.Mailfilter+" is a maildrop filter, which mapdrop does not run; write it as Sieve in HOME/"+sievepath.UserScript)
	}

	dl, err := folder.Create()
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	defer dl.Abort() // no-op after Commit
	size, err := dl.Write(msg)
	e.Size = size
	if err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	lim := acct.Quota
	if lim.Enabled() {
		if _, err := maildirsize.Check(box.Root(), lim, size, time.Now()); err != nil {
			kind := failure.Temporary
			if errors.Is(err, maildirsize.ErrOverQuota) && a.QuotaBounce {
				kind = failure.Bounce
			}
			return failure.Wrap(kind, err, "%s", user)
		}
	}
	if _, err := dl.Commit(); err != nil {
		return failure.Wrap(failure.Temporary, err, "%s", user)
	}
	if lim.Enabled() {
		// Delivered; a failure to count it only delays the quota until the
		// next recalculation.
		maildirsize.Add(box.Root(), size, 1)
	}
	return nil
}

// joinNotes appends note b to note a.
func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
