package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestPrivilegedRefused installs copies of mapdrop the way a reader of
// Courier's maildrop documentation might (setuid root, setgid root, file
// capabilities) and runs them as an unprivileged user with a log file and a
// lookup server of that user's choosing. Each must exit 75 with advice,
// before it creates the log file or connects to the server. The same binary
// without privileges, run the same way, does both: the check is what makes
// the difference.
func TestPrivilegedRefused(t *testing.T) {
	roottest.Require(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Fatal("setcap (Debian package libcap2-bin) is needed:", err)
	}
	dir := roottest.TempDir(t)
	src, err := os.ReadFile(testkit.Build(t).Mapdrop())
	if err != nil {
		t.Fatal(err)
	}
	sieveSrc, err := os.ReadFile(testkit.Build(t).MapdropSieve())
	if err != nil {
		t.Fatal(err)
	}
	install := func(name string, mode os.FileMode, caps string) string {
		p := filepath.Join(dir, name)
		src := src
		if strings.HasPrefix(name, "mapdrop-sieve") {
			src = sieveSrc
		}
		if err := os.WriteFile(p, src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if caps != "" {
			if out, err := exec.Command(setcap, caps, p).CombinedOutput(); err != nil {
				t.Fatalf("setcap %s %s: %v %s", caps, p, err, out)
			}
		}
		return p
	}
	plain := install("mapdrop-plain", 0o755, "")
	copies := map[string]string{
		"setuid root": install("mapdrop-setuid", 0o755|os.ModeSetuid, ""),
		"setgid root": install("mapdrop-setgid", 0o755|os.ModeSetgid, ""),
		"setcap":      install("mapdrop-setcap", 0o755, "cap_dac_override,cap_chown+ep"),
		// mapdrop-sieve shares the command line, and the check.
		"mapdrop-sieve setuid root": install("mapdrop-sieve-setuid", 0o755|os.ModeSetuid, ""),
	}

	// The caller's own "lookup server": it counts connections and closes
	// them, so an unprivileged mapdrop fails at once with exit 75.
	sock := filepath.Join(dir, "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(sock, 0o666)
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	// A directory the caller may create files in: any open of the log
	// would leave a file, privileged or not.
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logDir, 0o777)

	run := func(bin, name string) (code int, stderr string, logs []string) {
		t.Helper()
		envLog := filepath.Join(logDir, name+".env")
		optLog := filepath.Join(logDir, name+".opt")
		cmd := exec.Command(bin, "-log", optLog, "-s", "unix:"+sock, "-d", "u1@some.domain")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "MAPDROP_LOG_FILE=" + envLog, "MAPDROP_SERVER=unix:" + sock}
		cmd.Stdin = strings.NewReader("Subject: x\n\nx\n")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range []string{envLog, optLog} {
			if _, err := os.Lstat(p); err == nil {
				logs = append(logs, p)
			}
		}
		return code, errb.String(), logs
	}

	// The control: unprivileged, it logs and asks the server.
	code, stderr, logs := run(plain, "plain")
	if code != 75 || conns.Load() == 0 || len(logs) != 1 {
		t.Fatalf("unprivileged copy: exit %d, %d connections, logs %v, stderr %q; want 75, a connection and the -log file", code, conns.Load(), logs, stderr)
	}
	for what, bin := range copies {
		before := conns.Load()
		code, stderr, logs := run(bin, strings.ReplaceAll(what, " ", "-"))
		if code != 75 {
			t.Errorf("%s: exit %d, want 75; stderr %q", what, code, stderr)
		}
		if !strings.HasPrefix(stderr, "mapdrop: refusing to run with privileges") || strings.Count(stderr, "\n") != 1 ||
			!strings.Contains(stderr, "pipe(8) with user=") || !strings.Contains(stderr, "local(8)") {
			t.Errorf("%s: stderr %q, want one line refusing, with the pipe(8) user= and local(8) advice", what, stderr)
		}
		if len(logs) != 0 {
			t.Errorf("%s: log files created: %v", what, logs)
		}
		if n := conns.Load() - before; n != 0 {
			t.Errorf("%s: %d connections to the caller's server", what, n)
		}
	}
}
