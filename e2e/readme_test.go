package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// The README's configuration blocks. A block is an indented (4 spaces)
// code block preceded by a line "<!-- e2e:NAME -->" (blank lines between
// them allowed); its text is the code block with the indentation removed.
// The tests configure mapdropd and Postfix with these blocks, verbatim
// except for what readmeSubst replaces, so the README cannot drift from
// what works.

// readmeMarker matches a block marker line.
var readmeMarker = regexp.MustCompile(`^<!-- e2e:([a-z0-9_.-]+) -->$`)

// readmeBlockCall matches the calls that consume a block in this package's
// source; TestREADMEConsistent requires one for every marker.
var readmeBlockCall = regexp.MustCompile(`readmeBlock\(t, "([a-z0-9_.-]+)"\)`)

// parseREADME returns the marked blocks of README text by name.
func parseREADME(text string) (map[string]string, error) {
	blocks := map[string]string{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		name := m[1]
		if _, dup := blocks[name]; dup {
			return nil, fmt.Errorf("README line %d: block %q marked twice", i+1, name)
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		var body []string
		for ; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) == "" {
				body = append(body, "")
				continue
			}
			if !strings.HasPrefix(l, "    ") {
				break
			}
			body = append(body, strings.TrimPrefix(l, "    "))
		}
		for len(body) > 0 && body[len(body)-1] == "" {
			body = body[:len(body)-1]
		}
		if len(body) == 0 {
			return nil, fmt.Errorf("README line %d: marker %q is not followed by an indented code block", i+1, name)
		}
		blocks[name] = strings.Join(body, "\n")
		i = j - 1
	}
	return blocks, nil
}

// readREADME returns the README's text and its blocks.
func readREADME(t *testing.T) (string, map[string]string) {
	t.Helper()
	root, err := testkit.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), blocks
}

// readmeBlock returns the README block name, unsubstituted. The name must
// be a literal at the call site (TestREADMEConsistent reads the calls).
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	_, blocks := readREADME(t)
	b, ok := blocks[name]
	if !ok {
		t.Fatalf("README.md has no block <!-- e2e:%s -->", name)
	}
	return b
}

// readmeSubst holds what a test replaces in README blocks: where the
// README's paths and ports are in the test's world. Nothing else changes.
type readmeSubst struct {
	Socket   string // for /run/mapdrop/mapdropd.sock
	Inet     int    // for the socketmap port 10027
	TCP      int    // for the tcp_table port 10028
	BinDir   string // for /usr/local/bin
	Export   string // for /var/lib/mapdrop
	Tables   string // for /etc/mapdrop/tables
	PipeUser string // for the pipe(8) user vmail
}

// apply returns text with the README's paths, ports and the user=vmail of
// pipe(8) replaced.
func (s readmeSubst) apply(text string) string {
	var pairs []string
	add := func(from, to string) {
		if to != "" {
			pairs = append(pairs, from, to)
		}
	}
	add("/run/mapdrop/mapdropd.sock", s.Socket)
	if s.Inet != 0 {
		add("127.0.0.1:10027", fmt.Sprintf("127.0.0.1:%d", s.Inet))
	}
	if s.TCP != 0 {
		add("127.0.0.1:10028", fmt.Sprintf("127.0.0.1:%d", s.TCP))
	}
	add("/usr/local/bin/", s.BinDir+"/")
	add("/var/lib/mapdrop", s.Export)
	add("/etc/mapdrop/tables", s.Tables)
	if s.PipeUser != "" {
		add("user=vmail ", "user="+s.PipeUser+" ")
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// mainCFLines returns the main.cf lines ("name = value") of a block, with
// continuation lines joined to their parameter line, in order.
func mainCFLines(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.TrimSpace(l) == "":
		case l[0] == ' ' || l[0] == '\t':
			if len(out) > 0 {
				out[len(out)-1] += " " + strings.TrimSpace(l)
			}
		case paramLine.MatchString(l):
			out = append(out, l)
		}
	}
	return out
}

var paramLine = regexp.MustCompile(`^[a-z0-9_]+\s*=`)

// mainCFParams returns the parameters of main.cf lines, by name, with
// whitespace around "=" dropped.
func mainCFParams(lines []string) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// serveArgs returns the arguments after "mapdropd serve" in a block,
// backslash continuations joined.
func serveArgs(t *testing.T, block string) []string {
	t.Helper()
	joined := strings.ReplaceAll(block, "\\\n", " ")
	for _, l := range strings.Split(joined, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "mapdropd" && f[1] == "serve" {
			return f[2:]
		}
	}
	t.Fatalf("no \"mapdropd serve\" command in the README block:\n%s", block)
	return nil
}

// mapParams are the parameters whose lines must read the same wherever
// the README configures them.
var mapParams = []string{"virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps"}

// TestREADMEConsistent checks the README's marked blocks: each one is used
// by a test in this package (and each used one exists), the map lines are
// the same in every section, the documented failure is those lines without
// proxy:, and no main.cf line that asks mapdropd is left unmarked.
func TestREADMEConsistent(t *testing.T) {
	text, blocks := readREADME(t)

	// Every block is consumed by a readmeBlock call in this package.
	used := map[string]bool{}
	srcs, _ := filepath.Glob("*_test.go")
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range readmeBlockCall.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	for name := range blocks {
		if !used[name] {
			t.Errorf("README block e2e:%s is used by no test", name)
		}
	}
	for name := range used {
		if _, ok := blocks[name]; !ok {
			t.Errorf("the tests use README block e2e:%s, which README.md lacks", name)
		}
	}
	if len(blocks) < 10 {
		t.Errorf("README has %d marked blocks, want at least 10", len(blocks))
	}

	// The same map lines everywhere: the maps block is the reference.
	want := mainCFParams(mainCFLines(blocks["maps"]))
	for _, p := range mapParams {
		if !strings.HasPrefix(want[p], "proxy:socketmap:unix:/run/mapdrop/mapdropd.sock:") {
			t.Errorf("e2e:maps: %s = %q, want proxy:socketmap:unix:/run/mapdrop/mapdropd.sock:...", p, want[p])
		}
	}
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got := mainCFParams(mainCFLines(blocks[n]))
		for _, p := range mapParams {
			v, ok := got[p]
			if !ok {
				continue
			}
			switch n {
			case "maps-inet":
				if w := strings.Replace(want[p], "proxy:socketmap:unix:/run/mapdrop/mapdropd.sock:", "socketmap:inet:127.0.0.1:10027:", 1); v != w {
					t.Errorf("e2e:%s: %s = %q, want %q", n, p, v, w)
				}
			case "maps-tcp":
				if v != "tcp:127.0.0.1:10028" {
					t.Errorf("e2e:%s: %s = %q", n, p, v)
				}
			case "maps-chroot-fail":
				if w := strings.TrimPrefix(want[p], "proxy:"); v != w {
					t.Errorf("e2e:%s: %s = %q, want %q (the working line without proxy:)", n, p, v, w)
				}
			default:
				if v != want[p] {
					t.Errorf("e2e:%s: %s = %q, want %q as in e2e:maps", n, p, v, want[p])
				}
			}
		}
	}
	if got := mainCFParams(mainCFLines(blocks["direct-main.cf"])); len(got) > 0 {
		for _, p := range mapParams {
			if _, ok := got[p]; !ok {
				t.Errorf("e2e:direct-main.cf lacks %s", p)
			}
		}
	}

	// Every main.cf-style line in any indented block of the README that
	// names a server map is inside a marked block.
	asksServer := regexp.MustCompile(`socketmap:|tcp:|mapdropd\.sock|/mapdrop\b`)
	marked := map[string]bool{}
	for _, b := range blocks {
		for _, l := range mainCFLines(b) {
			marked[strings.Join(strings.Fields(l), " ")] = true
		}
	}
	for i, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "     ") {
			continue // not a code line, or a master.cf continuation line
		}
		s := strings.TrimSpace(l)
		if !paramLine.MatchString(s) || !asksServer.MatchString(s) {
			continue
		}
		if !marked[strings.Join(strings.Fields(s), " ")] {
			t.Errorf("README line %d is a main.cf line outside any e2e block: %q", i+1, s)
		}
	}
}

func TestParseREADME(t *testing.T) {
	got, err := parseREADME("x\n<!-- e2e:a -->\n\n    one\n      two\n\n    three\n\ntext\n    not in a\n<!-- e2e:b -->\n    b1\n")
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "one\n  two\n\nthree" || got["b"] != "b1" || len(got) != 2 {
		t.Errorf("parseREADME = %q", got)
	}
	if _, err := parseREADME("<!-- e2e:a -->\ntext\n"); err == nil {
		t.Errorf("a marker without a block was accepted")
	}
	if _, err := parseREADME("<!-- e2e:a -->\n    x\n<!-- e2e:a -->\n    y\n"); err == nil {
		t.Errorf("a block marked twice was accepted")
	}
}
