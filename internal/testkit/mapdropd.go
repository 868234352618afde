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
