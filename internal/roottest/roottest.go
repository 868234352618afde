// Package roottest decides what a test that needs root does without it: it
// fails when env CI=true or MAPDROP_REQUIRE_ROOT=1 (scripts/test sets the
// latter), and skips otherwise.
package roottest

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Require stops the test unless the process runs as root.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root (CI=true or MAPDROP_REQUIRE_ROOT=1 is set)")
	}
	t.Skip("this test needs root")
}

// TempDir returns a new t.TempDir() that other users can traverse: it and
// its parent (which the testing package makes 0700) get mode 0755.
func TempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// IDs returns the uid and gid of the account name, failing the test when
// there is no such account.
func IDs(t testing.TB, name string) (uid, gid uint32) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("account %s: uid %q, gid %q", name, u.Uid, u.Gid)
	}
	return uint32(id), uint32(g)
}
