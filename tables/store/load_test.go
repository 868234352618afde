package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/tables/mapfile"
)

// writeAliases writes an n-entry virtual_alias source file: keys
// userN@domainM.example, values targetN@else.example.
func writeAliases(tb testing.TB, n int) string {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "virtual_alias")
	f, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# %d generated aliases\n", n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "user%d@domain%d.example\ttarget%d@else.example\n", i, i%1000, i)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return file
}

// load parses file and replaces map virtual_alias with it, the way the
// reloader does (mapfile.ParseTable, ReplaceTable).
func load(tb testing.TB, s *Store, file string) int {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	t, _, err := mapfile.ParseTable(f, file, false)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.ReplaceTable("virtual_alias", Address, t); err != nil {
		tb.Fatal(err)
	}
	return len(t.Map)
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// measureLoad loads an n-entry file and returns how long parse+ReplaceTable took
// and the heap the loaded table holds per entry.
func measureLoad(tb testing.TB, n int) (time.Duration, float64) {
	file := writeAliases(tb, n)
	s := newStore(tb, "+")
	before := heapInuse()
	start := time.Now()
	if got := load(tb, s, file); got != n {
		tb.Fatalf("loaded %d entries, want %d", got, n)
	}
	took := time.Since(start)
	after := heapInuse()
	if v, err := s.Lookup("virtual_alias", fmt.Sprintf("user%d+x@domain%d.example", n-1, (n-1)%1000)); err != nil || v != fmt.Sprintf("target%d+x@else.example", n-1) {
		tb.Fatalf("lookup after load: %q, %v", v, err)
	}
	runtime.KeepAlive(s)
	return took, float64(after-before) / float64(n)
}

// TestTableMemory checks the heap a loaded table costs per entry (not a
// timing). The 1,000,000-entry version is TestLoad1M.
func TestTableMemory(t *testing.T) {
	_, perEntry := measureLoad(t, 100_000)
	t.Logf("100k entries: %.0f bytes/entry of heap", perEntry)
	if perEntry >= 600 {
		t.Errorf("%.0f bytes/entry of heap, want < 600", perEntry)
	}
}

// TestLoad1M measures the performance target on a 1,000,000-entry map
// (load faster than postmap lmdb's 1.3 s, < 600 bytes/entry of heap). It is slow
// and the machine is shared, so it only runs with MAPDROP_LOAD1M=1 and only
// reports the duration.
func TestLoad1M(t *testing.T) {
	if os.Getenv("MAPDROP_LOAD1M") == "" {
		t.Skip("set MAPDROP_LOAD1M=1 to run")
	}
	took, perEntry := measureLoad(t, 1_000_000)
	t.Logf("1M entries: parse+ReplaceTable %v, %.0f bytes/entry of heap", took, perEntry)
	if perEntry >= 600 {
		t.Errorf("%.0f bytes/entry of heap, want < 600", perEntry)
	}
}

// BenchmarkLoad1M is ParseTable+ReplaceTable of a 1,000,000-entry
// virtual_alias file, as the reloader loads it.
func BenchmarkLoad1M(b *testing.B) {
	file := writeAliases(b, 1_000_000)
	s := newStore(b, "+")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		load(b, s, file)
	}
}

// BenchmarkLoad1MEntries is the same load through Parse and a table built
// from the entries (a second map): what loading with ParseTable saves.
func BenchmarkLoad1MEntries(b *testing.B) {
	file := writeAliases(b, 1_000_000)
	s := newStore(b, "+")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		entries, _, err := mapfile.Parse(f, file)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.ReplaceTable("virtual_alias", Address, entryTable(entries)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStore(b *testing.B) *Store {
	s := newStore(b, "+")
	var es []mapfile.Entry
	for i := 0; i < 100_000; i++ {
		es = append(es, mapfile.Entry{Key: fmt.Sprintf("user%d@domain%d.example", i, i%1000), Value: "t@else.example"})
	}
	es = append(es, mapfile.Entry{Key: "@catchall.example", Value: "c@else.example"})
	mustReplace(b, s, "virtual_alias", Address, es)
	return s
}

// BenchmarkLookup is the hot path, per address form.
func BenchmarkLookup(b *testing.B) {
	s := benchStore(b)
	for _, key := range []string{"user4242@domain242.example", "User4242@Domain242.Example", "user4242+ext@domain242.example", "anyone+ext@catchall.example", "nobody@nowhere.example"} {
		b.Run(key, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = s.Lookup("virtual_alias", key)
			}
		})
	}
}

// BenchmarkLookupViaMemdb is what Lookup would cost if it read the row
// through a memdb read transaction, for the package documentation.
func BenchmarkLookupViaMemdb(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		obj, err := s.db.Txn(false).First(memTable, "id", "virtual_alias")
		if err != nil {
			b.Fatal(err)
		}
		_ = obj.(*row).Table.m["user4242@domain242.example"]
	}
}
