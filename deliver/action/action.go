// Package action holds what a mail filter decided for one message, in
// mapdrop's own terms: where copies are stored, with which flags, and which
// messages are sent because of it. The Sieve engine (package deliver/sieve)
// produces a Plan; package deliver carries it out. This package imports
// only io and context, so the delivery agent can know the types without the engine.
package action

import (
	"context"
	"io"
)

// Input is what a filter is given about one message.
type Input struct {
	Home  string // the user's home directory
	Sieve string // the userdb sieve= path, "" for the default script
	From  string // envelope sender, "" for the null sender
	To    string // original envelope recipient, with its extension
	Msg   io.ReaderAt
	Size  int64
	// MailboxExists answers the mailboxexists test (RFC 5490) for an
	// IMAP mailbox name; nil means no mailbox exists but INBOX.
	MailboxExists func(mailbox string) bool
}

// Filter decides where a message goes. It never fails: a filter that
// cannot run returns KeepOnly with Errors set.
type Filter interface {
	Plan(ctx context.Context, in Input) Plan
}

// Plan is the outcome of filtering one message.
type Plan struct {
	// Stores are the copies to store, in the order the script named them,
	// at most one per mailbox. Empty when the message is discarded,
	// rejected or only redirected.
	Stores []Store
	// Redirects are the addresses the message is resent to.
	Redirects []Redirect
	// Vacation is the auto-reply to send, nil for none.
	Vacation *Vacation
	// Rejected is set by reject: nothing is stored and the sender is told
	// RejectReason.
	Rejected     bool
	RejectReason string
	// Discarded is set when the message is deliberately stored nowhere
	// (discard, or redirect without :copy, with no store left).
	Discarded bool
	// Errors are the script failures (compile or run time, "FILE:LINE:COL:
	// text" when the position is known). When there are any, the plan is
	// the fallback: one store into INBOX and nothing else.
	Errors []string
	// Notes are things worth logging that are not errors.
	Notes []string
	// Scripts are the script files that ran, in order.
	Scripts []string
}

// Store is one copy of the message stored in a mailbox.
type Store struct {
	// Mailbox is the IMAP mailbox name as the script gave it ("INBOX",
	// "Lists/Go", "Entwürfe"), after variable expansion.
	Mailbox string
	// Default marks keep and the implicit keep: the copy goes where the
	// message would go without a script (the address extension's folder
	// when it exists, else INBOX). Mailbox is then "INBOX".
	Default bool
	// Flags are the IMAP flags to set ("\\Seen", "\\Flagged", or
	// keywords), each once.
	Flags []string
	// Create asks for the mailbox to be created when missing (:create).
	Create bool
}

// Redirect is one resend of the message.
type Redirect struct {
	Addr string
	// Copy is redirect :copy (the implicit keep stands).
	Copy bool
}

// Vacation is an auto-reply (RFC 5230).
type Vacation struct {
	// To is the envelope sender the reply goes to.
	To string
	// From is the reply's From: address (:from); "" means the recipient.
	From string
	// Subject is the reply's subject (:subject); "" means "Auto: " and the
	// original subject.
	Subject string
	// Body is the reason text; with Mime set it is a MIME entity
	// (headers and body).
	Body string
	Mime bool
	// Handle names this reply for the once-per-period rule (:handle).
	Handle string
	// Days is the period (:days), at least 1.
	Days int
	// Addresses are the user's other addresses (:addresses).
	Addresses []string
}

// KeepOnly is the fallback plan: one copy where the message goes without
// a script, no flags.
func KeepOnly() Plan {
	return Plan{Stores: []Store{{Mailbox: "INBOX", Default: true}}}
}
