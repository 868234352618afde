package etcdsource

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/export"
	"github.com/mapdrop/mapdrop/tables/store"
)

// Cache format
//
// The cache directory holds one manifest, CACHEDIR/manifest, and one file
// per served map version. The manifest is text:
//
//	mapdrop-etcd-cache 1
//	prefix PREFIX
//	revision REV
//	map NAME VERSION FILE      (one line per map, FILE a base name in CACHEDIR)
//
// A map file is "mapdrop-etcd-map 1", then "entries N", then N lines
// `QKEY QVALUE`, each Go-quoted (strconv.Quote), in key order. A map file
// is never rewritten: a changed map gets a new file, named after its map
// and the revision that changed it; the manifest is replaced last, by
// rename after fsync, and files it no longer names are then removed. So
// the manifest always names a complete, consistent set of maps, all at its
// revision.
//
// Every file is written as export.WriteWith writes (a locked temporary
// file .FILE.tmp-*, fsync, rename, fsync of the directory), mode
// cacheMode; temporary files left by a writer that died go with the
// unreferenced map files (export.RemoveStale).

const (
	manifestName   = "manifest"
	manifestHeader = "mapdrop-etcd-cache 1"
	mapHeader      = "mapdrop-etcd-map 1"
)

// cacheMode is the mode of the cache's files. They hold the maps' data,
// which only mapdropd reads: not for everyone, unlike the cdb files that
// Postfix's daemons read (export.FileMode, 0644).
const cacheMode os.FileMode = 0o640

// cachedMap is one map of a cache.
type cachedMap struct {
	version string
	file    string
	tree    *store.Tree
}

// writeMapFile writes tree to a new file named file in dir.
func writeMapFile(dir, file string, tree *store.Tree) error {
	return writeAtomic(dir, file, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "%s\nentries %d\n", mapHeader, tree.Len())
		var buf []byte
		tree.Walk(func(k, v string) bool {
			buf = strconv.AppendQuote(buf[:0], k)
			buf = append(buf, ' ')
			buf = strconv.AppendQuote(buf, v)
			buf = append(buf, '\n')
			w.Write(buf)
			return true
		})
		return nil
	})
}

// writeManifest replaces the manifest of dir.
func writeManifest(dir, prefix string, rev int64, maps map[string]cachedMap) error {
	return writeAtomic(dir, manifestName, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "%s\nprefix %s\nrevision %d\n", manifestHeader, strconv.Quote(prefix), rev)
		for _, name := range sortedNames(maps) {
			m := maps[name]
			fmt.Fprintf(w, "map %s %s %s\n", name, m.version, m.file)
		}
		return nil
	})
}

// removeUnreferenced removes the map files of dir that maps does not name,
// and the temporary files of writers that died.
func removeUnreferenced(dir string, maps map[string]cachedMap) {
	keep := map[string]bool{manifestName: true}
	for _, m := range maps {
		keep[m.file] = true
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if n := de.Name(); !keep[n] && strings.HasSuffix(n, ".map") {
			os.Remove(filepath.Join(dir, n))
		}
	}
	export.RemoveStale(dir)
}

// writeAtomic replaces dir/file, mode cacheMode, with what fill writes
// through a buffer (export.WriteWith).
func writeAtomic(dir, file string, fill func(*bufio.Writer) error) error {
	return export.WriteWith(dir, file, cacheMode, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 1<<16)
		if err := fill(w); err != nil {
			return err
		}
		return w.Flush()
	})
}

// readCache reads the cache of dir, written for prefix. A missing manifest
// is failure.NoInput; anything wrong in it or its files is a Permanent
// failure.
func readCache(dir, prefix string) (rev int64, maps map[string]cachedMap, err error) {
	f, err := os.Open(filepath.Join(dir, manifestName))
	if err != nil {
		return 0, nil, failure.Wrap(failure.NoInput, err, "etcd cache")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	bad := func(format string, args ...any) error {
		return failure.Perm("etcd cache %s: %s", filepath.Join(dir, manifestName), fmt.Sprintf(format, args...))
	}
	line := func() string {
		if sc.Scan() {
			return sc.Text()
		}
		return ""
	}
	if line() != manifestHeader {
		return 0, nil, bad("not a mapdrop etcd cache")
	}
	p, ok := strings.CutPrefix(line(), "prefix ")
	if q, err := strconv.Unquote(p); !ok || err != nil || q != prefix {
		return 0, nil, bad("written for prefix %s, not %q", p, prefix)
	}
	r, ok := strings.CutPrefix(line(), "revision ")
	if rev, err = strconv.ParseInt(r, 10, 64); !ok || err != nil {
		return 0, nil, bad("no revision")
	}
	maps = map[string]cachedMap{}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || fields[0] != "map" || strings.ContainsRune(fields[3], '/') {
			return 0, nil, bad("bad line %q", sc.Text())
		}
		tree, err := readMapFile(filepath.Join(dir, fields[3]))
		if err != nil {
			return 0, nil, err
		}
		maps[fields[1]] = cachedMap{version: fields[2], file: fields[3], tree: tree}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, bad("%v", err)
	}
	return rev, maps, nil
}

// readMapFile reads one map file of a cache.
func readMapFile(path string) (*store.Tree, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "etcd cache")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 8<<20)
	bad := func(n int, why string) error {
		return failure.Perm("etcd cache %s:%d: %s", path, n, why)
	}
	if !sc.Scan() || sc.Text() != mapHeader {
		return nil, bad(1, "not a mapdrop etcd cache map")
	}
	want := -1
	if sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "entries "); ok {
			want, _ = strconv.Atoi(n)
		}
	}
	if want < 0 {
		return nil, bad(2, "no entry count")
	}
	x := store.NewTree().Txn()
	n := 0
	for sc.Scan() {
		line := sc.Text()
		qk, err := strconv.QuotedPrefix(line)
		if err != nil || len(line) <= len(qk) || line[len(qk)] != ' ' {
			return nil, bad(n+3, "bad entry")
		}
		k, err1 := strconv.Unquote(qk)
		v, err2 := strconv.Unquote(line[len(qk)+1:])
		if err1 != nil || err2 != nil {
			return nil, bad(n+3, "bad entry")
		}
		x.Put(k, v)
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "etcd cache %s", path)
	}
	if n != want {
		return nil, bad(n+3, fmt.Sprintf("%d entries, the header says %d (truncated?)", n, want))
	}
	return x.Commit(), nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
