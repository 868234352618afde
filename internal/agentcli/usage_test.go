package agentcli

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// Every option the help lists is one parse accepts, and the help lists
// every option parse knows (the older spelling -delimiter aside), as read
// from the case labels of parse's "switch name" in agentcli.go.
func TestHelpListsTheOptions(t *testing.T) {
	_, after, ok := strings.Cut(Help, "\nflags:\n")
	if !ok {
		t.Fatal("no flags: section in Help")
	}
	flags, _, _ := strings.Cut(after, "\n\n")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(flags, -1) {
		listed[m[1]] = true
	}
	for name := range listed {
		if name == "h" || name == "version" || name == "d" {
			continue
		}
		args := []string{"-" + name, "/x", "-d", "user@example.com"}
		if _, err := parse(args); err != nil && strings.Contains(err.Error(), "unknown option") {
			t.Errorf("help lists -%s, parse says %v", name, err)
		}
	}
	known := parseOptions(t)
	if len(known) < 10 {
		t.Fatalf("found %d options in parse's switch, want 10 or more: %v", len(known), known)
	}
	for _, name := range append(known, "h", "version") {
		if !listed[name] && name != "delimiter" { // the older spelling, mentioned in -recipient-delimiter's text
			t.Errorf("help does not list -%s, which parse accepts (add it to Help, then go generate ./doc)", name)
		}
	}
	if _, err := parse([]string{"-no-such-option", "-d", "u"}); err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Errorf("an unknown option: %v, want unknown option (else the check above cannot fail)", err)
	}
}

func TestHelpOrVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}} {
		var out bytes.Buffer
		code, done := helpOrVersion(args, &out, "mapdrop")
		if !done || code != 0 || out.String() != Help {
			t.Errorf("%v: done %v, code %d, %d bytes of output; want the help, exit 0", args, done, code, out.Len())
		}
	}
	for _, args := range [][]string{{"-version"}, {"--version"}} {
		var out bytes.Buffer
		code, done := helpOrVersion(args, &out, "mapdrop")
		if !done || code != 0 || !strings.HasPrefix(out.String(), "mapdrop ") || !strings.Contains(out.String(), " go1.") {
			t.Errorf("%v: done %v, code %d, %q; want the version", args, done, code, out.String())
		}
	}
	for _, args := range [][]string{nil, {"-d", "-h"}, {"-s", "unix:/x", "-d", "u"}} {
		if _, done := helpOrVersion(args, &bytes.Buffer{}, "mapdrop"); done {
			t.Errorf("%q taken for a help or version request", args)
		}
	}
}

// parseOptions returns the option names func parse in agentcli.go knows:
// the string case labels of its "switch name" statements, the strings it
// compares name with (case name == "n"), and the keys of the map
// valueOption.
func parseOptions(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "agentcli.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var names []string
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && !seen[v] {
				seen[v] = true
				names = append(names, v)
			}
		}
	}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.VAR {
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "valueOption" || i >= len(vs.Values) {
						continue
					}
					if cl, ok := vs.Values[i].(*ast.CompositeLit); ok {
						for _, el := range cl.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok {
								add(kv.Key)
							}
						}
					}
				}
			}
		}
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "parse" {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if be, ok := n.(*ast.BinaryExpr); ok && be.Op == token.EQL {
				if id, ok := be.X.(*ast.Ident); ok && id.Name == "name" {
					add(be.Y)
				}
				return true
			}
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			if id, ok := sw.Tag.(*ast.Ident); !ok || id.Name != "name" {
				return true
			}
			for _, st := range sw.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					add(e)
				}
			}
			return true
		})
	}
	return names
}

// Every MAPDROP_* environment variable named in the source of the packages
// mapdrop and mapdrop-sieve are built from is in the help (and so in
// mapdrop(8)).
func TestHelpListsTheEnvironment(t *testing.T) {
	out, err := exec.Command(testkit.GoTool(), "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}",
		"github.com/mapdrop/mapdrop/cmd/mapdrop", "github.com/mapdrop/mapdrop/cmd/mapdrop-sieve").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	envName := regexp.MustCompile(`"(MAPDROP_[A-Z][A-Z_]*)"`)
	found := map[string]bool{}
	for _, dir := range strings.Fields(string(out)) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envName.FindAllSubmatch(b, -1) {
				found[string(m[1])] = true
			}
		}
	}
	if !found["MAPDROP_SERVER"] || !found["MAPDROP_LOG_FILE"] {
		t.Fatalf("found %v in mapdrop's sources, want MAPDROP_SERVER and MAPDROP_LOG_FILE at least", found)
	}
	for name := range found {
		if !strings.Contains(Help, name) {
			t.Errorf("mapdrop reads %s, its help does not say so (add it to Help, then go generate ./doc)", name)
		}
	}
}
