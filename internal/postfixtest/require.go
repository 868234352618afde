package postfixtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Programs are the Postfix programs an instance needs.
var Programs = []string{"/usr/sbin/postfix", "/usr/sbin/postqueue", "/usr/sbin/postconf", StockMasterCF, ConfigureInstance}

// Required reports whether a missing Postfix or missing root privileges must
// fail the test instead of skipping it: env CI=true or MAPDROP_REQUIRE_POSTFIX=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_POSTFIX") == "1"
}

// Missing returns why this machine cannot run a throwaway Postfix instance
// ("" when it can): not root, or a Postfix program not installed.
func Missing() string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	for _, p := range Programs {
		if _, err := os.Stat(p); err != nil {
			return "postfix is not installed (Debian's package): " + err.Error()
		}
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return "no postfix user: " + err.Error()
	}
	return ""
}

// Require stops the test unless Postfix can run here: t.Fatal when Required
// says so, t.Skip otherwise.
func Require(t testing.TB) {
	t.Helper()
	why := Missing()
	if why == "" {
		return
	}
	if Required() {
		t.Fatalf("postfixtest: %s (required because CI=true or MAPDROP_REQUIRE_POSTFIX=1)", why)
	}
	t.Skipf("postfixtest: %s", why)
}

var userMu sync.Mutex

// EnsureUser returns the uid and gid of the system user name, creating it
// first (useradd -r -M -U -s /usr/sbin/nologin) when it does not exist. It is
// idempotent and safe to call from parallel tests in one process. The user
// is left in place: it is a dedicated unprivileged account, as pipe(8)
// refuses to run commands as root or as the postfix user.
func EnsureUser(t testing.TB, name string) (uid, gid uint32) {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			t.Fatalf("postfixtest: looking up user %s: %v", name, err)
		}
		out, err := run(30*time.Second, "useradd", "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name)
		if err != nil {
			// Another test process may have created it in between.
			if u2, err2 := user.Lookup(name); err2 == nil {
				u = u2
			} else {
				t.Fatalf("postfixtest: useradd %s: %v\n%s", name, err, out)
			}
		} else if u, err = user.Lookup(name); err != nil {
			t.Fatalf("postfixtest: user %s after useradd: %v", name, err)
		}
	}
	uid64, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatalf("postfixtest: uid of %s: %v", name, err)
	}
	gid64, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		t.Fatalf("postfixtest: gid of %s: %v", name, err)
	}
	if uid64 == 0 || gid64 == 0 {
		t.Fatalf("postfixtest: user %s has uid %d gid %d; refusing a root account", name, uid64, gid64)
	}
	return uint32(uid64), uint32(gid64)
}

// SetHome points the home directory of the system user name at home
// (usermod -d). Postfix's local(8) reads it for .forward files and for the
// HOME of mailbox_command, and mapdrop for a user who is not in userdb.
func SetHome(t testing.TB, name, home string) {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	if u, err := user.Lookup(name); err == nil && u.HomeDir == home {
		return
	}
	if out, err := run(30*time.Second, "usermod", "-d", home, name); err != nil {
		t.Fatalf("postfixtest: usermod -d %s %s: %v\n%s", home, name, err, out)
	}
}

// MkdirOwned creates dir and its missing parents; the parents get mode 0755
// and root ownership, dir itself mode perm and owner uid:gid.
func MkdirOwned(t testing.TB, dir string, perm os.FileMode, uid, gid uint32) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

// run runs a command with a time limit and returns its combined output. The
// output goes through a temporary file, not a pipe: "postfix start" leaves a
// daemon behind that may keep inherited descriptors open, and waiting for a
// pipe to close would wait for the daemon.
func run(limit time.Duration, name string, args ...string) (string, error) {
	return runEnv(limit, nil, name, args...)
}

// runEnv is run with env as the whole environment (nil: the test's).
func runEnv(limit time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	f, err := os.CreateTemp("", "postfixtest-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if err == nil && rerr != nil {
		err = rerr
	}
	return strings.TrimSpace(string(out)), err
}

// Postmap returns the path of Postfix's postmap(1), for tests that use it as
// a client or a reference. Without it the test fails when Required says so
// and is skipped otherwise; it needs neither root nor a Postfix instance.
func Postmap(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/postmap", "postmap"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if Required() {
		t.Fatal("postfixtest: postmap is not installed (required because CI=true or MAPDROP_REQUIRE_POSTFIX=1)")
	}
	t.Skip("postfixtest: postmap is not installed")
	return ""
}
