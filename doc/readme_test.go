package doc

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// The README's mtail pattern for counting deliveries matches the line a
// real mapdrop writes (mtail's regular expressions are Go's), and captures
// its status.
func TestREADMEDeliveryCountPattern(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*/(mapdrop.*)/ \{$`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no mtail pattern /mapdrop.../ {")
	}
	re, err := regexp.Compile(string(m[1]))
	if err != nil {
		t.Fatalf("the README's mtail pattern: %v", err)
	}
	logFile := filepath.Join(t.TempDir(), "maillog")
	cmd := exec.Command(testkit.Build(t).Mapdrop(), "-s", "unix:"+filepath.Join(t.TempDir(), "no.sock"), "-d", "user1@some.domain")
	cmd.Env = []string{"MAPDROP_LOG_FILE=" + logFile}
	cmd.Stdin = strings.NewReader("Subject: x\n\nbody\n")
	if err := cmd.Run(); err == nil {
		t.Fatal("mapdrop delivered with no server")
	}
	line, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// As syslog writes it to /var/log/mail.log, and as the file has it.
	for _, l := range []string{
		"Dec  1 23:00:00 mx " + strings.SplitN(strings.TrimSpace(string(line)), " ", 2)[1],
		strings.TrimSpace(string(line)),
	} {
		sub := re.FindStringSubmatch(l)
		if sub == nil || sub[re.SubexpIndex("status")] != "deferred" {
			t.Errorf("the README's pattern %q on %q: %q, want status deferred", re, l, sub)
		}
	}
	if re.MatchString("Dec  1 23:00:00 mx postfix/pipe[12]: 4F: to=<a@b>, relay=mapdrop, status=sent (delivered via mapdrop service)") {
		t.Error("the README's pattern also counts Postfix's own pipe line")
	}
}

// The README's upgrade loop replaces each installed binary by a rename:
// the old file stays whole for whoever has it open (a mapdrop starting at
// that moment), and the new one is in place, executable, byte for byte.
func TestREADMEUpgradeRenames(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^    (for b in [^\n]*; do\n.*?\n    done)\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no upgrade loop (for b in ...; do ... done)")
	}
	bins := testkit.Build(t)
	dest := t.TempDir()
	loop := strings.NewReplacer("/usr/local/bin", dest, "/tmp/mapdrop-new", bins.Dir).Replace(string(m[1]))
	old := []byte("#!/bin/sh\necho old\n")
	var held []*os.File
	for _, b := range []string{"mapdrop-sieve", "mapdrop", "mapdropd"} {
		p := filepath.Join(dest, b)
		if err := os.WriteFile(p, old, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		held = append(held, f)
	}
	if out, err := exec.Command("bash", "-euc", loop).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", loop, err, out)
	}
	for i, b := range []string{"mapdrop-sieve", "mapdrop", "mapdropd"} {
		got, _ := os.ReadFile(filepath.Join(dest, b))
		want, _ := os.ReadFile(filepath.Join(bins.Dir, b))
		if len(want) == 0 || string(got) != string(want) {
			t.Errorf("%s: not the new binary after the loop", b)
		}
		if fi, err := os.Stat(filepath.Join(dest, b)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, %v", b, fi.Mode(), err)
		}
		if fi, _ := held[i].Stat(); fi.Size() != int64(len(old)) {
			t.Errorf("%s: the old file was written in place (size now %d)", b, fi.Size())
		}
	}
	if names, _ := filepath.Glob(filepath.Join(dest, ".*")); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}
