package mapfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// errorTexts renders errors or warnings for comparison.
func errorTexts(es []*Error) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Error())
	}
	return s
}

func TestParseTableMatchesParse(t *testing.T) {
	src := "# header\n" +
		"User1@Some.Domain   user1@elsewhere.example\n" +
		"ÜMLÄUT@x Wert\n" +
		"long first\n  second\n" +
		"\"a\n b\"@x quoted across lines\n" + // the key itself continues
		"user1@some.domain dup\n" +
		"\"A B\"@X dup of the quoted key\n" +
		"plain v\n"
	entries, warnings, err := Parse(strings.NewReader(src), "f")
	if err != nil {
		t.Fatal(err)
	}
	for _, withEntries := range []bool{false, true} {
		tab, tw, err := ParseTable(strings.NewReader(src), "f", withEntries)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(errorTexts(tw), errorTexts(warnings)) {
			t.Errorf("withEntries=%v: warnings %q, Parse's %q", withEntries, errorTexts(tw), errorTexts(warnings))
		}
		if len(tab.Map) != len(entries) {
			t.Errorf("withEntries=%v: %d map entries, Parse has %d", withEntries, len(tab.Map), len(entries))
		}
		for _, e := range entries {
			if v, ok := tab.Map[e.Key]; !ok || v != e.Value {
				t.Errorf("withEntries=%v: Map[%q] = %q, %v; want %q", withEntries, e.Key, v, ok, e.Value)
			}
		}
		if withEntries && !slices.Equal(tab.Entries, entries) {
			t.Errorf("Entries = %+v, want %+v", tab.Entries, entries)
		}
		if !withEntries && tab.Entries != nil {
			t.Errorf("Entries = %+v without asking", tab.Entries)
		}
	}
	want := map[string]string{
		"user1@some.domain": "user1@elsewhere.example",
		"ümläut@x":          "Wert",
		"long":              "first  second",
		"\"a b\"@x":         "quoted across lines",
		"plain":             "v",
	}
	if len(entries) != len(want) {
		t.Fatalf("entries = %+v", entries)
	}
	for _, e := range entries {
		if want[e.Key] != e.Value {
			t.Errorf("%q = %q, want %q", e.Key, e.Value, want[e.Key])
		}
	}
}

func TestDuplicateWarningsNameTheFirstLine(t *testing.T) {
	src := "x 1\n" + // 1
		"\"a\n b\"@x v1\n" + // 2-3: key "a b"@x, starting at line 2
		"k first\n" + // 4
		"  more\n" + // 5
		"# comment\n" + // 6
		"K second\n" + // 7
		"\"A B\"@x v2\n" + // 8
		"k third\n" // 9
	_, warnings, err := ParseTable(strings.NewReader(src), "f", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`f:7: duplicate entry "k" (first at line 4, which wins)`,
		`f:8: duplicate entry "\"a b\"@x" (first at line 2, which wins)`,
		`f:9: duplicate entry "k" (first at line 4, which wins)`,
	}
	if got := errorTexts(warnings); !slices.Equal(got, want) {
		t.Errorf("warnings\n%q, want\n%q", got, want)
	}
	// With errors, the warnings are still returned, just as right.
	_, warnings, err = ParseTable(strings.NewReader(src+"novalue\n"), "f", false)
	if err == nil {
		t.Fatal("no error for a key without value")
	}
	if got := errorTexts(warnings); !slices.Equal(got, want) {
		t.Errorf("warnings with errors\n%q, want\n%q", got, want)
	}
}

func TestTooManyWarnings(t *testing.T) {
	var b strings.Builder
	b.WriteString("dup first\n")
	for i := range maxReported + 5 {
		fmt.Fprintf(&b, "dup %d\n", i)
	}
	tab, warnings, err := ParseTable(strings.NewReader(b.String()), "f", false)
	if err != nil || tab.Map["dup"] != "first" || len(tab.Map) != 1 {
		t.Fatalf("table %v, err %v", tab, err)
	}
	if len(warnings) != maxReported+1 {
		t.Fatalf("%d warnings, want %d", len(warnings), maxReported+1)
	}
	if w := warnings[0]; w.Line != 2 || !strings.Contains(w.Reason, "first at line 1") {
		t.Errorf("first warning %v", w)
	}
	if last := warnings[maxReported]; last.Line != maxReported+6 || !strings.Contains(last.Reason, "5 more warnings not shown") {
		t.Errorf("last warning %v", last)
	}
}

// TestParseFile reads through an *os.File, whose size ParseTable uses to
// size its buffer, with lines crossing every read boundary.
func TestParseFile(t *testing.T) {
	var b strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&b, "User%d@Domain%d.example\ttarget%d@else.example\n", i, i%7, i)
		if i%1000 == 0 {
			b.WriteString("# a comment\n  continued\n")
		}
	}
	src := b.String()
	file := filepath.Join(t.TempDir(), "map")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, warnings, err := ParseTable(f, file, true)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("warnings %v, err %v", warnings, err)
	}
	want, _, err := Parse(strings.NewReader(src), file)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 20_000 || !slices.Equal(tab.Entries, want) {
		t.Fatalf("file and string parse differ: %d vs %d entries", len(tab.Entries), len(want))
	}
	if e := tab.Entries[1000]; e.Key != "user1000@domain6.example" || e.Value != "target1000@else.example  continued" || e.Line != 1003 {
		t.Errorf("entry 1000 = %+v", e)
	}
	if len(tab.Map) != 20_000 || tab.Map["user19999@domain0.example"] != "target19999@else.example" {
		t.Errorf("map has %d entries", len(tab.Map))
	}
}

func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestTableDoesNotPinComments checks the promise of the Memory section: a
// table from a file that is mostly comments does not keep the file's text
// alive.
func TestTableDoesNotPinComments(t *testing.T) {
	const comments = 8 << 20
	before := heapAlloc()
	tab := func() *Table {
		src := strings.Repeat("# a comment line\n", comments/17) + "Key value\nk2 v2\n"
		tab, _, err := ParseTable(strings.NewReader(src), "f", true)
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}()
	held := heapAlloc() - before
	if tab.Map["key"] != "value" || tab.Map["k2"] != "v2" || len(tab.Entries) != 2 {
		t.Fatalf("table %+v", tab)
	}
	if held > comments/8 {
		t.Errorf("a 2-entry table holds %d bytes of heap", held)
	}
	runtime.KeepAlive(tab)
}
