package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/deliver/sieve"
)

// TestQuick runs the whole benchmark with a few deliveries of real processes
// (mapdropd, mapdrop, the floor writer, and maildrop and dovecot-lda when
// installed), so that the program cannot rot.
func TestQuick(t *testing.T) {
	base := t.TempDir()
	// As root the deliverers run as nobody, who must reach the work
	// directory; t.TempDir() and its parent are mode 0700.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := parseFlags([]string{"-quick", "-dir", filepath.Join(base, "w")})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(cfg, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Failed() {
		t.Error("a judged target failed")
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want sequential and parallel", len(res.Rows))
	}
	for _, row := range res.Rows {
		for _, name := range []string{"floor", "mapdrop", "mapdrop+sieve"} {
			c := cellOf(row, name)
			if c == nil || c.Rate <= 0 || c.Missing != 0 || len(c.Rates) != cfg.Rounds {
				t.Errorf("size %d parallel %d: %s: %+v", row.Size, row.Parallel, name, c)
			}
		}
	}
	if !strings.Contains(out.String(), "mapdrop vs floor") {
		t.Error("no mapdrop target in the output")
	}
}

// TestLandedCountsAndClears checks the landing check against a Maildir with
// known contents.
func TestLandedCountsAndClears(t *testing.T) {
	dir := t.TempDir()
	d := &deliverer{Name: "x", maildir: filepath.Join(dir, "Maildir")}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(d.maildir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"new/1", "new/2", "new/3", "cur/4", "tmp/5", "dovecot.index.log"} {
		if err := os.WriteFile(filepath.Join(d.maildir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := d.landed()
	if err != nil || n != 3 {
		t.Fatalf("landed = %d, %v; want 3", n, err)
	}
	for _, sub := range []string{"tmp", "new", "cur", "."} {
		ents, err := os.ReadDir(filepath.Join(d.maildir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if sub == "." && len(ents) != 3 || sub != "." && len(ents) != 0 {
			t.Errorf("%s left with %d entries", sub, len(ents))
		}
	}
}

func TestMessage(t *testing.T) {
	for _, size := range []int{minSize, 4096, 102400} {
		m := message(size)
		if len(m) != size || m[size-1] != '\n' || !bytes.Contains(m, []byte("\n\n")) {
			t.Errorf("message(%d): %d bytes, ends %q", size, len(m), m[len(m)-1])
		}
	}
}

func TestCheckTraversable(t *testing.T) {
	base := t.TempDir()
	inner := filepath.Join(base, "a", "b")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(base, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := checkTraversable(inner); err == nil || !strings.Contains(err.Error(), "not searchable") {
		t.Errorf("a 0750 parent: %v", err)
	}
	for _, d := range []string{filepath.Dir(base), base, filepath.Join(base, "a")} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkTraversable(inner); err != nil {
		t.Errorf("all 0755: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-sizes", "600, 2000", "-count", "3"})
	if err != nil || len(cfg.Sizes) != 2 || cfg.Sizes[1] != 2000 || cfg.Count != 3 {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"-sizes", "511"}, {"-count", "0"}, {"-turn", "0"}, {"-parallel", "1"}, {"x"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestSieveScript checks that the benchmark's 50-rule script compiles and,
// on the benchmark's message, runs every rule and keeps the message in
// INBOX (no rule matches; the engine's error would be a fallback keep).
func TestSieveScript(t *testing.T) {
	src := sieveScript()
	if n := strings.Count(src, "\nif "); n != 50 {
		t.Fatalf("%d rules, want 50", n)
	}
	s, err := sieve.Load("bench.sieve", strings.NewReader(src), sieve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := message(4096)
	p := sieve.Run(context.Background(), []*sieve.Script{s}, sieve.Envelope{From: "sender@example.org", To: benchUser},
		sieve.Message{R: bytes.NewReader(msg), Size: int64(len(msg))}, "+", sieve.Options{})
	if len(p.Errors) != 0 || len(p.Stores) != 1 || !p.Stores[0].Default || len(p.Redirects) != 0 {
		t.Errorf("plan %+v, want the implicit keep only", p)
	}
}
