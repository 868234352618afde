package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Commands are the main packages Binaries builds, relative to the module
// root.
var Commands = []string{"./cmd/mapdrop", "./cmd/mapdrop-sieve", "./cmd/mapdropd"}

// Binaries are the project's programs built from this checkout, in a
// directory of mode 0755 so that the unprivileged users pipe(8) and
// local(8) run as may run them.
type Binaries struct {
	Dir string
}

// Mapdrop is the delivery agent's executable.
func (b Binaries) Mapdrop() string { return filepath.Join(b.Dir, "mapdrop") }

// MapdropSieve is the delivery agent with the Sieve engine, which mapdrop
// execs from its own directory when a script applies.
func (b Binaries) MapdropSieve() string { return filepath.Join(b.Dir, "mapdrop-sieve") }

// Mapdropd is the table server's executable.
func (b Binaries) Mapdropd() string { return filepath.Join(b.Dir, "mapdropd") }

// build is one flavour of the binaries, built at most once per test binary.
type build struct {
	once sync.Once
	dir  string
	err  error
}

var (
	plain, race build
	builtMu     sync.Mutex
	built       []string // directories to remove at the end
)

// Build returns the binaries as the README builds them (CGO_ENABLED=0,
// static), building them on the first call in this test binary. It fails
// the test when they do not build.
func Build(t testing.TB) Binaries {
	t.Helper()
	return plain.get(t, false)
}

// BuildRace returns the binaries built with the race detector, building
// them on the first call in this test binary. Programs started afterwards
// exit 66 on a race and do not wait a second at exit (GORACE).
func BuildRace(t testing.TB) Binaries {
	t.Helper()
	return race.get(t, true)
}

func (b *build) get(t testing.TB, withRace bool) Binaries {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "mapdrop-testkit-bin-")
		if err != nil {
			b.err = err
			return
		}
		builtMu.Lock()
		built = append(built, dir)
		builtMu.Unlock()
		if err := os.Chmod(dir, 0o755); err != nil {
			b.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		b.err = BuildInto(ctx, dir, withRace, Commands...)
		if b.err == nil && withRace {
			// The race detector by default sleeps a second before every
			// exit; a race still fails the command.
			b.err = os.Setenv("GORACE", "atexit_sleep_ms=0 exitcode=66")
		}
		b.dir = dir
	})
	if b.err != nil {
		t.Fatalf("testkit: building %s: %v", strings.Join(Commands, " "), b.err)
	}
	return Binaries{Dir: b.dir}
}

func removeBuilds() {
	builtMu.Lock()
	defer builtMu.Unlock()
	for _, dir := range built {
		os.RemoveAll(dir)
	}
	built = nil
}

// BuildInto runs "go build -o outDir/ pkgs..." in the module root, so each
// main package lands in outDir under its directory's name, mode 0755.
// Without race it builds as the README does, with CGO_ENABLED=0; the race
// detector needs cgo. outDir is created (mode 0755) when missing.
func BuildInto(ctx context.Context, outDir string, withRace bool, pkgs ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	args := []string{"build"}
	if withRace {
		args = append(args, "-race")
	}
	args = append(args, "-o", outDir+string(os.PathSeparator))
	cmd := exec.CommandContext(ctx, GoTool(), append(args, pkgs...)...)
	cmd.Dir = root
	if !withRace {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
	for _, pkg := range pkgs {
		if err := os.Chmod(filepath.Join(outDir, filepath.Base(pkg)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// ModuleRoot returns the directory holding the go.mod of module
// github.com/mapdrop/mapdrop, searching upwards from the working directory
// (a test's is its package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/mapdrop/mapdrop\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the mapdrop module (no go.mod for github.com/mapdrop/mapdrop above the working directory)")
		}
		dir = parent
	}
}

// GoTool returns the go command: the one on PATH, else the one in GOROOT,
// else /usr/local/go/bin/go (where the official tarball installs it).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}

// MapdropdConfig describes a "mapdropd serve" subprocess.
type MapdropdConfig struct {
	Bin  string   // the mapdropd executable
	Args []string // serve's arguments: -tables, listeners, ...
	// The server is ready once "mapdropd query -s ProbeAddr ProbeMap
	// ProbeKey" gets an answer from a loaded map: found (exit 0) or not
	// found (exit 1).
	ProbeAddr, ProbeMap, ProbeKey string
	// LogFile collects the server's stdout and stderr across restarts;
	// default mapdropd.log in a temporary directory of the test.
	LogFile string
	// SysProcAttr, when set, is the server process's: to run it as another
	// user, with ambient capabilities.
	SysProcAttr *syscall.SysProcAttr
}

// Mapdropd is a running (or stopped) mapdropd subprocess.
type Mapdropd struct {
	cfg  MapdropdConfig
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result
}

// StartMapdropd starts mapdropd as configured and waits until it is ready.
// When the test ends it stops the server and fails the test unless it
// exits 0 on SIGTERM; a failed test's log shows the server's output.
func StartMapdropd(t testing.TB, cfg MapdropdConfig) *Mapdropd {
	t.Helper()
	if cfg.LogFile == "" {
		cfg.LogFile = filepath.Join(t.TempDir(), "mapdropd.log")
	}
	m := &Mapdropd{cfg: cfg}
	t.Cleanup(func() {
		if m.Running() {
			if code := m.Stop(t); code != 0 {
				t.Errorf("testkit: mapdropd exited %d after SIGTERM, want 0", code)
			}
		}
		if t.Failed() {
			t.Logf("testkit: mapdropd log %s:\n%s", cfg.LogFile, m.Log())
		}
	})
	m.Start(t)
	return m
}

// Log returns what the server wrote so far.
func (m *Mapdropd) Log() string {
	b, _ := os.ReadFile(m.cfg.LogFile)
	return string(b)
}

// Running reports whether the subprocess has been started and not exited.
func (m *Mapdropd) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the running server.
func (m *Mapdropd) Signal(sig os.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return errors.New("testkit: mapdropd not started")
	}
	return m.cmd.Process.Signal(sig)
}

// Start (re)starts the server and waits, at most Patience, until it is
// ready. It fails the test if the server exits or never gets ready.
func (m *Mapdropd) Start(t testing.TB) {
	t.Helper()
	if m.Running() {
		t.Fatalf("testkit: mapdropd already running")
	}
	logf, err := os.OpenFile(m.cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve"}, m.cfg.Args...)
	fmt.Fprintf(logf, "=== testkit: %s %s\n", m.cfg.Bin, strings.Join(args, " "))
	cmd := exec.Command(m.cfg.Bin, args...)
	cmd.SysProcAttr = m.cfg.SysProcAttr
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("testkit: starting mapdropd: %v", err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done, m.err = cmd, done, nil
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(done)
	}()

	var out string
	var code int
	exited := false
	ready := Poll(Patience, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		code, out = m.probe()
		return code == 0 || code == 1
	})
	switch {
	case exited:
		t.Fatalf("testkit: mapdropd exited during start-up: %v\n%s", m.exitErr(), m.Log())
	case !ready:
		m.Stop(t)
		t.Fatalf("testkit: mapdropd at %s did not answer %s %s within %v: exit %d %s\n%s",
			m.cfg.ProbeAddr, m.cfg.ProbeMap, m.cfg.ProbeKey, Patience, code, out, m.Log())
	}
}

// probe runs the readiness query and returns its exit code (-1 when it
// could not run) and output.
func (m *Mapdropd) probe() (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.cfg.Bin, "query", "-s", m.cfg.ProbeAddr, m.cfg.ProbeMap, m.cfg.ProbeKey).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), string(out)
	}
	return -1, fmt.Sprintf("%v %s", err, out)
}

func (m *Mapdropd) exitErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Stop sends SIGTERM and waits (20 s, then SIGKILL) for the server to exit.
// It returns the exit status: 0 for a clean exit after SIGTERM, -1 when the
// server had to be killed or died of a signal.
func (m *Mapdropd) Stop(t testing.TB) int {
	t.Helper()
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return 0
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Errorf("testkit: mapdropd did not exit within 20s of SIGTERM; killing it")
		cmd.Process.Kill()
		<-done
		return -1
	}
	var ee *exec.ExitError
	if err := m.exitErr(); errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		return -1
	}
	return 0
}
