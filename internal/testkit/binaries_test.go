package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testkit", "binaries.go")); err != nil {
		t.Errorf("ModuleRoot %s: %v", root, err)
	}
}

func TestBuildInto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	dir := filepath.Join(t.TempDir(), "bin")
	if err := BuildInto(context.Background(), dir, false, "./internal/testkit/testdata/hello"); err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(dir, "hello")
	for _, p := range []string{dir, hello} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o055 != 0o055 {
			t.Errorf("%s has mode %v; others cannot traverse or run it", p, fi.Mode())
		}
	}
	out, err := exec.Command(hello).Output()
	if err != nil || string(out) != "hello from testkit\n" {
		t.Errorf("running the built program: %q, %v", out, err)
	}
	if err := BuildInto(context.Background(), dir, false, "./internal/testkit/testdata/nosuchpkg"); err == nil {
		t.Errorf("building a missing package succeeded")
	}
}
