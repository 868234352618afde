package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
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
