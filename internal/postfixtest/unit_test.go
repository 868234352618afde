package postfixtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMainCFOverridesInPlace(t *testing.T) {
	inst := &Instance{Dir: "/x", Maillog: "/x/maillog"}
	got := inst.mainCF([]string{
		"mydestination = local.test",
		"virtual_transport = mapdrop",
		"alias_maps = hash:/etc/aliases,",
		"  texthash:/etc/more",
		"# a comment",
	})
	if n := strings.Count(got, "mydestination"); n != 1 {
		t.Errorf("mydestination appears %d times:\n%s", n, got)
	}
	for _, want := range []string{
		"\nmydestination = local.test\n",
		"\nvirtual_transport = mapdrop\n",
		"\nalias_maps = hash:/etc/aliases,\n  texthash:/etc/more\n",
		"\nmaillog_file = /x/maillog\n",
		"\n# a comment\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("main.cf lacks %q:\n%s", want, got)
		}
	}
	// The override stays where the default was: before the appended lines.
	if strings.Index(got, "mydestination") > strings.Index(got, "virtual_transport") {
		t.Errorf("override moved to the end:\n%s", got)
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	b, err := Build("./internal/postfixtest/testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Remove()
	for _, p := range []string{b.Dir, b.Path("hello")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o055 != 0o055 {
			t.Errorf("%s has mode %v; others cannot traverse or run it", p, fi.Mode())
		}
	}
	out, err := exec.Command(b.Path("hello")).Output()
	if err != nil || string(out) != "hello from postfixtest\n" {
		t.Errorf("running the built program: %q, %v", out, err)
	}
	if _, err := Build("./internal/postfixtest/testdata/nosuchpkg"); err == nil {
		t.Errorf("building a missing package succeeded")
	}
}
