package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// The shipped units pass systemd-analyze verify (with ExecStart pointing
// at the binary under test, since nothing is installed here) and the
// service's exposure is at most 2.0. Both run offline, without a booted
// systemd.
func TestSystemdUnits(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	dir := t.TempDir()
	for _, u := range []string{"mapdropd.service", "mapdropd.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", u))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/local/bin/mapdropd", bin(t))
		if err := os.WriteFile(filepath.Join(dir, u), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "mapdropd.socket"), filepath.Join(dir, "mapdropd.service")).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", filepath.Join(dir, "mapdropd.service")).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for mapdropd.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 2.0 {
		t.Errorf("exposure %s, want at most 2.0\n%s", m[1], out)
	}
	// PrivateUsers=yes would map postfix's uid to 65534, into the per-uid
	// limit that local users share (see TestNoLockoutByLocalUser).
	for _, want := range []string{"Before=postfix.service postfix@-.service", "Type=notify", "Restart=on-failure", "User=mapdrop", "\nPrivateUsers=no\n"} {
		if !strings.Contains(string(mustRead(t, "../../contrib/mapdropd.service")), want) {
			t.Errorf("mapdropd.service lacks %q", want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmappedUIDs(t *testing.T) {
	for _, c := range []struct {
		uidMap string
		uids   []uint32
		want   []uint32
	}{
		{"         0          0 4294967295\n", []uint32{0, 101, 4294967294}, nil},
		{"         0          0          1\n", []uint32{0, 101}, []uint32{101}},
		{"         0          0          1\n       998        998          1\n", []uint32{0, 101, 998}, []uint32{101}},
		{"", []uint32{0}, []uint32{0}},
	} {
		if got := unmappedUIDs(c.uidMap, c.uids); !slices.Equal(got, c.want) {
			t.Errorf("unmappedUIDs(%q, %v) = %v, want %v", c.uidMap, c.uids, got, c.want)
		}
	}
}

// In a user namespace that maps only root (as PrivateUsers= maps only root
// and the service user), serve says that postfix's uid is not mapped.
func TestServeWarnsUnmappedPrivileged(t *testing.T) {
	unshare := requireTool(t, "unshare")
	roottest.Require(t) // to map root into the namespace
	dir := writeTables(t, testTables)
	sock := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(unshare, "--user", "--map-root-user", bin(t), "serve", "-tables", dir,
		"-socketmap", "unix:"+sock, "-privileged-users", "root,4242")
	var log testkit.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(log.String(), "listening") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "not mapped in mapdropd's user namespace") || !strings.Contains(log.String(), "uid=4242") ||
		strings.Contains(log.String(), "uid=0 ") {
		t.Errorf("no (or a wrong) warning for an unmapped privileged uid:\n%s", log.String())
	}
}
