package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestLogOption: -log FILE takes the place of MAPDROP_LOG_FILE, usage
// errors included.
func TestLogOption(t *testing.T) {
	w := newWorld(t, userdb)
	w.maildirFor("u1")
	opt := filepath.Join(w.base, "opt.log")
	w.run(strings.NewReader("x\n"), "-log", opt, "-d", "u1@some.domain").want(t, 0, "")
	w.runOpts(runOpts{stdin: strings.NewReader("x\n")}, "--log="+opt, "-d").want(t, 64, "usage")
	got, _ := os.ReadFile(opt)
	if lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], "user=u1@some.domain account=userdb:u1@some.domain folder=INBOX") ||
		!strings.Contains(lines[1], "exit=64") {
		t.Errorf("-log file %q, want the delivery and the usage error", got)
	}
	if l := w.log(); l != "" {
		t.Errorf("MAPDROP_LOG_FILE written despite -log: %q", l)
	}
}

// TestLogFIFO: a FIFO as the log file never holds a delivery up, whether
// named by -log or MAPDROP_LOG_FILE: without a reader the line is lost
// (there is no /dev/log in the test's world to fall back to, or syslog
// gets it), with one it arrives.
func TestLogFIFO(t *testing.T) {
	w := newWorld(t, userdb)
	md := w.maildirFor("u1")
	fifo := filepath.Join(w.base, "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	deliver := func(env []string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
		defer cancel()
		cmd := w.command(runOpts{stdin: strings.NewReader("fifo\n"), env: env}, append([]string{"-s", w.sock}, args...)...)
		cmd = withContext(ctx, cmd)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("mapdrop %q with a FIFO as its log did not finish within %v", args, testkit.Patience)
		}
		if err != nil {
			t.Fatalf("mapdrop %q: %v %s", args, err, out)
		}
	}
	deliver(nil, "-log", fifo, "-d", "u1@some.domain")
	deliver([]string{maillog.EnvFile + "=" + fifo}, "-d", "u1@some.domain")
	if n := len(files(t, filepath.Join(md, "new"))); n != 2 {
		t.Errorf("%d messages delivered, want 2", n)
	}
	// With a reader, the line arrives.
	fd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fd), fifo)
	defer r.Close()
	deliver(nil, "-log", fifo, "-d", "u1@some.domain")
	buf := make([]byte, 4096)
	r.SetReadDeadline(time.Now().Add(testkit.Patience))
	n, err := r.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "user=u1@some.domain account=userdb:u1@some.domain folder=INBOX") {
		t.Errorf("read from the FIFO: %q, %v", buf[:n], err)
	}
}

// withContext returns a copy of cmd that is killed when ctx ends.
func withContext(ctx context.Context, cmd *exec.Cmd) *exec.Cmd {
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Stdin, c.SysProcAttr = cmd.Env, cmd.Stdin, cmd.SysProcAttr
	c.WaitDelay = time.Second
	return c
}
