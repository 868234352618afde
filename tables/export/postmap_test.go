package export_test

import (
	"bufio"
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/tables/export"
)

// postfix finds postmap and checks that it supports cdb. Without it the
// test is skipped, or fails when CI=true or MAPDROP_REQUIRE_POSTFIX=1.
func postfix(t *testing.T) (postmap string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if postfixtest.Required() {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	postmap = postfixtest.Postmap(t)
	postconf := filepath.Join(filepath.Dir(postmap), "postconf")
	out, err := exec.Command(postconf, "-c", config(t, ""), "-m").Output()
	if err != nil {
		missing("postconf -m: %v", err)
	}
	if !slices.Contains(strings.Fields(string(out)), "cdb") {
		missing("Postfix has no cdb support (install postfix-cdb); postconf -m: %q", out)
	}
	return postmap
}

// config makes a Postfix configuration directory whose main.cf holds text.
// An empty main.cf means compatibility_level 0: lookups fold ASCII only.
func config(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix keeps re-reading (every 0.3 s) a main.cf modified within the
	// last couple of seconds until it is older: date it an hour back.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return dir
}

// query runs "postmap -c cfg -q key map" and returns its output and exit
// status.
func query(t *testing.T, postmap, cfg, key, mapName string) (string, int) {
	t.Helper()
	cmd := exec.Command(postmap, "-c", cfg, "-q", key, mapName)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		if stderr.Len() > 0 {
			t.Logf("postmap -q %q %s: %s", key, mapName, stderr.Bytes())
		}
		return string(out), ee.ExitCode()
	}
	t.Fatalf("postmap: %v", err)
	return "", -1
}

// queryAll runs "postmap -c cfg -q - map" with keys on stdin and returns
// what it printed, "key<TAB>value" per found key.
func queryAll(t *testing.T, postmap, cfg string, keys []string, mapName string) map[string]string {
	t.Helper()
	cmd := exec.Command(postmap, "-c", cfg, "-q", "-", mapName)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postmap -q -: %v", err)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			t.Fatalf("postmap printed %q", sc.Text())
		}
		if _, dup := got[k]; dup {
			t.Fatalf("postmap printed key %q twice", k)
		}
		got[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// Alphabets of the generated table. Key letters are their own case fold in
// Postfix's ASCII and Unicode folding alike (no "ß", no final "ς").
var (
	asciiKey = []rune("abcdefghijklmnopqrstuvwxyz0123456789.-_+")
	utf8Key  = []rune("abcüéñøåçжщяλπ日本語中文😀")
	valueSet = []rune("abcXYZ0129 \t=:,;/@+-_.\"'!?ÜÄÖüäößЖжΛλ日本😀€")
)

func randString(r *rand.Rand, set []rune, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(set[r.IntN(len(set))])
	}
	return b.String()
}

// generate makes n distinct entries: ASCII and UTF-8 addresses, keys with
// inner spaces, bare domains, values with spaces, tabs, upper case and
// UTF-8, and long values.
func generate(n int) map[string]string {
	r := rand.New(rand.NewPCG(1, 2))
	m := make(map[string]string, n)
	for i := 0; len(m) < n; i++ {
		var k string
		switch i % 5 {
		case 0, 1:
			k = randString(r, asciiKey, 1+r.IntN(20)) + "@" + randString(r, asciiKey, 1+r.IntN(15)) + ".example"
		case 2:
			k = randString(r, utf8Key, 1+r.IntN(12)) + "@" + randString(r, utf8Key, 1+r.IntN(8)) + ".example"
		case 3:
			k = randString(r, asciiKey, 1+r.IntN(8)) + " " + randString(r, utf8Key, 1+r.IntN(8))
		case 4:
			k = randString(r, asciiKey, 1+r.IntN(30)) + ".example"
		}
		v := randString(r, valueSet, 1+r.IntN(60))
		if i%1000 == 7 {
			v = randString(r, valueSet, 4000+r.IntN(4000))
		}
		m[k] = v
	}
	m["huge@example.com"] = strings.Repeat("0123456789", 10_000)
	return m
}

// TestPostmapReadsSnapshot checks every entry of a generated 10,000 key
// table with Postfix's own reader of cdb: maps.
func TestPostmapReadsSnapshot(t *testing.T) {
	postmap := postfix(t)
	dir := t.TempDir()
	want := generate(10_000)
	if err := export.Snapshot(dir, "users", maps.All(want)); err != nil {
		t.Fatal(err)
	}
	mapName := "cdb:" + filepath.Join(dir, "users")
	level0 := config(t, "")

	keys := slices.Sorted(maps.Keys(want))
	absent := []string{"absent@example.com", "nobody@nowhere.example", "users", ""}
	got := queryAll(t, postmap, level0, append(slices.Clone(keys), absent...), mapName)
	for _, k := range keys {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("postmap does not find %q", k)
		case v != want[k]:
			t.Errorf("postmap -q %q = %q (%d bytes), want %q (%d bytes)", k, v, len(v), want[k], len(want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("postmap found %q, which is not in the table", k)
		}
	}

	// Exit codes of single queries.
	if out, code := query(t, postmap, level0, keys[0], mapName); code != 0 || out != want[keys[0]]+"\n" {
		t.Errorf("postmap -q %q: exit %d, output %q; want 0, %q", keys[0], code, out, want[keys[0]])
	}
	if out, code := query(t, postmap, level0, "absent@example.com", mapName); code != 1 || out != "" {
		t.Errorf("postmap -q absent: exit %d, output %q; want 1 and nothing", code, out)
	}
}

// TestPostmapCaseFolding records how Postfix folds the query key, so what
// callers must store: keys folded to lower case the way Postfix folds.
func TestPostmapCaseFolding(t *testing.T) {
	postmap := postfix(t)
	dir := t.TempDir()
	stored := map[string]string{
		"foo@example.com":    "ascii",
		"ümläut@example.com": "utf8",
		"straße@example.com": "sharp s",
		"strasse":            "ss",
	}
	if err := export.Snapshot(dir, "t", maps.All(stored)); err != nil {
		t.Fatal(err)
	}
	mapName := "cdb:" + filepath.Join(dir, "t")
	level0 := config(t, "")                             // ASCII folding only
	level36 := config(t, "compatibility_level = 3.6\n") // smtputf8: Unicode case folding
	for _, c := range []struct {
		cfg   string
		query string
		want  string // "" for not found
	}{
		{level0, "foo@example.com", "ascii"},
		{level0, "FOO@Example.COM", "ascii"},
		{level0, "ümläut@example.com", "utf8"},
		{level0, "ÜMLÄUT@EXAMPLE.COM", ""}, // only ASCII folds: "ÜMLÄUT@example.com"
		{level0, "straße@example.com", "sharp s"},
		{level0, "STRASSE", "ss"},
		{level36, "FOO@Example.COM", "ascii"},
		{level36, "ÜMLÄUT@EXAMPLE.COM", "utf8"},
		{level36, "STRASSE", "ss"},
		{level36, "straße", "ss"}, // full case folding: ß becomes ss
		// ...so a key stored with ß is out of reach at level 3.6.
		{level36, "straße@example.com", ""},
	} {
		out, code := query(t, postmap, c.cfg, c.query, mapName)
		level := "level 0"
		if c.cfg == level36 {
			level = "level 3.6"
		}
		switch {
		case c.want == "" && (code != 1 || out != ""):
			t.Errorf("%s: postmap -q %q: exit %d, %q; want exit 1, not found", level, c.query, code, out)
		case c.want != "" && (code != 0 || out != c.want+"\n"):
			t.Errorf("%s: postmap -q %q: exit %d, %q; want %q", level, c.query, code, out, c.want)
		}
	}
}
