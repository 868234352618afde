package store

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/mapfile"
)

// TestApplyIncremental: a map set from a tree answers like a file map
// (address forms, extension propagation), then single keys change and
// disappear, and the revisions are recorded.
func TestApplyIncremental(t *testing.T) {
	s := newStore(t, "+")
	x := NewTree().Txn()
	x.Put("Joe@Example.com", "joe.user@example.net")
	x.Put("@example.com", "catchall@example.net")
	var b Batch
	b.SetMap("virtual_alias", Address, x.Commit())
	if err := s.Apply(7, &b); err != nil {
		t.Fatal(err)
	}
	want := func(k, v string) {
		t.Helper()
		got, err := s.Lookup("virtual_alias", k)
		if v == "" {
			if failure.KindOf(err) != failure.NotFound {
				t.Errorf("%s: %q, %v; want not found", k, got, err)
			}
			return
		}
		if err != nil || got != v {
			t.Errorf("%s: %q, %v; want %q", k, got, err, v)
		}
	}
	want("joe+foo@example.com", "joe.user+foo@example.net")
	want("nobody@example.com", "catchall@example.net")
	if s.Revision() != 7 {
		t.Errorf("revision %d, want 7", s.Revision())
	}
	b = Batch{}
	b.Put("virtual_alias", "ann@example.com", "ann@example.net")
	b.Delete("virtual_alias", "@example.com")
	if err := s.Apply(9, &b); err != nil {
		t.Fatal(err)
	}
	want("ann@example.com", "ann@example.net")
	want("nobody@example.com", "")
	want("joe@example.com", "joe.user@example.net")
	if ok, changed := s.Incremental("virtual_alias"); !ok || changed != 9 {
		t.Errorf("Incremental: %v %d, want true 9", ok, changed)
	}
	x2, err := s.Explain("virtual_alias", "ann@example.com")
	if err != nil || !x2.Incremental || x2.Revision != 9 || !x2.Found {
		t.Errorf("Explain: %+v, %v", x2, err)
	}
	// A Put on a file map or a missing map refuses the whole batch.
	b = Batch{}
	b.Put("virtual_alias", "zed@example.com", "z")
	b.Put("nosuch", "k", "v")
	if err := s.Apply(10, &b); failure.KindOf(err) != failure.Permanent {
		t.Fatalf("Apply on a missing map: %v, want Permanent", err)
	}
	want("zed@example.com", "")
	if s.Revision() != 9 {
		t.Errorf("revision after refused batch %d, want 9", s.Revision())
	}
	b = Batch{}
	b.RemoveMap("virtual_alias")
	if err := s.Apply(11, &b); err != nil {
		t.Fatal(err)
	}
	if s.Has("virtual_alias") {
		t.Error("removed map still there")
	}
}

// TestFileCannotReplaceIncremental: ReplaceTable refuses a map that Apply
// set (an etcd map), which keeps answering; a file map that Apply's SetMap
// replaces is an incremental map from then on.
func TestFileCannotReplaceIncremental(t *testing.T) {
	s := newStore(t, "+")
	x := NewTree().Txn()
	x.Put("joe@example.com", "from-etcd@example.net")
	var b Batch
	b.SetMap("virtual_alias", Address, x.Commit())
	if err := s.Apply(3, &b); err != nil {
		t.Fatal(err)
	}
	err := s.ReplaceTable("virtual_alias", Address, entryTable([]mapfile.Entry{{Key: "joe@example.com", Value: "from-file@example.net"}}))
	if failure.KindOf(err) != failure.Permanent || !strings.Contains(err.Error(), "incremental map") {
		t.Errorf("ReplaceTable over an incremental map: %v, want a Permanent refusal", err)
	}
	if v, err := s.Lookup("virtual_alias", "joe@example.com"); err != nil || v != "from-etcd@example.net" {
		t.Errorf("after the refused ReplaceTable: %q, %v; want the incremental map's answer", v, err)
	}
	if ok, _ := s.Incremental("virtual_alias"); !ok {
		t.Error("the map is no longer incremental")
	}
	// The other way round: Apply may take over a file map.
	mustReplace(t, s, "virtual_mailbox", Exact, []mapfile.Entry{{Key: "k", Value: "file"}})
	x = NewTree().Txn()
	x.Put("k", "etcd")
	b = Batch{}
	b.SetMap("virtual_mailbox", Exact, x.Commit())
	if err := s.Apply(4, &b); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Lookup("virtual_mailbox", "k"); err != nil || v != "etcd" {
		t.Errorf("after SetMap over a file map: %q, %v; want etcd", v, err)
	}
	if err := s.ReplaceTable("virtual_mailbox", Exact, entryTable([]mapfile.Entry{{Key: "k", Value: "file2"}})); err == nil {
		t.Error("ReplaceTable over a map that SetMap took over: accepted")
	}
	// Once the incremental map is removed, a file may set the name again.
	b = Batch{}
	b.RemoveMap("virtual_alias")
	if err := s.Apply(5, &b); err != nil {
		t.Fatal(err)
	}
	mustReplace(t, s, "virtual_alias", Address, []mapfile.Entry{{Key: "joe@example.com", Value: "from-file@example.net"}})
	if v, err := s.Lookup("virtual_alias", "joe@example.com"); err != nil || v != "from-file@example.net" {
		t.Errorf("file map after the incremental one was removed: %q, %v", v, err)
	}
}

// TestApplyAtomic: readers never see half of a batch. Every batch sets
// every key of two maps to the same generation number; a reader that
// reads a key of each map inside one view would see equal numbers, and
// Explain/Lookup across calls never go backwards.
func TestApplyAtomic(t *testing.T) {
	s := newStore(t, "")
	const keys = 50
	var b Batch
	for _, m := range []string{"a", "b"} {
		x := NewTree().Txn()
		for k := 0; k < keys; k++ {
			x.Put(fmt.Sprint("k", k), "0")
		}
		b.SetMap(m, Exact, x.Commit())
	}
	if err := s.Apply(1, &b); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tr, _, _, _ := s.Tree("a")
				first, _ := tr.Get("k0")
				for k := 1; k < keys; k++ {
					if v, _ := tr.Get(fmt.Sprint("k", k)); v != first {
						bad.Add(1)
					}
				}
			}
		}()
	}
	for gen := 1; gen <= 200; gen++ {
		var b Batch
		for _, m := range []string{"a", "b"} {
			for k := 0; k < keys; k++ {
				b.Put(m, fmt.Sprint("k", k), fmt.Sprint(gen))
			}
		}
		if err := s.Apply(int64(gen+1), &b); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d reads saw a half-applied batch", bad.Load())
	}
	if v, _ := s.Lookup("b", "k49"); v != "200" {
		t.Errorf("b k49 = %q, want 200", v)
	}
}

// TestTreeMemoryPerEntry measures the heap an incremental map costs per
// entry (keys and values included), against the 600-byte budget, and
// that a single-key change of a big map allocates a few hundred bytes,
// not a copy of the map.
func TestTreeMemoryPerEntry(t *testing.T) {
	const n = 200_000
	keys := make([]string, n)
	vals := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%d@domain%d.example", i, i%1000)
		vals[i] = fmt.Sprintf("target%d@else.example", i)
	}
	s := newStore(t, "+")
	before := heapInuse()
	x := NewTree().Txn()
	for i := range keys {
		x.Put(keys[i], vals[i])
	}
	var b Batch
	b.SetMap("virtual_alias", Address, x.Commit())
	if err := s.Apply(1, &b); err != nil {
		t.Fatal(err)
	}
	keys, vals, x = nil, nil, nil
	after := heapInuse()
	per := float64(after-before) / n
	t.Logf("%d entries: %.0f bytes/entry of heap (keys and values included)", n, per)
	if per >= 600 {
		t.Errorf("%.0f bytes/entry, want < 600", per)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b = Batch{}
	b.Put("virtual_alias", "user5@domain5.example", "changed@else.example")
	if err := s.Apply(2, &b); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	alloc := ms1.TotalAlloc - ms0.TotalAlloc
	t.Logf("single-key change of a %d-entry map allocated %d bytes", n, alloc)
	if alloc > 64<<10 {
		t.Errorf("single-key change allocated %d bytes: the map was copied", alloc)
	}
	if v, _ := s.Lookup("virtual_alias", "user5+x@domain5.example"); v != "changed+x@else.example" {
		t.Errorf("after change: %q", v)
	}
}

// TestTreeLookupAllocs: a lookup in an incremental map does not allocate.
func TestTreeLookupAllocs(t *testing.T) {
	s := newStore(t, "+")
	x := NewTree().Txn()
	x.Put("joe@example.com", "j@example.net")
	var b Batch
	b.SetMap("virtual_mailbox", Address, x.Commit())
	if err := s.Apply(1, &b); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := s.Lookup("virtual_mailbox", "joe+x@example.com"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per lookup, want 0", n)
	}
}
