package doc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// requireTool finds a program the test needs. Where the suite must run
// everything (CI, scripts/test), a missing one fails the test; elsewhere
// it is skipped.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_POSTFIX") != "" || os.Getenv("MAPDROP_REQUIRE_ROOT") != "" {
		t.Fatalf("%s not found (scripts/test installs it): %v", name, err)
	}
	t.Skipf("%s not found: %v", name, err)
	return ""
}

// The committed pages are what "go generate ./doc" writes now: the same
// command, run into a temporary directory, byte for byte.
func TestPagesUpToDate(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(testkit.GoTool(), "run", "./gen", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, b)
	}
	for _, prog := range Programs {
		want, err := os.ReadFile(filepath.Join(out, prog+".8"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(prog + ".8")
		if err != nil {
			t.Fatalf("%v (run go generate ./doc)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("doc/%s.8 differs from what the binaries' help generates now: run go generate ./doc\n%s", prog, firstDiff(got, want))
		}
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n committed: " + gl + "\n generated: " + wl
		}
	}
	return ""
}

// groff with every warning enabled says nothing about the pages, as
// formatted for a terminal.
func TestGroffClean(t *testing.T) {
	groff := requireTool(t, "groff")
	for _, prog := range Programs {
		for _, dev := range []string{"-Tutf8", "-Tascii"} {
			cmd := exec.Command(groff, "-ww", "-man", "-z", dev, prog+".8")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("groff -ww -man -z %s %s.8: %v\n%s", dev, prog, err, stderr.String())
			}
		}
	}
	// The check above can fail: a page with a bad request does.
	bad := filepath.Join(t.TempDir(), "bad.8")
	os.WriteFile(bad, []byte(".TH BAD 8\n.SH NAME\n.XYZ\nbad \\- \\q\n"), 0o644)
	var stderr bytes.Buffer
	cmd := exec.Command(groff, "-ww", "-man", "-z", "-Tutf8", bad)
	cmd.Stderr = &stderr
	if cmd.Run(); stderr.Len() == 0 {
		t.Error("groff -ww says nothing about a page with an unknown macro and escape")
	}
}

// renderText formats a page as plain text, as man shows it.
func renderText(t *testing.T, page string) string {
	t.Helper()
	cmd := exec.Command(requireTool(t, "groff"), "-man", "-Tascii", "-P-cbou", page)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("groff %s: %v", page, err)
	}
	return string(out)
}

var (
	flagLine    = regexp.MustCompile(`(?m)^  (-[a-z][a-z0-9-]*)`)
	commandLine = regexp.MustCompile(`(?m)^  ([a-z][a-z0-9-]*) `)
)

// helpOutput runs a binary's -h as an admin would.
func helpOutput(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append(args, "-h")...).Output()
	if err != nil {
		t.Fatalf("%s %v -h: %v", bin, args, err)
	}
	return string(out)
}

// Every flag of every command, as the binaries list them today, and every
// command, is in the page as man shows it. The commands and flags are read
// from the -h output with plain patterns, not with the generator's parser.
func TestEveryFlagAppears(t *testing.T) {
	bins := testkit.Build(t)
	mapdropd := renderText(t, "mapdropd.8")
	top := helpOutput(t, bins.Mapdropd())
	_, cmds, _ := strings.Cut(top, "\ncommands:\n")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	names := commandLine.FindAllStringSubmatch(cmds, -1)
	if len(names) < 4 {
		t.Fatalf("found %d commands in mapdropd -h, want at least serve, query, check, export:\n%s", len(names), top)
	}
	nflags := 0
	for _, m := range names {
		name := m[1]
		if !strings.Contains(mapdropd, "mapdropd "+name+" ") && !strings.Contains(mapdropd, "mapdropd "+name+"\n") {
			t.Errorf("mapdropd.8 has no synopsis for command %s", name)
		}
		for _, f := range flagLine.FindAllStringSubmatch(helpOutput(t, bins.Mapdropd(), name), -1) {
			nflags++
			if !containsWord(mapdropd, f[1]) {
				t.Errorf("mapdropd.8 lacks %s of %s", f[1], name)
			}
		}
	}
	if nflags < 20 {
		t.Errorf("found %d flags in the commands' -h, want 20 or more (serve alone has 20)", nflags)
	}
	mapdrop := renderText(t, "mapdrop.8")
	flags := flagLine.FindAllStringSubmatch(helpOutput(t, bins.Mapdrop()), -1)
	if len(flags) < 12 {
		t.Errorf("found %d flags in mapdrop -h, want 12 or more", len(flags))
	}
	for _, f := range flags {
		if !containsWord(mapdrop, f[1]) {
			t.Errorf("mapdrop.8 lacks %s", f[1])
		}
	}
	if containsWord(mapdrop, "-no-such-flag") {
		t.Error("containsWord finds a flag the page does not have")
	}
}

// containsWord reports whether text has flag as a whole word.
func containsWord(text, flag string) bool {
	return regexp.MustCompile(`(^|[\s\[(])` + regexp.QuoteMeta(flag) + `($|[\s\])=,.;:])`).MatchString(text)
}

// The README's install line for the pages, run with /usr/local replaced by
// a temporary directory, installs both pages, and man reads them there.
func TestREADMEInstallsPages(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.Contains(l, "doc/") && strings.Contains(l, "man8") && strings.Contains(strings.TrimSpace(l), "install ") {
			line = strings.TrimSpace(l)
			break
		}
	}
	if line == "" {
		t.Fatal("README.md has no line installing doc/*.8 into a man8 directory")
	}
	prefix := t.TempDir()
	line = strings.ReplaceAll(line, "/usr/local", prefix)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	for _, prog := range Programs {
		got, err := os.ReadFile(filepath.Join(prefix, "share/man/man8", prog+".8"))
		want, _ := os.ReadFile(prog + ".8")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s.8 not installed by %q: %v", prog, line, err)
		}
	}
	man := requireTool(t, "man")
	out, err := exec.Command(man, "--warnings", "-M", filepath.Join(prefix, "share/man"), "8", "mapdropd").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mapdropd serve") || strings.Contains(string(out), "warning") {
		t.Errorf("man -M %s/share/man 8 mapdropd: %v\n%s", prefix, err, out)
	}
}

// fakeHelp writes an executable that prints the help text given for its
// arguments (joined by spaces, "-h" last) and exits 0, or exits 64.
func fakeHelp(t *testing.T, dir, name string, helps map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\ncase \"$*\" in\n")
	for args, text := range helps {
		b.WriteString("\"" + args + "\") cat <<'EOF'\n" + text + "EOF\n;;\n")
	}
	b.WriteString("*) echo \"usage\" >&2; exit 64;;\nesac\n")
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
}

// A command another change adds to mapdropd's table of commands, with or
// without flags, gets its section, synopsis and flags with no change to
// the generator; a command whose -h fails stops the generator.
func TestGenerateFindsCommands(t *testing.T) {
	dir := t.TempDir()
	mapdropd := map[string]string{
		"-h": "mapdropd - serve tables\n\nusage: mapdropd COMMAND [flag]...\n       mapdropd -h | -version\n\nIt serves.\n\n" +
			"commands:\n  serve -tables DIR\n    \tServe.\n  confirm MAP\n    \tConfirm a held load.\n  push [-n] HOST\n    \tPush.\n\n" +
			"exit status:\n  0\tfine\n  64\tusage\n",
		"serve -h":   "usage: mapdropd serve -tables DIR\n\nServe.\n\nflags:\n  -tables DIR\n    \tthe tables\n",
		"confirm -h": "usage: mapdropd confirm MAP\n\nConfirm a held load of MAP.\n",
		"push -h":    "usage: mapdropd push [-n] HOST\n\nPush.\n\nflags:\n  -n\tdry run\n  -peer-timeout D\n    \tgive up after D\n    \t(a second line)\n",
	}
	fakeHelp(t, dir, "mapdropd", mapdropd)
	fakeHelp(t, dir, "mapdrop", map[string]string{"-h": "mapdrop - deliver\n\nusage: mapdrop -d USER\n\nflags:\n  -d USER\n    \tthe user\n"})
	pages, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := string(pages[0].Roff)
	for _, want := range []string{
		".SS confirm\n.SY \"mapdropd confirm\"\n\\fIMAP\\fR\n.YS\n.PP\nConfirm a held load of MAP.\n",
		".SY \"mapdropd push\"\n[\\fB\\-n\\fR] \\fIHOST\\fR\n",
		".TP\n\\fB\\-peer\\-timeout\\fR \\fID\\fR\ngive up after D (a second line)\n",
		".TP\n\\fB\\-n\\fR\ndry run\n",
		".SH \"EXIT STATUS\"\n.TP\n0\nfine\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	delete(mapdropd, "push -h")
	fakeHelp(t, dir, "mapdropd", mapdropd)
	if _, err := Generate(dir); err == nil || !strings.Contains(err.Error(), "mapdropd push -h") {
		t.Errorf("a command whose -h fails: %v, want an error naming it", err)
	}
}

func TestParseHelpRejectsBadLayout(t *testing.T) {
	for _, text := range []string{
		"x - y\n\nflags:\n   -three-spaces\n",
		"x - y\n\n    \torphan text\n",
		"x - y\n\nA paragraph\n  -item after it\n",
	} {
		if _, err := parseHelp(text); err == nil {
			t.Errorf("parseHelp(%q) accepted it", text)
		}
	}
}
