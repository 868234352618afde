package main

import "strings"

// phCases are the differential test's cases (pigeonhole_test.go). A case
// with ph set is a documented difference from Pigeonhole (README, "Sieve:
// differences from Pigeonhole").
var phCases = []phCase{
	// Keep, discard, stop.
	{name: "empty script", script: ``, want: "INBOX"},
	{name: "keep", script: `keep;`, want: "INBOX"},
	{name: "discard", script: `discard;`, want: "none"},
	{name: "discard then keep", script: `discard; keep;`, want: "INBOX"},
	{name: "stop before discard", script: `stop; discard;`, want: "INBOX"},
	{name: "comment only", script: "# nothing\n/* nothing */\n", want: "INBOX"},

	// fileinto and folders.
	{name: "fileinto existing", script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, want: "Work"},
	{name: "fileinto missing", script: `require "fileinto"; fileinto "Nope";`, want: "INBOX", log: `fileinto-missing=`},
	{name: "fileinto create", script: `require ["fileinto","mailbox"]; fileinto :create "New";`, want: "New"},
	{name: "hierarchy slash create", script: `require ["fileinto","mailbox"]; fileinto :create "A/B";`, want: "A.B", ph: "INBOX"},
	{name: "hierarchy dot create", script: `require ["fileinto","mailbox"]; fileinto :create "A.B";`, want: "A.B"},
	{name: "hierarchy existing", script: `require "fileinto"; fileinto "Lists.Go";`, folders: []string{".Lists", ".Lists.Go"}, want: "Lists.Go"},
	{name: "utf-7 name create", script: `require ["fileinto","mailbox"]; fileinto :create "Entwürfe";`, want: "Entwürfe"},
	{name: "utf-7 existing", script: `require "fileinto"; fileinto "Entwürfe";`, folders: []string{".Entw&APw-rfe"}, want: "Entwürfe"},
	{name: "fileinto INBOX", script: `require "fileinto"; fileinto "INBOX";`, want: "INBOX"},
	{name: "fileinto twice same", script: `require "fileinto"; fileinto "Work"; fileinto "Work";`, folders: []string{".Work"}, want: "Work"},
	{name: "fileinto two folders", script: `require "fileinto"; fileinto "Work"; fileinto "Play";`, folders: []string{".Work", ".Play"}, want: "Play Work"},
	{name: "fileinto and keep", script: `require "fileinto"; fileinto "Work"; keep;`, folders: []string{".Work"}, want: "INBOX Work"},
	{name: "fileinto copy", script: `require ["fileinto","copy"]; fileinto :copy "Work";`, folders: []string{".Work"}, want: "INBOX Work"},
	{name: "mailboxexists", script: `require ["fileinto","mailbox"]; if mailboxexists "Work" { fileinto "Work"; }`, folders: []string{".Work"}, want: "Work"},
	{name: "mailboxexists missing", script: `require ["fileinto","mailbox"]; if mailboxexists "Nope" { discard; }`, want: "INBOX"},

	{name: "fileinto missing and another", script: `require "fileinto"; fileinto "Work"; fileinto "Nope";`, folders: []string{".Work"}, want: "INBOX Work", ph: "INBOX"},
	{name: "fileinto other case", script: `require "fileinto"; fileinto "work";`, folders: []string{".Work"}, want: "Work", ph: "INBOX"},
	{name: "fileinto empty level", script: `require ["fileinto","mailbox"]; fileinto :create "A//B";`, want: "INBOX", log: "fileinto-invalid="},
	{name: "fileinto below INBOX", script: `require ["fileinto","mailbox"]; fileinto :create "INBOX/Sub";`, want: "INBOX.Sub", ph: "INBOX"},
	{name: "fileinto below INBOX dot", script: `require ["fileinto","mailbox"]; fileinto :create "INBOX.Sub";`, want: "INBOX.Sub"},
	{name: "fileinto flags missing", script: `require ["fileinto","imap4flags"]; fileinto :flags "\\Seen" "Nope";`, want: `INBOX:\Seen`, ph: "INBOX"},

	// Header tests and comparators.
	{name: "header contains", script: `require "fileinto"; if header :contains "subject" "money" { fileinto "Spam"; }`, subject: "make MONEY fast", folders: []string{".Spam"}, want: "Spam"},
	{name: "header is octet", script: `if header :is :comparator "i;octet" "subject" "X" { discard; }`, subject: "x", want: "INBOX"},
	{name: "header matches", script: `if header :matches "from" "*@example.net>" { discard; }`, want: "none"},
	{name: "address domain", script: `if address :domain "from" "example.net" { discard; }`, want: "none"},
	{name: "address localpart", script: `if address :localpart "to" "bob" { discard; }`, want: "none"},
	{name: "exists", script: `if exists "x-spam-flag" { discard; }`, headers: "X-Spam-Flag: YES\n", want: "none"},
	{name: "size over", script: `if size :over 10 { discard; }`, want: "none"},
	{name: "size under", script: `if size :under 10 { discard; }`, want: "INBOX"},
	{name: "allof anyof not", script: `if allof (exists "subject", not exists "x-nope", anyof (false, true)) { discard; }`, want: "none"},
	{name: "encoded subject", script: `if header :contains "subject" "für" { discard; }`, subject: "=?utf-8?q?f=C3=BCr_dich?=", want: "none"},
	{name: "string test", script: `require "variables"; set "a" "x"; if string :is "${a}" "x" { discard; }`, want: "none"},
	{name: "date test", script: `require ["date","relational"]; if date :value "ge" "date" "year" "2020" { discard; }`, want: "none"},
	{name: "encoded-character", script: `require ["encoded-character","fileinto","mailbox"]; fileinto :create "${hex:41 42}";`, want: "AB"},
	{name: "address all display name", script: `if address :all :is "from" "alice@example.net" { discard; }`, want: "none"},
	{name: "regex", script: `require "regex"; if header :regex "subject" "^case [a-z]+$" { discard; }`, want: "none"},

	// Envelope and subaddress.
	{name: "envelope from", script: `require "envelope"; if envelope "from" "alice@example.net" { discard; }`, want: "none"},
	{name: "envelope to detail", script: `require ["envelope","subaddress","fileinto"]; if envelope :detail "to" "work" { fileinto "Work"; }`, to: "bob+work@example.org", folders: []string{".Work"}, want: "Work"},
	{name: "envelope to localpart", script: `require ["envelope","subaddress"]; if envelope :user "to" "bob" { discard; }`, to: "bob+x@example.org", want: "none"},
	{name: "envelope to domain", script: `require "envelope"; if envelope :domain "to" "example.org" { discard; }`, want: "none"},
	{name: "envelope detail variable", script: `require ["envelope","subaddress","variables","fileinto","mailbox"]; if envelope :matches :detail "to" "*" { fileinto :create "${1}"; }`, to: "bob+lists@example.org", want: "lists"},

	// The README's maildrop recipes (section "Coming from maildrop").
	{name: "recipe extension folder", script: `require ["envelope","subaddress","fileinto","mailbox","variables"];
if envelope :detail :matches "to" "?*" { fileinto :create "${0}"; }`, to: "bob+news@example.org", want: "news"},
	{name: "recipe extension folder none", script: `require ["envelope","subaddress","fileinto","mailbox","variables"];
if envelope :detail :matches "to" "?*" { fileinto :create "${0}"; }`, want: "INBOX"},
	{name: "recipe subject to folder", script: `require "fileinto";
if header :contains "subject" "[golang]" { fileinto "Lists.Go"; stop; }`, subject: "[golang] news", folders: []string{".Lists", ".Lists.Go"}, want: "Lists.Go"},
	{name: "recipe cc", script: `require "copy"; redirect :copy "carol@example.com";`, want: "INBOX redirect:carol@example.com"},
	{name: "recipe dev null", script: `if address :domain "from" "example.net" { discard; stop; }`, want: "none"},
	{name: "recipe user", script: `require ["envelope","subaddress","fileinto","mailbox","variables"];
if envelope :localpart :matches "to" "*" { fileinto :create "for-${1}"; }`, to: "bob+x@example.org", want: "for-bob+x"},

	// Edge cases of the tests.
	{name: "envelope from null", script: `require "envelope"; if envelope :is "from" "" { discard; }`, from: "<>", want: "none"},
	{name: "header empty key", script: `if header :contains "x-none" "" { discard; }`, want: "INBOX"},
	{name: "exists all", script: `if exists ["subject", "x-none"] { discard; }`, want: "INBOX"},
	{name: "size units", script: `if size :over 1K { discard; }`, body: strings.Repeat("x", 2000) + "\n", want: "none"},
	{name: "subject empty", script: `if header :is "subject" "" { discard; }`, subject: " ", want: "none"},
	{name: "address all case", script: `if address :is :all "to" "BOB@EXAMPLE.ORG" { discard; }`, want: "none"},
	{name: "ascii-numeric", script: `require "comparator-i;ascii-numeric"; if header :is :comparator "i;ascii-numeric" "x-n" "007" { discard; }`, headers: "X-N: 7\n", want: "none"},

	// imap4flags.
	{name: "addflag keep", script: `require "imap4flags"; addflag "\\Seen"; keep;`, want: `INBOX:\Seen`},
	{name: "flags implicit keep", script: `require "imap4flags"; addflag ["\\Flagged","\\Answered"];`, want: `INBOX:\Answered,\Flagged`},
	{name: "setflag removeflag", script: `require "imap4flags"; setflag "\\Seen \\Flagged"; removeflag "\\Seen";`, want: `INBOX:\Flagged`},
	{name: "fileinto flags", script: `require ["fileinto","imap4flags"]; fileinto :flags "\\Deleted" "Work";`, folders: []string{".Work"}, want: `Work:\Deleted`},
	{name: "flags per store", script: `require ["fileinto","imap4flags","copy"]; fileinto :copy :flags "\\Seen" "Work"; addflag "\\Draft";`, folders: []string{".Work"}, want: `INBOX:\Draft Work:\Seen`},
	{name: "keyword flag", script: `require "imap4flags"; addflag ["Junk", "\\Seen"];`, want: `INBOX:\Seen`, ph: `INBOX:Junk,\Seen`},
	{name: "hasflag", script: `require "imap4flags"; addflag "\\Seen"; if hasflag "\\Seen" { discard; }`, want: "none"},
	{name: "hasflag two keys in one string", script: `require "imap4flags"; addflag "\\Seen \\Flagged"; if hasflag :is "\\Seen \\Flagged" { discard; }`, want: "none"},
	{name: "hasflag one key of two", script: `require "imap4flags"; addflag "\\Flagged"; if hasflag :is "\\Seen \\Flagged" { discard; }`, want: "none"},
	{name: "hasflag contains", script: `require "imap4flags"; addflag "\\Flagged"; if hasflag :contains "lagg" { discard; }`, want: "none"},
	{name: "hasflag count", script: `require ["imap4flags","relational","comparator-i;ascii-numeric"]; addflag ["a","b","c"]; if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { discard; }`, want: "none"},
	{name: "hasflag after removeflag", script: `require "imap4flags"; addflag "X"; removeflag "X"; if hasflag "X" { discard; }`, want: "INBOX"},
	{name: "hasflag octet", script: `require "imap4flags"; addflag "\\Seen"; if hasflag :comparator "i;octet" "\\Seen" { discard; }`, want: "none"},
	{name: "hasflag keyword octet", script: `require "imap4flags"; addflag "Junk"; if hasflag :comparator "i;octet" "Junk" { discard; }`, want: "INBOX", ph: "none"},
	{name: "hasflag carried from before", before: `require "imap4flags"; addflag "Junk";`, script: `require "imap4flags"; if hasflag "junk" { discard; }`, want: "none"},

	// body, relational, variables.
	{name: "body contains", script: `require "body"; if body :contains "unsubscribe" { discard; }`, body: "click to unsubscribe\n", want: "none"},
	{name: "body no match", script: `require "body"; if body :contains "unsubscribe" { discard; }`, want: "INBOX"},
	{name: "relational count", script: `require ["relational","comparator-i;ascii-numeric"]; if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { discard; }`, headers: "Received: a\nReceived: b\n", want: "none"},
	{name: "relational value", script: `require "relational"; if header :value "gt" "subject" "case m" { discard; }`, want: "none"},
	{name: "variables set", script: `require ["variables","fileinto","mailbox"]; set :lower "f" "ARCHIVE"; fileinto :create "${f}";`, want: "archive"},
	{name: "variables match", script: `require ["variables","fileinto","mailbox"]; if header :matches "subject" "case *" { fileinto :create "S-${1}"; }`, subject: "case xyz", want: "S-xyz"},

	// redirect.
	{name: "redirect", script: `redirect "carol@example.com";`, want: "redirect:carol@example.com"},
	{name: "redirect with extension", script: `redirect "carol@example.com";`, to: "bob+fwd@example.org", want: "redirect:carol@example.com"},
	{name: "redirect null sender", script: `redirect "carol@example.com";`, from: "<>", want: "redirect:carol@example.com"},
	{name: "redirect copy", script: `require "copy"; redirect :copy "carol@example.com";`, want: "INBOX redirect:carol@example.com"},
	{name: "redirect and keep", script: `redirect "carol@example.com"; keep;`, want: "INBOX redirect:carol@example.com"},
	{name: "four redirects", script: `redirect "a1@example.com"; redirect "a2@example.com"; redirect "a3@example.com"; redirect "a4@example.com";`,
		want: "redirect:a1@example.com redirect:a2@example.com redirect:a3@example.com redirect:a4@example.com"},
	{name: "five redirects", script: `redirect "a1@example.com"; redirect "a2@example.com"; redirect "a3@example.com"; redirect "a4@example.com"; redirect "a5@example.com";`,
		want: "INBOX"},

	// reject.
	{name: "reject", script: `require "reject"; reject "go away";`, want: "reject"},
	{name: "reject conditional", script: `require "reject"; if header :contains "subject" "nope" { reject "no"; }`, want: "INBOX"},

	// vacation.
	{name: "vacation", script: `require "vacation"; vacation "I am away.";`, want: "INBOX vacation:alice@example.net"},
	{name: "vacation to list", script: `require "vacation"; vacation "I am away.";`, headers: "List-Id: <x.example.net>\n", want: "INBOX"},
	{name: "vacation bulk", script: `require "vacation"; vacation "I am away.";`, headers: "Precedence: bulk\n", want: "INBOX"},
	{name: "vacation auto-submitted", script: `require "vacation"; vacation "I am away.";`, headers: "Auto-Submitted: auto-generated\n", want: "INBOX"},
	{name: "vacation not addressed", script: `require "vacation"; vacation "I am away.";`, to: "zed@example.org", want: "INBOX"},
	{name: "vacation addresses", script: `require "vacation"; vacation :addresses "bob@example.org" "I am away.";`, to: "zed@example.org", want: "INBOX vacation:alice@example.net"},
	{name: "vacation owner-", script: `require "vacation"; vacation "I am away.";`, from: "owner-list@example.net", want: "INBOX"},
	{name: "vacation null sender", script: `require "vacation"; vacation "I am away.";`, from: "<>", want: "INBOX"},
	{name: "vacation subject from", script: `require "vacation"; vacation :subject "Away" :from "Bob <bob@example.org>" "I am away.";`, want: "INBOX vacation:alice@example.net"},
	{name: "vacation twice", script: `require "vacation"; vacation "I am away.";`, twice: true, want: "INBOX INBOX vacation:alice@example.net", log: "(already-replied)"},
	{name: "redirect twice", script: `redirect "carol@example.com";`, twice: true, want: "redirect:carol@example.com", ph: "INBOX redirect:carol@example.com", log: "(already-sent)"},
	{name: "redirect copy twice", script: `require "copy"; redirect :copy "carol@example.com";`, twice: true, want: "INBOX INBOX redirect:carol@example.com"},
	{name: "fileinto twice delivered", script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, twice: true, want: "Work Work"},
	{name: "vacation and fileinto", script: `require ["vacation","fileinto"]; vacation "away"; fileinto "Work";`, folders: []string{".Work"}, want: "Work vacation:alice@example.net"},

	// An administrator's script before the user's (sieve_before).
	{name: "before files, user too", before: `require "fileinto"; if exists "x-spam-flag" { fileinto "Junk"; }`,
		script: `require "fileinto"; fileinto "Work";`, headers: "X-Spam-Flag: YES\n", folders: []string{".Junk", ".Work"}, want: "Junk"},
	{name: "before files and stops", before: `require "fileinto"; if exists "x-spam-flag" { fileinto "Junk"; stop; }`,
		script: `require "fileinto"; fileinto "Work";`, headers: "X-Spam-Flag: YES\n", folders: []string{".Junk", ".Work"}, want: "Junk"},
	{name: "before no match", before: `require "fileinto"; if exists "x-spam-flag" { fileinto "Junk"; stop; }`,
		script: `require "fileinto"; fileinto "Work";`, folders: []string{".Junk", ".Work"}, want: "Work"},
	{name: "before discards", before: `discard;`, script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, want: "none"},
	{name: "before keeps", before: `keep;`, script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, want: "Work"},
	{name: "before flags", before: `require "imap4flags"; addflag "\\Flagged";`, script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, want: `Work:\Flagged`},
	{name: "before keeps, user discards", before: `keep;`, script: `discard;`, want: "none"},
	{name: "before keeps and stops", before: `keep; stop;`, script: `discard;`, want: "none"},
	{name: "before files and keeps", before: `require "fileinto"; fileinto "Junk"; keep;`, script: `require "fileinto"; fileinto "Work";`, folders: []string{".Junk", ".Work"}, want: "Junk Work"},
	{name: "before flags, implicit keep", before: `require "imap4flags"; addflag "\\Seen";`, script: `require "imap4flags"; addflag "\\Flagged";`, want: `INBOX:\Flagged,\Seen`},
	{name: "before broken", before: `frobnicate;`, script: `require "fileinto"; fileinto "Work";`, folders: []string{".Work"}, want: "INBOX", log: "admin.sieve:1:1:"},

	// An administrator's script after the user's (sieve_after).
	{name: "after runs on keep", after: `require "fileinto"; if exists "x-spam-flag" { fileinto "Junk"; }`,
		script: `keep;`, headers: "X-Spam-Flag: YES\n", folders: []string{".Junk"}, want: "Junk"},
	{name: "after not after fileinto", after: `require "fileinto"; fileinto "Junk";`,
		script: `require "fileinto"; fileinto "Work";`, folders: []string{".Junk", ".Work"}, want: "Work"},
	{name: "after after stop", after: `require "fileinto"; fileinto "Junk";`,
		script: `stop;`, folders: []string{".Junk"}, want: "Junk"},
	{name: "before and after", before: `require "imap4flags"; addflag "\\Seen";`, after: `require "imap4flags"; addflag "\\Flagged";`,
		script: ``, want: `INBOX:\Flagged,\Seen`},

	// Broken scripts: delivered as without a script.
	{name: "syntax error", script: "require \"fileinto\";\nif true {\n", want: "INBOX", log: ".dovecot.sieve:"},
	{name: "unknown command", script: `frobnicate;`, want: "INBOX", log: "error="},
	{name: "missing require", script: `fileinto "Work";`, folders: []string{".Work"}, want: "INBOX", log: "error="},
	{name: "unsupported extension", script: `require "nosuchthing"; discard;`, want: "INBOX", log: "error="},
	{name: "reject with fileinto", script: `require ["reject","fileinto"]; fileinto "Work"; reject "x";`, folders: []string{".Work"}, want: "INBOX"},
}
