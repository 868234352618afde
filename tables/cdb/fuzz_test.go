package cdb_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mapdrop/mapdrop/tables/cdb"
)

// decodePairs turns fuzz input into records: lines separated by '\n', each
// split at its first '=' into key and data (no '=' means empty data).
func decodePairs(b []byte) []pair {
	var pairs []pair
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, _ := bytes.Cut(line, []byte("="))
		pairs = append(pairs, pair{string(k), string(v)})
	}
	return pairs
}

// FuzzCDB writes the records decoded from the input and reads every key
// back: each finds the data of its first record, and keys that were not
// written are not found.
func FuzzCDB(f *testing.F) {
	f.Add([]byte("a=1\nb=2"))
	f.Add([]byte("dup=first\ndup=second\n=empty key\nempty value="))
	f.Fuzz(func(t *testing.T, in []byte) {
		pairs := decodePairs(in)
		checkRecords(t, build(t, pairs), pairs, func(k string) []string {
			return []string{k + "\x00", k + "=", "\n" + k}
		})
	})
}

// FuzzLookup reads arbitrary bytes as a cdb file: Lookup must end without a
// panic, and its only errors are ErrCorrupt.
func FuzzLookup(f *testing.F) {
	f.Add(build(f, []pair{{"key", "value"}, {"k2", "v2"}}), []byte("key"))
	f.Add(make([]byte, 2048), []byte(""))
	f.Fuzz(func(t *testing.T, data, key []byte) {
		v, ok, err := cdb.Lookup(bytes.NewReader(data), key)
		if err != nil && !errors.Is(err, cdb.ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		if err != nil && ok {
			t.Fatalf("found %q with error %v", v, err)
		}
	})
}
