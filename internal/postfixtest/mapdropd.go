package postfixtest

import (
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

// ServerConfig describes a "mapdropd serve" subprocess listening for
// socketmap requests on a unix socket.
type ServerConfig struct {
	Bin    string   // the mapdropd executable
	Tables string   // -tables DIR
	Socket string   // absolute path of the unix socket (-socketmap unix:PATH, -socket-mode 0666)
	Args   []string // further serve arguments, e.g. "-export", DIR
	// ProbeMap and ProbeKey make the readiness query
	// "mapdropd query -s unix:Socket ProbeMap ProbeKey", which must exit 0.
	ProbeMap, ProbeKey string
	// LogFile collects the server's stderr across restarts; default
	// Socket + ".log".
	LogFile string
}

// Server is a running (or stopped) mapdropd subprocess.
type Server struct {
	cfg  ServerConfig
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result
}

// StartServer starts mapdropd as configured, waits until it answers the
// probe query, and registers a Stop with t.Cleanup.
func StartServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.LogFile == "" {
		cfg.LogFile = cfg.Socket + ".log"
	}
	s := &Server{cfg: cfg}
	t.Cleanup(func() {
		if s.Running() {
			s.Stop(t)
		}
		if t.Failed() {
			t.Logf("postfixtest: mapdropd log %s:\n%s", cfg.LogFile, s.Log())
		}
	})
	s.Start(t)
	return s
}

// Addr is the server's address as mapdrop and Postfix spell it: unix:PATH.
func (s *Server) Addr() string { return "unix:" + s.cfg.Socket }

// Log returns what the server wrote on stderr so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.cfg.LogFile)
	return string(b)
}

// Running reports whether the subprocess has been started and not exited.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Start (re)starts the server and waits, at most 30 s, until the probe query
// succeeds. It fails the test if the server exits or never answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.Running() {
		t.Fatalf("postfixtest: mapdropd on %s already running", s.cfg.Socket)
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.Socket), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(s.cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "-tables", s.cfg.Tables, "-socketmap", s.Addr(), "-socket-mode", "0666"}, s.cfg.Args...)
	fmt.Fprintf(logf, "=== postfixtest: %s %s\n", s.cfg.Bin, strings.Join(args, " "))
	cmd := exec.Command(s.cfg.Bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("postfixtest: starting mapdropd: %v", err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.err = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
	}()

	deadline := time.Now().Add(30 * time.Second)
	var out string
	for {
		select {
		case <-done:
			t.Fatalf("postfixtest: mapdropd exited during start-up: %v\n%s", s.exitErr(), s.Log())
		default:
		}
		var qerr error
		out, qerr = run(10*time.Second, s.cfg.Bin, "query", "-s", s.Addr(), s.cfg.ProbeMap, s.cfg.ProbeKey)
		if qerr == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Stop(t)
			t.Fatalf("postfixtest: mapdropd on %s did not answer %s %s within 30s: %v %s\n%s",
				s.cfg.Socket, s.cfg.ProbeMap, s.cfg.ProbeKey, qerr, out, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop sends SIGTERM and waits (10 s, then SIGKILL) for the server to exit.
// It returns the exit status: 0 for a clean exit after SIGTERM, -1 when the
// server had to be killed.
func (s *Server) Stop(t testing.TB) int {
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return 0
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("postfixtest: mapdropd did not exit within 10s of SIGTERM; killing it")
		cmd.Process.Kill()
		<-done
		return -1
	}
	var ee *exec.ExitError
	if err := s.exitErr(); errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		return -1
	}
	return 0
}
