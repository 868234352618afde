package sieve

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/deliver/action"
)

const msg1 = "Return-Path: <alice@example.org>\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: bob+lists@example.com\r\n" +
	"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from\r\n the list\r\n" +
	"List-Id: <golang-nuts.googlegroups.com>\r\n" +
	"X-Spam-Flag: YES\r\n" +
	"\r\n" +
	"Hello, this is the body with a secret word: banana.\r\n"

func run(t *testing.T, script string, env Envelope, msg string) action.Plan {
	t.Helper()
	s, err := Load("test.sieve", strings.NewReader(script), Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return Run(context.Background(), []*Script{s}, env, Message{R: strings.NewReader(msg), Size: int64(len(msg))}, "+", Options{})
}

var env1 = Envelope{From: "alice@example.org", To: "bob+lists@example.com"}

func stores(p action.Plan) string {
	var parts []string
	for _, s := range p.Stores {
		x := s.Mailbox
		if s.Default {
			x = "keep"
		}
		if len(s.Flags) > 0 {
			x += "[" + strings.Join(s.Flags, " ") + "]"
		}
		if s.Create {
			x += "+create"
		}
		parts = append(parts, x)
	}
	return strings.Join(parts, ",")
}

func TestRun(t *testing.T) {
	cases := []struct {
		name, script, want string
	}{
		{"implicit keep", ``, "keep"},
		{"keep", `keep;`, "keep"},
		{"fileinto", `require "fileinto"; fileinto "Lists";`, "Lists"},
		{"fileinto copy", `require ["fileinto","copy"]; fileinto :copy "Lists";`, "Lists,keep"},
		{"create", `require ["fileinto","mailbox"]; fileinto :create "New/Sub";`, "New/Sub+create"},
		{"discard", `discard;`, ""},
		{"stop", `stop; discard;`, "keep"},
		{"header decoded", `require "fileinto"; if header :contains "subject" "Grüße from the list" { fileinto "A"; }`, "A"},
		{"envelope detail", `require ["envelope","subaddress","fileinto"]; if envelope :detail "to" "lists" { fileinto "L"; }`, "L"},
		{"envelope from", `require ["envelope","fileinto"]; if envelope :is "from" "alice@example.org" { fileinto "F"; }`, "F"},
		{"address domain", `require "fileinto"; if address :domain "from" "example.org" { fileinto "D"; }`, "D"},
		{"body", `require ["body","fileinto"]; if body :contains "banana" { fileinto "B"; }`, "B"},
		{"variables", `require ["variables","fileinto","envelope","subaddress"]; if envelope :matches :detail "to" "*" { set "x" "${1}"; fileinto "X.${x}"; }`, "X.lists"},
		{"flags internal", `require ["imap4flags","fileinto"]; addflag "\\Seen"; fileinto "A"; removeflag "\\Seen"; addflag "\\Flagged";`, "A[\\seen]"},
		{"flags tag", `require ["imap4flags","fileinto","copy"]; addflag "\\Seen"; fileinto :copy :flags "\\Flagged" "A";`, "A[\\flagged],keep[\\seen]"},
		{"keep flags", `require "imap4flags"; keep :flags ["\\Answered", "\\Seen"];`, "keep[\\answered \\seen]"},
		{"same mailbox once", `require "fileinto"; fileinto "inbox"; keep; fileinto "INBOX"; keep;`, "INBOX,keep"},
		{"relational", `require ["relational","comparator-i;ascii-numeric","fileinto"]; if header :value "gt" :comparator "i;ascii-numeric" "x-n" "5" { fileinto "N"; }`, "keep"},
		{"spam", `require "fileinto"; if header :is "X-Spam-Flag" "YES" { fileinto "Junk"; stop; } fileinto "X";`, "Junk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := run(t, c.script, env1, msg1)
			if len(p.Errors) > 0 {
				t.Fatalf("errors: %v", p.Errors)
			}
			if got := stores(p); got != c.want {
				t.Errorf("stores = %q, want %q", got, c.want)
			}
			if p.Discarded != (c.want == "") {
				t.Errorf("Discarded = %v", p.Discarded)
			}
		})
	}
}

func TestRedirectRejectVacation(t *testing.T) {
	p := run(t, `require "copy"; redirect "carol@example.net"; redirect :copy "dave@example.net";`, env1, msg1)
	want := []action.Redirect{{Addr: "carol@example.net"}, {Addr: "dave@example.net", Copy: true}}
	if !reflect.DeepEqual(p.Redirects, want) || len(p.Stores) != 0 {
		t.Errorf("redirects = %+v stores=%v", p.Redirects, stores(p))
	}
	p = run(t, `redirect "a@x"; redirect "b@x"; redirect "c@x"; redirect "d@x"; redirect "e@x";`, env1, msg1)
	if len(p.Errors) == 0 || stores(p) != "keep" || len(p.Redirects) != 0 {
		t.Errorf("5 redirects: %+v", p)
	}
	p = run(t, `require ["reject","variables"]; set "r" "go away"; reject "${r}, please";`, env1, msg1)
	if !p.Rejected || p.RejectReason != "go away, please" || len(p.Stores) != 0 || p.Discarded {
		t.Errorf("reject: %+v", p)
	}
	p = run(t, `require ["reject","fileinto"]; fileinto "A"; reject "no";`, env1, msg1)
	if len(p.Errors) == 0 || stores(p) != "keep" || p.Rejected {
		t.Errorf("reject+fileinto: %+v", p)
	}
	if _, err := Load("test.sieve", strings.NewReader(`reject "no";`), Options{}); err == nil || !strings.HasPrefix(err.Error(), "test.sieve:1:1:") {
		t.Errorf("reject without require: %v", err)
	}
	p = run(t, `require "vacation"; vacation :days 3 :subject "Away" :from "bob@example.com" :addresses ["bob@example.com", "b@example.com"] "I am away.";`, env1, msg1)
	v := p.Vacation
	if v == nil || v.To != "alice@example.org" || v.Days != 3 || v.Subject != "Away" || v.From != "bob@example.com" ||
		v.Body != "I am away." || !reflect.DeepEqual(v.Addresses, []string{"bob@example.com", "b@example.com"}) || stores(p) != "keep" {
		t.Errorf("vacation: %+v %+v", p, v)
	}
	p = run(t, `require "vacation"; vacation "away";`, Envelope{To: "bob@example.com"}, msg1)
	if p.Vacation != nil || len(p.Errors) > 0 || stores(p) != "keep" {
		t.Errorf("vacation to null sender: %+v", p)
	}
	p = run(t, `require "vacation"; vacation "away";`, env1, msg1)
	if p.Vacation == nil || p.Vacation.Days != 7 || p.Vacation.Subject != "" {
		t.Errorf("vacation defaults: %+v", p.Vacation)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := map[string]string{
		"if true {\n  fileinto \"x\";\n}\n":          "bad.sieve:2:3:",
		"require \"fileinto\";\nfileinto \"a\"\n":    "bad.sieve:",
		"require \"editheader\";":                    "bad.sieve:1:1: require: extension \"editheader\" is not supported",
		"require \"vnd.dovecot.testsuite\"; test;":   "bad.sieve:1:1:",
		"require [\"reject\"];\nif true { reject; }": "bad.sieve:2:11:",
	}
	for src, want := range cases {
		_, err := Load("bad.sieve", strings.NewReader(src), Options{})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Load(%q) = %v, want prefix %q", src, err, want)
		}
	}
	_, err := Load("big.sieve", strings.NewReader(strings.Repeat("#", 2000)), Options{MaxScriptSize: 1000})
	if err == nil || !strings.Contains(err.Error(), "larger than 1000") {
		t.Errorf("size limit: %v", err)
	}
}

func TestSeveralScripts(t *testing.T) {
	load := func(src string) *Script {
		s, err := Load("s", strings.NewReader(src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	m := Message{R: strings.NewReader(msg1), Size: int64(len(msg1))}
	spam := load(`require "fileinto"; if header :is "x-spam-flag" "YES" { fileinto "Junk"; }`)
	user := load(`require "fileinto"; fileinto "User";`)
	p := Run(context.Background(), []*Script{spam, user}, env1, m, "+", Options{})
	if stores(p) != "Junk" {
		t.Errorf("before filed: %q", stores(p))
	}
	noop := load(`require "fileinto"; if false { fileinto "Junk"; }`)
	p = Run(context.Background(), []*Script{noop, user}, env1, m, "+", Options{})
	if stores(p) != "User" {
		t.Errorf("before passed: %q", stores(p))
	}
	// As Pigeonhole: stop ends only its own script, a keep is handed on
	// as the implicit keep, and the flags carry over.
	p = Run(context.Background(), []*Script{load(`keep; stop;`), load(`discard;`)}, env1, m, "+", Options{})
	if !p.Discarded || len(p.Stores) != 0 {
		t.Errorf("keep; stop; then discard: %+v", p)
	}
	p = Run(context.Background(), []*Script{load(`keep;`), user}, env1, m, "+", Options{})
	if stores(p) != "User" {
		t.Errorf("keep then fileinto: %q", stores(p))
	}
	p = Run(context.Background(), []*Script{load(`require "imap4flags"; addflag "\\Seen";`), user}, env1, m, "+", Options{})
	if !strings.EqualFold(stores(p), `User[\Seen]`) {
		t.Errorf("flags carried: %q", stores(p))
	}
}

func TestTimeout(t *testing.T) {
	s, err := Load("slow.sieve", strings.NewReader(`require "fileinto"; fileinto "X";`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := Run(context.Background(), []*Script{s}, env1, Message{R: strings.NewReader(msg1), Size: int64(len(msg1))}, "+", Options{Timeout: time.Nanosecond})
	if stores(p) != "keep" || len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "slow.sieve: run time limit exceeded") {
		t.Errorf("plan %+v", p)
	}
}

func TestSeparator(t *testing.T) {
	for _, c := range []struct{ to, delims, want string }{
		{"bob+x@d", "+", "+"}, {"bob-x@d", "+-", "-"}, {"bob@d", "-+", "-"}, {"bob@d", "", "+"},
	} {
		if got := separator(c.to, c.delims); got != c.want {
			t.Errorf("separator(%q,%q) = %q", c.to, c.delims, got)
		}
	}
	s, _ := Load("s", strings.NewReader(`require ["envelope","subaddress","fileinto"]; if envelope :detail "to" "x" { fileinto "U"; }`), Options{})
	p := Run(context.Background(), []*Script{s}, Envelope{To: "bob-x@d"}, Message{R: strings.NewReader(msg1), Size: int64(len(msg1))}, "+-", Options{})
	if stores(p) != "U" {
		t.Errorf("detail with '-' delimiter: %s %v", stores(p), p.Errors)
	}
}

// mailboxexists asks Options.MailboxExists; without it only INBOX exists.
func TestMailboxExists(t *testing.T) {
	src := `require ["mailbox","fileinto"]; if mailboxexists ["Work", "inbox"] { fileinto "Work"; } else { discard; }`
	s, err := Load("test.sieve", strings.NewReader(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{R: strings.NewReader(msg1), Size: int64(len(msg1))}
	var asked []string
	o := Options{MailboxExists: func(mb string) bool { asked = append(asked, mb); return mb == "Work" }}
	if got := stores(Run(context.Background(), []*Script{s}, env1, m, "+", o)); got != "Work" || !reflect.DeepEqual(asked, []string{"Work"}) {
		t.Errorf("with Work: stores %q, asked %q", got, asked)
	}
	if p := Run(context.Background(), []*Script{s}, env1, m, "+", Options{}); !p.Discarded {
		t.Errorf("without a checker: %+v", p)
	}
}

// hasflag tests the current flags, one by one, with match types,
// comparators and :count; the variable-list form is refused.
func TestHasflag(t *testing.T) {
	for _, c := range []struct{ script, want string }{
		{`require "imap4flags"; addflag ["\\Seen", "\\Flagged"]; if hasflag "\\seen" { discard; }`, ""},
		{`require "imap4flags"; addflag "\\Seen \\Flagged"; if hasflag :is "\\Seen \\Flagged" { discard; }`, ""},
		{`require "imap4flags"; addflag "\\Flagged"; if hasflag :contains "lagg" { discard; }`, ""},
		{`require "imap4flags"; if hasflag :matches "*" { discard; }`, "keep"},
		{`require ["imap4flags","relational","comparator-i;ascii-numeric"]; addflag ["a","b","c"]; if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { discard; }`, ""},
		{`require ["imap4flags","relational","comparator-i;ascii-numeric"]; addflag ["a","b"]; if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { discard; }`, "keep[a b]"},
		{`require "imap4flags"; addflag "X"; removeflag "X"; if hasflag "X" { discard; }`, "keep"},
	} {
		p := run(t, c.script, env1, msg1)
		if got := stores(p); !strings.EqualFold(got, c.want) || len(p.Errors) != 0 {
			t.Errorf("%s\nstores %q, errors %q; want %q", c.script, got, p.Errors, c.want)
		}
	}
	if _, err := Load("v.sieve", strings.NewReader(`require ["imap4flags","variables"]; if hasflag "v" "\\Seen" { discard; }`), Options{}); err == nil || !strings.Contains(err.Error(), "variable list") {
		t.Errorf("variable-list form: %v", err)
	}
	if _, err := Load("r.sieve", strings.NewReader(`if hasflag "\\Seen" { discard; }`), Options{}); err == nil || !strings.Contains(err.Error(), "r.sieve:1:") {
		t.Errorf("without require: %v", err)
	}
}
