// Package store holds mapdropd's tables in memory and answers lookups the
// way Postfix's own table code would, including the address forms that
// Postfix leaves to the server for a socketmap or tcp_table.
//
// # Lookup rules
//
// Every key is folded with key.Fold before it is looked up, so that
// "USER1@Some.Domain" finds "user1@some.domain". A map is matched in one of two ways (Match):
//
// Exact: the folded key is looked up as it is, nothing else.
//
// Address (virtual(5), canonical(5) order), for a key LOCAL@DOMAIN split at
// its last "@":
//
//  1. LOCAL@DOMAIN as given (e.g. "user+ext@domain");
//  2. BASE@DOMAIN, where BASE is LOCAL cut at the first occurrence of any
//     recipient delimiter character (e.g. "user@domain");
//  3. @DOMAIN, the catch-all.
//
// In maps whose name contains "alias" or "canonical" (PropagatesExtension),
// a match at step 2 copies the extension into each address of the result,
// as Postfix's propagate_unmatched_extensions does by default: with
// "joe@example.com  joe.user@example.net", "joe+foo@example.com" answers
// "joe.user+foo@example.net". Postfix cannot do this itself, because it
// never learns that the server cut the extension off. A catch-all match
// (step 3) is returned as it is.
//
// A key without "@" is looked up as given, then as BASE (step 2 without the
// domain), as Postfix does for local-part-only lookups. Step 2 follows
// Postfix's split_addr(): the local part is not cut when the delimiter is its
// first character ("+foo@x" looks up "+foo@x" then "@x", never "@x" twice),
// when it contains no delimiter, when it is "postmaster", "mailer-daemon" or
// "double-bounce", or, when "-" is a delimiter, when it starts with "owner-"
// or ends in "-request". With no delimiters configured step 2 never applies.
// Note that a bare domain ("some.domain", which Postfix asks virtual_alias
// maps) is a key without "@": with "." or "-" among the delimiters it may be
// cut like a local part.
//
// MatchForName says which Match a map name gets by default.
//
// # Storage, and what go-memdb does here
//
// A map file becomes one immutable Go map (folded key → value, built by
// mapfile.ParseTable) and is never modified afterwards. go-memdb holds the
// catalogue of maps: one row per map, whose value is that map's table.
// Replacing a map is one memdb write transaction that swaps its row, so a
// reader sees the whole old table or the whole new one, never a mix, and
// several maps can change in one transaction. Lookups do not read memdb:
// after each commit the writer publishes the committed rows as an immutable
// name → table view behind an atomic pointer, and Lookup does one to three
// Go map reads without allocating. Rows per entry (memdb's radix tree per
// key) would cost several hundred bytes per entry and seconds per million
// inserts; load time and memory per entry are measured by lookupbench (see
// the README's benchmark section).
package store

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/go-memdb"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/address"
	"github.com/mapdrop/mapdrop/format/key"
	"github.com/mapdrop/mapdrop/tables/mapfile"
)

// Match is how a map's keys are looked up.
type Match int

// The ways a map is matched.
const (
	Exact   Match = iota // the folded key only
	Address              // address forms with extension stripping and @domain
)

// String returns "exact" or "address".
func (m Match) String() string {
	switch m {
	case Exact:
		return "exact"
	case Address:
		return "address"
	}
	return "match(" + strconv.Itoa(int(m)) + ")"
}

// MatchForName is the default match of a map by its name. Names ending in
// "_domains" (domain lists), names containing "mailbox_command", "userdb"
// and every name not listed next are Exact. Other names containing "alias",
// "canonical", "recipient", "sender", "relocated", "transport" or "mailbox"
// (virtual_alias, virtual_mailbox, sender_canonical, ...) are Address.
func MatchForName(name string) Match {
	if strings.HasSuffix(name, "_domains") || strings.Contains(name, "mailbox_command") {
		return Exact
	}
	for _, w := range []string{"alias", "canonical", "recipient", "sender", "relocated", "transport", "mailbox"} {
		if strings.Contains(name, w) {
			return Address
		}
	}
	return Exact
}

// table is one map's immutable contents: a Go map (from a file) or a
// Tree (from a source that changes key by key).
type table struct {
	match     Match
	propagate bool // copy an unmatched extension into the result (alias maps)
	m         map[string]string
	tree      *Tree // when not nil, the contents instead of m
	rev       int64 // with tree: the revision of the Apply that last changed it
}

// get returns the value of the folded key k.
func (t *table) get(k string) (string, bool) {
	if t.tree != nil {
		return t.tree.getBytes(unsafe.Slice(unsafe.StringData(k), len(k)))
	}
	v, ok := t.m[k]
	return v, ok
}

// getBytes is get for a key held in b, without allocating.
func (t *table) getBytes(b []byte) (string, bool) {
	if t.tree != nil {
		return t.tree.getBytes(b)
	}
	v, ok := t.m[string(b)] // no allocation: the compiler reads b in place
	return v, ok
}

// PropagatesExtension reports whether an Address map of this name copies
// an address extension that its matching entry did not have into the
// result, as Postfix's propagate_unmatched_extensions does by default
// (canonical, virtual): names containing "alias" or "canonical".
func PropagatesExtension(name string) bool {
	return strings.Contains(name, "alias") || strings.Contains(name, "canonical")
}

// row is a memdb row of table "maps".
type row struct {
	Name  string
	Table *table
}

const memTable = "maps"

var schema = &memdb.DBSchema{
	Tables: map[string]*memdb.TableSchema{
		memTable: {
			Name: memTable,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
	},
}

// Store is a set of named tables. It is safe for concurrent use: any number
// of Lookup calls run alongside ReplaceTable.
type Store struct {
	delims string
	db     *memdb.MemDB
	mu     sync.Mutex           // serialises ReplaceTable and Apply, so views follow commit order
	view   atomic.Pointer[view] // published copy of the committed rows
	rev    int64                // revision of the last Apply; with mu
}

// view is what a lookup reads: the committed maps and the source revision
// they make up, published together.
type view struct {
	tables map[string]*table
	rev    int64
}

// New returns an empty store. recipientDelimiters is the set of characters
// that start an address extension, like Postfix's recipient_delimiter; ""
// turns extension stripping off. Delimiters must not be "@", whitespace or
// control characters.
func New(recipientDelimiters string) (*Store, error) {
	if err := address.CheckDelimiters(recipientDelimiters); err != nil {
		return nil, failure.Wrap(failure.Usage, err, "store")
	}
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		return nil, failure.Wrap(failure.Temporary, err, "store")
	}
	s := &Store{delims: recipientDelimiters, db: db}
	s.view.Store(&view{tables: map[string]*table{}})
	return s, nil
}

// ReplaceTable makes t, which mapfile.ParseTable built, the whole contents
// of map name, creating the map if needed, in one memdb write transaction: a
// concurrent Lookup sees either the old table or the new one. Its keys are
// folded and unique already, so the store takes t.Map as it is. t.Map must
// not be modified afterwards; t.Entries is not used. A map set by Apply (an
// incremental map, from etcd) is not replaced: that is a Permanent failure
// and the incremental map stays, so that a map file of the same name cannot
// take turns with it.
func (s *Store) ReplaceTable(name string, match Match, t *mapfile.Table) error {
	if t == nil {
		return failure.Perm("store: map %s: no table", name)
	}
	m := t.Map
	if m == nil {
		m = map[string]string{}
	}
	return s.install(name, match, m)
}

// install makes m the table of map name.
func (s *Store) install(name string, match Match, m map[string]string) error {
	if name == "" {
		return failure.Perm("store: empty map name")
	}
	if match != Exact && match != Address {
		return failure.Perm("store: map %s: invalid match %d", name, int(match))
	}
	t := &table{match: match, propagate: match == Address && PropagatesExtension(name), m: m}

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.view.Load().tables[name]; cur != nil && cur.tree != nil {
		return failure.Perm("store: map %s is an incremental map (from etcd): a file cannot replace it", name)
	}
	txn := s.db.Txn(true)
	if err := txn.Insert(memTable, &row{Name: name, Table: t}); err != nil {
		txn.Abort()
		return failure.Wrap(failure.Temporary, err, "store: map %s", name)
	}
	txn.Commit()
	s.publish()
	return nil
}

// publish copies the committed rows into a new view. Called with s.mu held.
func (s *Store) publish() {
	v := &view{tables: map[string]*table{}, rev: s.rev}
	for _, r := range s.rows() {
		v.tables[r.Name] = r.Table
	}
	s.view.Store(v)
}

// rows returns the committed rows in name order.
func (s *Store) rows() []*row {
	it, err := s.db.Txn(false).Get(memTable, "id")
	if err != nil {
		panic("store: memdb schema: " + err.Error()) // the schema above has this index
	}
	var rows []*row
	for obj := it.Next(); obj != nil; obj = it.Next() {
		rows = append(rows, obj.(*row))
	}
	return rows
}

// Has reports whether the store has a map named name.
func (s *Store) Has(name string) bool {
	_, ok := s.view.Load().tables[name]
	return ok
}

// Lookup returns the value of key k in map name, following the map's match
// (see the package documentation). An unknown map is a Permanent failure; a
// key that is not there is failure.ErrNotFound.
func (s *Store) Lookup(name, k string) (string, error) {
	t := s.view.Load().tables[name]
	if t == nil {
		return "", failure.Perm("unknown map %s", name)
	}
	if k == "" {
		return "", failure.ErrNotFound
	}
	k = key.Fold(k)
	if v, ok := t.get(k); ok {
		return v, nil
	}
	if t.match == Address {
		if v, ext, ok := t.lookupAddress(k, s.delims); ok {
			if ext != "" && t.propagate {
				v = addExtension(v, ext)
			}
			return v, nil
		}
	}
	return "", failure.ErrNotFound
}

// lookupAddress tries the shorter forms of key (steps 2 and 3), the full
// key having been tried already. ext is the extension (with its delimiter)
// that step 2 cut off, when step 2 matched.
func (t *table) lookupAddress(key, delims string) (v, ext string, ok bool) {
	local, domain := key, ""
	if at := strings.LastIndexByte(key, '@'); at >= 0 {
		local, domain = key[:at], key[at:]
	}
	if n := address.ExtensionAt(local, delims); n > 0 {
		var buf [256]byte
		b := append(buf[:0], local[:n]...)
		b = append(b, domain...)
		if v, ok := t.getBytes(b); ok { // no allocation
			return v, local[n:], true
		}
	}
	if local != "" && len(domain) > 1 {
		if v, ok := t.get(domain); ok {
			return v, "", true
		}
	}
	return "", "", false
}

// addExtension inserts ext before the "@" of every address in the
// comma- or space-separated list v (at the end of one without "@"), unless
// that address has an extension already; the list comes back joined by
// ", ". This is what Postfix does to a result found without the extension:
// "joe@example.com  joe.user@example.net" answers "joe+foo@example.com"
// with "joe.user+foo@example.net".
func addExtension(v, ext string) string {
	addrs := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for i, a := range addrs {
		local, domain := a, ""
		if at := strings.LastIndexByte(a, '@'); at >= 0 {
			local, domain = a[:at], a[at:]
		}
		if strings.ContainsRune(local, rune(ext[0])) {
			continue
		}
		addrs[i] = local + ext + domain
	}
	return strings.Join(addrs, ", ")
}
