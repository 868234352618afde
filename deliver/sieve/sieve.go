// Package sieve runs a delivery's Sieve scripts (RFC 5228) with the
// go-sieve engine and returns what they decided as an action.Plan. The
// engine's types stay inside this package.
//
// # Extensions
//
// fileinto, envelope, encoded-character, the comparators i;octet,
// i;ascii-casemap, i;ascii-numeric and i;unicode-casemap, imap4flags
// (hasflag without its variable-list form),
// variables, relational, vacation, copy, regex, date, index, mailbox,
// subaddress, body, and reject (RFC 5429). editheader is not offered: its
// edits would have to be applied to the stored copy, which delivery does
// not do. Requiring anything else is a compile error.
//
// # Limits
//
// A script file larger than Options.MaxScriptSize (default 1 MiB) is a
// compile error, as are more than 5000 tokens and nesting deeper than 15.
// All scripts of a delivery together run for at most Options.Timeout
// (default 10 s). At most 4 redirects per message; a fifth is a run-time
// error. The body test sees at most the first 16 MiB of the body.
//
// # Several scripts
//
// Scripts run in the order given (the administrator's "before" scripts,
// the user's, the "after" scripts). As in Pigeonhole, the next script runs
// when the previous one kept the message (the implicit keep not cancelled,
// or an explicit keep), whether or not it executed stop, which ends only
// its own script; the imap4flags variable carries over to it, and the
// previous script's keep is only the implicit keep handed on (the next
// script's fileinto or discard cancels it). A
// script that does not compile, or fails at run time, makes the whole
// result the fallback: one copy where the message goes without a script
// (INBOX, or the address extension's folder), nothing else, and the error
// in Plan.Errors as "FILE:LINE:COL: text".
//
// # Semantics decided here
//
//   - keep and fileinto store with the flags the imap4flags variable holds
//     when they execute, or their own :flags; the implicit keep uses the
//     variable's final value. Two stores into the same mailbox are one copy
//     with both flag sets.
//   - reject cancels the implicit keep. reject together with keep,
//     fileinto, redirect or vacation is a run-time error (as Pigeonhole).
//   - vacation with an empty envelope sender records nothing.
//   - :detail, :user: the address is cut at the recipient delimiter that
//     the envelope recipient's extension starts with (package address
//     rules), or the first delimiter character when it has none.
package sieve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/sievepath"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/migadu/go-sieve/interp"
	"github.com/migadu/go-sieve/lexer"
	"github.com/migadu/go-sieve/parser"
)

// Options bound the engine. Zero values take the defaults.
type Options struct {
	MaxScriptSize int64         // bytes; default 1 MiB
	Timeout       time.Duration // run time of all scripts; default 10 s
	// MailboxExists answers the mailboxexists test; nil means that no
	// mailbox but INBOX exists.
	MailboxExists func(mailbox string) bool
}

const (
	defaultMaxScriptSize = 1 << 20
	defaultTimeout       = 10 * time.Second
	maxRedirects         = 4
)

// extensions are the Sieve capabilities offered, besides reject which is
// handled here.
var extensions = []string{
	"fileinto", "envelope", "encoded-character",
	"comparator-i;octet", "comparator-i;ascii-casemap",
	"comparator-i;ascii-numeric", "comparator-i;unicode-casemap",
	"imap4flags", "variables", "relational", "vacation", "copy", "regex",
	"date", "index", "mailbox", "subaddress", "body",
}

// Extensions returns the capability names a script may require.
func Extensions() []string { return append(append([]string{}, extensions...), "reject") }

// token prefixes the marker redirects this package inserts into scripts;
// random so that no script names one by accident.
var token, flagsHeader = func() (string, string) {
	b := make([]byte, 12)
	rand.Read(b)
	return "\x00mapdrop-" + hex.EncodeToString(b) + ":", "X-Mapdrop-Flags-" + hex.EncodeToString(b)
}()

// marker kinds.
const (
	mPre      = "pre" // before a store with :flags: save the flags variable
	mStore    = "st"  // after fileinto/keep
	mRedirect = "rd"  // after redirect
	mVacBegin = "vb"  // before vacation
	mVacEnd   = "ve"  // after vacation
	mReject   = "rj"  // reject REASON
)

// cmdInfo is what the rewrite learned about one marked command.
type cmdInfo struct {
	keep      bool     // keep, as opposed to fileinto
	hasFlags  bool     // :flags given
	copy      bool     // redirect :copy
	addresses []string // vacation :addresses
}

// Script is a compiled script.
type Script struct {
	path  string
	s     *interp.Script
	infos []cmdInfo
}

// Path returns the file the script came from.
func (s *Script) Path() string { return s.path }

// LoadFile reads and compiles the script at path.
func LoadFile(path string, o Options) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	return Load(path, f, o)
}

// Load compiles a script read from r; name is its file name in errors,
// which read "NAME:LINE:COL: text" when the position is known.
func Load(name string, r io.Reader, o Options) (*Script, error) {
	max := o.MaxScriptSize
	if max <= 0 {
		max = defaultMaxScriptSize
	}
	src, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if int64(len(src)) > max {
		return nil, fmt.Errorf("%s: script larger than %d bytes", name, max)
	}
	toks, err := lexer.Lex(bytes.NewReader(src), &lexer.Options{MaxTokens: 5000})
	if err != nil {
		return nil, posErr(name, err)
	}
	cmds, err := parser.Parse(lexer.NewStream(toks), &parser.Options{MaxBlockNesting: 15, MaxTestNesting: 15})
	if err != nil {
		return nil, posErr(name, err)
	}
	s := &Script{path: name}
	rw := &rewriter{s: s, required: map[string]bool{}}
	cmds, err = rw.block(cmds)
	if err != nil {
		return nil, posErr(name, err)
	}
	s.s, err = interp.LoadScript(cmds, &interp.Options{
		MaxRedirects:       maxRedirects,
		MaxVariableCount:   128,
		MaxVariableNameLen: 32,
		MaxVariableLen:     4000,
	}, extensions)
	if err != nil {
		return nil, posErr(name, err)
	}
	return s, nil
}

// posErr prefixes an engine error with the file name: "FILE:LINE:COL: x"
// when the engine gave a position, "FILE: x" otherwise.
func posErr(name string, err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if line, rest, ok := strings.Cut(msg, ":"); ok {
		if _, e := strconv.Atoi(line); e == nil {
			if col, _, ok := strings.Cut(rest, ":"); ok {
				if _, e := strconv.Atoi(col); e == nil {
					return errors.New(name + ":" + msg)
				}
			}
		}
	}
	return errors.New(name + ": " + msg)
}

// rewriter turns the parsed script into one go-sieve runs with markers:
// redirects to token addresses that the policy hook intercepts, so that
// per-store flags, :copy, vacation parameters and reject (which
// go-sieve lacks) can be observed.
type rewriter struct {
	s        *Script
	required map[string]bool
}

func marker(kind string, id int, extra string) parser.Cmd {
	return parser.Cmd{Id: "redirect", Args: []parser.Arg{parser.StringArg{Value: token + kind + ":" + strconv.Itoa(id) + ":" + extra}}}
}

func hasTag(args []parser.Arg, name string) bool {
	for _, a := range args {
		if t, ok := a.(parser.TagArg); ok && strings.EqualFold(t.Value, name) {
			return true
		}
	}
	return false
}

func (rw *rewriter) add(info cmdInfo) int {
	rw.s.infos = append(rw.s.infos, info)
	return len(rw.s.infos) - 1
}

func (rw *rewriter) block(cmds []parser.Cmd) ([]parser.Cmd, error) {
	out := make([]parser.Cmd, 0, len(cmds))
	for _, c := range cmds {
		if len(c.Tests) > 0 {
			ts, err := rw.tests(c.Tests)
			if err != nil {
				return nil, err
			}
			c.Tests = ts
		}
		if c.Block != nil {
			b, err := rw.block(c.Block)
			if err != nil {
				return nil, err
			}
			c.Block = b
		}
		switch strings.ToLower(c.Id) {
		case "require":
			var keepExts []string
			for _, a := range c.Args {
				var names []string
				switch v := a.(type) {
				case parser.StringArg:
					names = []string{v.Value}
				case parser.StringListArg:
					names = v.Value
				}
				for _, n := range names {
					if !offered(n) {
						return nil, lexer.ErrorAt(c.Position, "require: extension %q is not supported", n)
					}
					rw.required[n] = true
					if n != "reject" {
						keepExts = append(keepExts, n)
					}
				}
			}
			if len(keepExts) == 0 {
				continue
			}
			c.Args = []parser.Arg{parser.StringListArg{Value: keepExts, Position: c.Position}}
			out = append(out, c)
		case "reject":
			if !rw.required["reject"] {
				return nil, lexer.ErrorAt(c.Position, "missing require 'reject'")
			}
			if len(c.Args) != 1 || c.Block != nil || len(c.Tests) != 0 {
				return nil, lexer.ErrorAt(c.Position, "reject takes one string, the reason")
			}
			reason, ok := c.Args[0].(parser.StringArg)
			if !ok {
				return nil, lexer.ErrorAt(c.Position, "reject takes one string, the reason")
			}
			out = append(out, marker(mReject, 0, reason.Value))
		case "fileinto", "keep":
			info := cmdInfo{keep: strings.EqualFold(c.Id, "keep"), hasFlags: hasTag(c.Args, "flags")}
			id := rw.add(info)
			if info.hasFlags {
				out = append(out, marker(mPre, id, ""))
			}
			out = append(out, c, marker(mStore, id, ""))
		case "redirect":
			id := rw.add(cmdInfo{copy: hasTag(c.Args, "copy")})
			out = append(out, c, marker(mRedirect, id, ""))
		case "vacation":
			info := cmdInfo{}
			for i, a := range c.Args {
				if t, ok := a.(parser.TagArg); ok && strings.EqualFold(t.Value, "addresses") && i+1 < len(c.Args) {
					switch v := c.Args[i+1].(type) {
					case parser.StringArg:
						info.addresses = []string{v.Value}
					case parser.StringListArg:
						info.addresses = v.Value
					}
				}
			}
			id := rw.add(info)
			out = append(out, marker(mVacBegin, id, ""), c, marker(mVacEnd, id, ""))
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// tests rewrites hasflag (RFC 5232), which go-sieve lacks, into a header
// test of the pseudo field flagsHeader, whose values parsedMessage
// answers with the current flags: one value per flag, so that match
// types, comparators and :count work on the flags as hasflag defines.
// The form with a variable list is not supported.
func (rw *rewriter) tests(ts []parser.Test) ([]parser.Test, error) {
	out := make([]parser.Test, len(ts))
	for i, t := range ts {
		if len(t.Tests) > 0 {
			sub, err := rw.tests(t.Tests)
			if err != nil {
				return nil, err
			}
			t.Tests = sub
		}
		if strings.EqualFold(t.Id, "hasflag") {
			if !rw.required["imap4flags"] {
				return nil, lexer.ErrorAt(t.Position, "missing require 'imap4flags'")
			}
			// Positional string arguments, the values of :comparator,
			// :count and :value aside: one (the keys), or two (a
			// variable list, then the keys).
			positional := 0
			for j := 0; j < len(t.Args); j++ {
				if tag, ok := t.Args[j].(parser.TagArg); ok {
					switch strings.ToLower(tag.Value) {
					case "comparator", "count", "value":
						j++ // its value
					}
					continue
				}
				positional++
			}
			if positional != 1 || len(t.Tests) != 0 {
				return nil, lexer.ErrorAt(t.Position, "hasflag: only the form without a variable list is supported")
			}
			// As Pigeonhole, a key string holding several flags names
			// each of them.
			var keys []string
			switch v := t.Args[len(t.Args)-1].(type) {
			case parser.StringArg:
				keys = splitFlags([]string{v.Value})
			case parser.StringListArg:
				keys = splitFlags(v.Value)
			default:
				return nil, lexer.ErrorAt(t.Position, "hasflag: the last argument must be the flags")
			}
			args := append([]parser.Arg{}, t.Args[:len(t.Args)-1]...)
			args = append(args, parser.StringArg{Value: flagsHeader, Position: t.Position}, parser.StringListArg{Value: keys, Position: t.Position})
			t = parser.Test{Position: t.Position, Id: "header", Args: args}
		}
		out[i] = t
	}
	return out, nil
}

// splitFlags splits each string at white space; a string of none but
// white space stays as it is.
func splitFlags(list []string) []string {
	var out []string
	for _, s := range list {
		if f := strings.Fields(s); len(f) > 0 {
			out = append(out, f...)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// systemFlags are the IMAP system flags in their usual spelling; go-sieve
// keeps flags in lower case.
var systemFlags = map[string]string{`\answered`: `\Answered`, `\deleted`: `\Deleted`, `\draft`: `\Draft`, `\flagged`: `\Flagged`, `\seen`: `\Seen`}

func offered(ext string) bool {
	if ext == "reject" {
		return true
	}
	for _, e := range extensions {
		if e == ext {
			return true
		}
	}
	return false
}

// Envelope is the message's SMTP envelope as the script sees it.
type Envelope struct {
	From string // "" for the null sender
	To   string // the original recipient, with its extension
}

// envelope implements interp.Envelope. During a vacation command it
// returns a placeholder for an empty sender, so that go-sieve records the
// action instead of failing; the placeholder response is dropped.
type envelope struct {
	Envelope
	inVacation bool
}

const nullSenderPlaceholder = "\x00null-sender"

func (e *envelope) EnvelopeFrom() string {
	if e.From == "" && e.inVacation {
		return nullSenderPlaceholder
	}
	return e.From
}
func (e *envelope) EnvelopeTo() string   { return e.To }
func (e *envelope) AuthUsername() string { return "" }

// runState collects the plan while one script runs.
type runState struct {
	exists     func(string) bool
	script     *Script
	env        *envelope
	stores     []action.Store
	redirects  []action.Redirect
	vacation   *action.Vacation
	rejects    []string
	explicit   bool // keep executed
	saved      []string
	nMailboxes int
	nRedirects int
}

// MailboxExists implements interp.MailboxChecker (mailboxexists).
func (st *runState) MailboxExists(_ context.Context, mailbox string) (bool, error) {
	if strings.EqualFold(mailbox, "INBOX") {
		return true, nil
	}
	return st.exists != nil && st.exists(mailbox), nil
}

func (st *runState) RedirectAllowed(_ context.Context, d *interp.RuntimeData, addr string) (bool, error) {
	if !strings.HasPrefix(addr, token) {
		return true, nil // a real redirect; recorded by the marker after it
	}
	kind, rest, _ := strings.Cut(strings.TrimPrefix(addr, token), ":")
	idStr, extra, _ := strings.Cut(rest, ":")
	id, _ := strconv.Atoi(idStr)
	var info cmdInfo
	if id < len(st.script.infos) {
		info = st.script.infos[id]
	}
	switch kind {
	case mPre:
		st.saved = append([]string{}, d.Flags...)
	case mStore:
		if info.keep {
			st.explicit = true
			st.stores = append(st.stores, action.Store{Mailbox: "INBOX", Default: true, Flags: append([]string{}, d.Flags...)})
		} else if len(d.Mailboxes) > st.nMailboxes {
			st.nMailboxes = len(d.Mailboxes)
			mb := d.Mailboxes[len(d.Mailboxes)-1]
			create := false
			for _, c := range d.MailboxesCreate {
				if c == mb {
					create = true
				}
			}
			st.stores = append(st.stores, action.Store{Mailbox: mb, Flags: append([]string{}, d.Flags...), Create: create})
		}
		if info.hasFlags {
			d.Flags = st.saved
		}
	case mRedirect:
		if len(d.RedirectAddr) > st.nRedirects {
			st.nRedirects = len(d.RedirectAddr)
			st.redirects = append(st.redirects, action.Redirect{Addr: d.RedirectAddr[len(d.RedirectAddr)-1], Copy: info.copy})
		}
	case mVacBegin:
		st.env.inVacation = true
	case mVacEnd:
		st.env.inVacation = false
		for sender, r := range d.VacationResponses {
			if sender == nullSenderPlaceholder {
				continue
			}
			days := r.Days
			if days < 1 {
				days = 1
			}
			st.vacation = &action.Vacation{To: sender, From: r.From, Subject: r.Subject, Body: r.Body,
				Mime: r.IsMime, Handle: r.Handle, Days: days, Addresses: info.addresses}
		}
		if st.vacation != nil && st.vacation.Subject == "Automated reply" {
			st.vacation.Subject = "" // go-sieve's default; ours is "Auto: SUBJECT"
		}
		d.VacationResponses = nil
	case mReject:
		d.ImplicitKeep = false
		st.rejects = append(st.rejects, extra)
	}
	return false, nil
}

// Run runs the scripts on the message and returns the plan. It never
// fails: errors make the fallback plan (see the package documentation).
func Run(ctx context.Context, scripts []*Script, env Envelope, msg Message, delimiters string, o Options) action.Plan {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pm, err := parse(msg)
	if err != nil {
		return fallback(fmt.Sprintf("reading message: %v", err))
	}
	interp.SubaddressSeparator = separator(env.To, delimiters)
	e := &envelope{Envelope: env}

	var plan action.Plan
	implicit, explicitKeep := true, false
	var lastFlags []string
	for idx, s := range scripts {
		st := &runState{script: s, env: e, exists: o.MailboxExists}
		d := interp.NewRuntimeData(s.s, st, e, pm)
		d.Flags = append([]string{}, lastFlags...) // the flags carry over
		pm.flags = func() []string { return d.Flags }
		if ctx.Err() != nil {
			return fallback(s.path + ": run time limit exceeded")
		}
		done := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- fmt.Errorf("engine failure: %v", r)
				}
			}()
			done <- s.s.Execute(ctx, d)
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = errors.New("run time limit exceeded")
		}
		if err != nil {
			return fallback(posErr(s.path, err).Error())
		}
		next := idx < len(scripts)-1 && (d.ImplicitKeep || st.explicit)
		if next {
			// The next script runs: this one's keep is the implicit keep
			// it hands on, which the next may still cancel.
			kept := st.stores[:0]
			for _, x := range st.stores {
				if !x.Default {
					kept = append(kept, x)
				}
			}
			st.stores, st.explicit = kept, false
		}
		if len(st.rejects) > 0 {
			if len(st.stores) > 0 || len(st.redirects) > 0 || st.vacation != nil || len(st.rejects) > 1 {
				return fallback(s.path + ": reject conflicts with another action (keep, fileinto, redirect, vacation or reject)")
			}
			if len(plan.Stores) > 0 || len(plan.Redirects) > 0 || plan.Vacation != nil {
				return fallback(s.path + ": reject conflicts with an action of an earlier script")
			}
			plan.Rejected, plan.RejectReason = true, st.rejects[0]
		} else if plan.Rejected && (len(st.stores) > 0 || len(st.redirects) > 0 || st.vacation != nil) {
			return fallback(s.path + ": action conflicts with an earlier script's reject")
		}
		plan.Stores = append(plan.Stores, st.stores...)
		plan.Redirects = append(plan.Redirects, st.redirects...)
		if st.vacation != nil {
			if plan.Vacation != nil {
				return fallback(s.path + ": a second vacation action")
			}
			plan.Vacation = st.vacation
		}
		explicitKeep = explicitKeep || st.explicit
		implicit = d.ImplicitKeep
		lastFlags = d.Flags
		if !next {
			break
		}
	}
	if len(plan.Redirects) > maxRedirects {
		return fallback(fmt.Sprintf("more than %d redirects", maxRedirects))
	}
	if implicit && !explicitKeep && !plan.Rejected {
		plan.Stores = append(plan.Stores, action.Store{Mailbox: "INBOX", Default: true, Flags: append([]string{}, lastFlags...)})
	}
	plan.Stores = merge(plan.Stores)
	plan.Discarded = len(plan.Stores) == 0 && !plan.Rejected
	return plan
}

// merge makes one store per mailbox (INBOX in any case is one; keep and
// the implicit keep are one), keeping the first's place and the union of
// the flags.
func merge(stores []action.Store) []action.Store {
	var out []action.Store
	for _, s := range stores {
		if strings.EqualFold(s.Mailbox, "INBOX") {
			s.Mailbox = "INBOX"
		}
		found := false
		for i := range out {
			if out[i].Mailbox == s.Mailbox && out[i].Default == s.Default {
				found = true
				out[i].Create = out[i].Create || s.Create
				for _, f := range s.Flags {
					if !containsFold(out[i].Flags, f) {
						out[i].Flags = append(out[i].Flags, f)
					}
				}
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func fallback(msg string) action.Plan {
	p := action.KeepOnly()
	p.Errors = []string{msg}
	return p
}

// separator picks the subaddress separator for the engine (see the
// package documentation).
func separator(to, delimiters string) string {
	if delimiters == "" {
		delimiters = "+"
	}
	local := to
	if i := strings.LastIndexByte(to, '@'); i >= 0 {
		local = to[:i]
	}
	if i := address.ExtensionAt(local, delimiters); i >= 0 {
		for _, r := range local[i:] {
			return string(r)
		}
	}
	for _, r := range delimiters {
		return string(r)
	}
	return "+"
}

// Filter runs the scripts that apply to a delivery (package
// deliver/sievepath decides which) as an action.Filter.
type Filter struct {
	Before, After []string // the administrator's paths
	Delimiters    string   // recipient delimiter characters
	Options       Options
}

// Plan finds, compiles and runs the scripts for in. A script that cannot
// be read or compiled makes the fallback plan.
func (f Filter) Plan(ctx context.Context, in action.Input) action.Plan {
	set := sievepath.Find(in.Home, in.Sieve, f.Before, f.After)
	paths := set.All()
	var scripts []*Script
	for _, p := range paths {
		s, err := LoadFile(p, f.Options)
		if err != nil {
			plan := fallback(err.Error())
			plan.Scripts = paths
			return plan
		}
		scripts = append(scripts, s)
	}
	o := f.Options
	o.MailboxExists = in.MailboxExists
	plan := Run(ctx, scripts, Envelope{From: in.From, To: in.To}, Message{R: in.Msg, Size: in.Size}, f.Delimiters, o)
	plan.Scripts = paths
	return plan
}
