package mapfile

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it accepts keeps
// the package's promises. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, warnings, err := Parse(bytes.NewReader(data), "fuzz")
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
			if FoldKey(e.Key) != e.Key {
				t.Fatalf("key %q not folded", e.Key)
			}
			if isSpace(e.Value[0]) || isSpace(e.Value[len(e.Value)-1]) {
				t.Fatalf("value %q not trimmed", e.Value)
			}
			if n, ok := splitKey([]byte(e.Key)); !ok || n != len(e.Key) {
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
		}
	})
}
