package cdb_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/cdb"
)

// memFile is an in-memory io.WriteSeeker.
type memFile struct {
	buf []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.off + int64(len(p)); end > int64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, end-int64(len(m.buf)))...)
	}
	copy(m.buf[m.off:], p)
	m.off += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.buf))
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	m.off = off
	return off, nil
}

type pair struct{ k, v string }

func build(t testing.TB, pairs []pair) []byte {
	t.Helper()
	var m memFile
	w := cdb.NewWriter(&m)
	for _, p := range pairs {
		if err := w.Add([]byte(p.k), []byte(p.v)); err != nil {
			t.Fatalf("Add(%q): %v", p.k, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return m.buf
}

// checkRecords looks every key of pairs up in data, which must find the
// data of the key's first record, and each of absent(key) that is not a
// key of pairs, which must not be found.
func checkRecords(t testing.TB, data []byte, pairs []pair, absent func(key string) []string) {
	t.Helper()
	want := map[string]string{}
	for _, p := range pairs {
		if _, ok := want[p.k]; !ok {
			want[p.k] = p.v
		}
	}
	for k, v := range want {
		got, ok := mustLookup(t, data, k)
		if !ok || got != v {
			t.Errorf("Lookup(%q) = %q, %v; want %q", k, got, ok, v)
		}
		for _, a := range absent(k) {
			if _, ok := want[a]; ok {
				continue
			}
			if got, ok := mustLookup(t, data, a); ok {
				t.Errorf("Lookup(%q) found %q for an absent key", a, got)
			}
		}
	}
}

func mustLookup(t testing.TB, data []byte, key string) (string, bool) {
	t.Helper()
	v, ok, err := cdb.Lookup(bytes.NewReader(data), []byte(key))
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return string(v), ok
}

func TestHash(t *testing.T) {
	for _, c := range []struct {
		key  string
		want uint32
	}{
		{"", 5381},
		{"a", (5381*33 ^ 'a')},
		{"ab", ((5381*33^'a')*33 ^ 'b')},
		// Long enough to wrap round in 32 bits; value from a Python
		// transcription of the spec.
		{"foo@example.com", 3899853572},
	} {
		if got := cdb.Hash([]byte(c.key)); got != c.want {
			t.Errorf("Hash(%q) = %d, want %d", c.key, got, c.want)
		}
	}
}

func TestEmpty(t *testing.T) {
	data := build(t, nil)
	if len(data) != 2048 {
		t.Fatalf("empty cdb is %d bytes, want 2048", len(data))
	}
	for i := 0; i < 256; i++ {
		pos := binary.LittleEndian.Uint32(data[i*8:])
		n := binary.LittleEndian.Uint32(data[i*8+4:])
		if pos != 2048 || n != 0 {
			t.Fatalf("table %d = (%d,%d), want (2048,0)", i, pos, n)
		}
	}
	if _, ok := mustLookup(t, data, "x"); ok {
		t.Error("found a key in an empty cdb")
	}
}

func TestRoundTrip(t *testing.T) {
	pairs := []pair{
		{"", "empty key"},
		{"empty value", ""},
		{"foo@example.com", "bar"},
		{"ümläut", "ÜBER"},
		{"bin\x00ary\xff", "\x00\x01\x02"},
		{"dup", "first"},
		{"dup", "second"},
		{"long", strings.Repeat("0123456789", 1000)},
	}
	// Many keys that share a table force collisions and wrap-round probes.
	for i := range 2000 {
		pairs = append(pairs, pair{fmt.Sprintf("user%d@domain%d.example", i, i%13), fmt.Sprint(i)})
	}
	data := build(t, pairs)
	checkRecords(t, data, pairs, func(k string) []string { return []string{k + "x"} })
	if got, _ := mustLookup(t, data, "dup"); got != "first" {
		t.Errorf("duplicate key: got %q, want the first record", got)
	}
	// A key with a NUL appended is a different key.
	if _, ok := mustLookup(t, data, "foo@example.com\x00"); ok {
		t.Error("found foo@example.com\\x00")
	}
}

// parseSource reads the postmap source file the way postmap does for these
// simple lines: key, whitespace, value; keys folded to ASCII lower case (an
// empty main.cf, compatibility level 0).
func parseSource(t *testing.T, path string) []pair {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pairs []pair
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			k, v, _ = strings.Cut(sc.Text(), "\t")
		}
		k = strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, k)
		if seen[k] {
			continue
		}
		seen[k] = true
		pairs = append(pairs, pair{k, strings.Trim(v, " \t")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pairs
}

// TestPostmapGolden compares the writer, byte for byte, with the file that
// Postfix 3.7's "postmap cdb:testdata/postmap.src" built (tinycdb inside,
// empty main.cf) from the same records in the same order.
func TestPostmapGolden(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "postmap.cdb"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := parseSource(t, filepath.Join("testdata", "postmap.src"))
	got := build(t, pairs)
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("writer output (%d bytes) differs from postmap's (%d bytes) first at offset %d", len(got), len(want), n)
	}
	// And the reader reads postmap's file.
	for _, p := range pairs {
		if v, ok := mustLookup(t, want, p.k); !ok || v != p.v {
			t.Errorf("Lookup(postmap.cdb, %q) = %q, %v; want %q", p.k, v, ok, p.v)
		}
	}
}

func TestLookupCorrupt(t *testing.T) {
	data := build(t, []pair{{"key", "value"}, {"other", strings.Repeat("v", 100)}})
	// Truncations anywhere: an error, a miss or the right hit (when all
	// the parts the lookup reads are still there), never a panic.
	for n := 0; n < len(data); n++ {
		v, ok, err := cdb.Lookup(bytes.NewReader(data[:n]), []byte("other"))
		if ok && string(v) != strings.Repeat("v", 100) {
			t.Fatalf("truncated to %d bytes: found %q", n, v)
		}
		if err != nil && !errors.Is(err, cdb.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: error %v does not wrap ErrCorrupt", n, err)
		}
		if n < 2048 && err == nil {
			t.Fatalf("truncated to %d bytes (inside the header): no error", n)
		}
	}
	_, _, err := cdb.Lookup(bytes.NewReader(data[:100]), []byte("key"))
	if failure.KindOf(err) != failure.Permanent {
		t.Errorf("kind of %v = %v, want permanent", err, failure.KindOf(err))
	}
}

type failWriter struct {
	memFile
	after int // bytes accepted before failing
}

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(f.buf)+len(p) > f.after {
		return 0, errDiskFull
	}
	return f.memFile.Write(p)
}

func TestWriteErrorIsSticky(t *testing.T) {
	fw := &failWriter{after: 300 << 10}
	w := cdb.NewWriter(fw)
	var err error
	value := bytes.Repeat([]byte("v"), 1000)
	for i := 0; i < 1000 && err == nil; i++ {
		err = w.Add([]byte(fmt.Sprint(i)), value)
	}
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("Add error = %v, want disk full", err)
	}
	if err2 := w.Add([]byte("k"), nil); !errors.Is(err2, errDiskFull) {
		t.Errorf("Add after error = %v, want the same error", err2)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after error = %v, want the same error", err)
	}
	if err := w.Close(); !errors.Is(err, cdb.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// discardSeeker accepts everything and keeps nothing.
type discardSeeker struct{ n int64 }

func (d *discardSeeker) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discardSeeker) Seek(int64, int) (int64, error) {
	return 0, nil
}

func TestTooLarge(t *testing.T) {
	var d discardSeeker
	w := cdb.NewWriter(&d)
	value := make([]byte, 64<<20)
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = w.Add([]byte(fmt.Sprint(n)), value)
	}
	if !errors.Is(err, cdb.ErrTooLarge) {
		t.Fatalf("after %d records of 64 MiB: err = %v, want ErrTooLarge", n, err)
	}
	// 63 records fit (63 * 64 MiB + header + lengths < 4 GiB), the 64th not.
	if n != 64 {
		t.Errorf("ErrTooLarge on record %d, want 64", n)
	}
	if failure.KindOf(err) != failure.Permanent {
		t.Errorf("ErrTooLarge is %v, want permanent", failure.KindOf(err))
	}
	if d.n > 1<<32 {
		t.Errorf("wrote %d bytes, more than 4 GiB", d.n)
	}
}

// TestLarge writes a million records to a real file and checks that memory
// stays bounded: records are streamed, only 8 bytes per record are kept.
func TestLarge(t *testing.T) {
	const n = 1_000_000
	if testing.Short() {
		t.Skip("large table")
	}
	path := filepath.Join(t.TempDir(), "large.cdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := cdb.NewWriter(f)
	key := make([]byte, 0, 64)
	value := bytes.Repeat([]byte("v"), 100)
	for i := range n {
		key = largeKey(key[:0], i)
		if err := w.Add(key, value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// The records alone are ~150 MB; the slot lists need 8 MB (8 bytes a
	// record, never copied), plus buffers. Allow 16 MB in all.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("writing %d records (%d byte file) allocated %d bytes", n, st.Size(), alloc)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 997 {
		k := fmt.Sprintf("user%d@domain%d.example", i, i%1000)
		if v, ok := mustLookup(t, data, k); !ok || v != string(value) {
			t.Fatalf("Lookup(%q) = %d bytes, %v", k, len(v), ok)
		}
	}
	if _, ok := mustLookup(t, data, "user1@domain2.example"); ok {
		t.Error("found an absent key")
	}
}

// largeKey appends user<i>@domain<i%1000>.example to b without allocating.
func largeKey(b []byte, i int) []byte {
	b = append(b, "user"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "@domain"...)
	b = strconv.AppendInt(b, int64(i%1000), 10)
	return append(b, ".example"...)
}

func BenchmarkWrite1M(b *testing.B) {
	dir := b.TempDir()
	value := []byte("uid=1000 gid=1000 home=/home/vmail/example.com/user")
	for b.Loop() {
		f, err := os.Create(filepath.Join(dir, "b.cdb"))
		if err != nil {
			b.Fatal(err)
		}
		w := cdb.NewWriter(f)
		key := make([]byte, 0, 64)
		for i := range 1_000_000 {
			key = largeKey(key[:0], i)
			if err := w.Add(key, value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
