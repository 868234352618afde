package store

import (
	iradix "github.com/hashicorp/go-immutable-radix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/key"
)

// Incremental maps
//
// A map that changes key by key (one served from etcd) is held as a Tree,
// an immutable radix tree (go-immutable-radix, the tree under go-memdb)
// from folded key to value. Changing one key copies only the nodes on that
// key's path (a few hundred bytes, whatever the map's size), so a
// single-key edit of a million-entry map does not copy or rebuild the map;
// the previous tree stays valid for readers that still hold it. Apply
// installs a batch of such changes, to any number of maps, as one memdb
// transaction and one published view, so a lookup sees all of a batch or
// none of it. The tree costs about 450 bytes per entry beyond the key and
// value bytes (TestTreeMemoryPerEntry), against about 50 for a file map's
// Go map; lookups in it are measured against file maps by lookupbench.

// Tree is an immutable map from folded key to value. The zero Tree is not
// usable; start from NewTree. A Tree may be read from any number of
// goroutines.
type Tree struct {
	t *iradix.Tree
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{t: iradix.New()} }

// Len is the number of entries.
func (t *Tree) Len() int { return t.t.Len() }

// Get returns the value of key k, folded with key.Fold.
func (t *Tree) Get(k string) (string, bool) {
	return t.getBytes([]byte(key.Fold(k)))
}

func (t *Tree) getBytes(b []byte) (string, bool) {
	v, ok := t.t.Root().Get(b)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// Walk calls fn with every entry in key order until fn returns false.
func (t *Tree) Walk(fn func(k, v string) bool) {
	t.t.Root().Walk(func(k []byte, v any) bool {
		return !fn(string(k), v.(string))
	})
}

// Txn starts a set of changes to t; t itself never changes.
func (t *Tree) Txn() *TreeTxn {
	x := t.t.Txn()
	x.TrackMutate(false)
	return &TreeTxn{x: x}
}

// TreeTxn collects changes to a Tree. Nodes it creates are changed in
// place by its later changes, so building a large tree in one TreeTxn
// costs no more than building it once. It is not safe for concurrent use.
type TreeTxn struct {
	x *iradix.Txn
}

// Put sets key k (folded with key.Fold) to v.
func (x *TreeTxn) Put(k, v string) {
	x.x.Insert([]byte(key.Fold(k)), v)
}

// Delete removes key k (folded with key.Fold), if present.
func (x *TreeTxn) Delete(k string) {
	x.x.Delete([]byte(key.Fold(k)))
}

// Commit returns the tree with the changes made so far. The TreeTxn may go
// on changing; the returned tree does not see those changes.
func (x *TreeTxn) Commit() *Tree {
	return &Tree{t: x.x.CommitOnly()}
}

// Batch is a set of changes to a store's incremental maps that Apply
// installs at once. The zero Batch is empty and ready to use.
type Batch struct {
	ops []batchOp
}

type batchOp struct {
	kind  int // opSet, opPut, opDelete, opRemove
	name  string
	match Match
	tree  *Tree
	k, v  string
}

const (
	opSet = iota
	opPut
	opDelete
	opRemove
)

// SetMap makes tree the whole contents of map name, looked up by match.
func (b *Batch) SetMap(name string, match Match, tree *Tree) {
	b.ops = append(b.ops, batchOp{kind: opSet, name: name, match: match, tree: tree})
}

// Put sets key k of incremental map name (set by SetMap, now or earlier)
// to v.
func (b *Batch) Put(name, k, v string) {
	b.ops = append(b.ops, batchOp{kind: opPut, name: name, k: k, v: v})
}

// Delete removes key k of incremental map name.
func (b *Batch) Delete(name, k string) {
	b.ops = append(b.ops, batchOp{kind: opDelete, name: name, k: k})
}

// RemoveMap removes map name from the store: it answers "unknown map".
func (b *Batch) RemoveMap(name string) {
	b.ops = append(b.ops, batchOp{kind: opRemove, name: name})
}

// Len is the number of changes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Apply installs every change of b, in order, in one memdb write
// transaction, and makes rev the store's revision (Revision, and
// Explanation.Revision); each map it changes records rev as the revision
// that last changed it. A concurrent Lookup sees the store as it was
// before b or as it is after, never in between. A Put or Delete on a map
// that is not an incremental map (a file map, or none) is a Permanent
// failure, and then nothing of b is applied.
func (s *Store) Apply(rev int64, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.view.Load().tables
	changed := map[string]*table{}
	removed := map[string]bool{}
	txns := map[string]*TreeTxn{}
	get := func(name string) *table {
		if t, ok := changed[name]; ok {
			return t
		}
		if removed[name] {
			return nil
		}
		return cur[name]
	}
	for _, op := range b.ops {
		if op.name == "" {
			return failure.Perm("store: empty map name")
		}
		switch op.kind {
		case opSet:
			if op.match != Exact && op.match != Address {
				return failure.Perm("store: map %s: invalid match %d", op.name, int(op.match))
			}
			if op.tree == nil {
				return failure.Perm("store: map %s: no tree", op.name)
			}
			delete(txns, op.name)
			delete(removed, op.name)
			changed[op.name] = &table{match: op.match, propagate: op.match == Address && PropagatesExtension(op.name), tree: op.tree, rev: rev}
		case opPut, opDelete:
			t := get(op.name)
			if t == nil || t.tree == nil {
				return failure.Perm("store: map %s: not an incremental map", op.name)
			}
			x := txns[op.name]
			if x == nil {
				x = t.tree.Txn()
				txns[op.name] = x
				nt := *t
				changed[op.name] = &nt
			}
			if op.kind == opPut {
				x.Put(op.k, op.v)
			} else {
				x.Delete(op.k)
			}
		case opRemove:
			delete(txns, op.name)
			delete(changed, op.name)
			removed[op.name] = true
		}
	}
	for name, x := range txns {
		t := changed[name]
		t.tree, t.rev = x.Commit(), rev
	}
	txn := s.db.Txn(true)
	for name := range removed {
		if cur[name] == nil {
			continue
		}
		if _, err := txn.DeleteAll(memTable, "id", name); err != nil {
			txn.Abort()
			return failure.Wrap(failure.Temporary, err, "store: map %s", name)
		}
	}
	for name, t := range changed {
		if err := txn.Insert(memTable, &row{Name: name, Table: t}); err != nil {
			txn.Abort()
			return failure.Wrap(failure.Temporary, err, "store: map %s", name)
		}
	}
	txn.Commit()
	s.rev = rev
	s.publish()
	return nil
}

// Revision is the revision given to the last Apply (0 before any).
func (s *Store) Revision() int64 { return s.view.Load().rev }

// Incremental reports whether map name is an incremental map (set by
// Apply), and the revision that last changed it.
func (s *Store) Incremental(name string) (ok bool, changed int64) {
	t := s.view.Load().tables[name]
	if t == nil || t.tree == nil {
		return false, 0
	}
	return true, t.rev
}

// Tree returns the contents of incremental map name and its match, with
// the store's revision, all from one view.
func (s *Store) Tree(name string) (tree *Tree, match Match, rev int64, ok bool) {
	v := s.view.Load()
	t := v.tables[name]
	if t == nil || t.tree == nil {
		return nil, 0, v.rev, false
	}
	return t.tree, t.match, v.rev, true
}

// Names returns the names of the maps in the store, in name order.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, r := range s.rows() {
		names = append(names, r.Name)
	}
	return names
}
