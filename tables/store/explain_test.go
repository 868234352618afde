package store

import (
	"reflect"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
)

func explainStore(t testing.TB) *Store {
	s := newStore(t, "+-")
	es := entries(
		"joe@example.com", "joe.user@example.net",
		"user2+special@some.domain", "u2special",
		"@catchall.example", "catch@x.example",
		"owner-list@some.domain", "owner",
		"localonly", "local",
		"some.domain", "domain-entry",
	)
	mustReplace(t, s, "virtual_alias", Address, es)
	mustReplace(t, s, "virtual_mailbox", Address, es)
	mustReplace(t, s, "virtual_mailbox_domains", Exact, es)
	return s
}

func TestExplain(t *testing.T) {
	s := explainStore(t)
	for _, tc := range []struct {
		m, k string
		want Explanation
	}{
		{"virtual_alias", "Joe+Foo@example.com", Explanation{
			Tries: []Try{{StepFull, "joe+foo@example.com", false}, {StepWithoutExtension, "joe@example.com", true}},
			Found: true, Value: "joe.user+foo@example.net", Matched: "joe@example.com", Extension: "+foo"}},
		{"virtual_mailbox", "joe+foo@example.com", Explanation{
			Tries: []Try{{StepFull, "joe+foo@example.com", false}, {StepWithoutExtension, "joe@example.com", true}},
			Found: true, Value: "joe.user@example.net", Matched: "joe@example.com"}},
		{"virtual_alias", "any+one@catchall.example", Explanation{
			Tries: []Try{{StepFull, "any+one@catchall.example", false}, {StepWithoutExtension, "any@catchall.example", false}, {StepDomain, "@catchall.example", true}},
			Found: true, Value: "catch@x.example", Matched: "@catchall.example"}},
		{"virtual_alias", "nobody@nowhere.example", Explanation{
			Tries: []Try{{StepFull, "nobody@nowhere.example", false}, {StepDomain, "@nowhere.example", false}}}},
		{"virtual_alias", "user2+special@some.domain", Explanation{
			Tries: []Try{{StepFull, "user2+special@some.domain", true}},
			Found: true, Value: "u2special", Matched: "user2+special@some.domain"}},
		{"virtual_mailbox_domains", "joe+x@example.com", Explanation{
			Tries: []Try{{StepFull, "joe+x@example.com", false}}}},
		{"virtual_alias", "", Explanation{}},
	} {
		got, err := s.Explain(tc.m, tc.k)
		if err != nil {
			t.Errorf("Explain(%s, %q): %v", tc.m, tc.k, err)
			continue
		}
		tc.want.Map, tc.want.Match = tc.m, got.Match
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Explain(%s, %q) =\n%+v\nwant\n%+v", tc.m, tc.k, got, tc.want)
		}
	}
	if _, err := s.Explain("nosuch", "x"); failure.KindOf(err) != failure.Permanent {
		t.Errorf("Explain of an unknown map: %v, want Permanent", err)
	}
}

// FuzzExplainAgreesWithLookup: Explain's answer is always Lookup's.
func FuzzExplainAgreesWithLookup(f *testing.F) {
	for _, k := range []string{"joe+foo@example.com", "JOE@EXAMPLE.COM", "a@catchall.example",
		"+x@some.domain", "owner-list+x@some.domain", "localonly+x", "some.domain", "@", "x@", "ü+ß@Straße"} {
		f.Add("virtual_alias", k)
		f.Add("virtual_mailbox_domains", k)
	}
	s := explainStore(f)
	f.Fuzz(func(t *testing.T, m, k string) {
		v, lerr := s.Lookup(m, k)
		x, xerr := s.Explain(m, k)
		if failure.KindOf(lerr) == failure.Permanent || failure.KindOf(xerr) == failure.Permanent {
			if failure.KindOf(lerr) != failure.KindOf(xerr) {
				t.Fatalf("Lookup(%q, %q): %v; Explain: %v", m, k, lerr, xerr)
			}
			return
		}
		if x.Found != (lerr == nil) || x.Value != v {
			t.Fatalf("Lookup(%q, %q) = %q, %v; Explain found %v, value %q", m, k, v, lerr, x.Found, x.Value)
		}
		if x.Found && !x.Tries[len(x.Tries)-1].Hit {
			t.Fatalf("Explain(%q, %q): found, but the last try is a miss: %+v", m, k, x)
		}
	})
}
