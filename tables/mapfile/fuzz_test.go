package mapfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/format/key"
)

// FuzzParse checks that Parse never panics, that what it accepts keeps the
// package's promises, and that ParseTable agrees with it. The seed corpus is
// in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, warnings, err := Parse(bytes.NewReader(data), "fuzz")
		tab, tw, terr := ParseTable(bytes.NewReader(data), "fuzz", false)
		if (err == nil) != (terr == nil) || (err != nil && err.Error() != terr.Error()) {
			t.Fatalf("Parse error %v, ParseTable error %v", err, terr)
		}
		if len(tw) != len(warnings) {
			t.Fatalf("Parse warns %d times, ParseTable %d", len(warnings), len(tw))
		}
		for i := range tw {
			if *tw[i] != *warnings[i] {
				t.Fatalf("warning %d: Parse %v, ParseTable %v", i, warnings[i], tw[i])
			}
		}
		lines := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		inFile := func(what string, e *Error) {
			if e.File != "fuzz" || e.Line < 1 || e.Line > lines || e.Reason == "" {
				t.Fatalf("%s %+v outside the %d-line input", what, e, lines)
			}
		}
		for _, w := range warnings {
			inFile("warning", w)
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("err %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				inFile("error", e)
			}
			if entries != nil {
				t.Fatalf("entries returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		prev := 0
		for _, e := range entries {
			if e.Key == "" || e.Value == "" {
				t.Fatalf("empty key or value: %+v", e)
			}
			if key.Fold(e.Key) != e.Key {
				t.Fatalf("key %q not folded", e.Key)
			}
			if isSpace(e.Value[0]) || isSpace(e.Value[len(e.Value)-1]) {
				t.Fatalf("value %q not trimmed", e.Value)
			}
			if n, ok := splitKey(e.Key); !ok || n != len(e.Key) {
				t.Fatalf("key %q contains a separator", e.Key)
			}
			if e.Line < 1 || e.Line > lines || e.Line <= prev {
				t.Fatalf("line %d out of order or outside the %d-line input", e.Line, lines)
			}
			prev = e.Line
			if seen[e.Key] {
				t.Fatalf("duplicate key %q returned", e.Key)
			}
			seen[e.Key] = true
			if v, ok := tab.Map[e.Key]; !ok || v != e.Value {
				t.Fatalf("ParseTable has %q → %q, %v; Parse %q", e.Key, v, ok, e.Value)
			}
		}
		if len(tab.Map) != len(entries) {
			t.Fatalf("ParseTable has %d entries, Parse %d", len(tab.Map), len(entries))
		}
		// A duplicate warning names a line where an entry of that key starts.
		lineOf := map[int]string{}
		for _, e := range entries {
			lineOf[e.Line] = e.Key
		}
		for _, w := range warnings {
			var key string
			var first int
			if _, err := fmt.Sscanf(w.Reason, "duplicate entry %q (first at line %d, which wins)", &key, &first); err != nil {
				continue // "N more warnings", or a key cut short
			}
			if first >= w.Line || (!strings.HasSuffix(key, "...") && lineOf[first] != key) {
				t.Fatalf("warning %v: line %d has key %q", w, first, lineOf[first])
			}
		}
	})
}
