package creds

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/roottest"
)

// The helper process: CREDS_HELPER="UID GID SECRET" calls Become in a fresh
// process and reports the identity it ends up with, and whether it can
// still read SECRET (a root-only file).
func TestMain(m *testing.M) {
	if h := os.Getenv("CREDS_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(arg string) int {
	f := strings.Fields(arg)
	uid, _ := strconv.ParseUint(f[0], 10, 32)
	gid, _ := strconv.ParseUint(f[1], 10, 32)
	if err := Become("someone", uint32(uid), uint32(gid)); err != nil {
		fmt.Println("error:", err)
		return failure.ExitCode(err)
	}
	groups, _ := syscall.Getgroups()
	_, err := os.ReadFile(f[2])
	fmt.Printf("uid=%d euid=%d gid=%d egid=%d groups=%v secret=%v\n",
		syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid(), groups, err == nil)
	return 0
}

// runHelper runs this test binary as the helper, optionally as another
// user from the start.
func runHelper(t *testing.T, uid, gid uint32, as *syscall.Credential) (string, int) {
	t.Helper()
	dir := roottest.TempDir(t)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A copy of the test binary that an unprivileged user can execute.
	bin := filepath.Join(dir, "creds.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(dst, src)
	src.Close()
	dst.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("CREDS_HELPER=%d %d %s", uid, gid, secret))
	if as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as}
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestRootSwitches(t *testing.T) {
	roottest.Require(t)
	out, code := runHelper(t, 65534, 65534, nil)
	want := "uid=65534 euid=65534 gid=65534 egid=65534 groups=[] secret=false\n"
	if code != 0 || out != want {
		t.Errorf("helper: exit %d, %q; want 0, %q", code, out, want)
	}
}

func TestUnprivilegedMustMatch(t *testing.T) {
	roottest.Require(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	out, code := runHelper(t, 65534, 65534, nobody)
	if code != 0 || !strings.HasPrefix(out, "uid=65534 euid=65534 gid=65534 egid=65534") {
		t.Errorf("matching identity: exit %d, %q", code, out)
	}
	out, code = runHelper(t, 5000, 5000, nobody)
	if code != 75 || !strings.Contains(out, "running as uid 65534 gid 65534, not as someone's uid 5000 gid 5000") {
		t.Errorf("mismatch: exit %d, %q; want 75 naming both identities", code, out)
	}
	out, code = runHelper(t, 65534, 5000, nobody)
	if code != 75 || !strings.Contains(out, "gid 5000") {
		t.Errorf("gid mismatch: exit %d, %q; want 75", code, out)
	}
}

func TestZeroRefused(t *testing.T) {
	// Refused before anything changes, so this is safe in-process.
	for _, ids := range [][2]uint32{{0, 100}, {100, 0}, {0, 0}} {
		err := Become("root@x", ids[0], ids[1])
		if err == nil || failure.KindOf(err) != failure.Temporary || !strings.Contains(err.Error(), "must not be 0") {
			t.Errorf("Become(%v) = %v, want a temporary refusal", ids, err)
		}
	}
	if syscall.Geteuid() == 0 {
		// Also in a fresh process as root.
		if out, code := runHelper(t, 0, 0, nil); code != 75 {
			t.Errorf("helper with uid 0: exit %d, %q; want 75", code, out)
		}
	}
}

// The unprivileged check without root: fake the process identity.
func TestMismatchMessage(t *testing.T) {
	defer func(a, b, c, d func() int) { geteuid, getuid, getgid, getegid = a, b, c, d }(geteuid, getuid, getgid, getegid)
	geteuid = func() int { return 1001 }
	getuid = func() int { return 1000 }
	getgid = func() int { return 1000 }
	getegid = func() int { return 1000 }
	err := Become("u@d", 1000, 1000)
	if err == nil || failure.KindOf(err) != failure.Temporary ||
		err.Error() != "running as uid 1000 (effective 1001) gid 1000 (effective 1000), not as u@d's uid 1000 gid 1000, and not as root" {
		t.Errorf("Become = %v", err)
	}
	geteuid = func() int { return 1000 }
	if err := Become("u@d", 1000, 1000); err != nil {
		t.Errorf("matching identity: %v", err)
	}
}
