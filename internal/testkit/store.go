package testkit

import (
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/store"
)

// Store returns a table store, recipient delimiter "+", holding one map:
// text parsed as a map file and installed under name with the match its name
// gives it, as mapdropd loads a file.
func Store(t testing.TB, name, text string) *store.Store {
	t.Helper()
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	table, _, err := mapfile.ParseTable(strings.NewReader(text), name, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceTable(name, store.MatchForName(name), table); err != nil {
		t.Fatal(err)
	}
	return st
}
