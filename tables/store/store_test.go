package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/key"
	"github.com/mapdrop/mapdrop/tables/mapfile"
)

func entries(kv ...string) []mapfile.Entry {
	var es []mapfile.Entry
	for i := 0; i+1 < len(kv); i += 2 {
		es = append(es, mapfile.Entry{Key: kv[i], Value: kv[i+1], Line: i/2 + 1})
	}
	return es
}

func newStore(t testing.TB, delims string) *Store {
	t.Helper()
	s, err := New(delims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entryTable is what mapfile.ParseTable makes of entries: folded keys, the
// first of equal keys.
func entryTable(es []mapfile.Entry) *mapfile.Table {
	m := make(map[string]string, len(es))
	// Backwards, so that the first of equal keys is stored last and wins.
	for i := len(es) - 1; i >= 0; i-- {
		m[key.Fold(es[i].Key)] = es[i].Value
	}
	return &mapfile.Table{Map: m}
}

func mustReplace(t testing.TB, s *Store, name string, match Match, es []mapfile.Entry) {
	t.Helper()
	if err := s.ReplaceTable(name, match, entryTable(es)); err != nil {
		t.Fatal(err)
	}
}

// names returns the names of the maps in s, sorted.
func names(s *Store) []string {
	var names []string
	for _, r := range s.rows() { // the id index is in byte order
		names = append(names, r.Name)
	}
	return names
}

// check looks key up and compares with want; want "" means not found.
func check(t *testing.T, s *Store, name, key, want string) {
	t.Helper()
	got, err := s.Lookup(name, key)
	if want == "" {
		if !errors.Is(err, failure.ErrNotFound) || failure.KindOf(err) != failure.NotFound {
			t.Errorf("Lookup(%s, %q) = %q, %v; want not found", name, key, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("Lookup(%s, %q) = %q, %v; want %q", name, key, got, err, want)
	}
}

func TestKindForName(t *testing.T) {
	for name, want := range map[string]Match{
		"virtual_alias":           Address,
		"virtual_mailbox":         Address,
		"sender_canonical":        Address,
		"recipient_canonical":     Address,
		"canonical":               Address,
		"relocated":               Address,
		"transport":               Address,
		"smtpd_sender_login":      Address,
		"recipient_bcc":           Address,
		"aliases":                 Address,
		"virtual_mailbox_domains": Exact,
		"virtual_alias_domains":   Exact,
		"relay_recipient_domains": Exact,
		"mailbox_command":         Exact,
		"mailbox_command_maps":    Exact,
		"userdb":                  Exact,
		"access":                  Exact,
		"helo":                    Exact,
	} {
		if got := MatchForName(name); got != want {
			t.Errorf("MatchForName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAddressLookup(t *testing.T) {
	s := newStore(t, "+-")
	mustReplace(t, s, "virtual_mailbox", Address, entries(
		"user1@some.domain", "u1",
		"User2+Special@Some.Domain", "u2special",
		"user2@some.domain", "u2",
		"@catchall.domain", "catchall",
		"+foo@some.domain", "plusfoo",
		"owner-list@some.domain", "owner",
		"owner@some.domain", "wrong-owner",
		"list-request@some.domain", "request",
		"list@some.domain", "list",
		"mailer@some.domain", "wrong-daemon",
		"localonly", "local",
		"some.domain", "domain-entry",
		"ümläut@some.domain", "umlaut",
	))
	for key, want := range map[string]string{
		"user1@some.domain":         "u1",
		"USER1@Some.Domain":         "u1",
		"user1+foo@some.domain":     "u1",
		"user1-foo+bar@some.domain": "u1",
		"user1+@some.domain":        "u1",
		"user2+special@some.domain": "u2special",
		"user2+other@some.domain":   "u2",
		"user3@some.domain":         "",
		"user3+x@some.domain":       "",
		"anyone@catchall.domain":    "catchall",
		"any+one@CATCHALL.domain":   "catchall",
		"@catchall.domain":          "catchall",
		"+foo@some.domain":          "plusfoo", // exact
		"+bar@some.domain":          "",        // leading delimiter: no split, no "@some.domain"
		"owner-list@some.domain":    "owner",
		"owner-other@some.domain":   "", // owner-* is never split when '-' is a delimiter
		"list-request@some.domain":  "request",
		"x-request@some.domain":     "",
		"mailer-daemon@some.domain": "",
		"localonly":                 "local",
		"LocalOnly+ext":             "local",
		"some.domain":               "domain-entry",
		"ÜMLÄUT+x@SOME.DOMAIN":      "umlaut",
		"":                          "",
		"user1@":                    "",
		"nobody@nowhere":            "",
	} {
		check(t, s, "virtual_mailbox", key, want)
	}
}

// Alias maps copy the extension their entry did not match into the result,
// as Postfix's propagate_unmatched_extensions; mailbox maps do not.
func TestAliasPropagatesExtension(t *testing.T) {
	s := newStore(t, "+")
	es := entries(
		"joe@example.com", "joe.user@example.net",
		"list@example.com", "a@x.example, b@y.example,c",
		"tagged@example.com", "t+keep@x.example",
		"@catchall.example", "catch@x.example",
	)
	mustReplace(t, s, "virtual_alias", Address, es)
	mustReplace(t, s, "virtual_mailbox", Address, es)
	for key, want := range map[string]string{
		"joe@example.com":            "joe.user@example.net",
		"joe+foo@example.com":        "joe.user+foo@example.net",
		"JOE+Foo@Example.com":        "joe.user+foo@example.net",
		"list+x@example.com":         "a+x@x.example, b+x@y.example, c+x",
		"tagged+new@example.com":     "t+keep@x.example",
		"any+thing@catchall.example": "catch@x.example",
	} {
		check(t, s, "virtual_alias", key, want)
	}
	check(t, s, "virtual_mailbox", "joe+foo@example.com", "joe.user@example.net")
	if !PropagatesExtension("sender_canonical") || PropagatesExtension("virtual_mailbox") {
		t.Error("PropagatesExtension by name is wrong")
	}
}

func TestAddressStripsAtFirstDelimiter(t *testing.T) {
	s := newStore(t, "+-")
	mustReplace(t, s, "virtual_mailbox", Address, entries("a@x", "A", "a-b@x", "AB"))
	check(t, s, "virtual_mailbox", "a-b+c@x", "A") // first of any delimiter, as Postfix
	check(t, s, "virtual_mailbox", "a-b@x", "AB")
}

func TestNoDelimiters(t *testing.T) {
	s := newStore(t, "")
	mustReplace(t, s, "virtual_alias", Address, entries("user@x", "u", "@y", "catchall"))
	check(t, s, "virtual_alias", "user+ext@x", "")
	check(t, s, "virtual_alias", "user+ext@y", "catchall")
}

func TestExactLookup(t *testing.T) {
	s := newStore(t, "+")
	mustReplace(t, s, "virtual_mailbox_domains", Exact, entries("Some.Domain", "OK"))
	mustReplace(t, s, "userdb", Exact, entries("user1@some.domain", "uid=1|gid=1|home=/h"))
	check(t, s, "virtual_mailbox_domains", "SOME.DOMAIN", "OK")
	check(t, s, "virtual_mailbox_domains", "x@some.domain", "")
	check(t, s, "userdb", "user1@some.domain", "uid=1|gid=1|home=/h")
	check(t, s, "userdb", "user1+ext@some.domain", "")
	check(t, s, "userdb", "other@some.domain", "")
}

func TestUnknownMap(t *testing.T) {
	s := newStore(t, "+")
	_, err := s.Lookup("nosuch", "key")
	if failure.KindOf(err) != failure.Permanent || !strings.Contains(err.Error(), "unknown map nosuch") {
		t.Fatalf("err = %v", err)
	}
}

func TestReplaceTableAndNames(t *testing.T) {
	s := newStore(t, "+")
	mustReplace(t, s, "b", Exact, entries("k", "first", "K", "second"))
	mustReplace(t, s, "a", Exact, nil)
	check(t, s, "b", "k", "first")
	check(t, s, "a", "k", "")
	if got := names(s); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("names() = %v", got)
	}
	mustReplace(t, s, "b", Exact, entries("k", "new"))
	check(t, s, "b", "k", "new")
	if err := s.ReplaceTable("", Exact, entryTable(nil)); err == nil {
		t.Error("empty name accepted")
	}
	if err := s.ReplaceTable("c", Match(7), entryTable(nil)); err == nil {
		t.Error("bad match accepted")
	}
}

func TestNewRejectsBadDelimiters(t *testing.T) {
	for _, d := range []string{"@", "+@", " ", "\t", "\x00"} {
		if _, err := New(d); err == nil || failure.KindOf(err) != failure.Usage {
			t.Errorf("New(%q) = %v", d, err)
		}
	}
	if _, err := New("+-="); err != nil {
		t.Error(err)
	}
}

// A lookup allocates nothing (but an answer with a copied extension, which
// is a new string; see TestAliasPropagatesExtension).
func TestLookupDoesNotAllocate(t *testing.T) {
	s := newStore(t, "+")
	mustReplace(t, s, "virtual_mailbox", Address, entries("user@x.example", "u", "@y.example", "c"))
	mustReplace(t, s, "userdb", Exact, entries("user@x.example", "u"))
	for _, q := range []struct{ name, key string }{
		{"virtual_mailbox", "user@x.example"},
		{"virtual_mailbox", "user+ext@x.example"},
		{"virtual_mailbox", "other+ext@y.example"},
		{"virtual_mailbox", "nobody+ext@z.example"},
		{"userdb", "user@x.example"},
		{"userdb", "nobody@x.example"},
	} {
		if n := testing.AllocsPerRun(200, func() { _, _ = s.Lookup(q.name, q.key) }); n != 0 {
			t.Errorf("Lookup(%s, %q) allocates %v times", q.name, q.key, n)
		}
	}
}

// TestConcurrentReplace runs readers while a writer replaces a map with
// generation after generation. In generation g every key maps to "vg", and
// generations grow. A reader must never see a value that is not some
// generation's, a key missing, or an older generation after a newer one.
func TestConcurrentReplace(t *testing.T) {
	const keys, gens, readers = 50, 200, 4
	s := newStore(t, "+")
	gen := func(g int) []mapfile.Entry {
		var es []mapfile.Entry
		for k := 0; k < keys; k++ {
			es = append(es, mapfile.Entry{Key: fmt.Sprintf("user%d@x", k), Value: fmt.Sprintf("v%d", g)})
		}
		return es
	}
	mustReplace(t, s, "virtual_alias", Address, gen(0))
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			last := 0
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				v, err := s.Lookup("virtual_alias", fmt.Sprintf("user%d+ext@x", (i+r)%keys))
				var g int
				if err == nil {
					_, err = fmt.Sscanf(v, "v%d", &g)
				}
				if err == nil && (g < last || g > gens) {
					err = fmt.Errorf("generation %d after %d", g, last)
				}
				if err != nil {
					errs <- err
					return
				}
				last = g
			}
		}(r)
	}
	for g := 1; g <= gens; g++ {
		mustReplace(t, s, "virtual_alias", Address, gen(g))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	check(t, s, "virtual_alias", "user7@x", fmt.Sprintf("v%d", gens))
}

func TestReplaceTable(t *testing.T) {
	s := newStore(t, "+")
	tab, _, err := mapfile.ParseTable(strings.NewReader("User@Some.Domain target@x\n@some.domain all@x\nuser@some.domain dup\n"), "f", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceTable("virtual_alias", Address, tab); err != nil {
		t.Fatal(err)
	}
	check(t, s, "virtual_alias", "USER+ext@some.domain", "target+ext@x")
	check(t, s, "virtual_alias", "other@some.domain", "all@x")
	check(t, s, "virtual_alias", "user@other.domain", "")
	if err := s.ReplaceTable("empty", Exact, &mapfile.Table{}); err != nil {
		t.Fatal(err)
	}
	check(t, s, "empty", "k", "")
	if got := names(s); !slices.Equal(got, []string{"empty", "virtual_alias"}) {
		t.Errorf("names() = %v", got)
	}
	for _, bad := range []struct {
		name  string
		match Match
		tab   *mapfile.Table
	}{{"", Exact, tab}, {"c", Match(7), tab}, {"c", Exact, nil}} {
		if err := s.ReplaceTable(bad.name, bad.match, bad.tab); failure.KindOf(err) != failure.Permanent {
			t.Errorf("ReplaceTable(%q, %v, %v) = %v, want a Permanent failure", bad.name, bad.match, bad.tab, err)
		}
	}
}
