package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// tables answers the server's lookups from the store, and explains them
// (server.Explainer) with the source line of the entry that answers.
type tables struct {
	st *store.Store
	rl *reload.Reloader
}

// Lookup implements server.Tables.
func (t *tables) Lookup(_ context.Context, m, k string) (string, error) {
	return t.st.Lookup(m, k)
}

// HasMap reports whether map m exists (server.MapChecker).
func (t *tables) HasMap(m string) bool { return t.st.Has(m) }

// Explanation lines: the result line is what "mapdropd query -explain"
// reads to choose its exit status.
const (
	resultFound    = "result: found"
	resultNotFound = "result: not found"
)

// Explain implements server.Explainer. The text is one line per key
// tried, then "result: found" with the answer, or "result: not found":
//
//	map virtual_alias (address lookup)
//	try 1, full key: joe+foo@example.com: miss
//	try 2, without extension: joe@example.com: hit at /etc/mapdrop/tables/virtual_alias:12
//	extension "+foo" copied into the answer
//	result: found
//	answer: joe.user+foo@example.net
func (t *tables) Explain(_ context.Context, m, k string) (string, error) {
	x, err := t.st.Explain(m, k)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "map %s (%s lookup)\n", x.Map, x.Match)
	b.WriteString(etcdExplain(x))
	if len(x.Tries) == 0 {
		b.WriteString("empty key: nothing tried\n")
	}
	for i, try := range x.Tries {
		fmt.Fprintf(&b, "try %d, %s: %s: ", i+1, try.Step, try.Key)
		if !try.Hit {
			b.WriteString("miss\n")
			continue
		}
		if x.Incremental {
			b.WriteString("hit in the etcd map\n")
			continue
		}
		b.WriteString("hit at " + t.where(m, try.Key) + "\n")
	}
	if !x.Found {
		b.WriteString(resultNotFound)
		return b.String(), nil
	}
	if x.Extension != "" {
		fmt.Fprintf(&b, "extension %q copied into the answer\n", x.Extension)
	}
	b.WriteString(resultFound + "\nanswer: " + x.Value)
	return b.String(), nil
}

// where is FILE:LINE of the entry of key in map m, found in the text the
// map was loaded from.
func (t *tables) where(m, key string) string {
	file, text, err := t.rl.Source(m)
	if err != nil {
		return fmt.Sprintf("%s (line unknown: %v)", file, err)
	}
	if line := mapfile.LineOf(text, key); line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file + " (line not found)"
}
