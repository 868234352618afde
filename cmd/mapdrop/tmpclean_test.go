package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ageFile sets a file's access and modification times to d ago.
func ageFile(t *testing.T, p string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

// TestTmpCleanup: a delivery removes what killed deliveries left in the
// tmp/ it writes into, once older than 36 hours, and logs how many.
func TestTmpCleanup(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("ext", ".Work")
	put := func(dir, name string, old time.Duration) {
		p := filepath.Join(md, dir, "tmp", name)
		w.writeOwned(p, "partial")
		ageFile(t, p, old)
	}
	put("", "killed.1", 37*time.Hour)
	put("", "killed.2", 72*time.Hour)
	put("", "in-flight", time.Minute)
	put(".Work", "killed.3", 40*time.Hour)
	w.run(strings.NewReader("1\n"), "-d", "ext@some.domain").want(t, 0, "")
	// (names, not files: reading a file makes it recently accessed.)
	if got := strings.Join(names(t, filepath.Join(md, "tmp")), " "); got != "in-flight" {
		t.Errorf("INBOX tmp/ holds %q, want in-flight only", got)
	}
	if n := len(names(t, filepath.Join(md, ".Work", "tmp"))); n != 1 {
		t.Errorf(".Work/tmp holds %d files, want 1 (not the tmp/ written into)", n)
	}
	if l := w.log(); !strings.Contains(l, " folder=INBOX tmp-removed=2 size=2 ") {
		t.Errorf("log %q lacks tmp-removed=2", l)
	}
	os.Remove(w.logFile)
	w.run(strings.NewReader("2\n"), "-d", "ext+work@some.domain").want(t, 0, "")
	if n := len(names(t, filepath.Join(md, ".Work", "tmp"))); n != 0 {
		t.Errorf(".Work/tmp holds %d files, want 0", n)
	}
	if l := w.log(); !strings.Contains(l, " folder=.Work tmp-removed=1 ") {
		t.Errorf("log %q lacks tmp-removed=1", l)
	}
	// Nothing to remove: no tmp-removed.
	os.Remove(w.logFile)
	w.run(strings.NewReader("3\n"), "-d", "ext@some.domain").want(t, 0, "")
	if l := w.log(); strings.Contains(l, "tmp-removed") {
		t.Errorf("log %q", l)
	}
}

// TestTmpCleanupBounded: 300 leftovers are removed at most 128 per
// delivery, over a few deliveries.
func TestTmpCleanupBounded(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1")
	for i := range 300 {
		p := filepath.Join(md, "tmp", fmt.Sprint("killed.", i))
		w.writeOwned(p, "")
		ageFile(t, p, 40*time.Hour)
	}
	removed := regexp.MustCompile(`tmp-removed=(\d+)`)
	total := 0
	for i := 0; i < 20 && total < 300; i++ {
		os.Remove(w.logFile)
		w.run(strings.NewReader("x\n"), "-d", "u1@some.domain").want(t, 0, "")
		n := 0
		if m := removed.FindStringSubmatch(w.log()); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n > 128 {
			t.Errorf("delivery %d removed %d files, more than the 128 entries it may look at", i, n)
		}
		total += n
	}
	if left := len(names(t, filepath.Join(md, "tmp"))); total != 300 || left != 0 {
		t.Errorf("removed %d in all, %d left in tmp/", total, left)
	}
}

// names lists a directory without reading its files (which would make
// them recently accessed, hence not abandoned).
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
