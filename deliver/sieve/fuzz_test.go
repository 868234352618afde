package sieve

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary scripts to the loader; whatever compiles is run
// on a message. Neither may panic, and a run's plan must decide something:
// a store, a reject, or an explicit discard.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		`require ["fileinto","imap4flags","copy","mailbox"]; addflag "\\Seen"; fileinto :copy :create "A/B"; keep;`,
		`require ["reject","variables"]; set "x" "y"; if header :contains "subject" "${x}" { reject "no ${x}"; }`,
		`require ["vacation","envelope","subaddress"]; if envelope :detail "to" "v" { vacation :days 2 :addresses "a@b" "away"; } stop;`,
		`redirect "a@b"; discard;`,
		`require ["imap4flags","relational"]; addflag "a b"; if anyof (hasflag :count "ge" "1", not hasflag :comparator "i;octet" :matches "\\S*") { keep; }`,
		`if anyof (true, false) { keep; } elsif not exists "x" { discard; } else { stop; }`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Load("f.sieve", strings.NewReader(src), Options{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.sieve:") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		p := Run(context.Background(), []*Script{s}, env1, Message{R: strings.NewReader(msg1), Size: int64(len(msg1))}, "+", Options{Timeout: time.Second})
		if len(p.Stores) == 0 && !p.Rejected && !p.Discarded {
			t.Fatalf("plan decides nothing: %+v", p)
		}
	})
}
