// Package etcdtest runs a real etcd cluster on loopback for tests: Debian's
// etcd-server binary (/usr/bin/etcd, 3.4), each member in its own process
// with its own data directory under the test's temporary directory, client
// and peer URLs on free 127.0.0.1 ports. Members can be killed (SIGKILL)
// and restarted with their data, one at a time or all at once.
//
// A test that needs etcd calls Require: when the binary is missing it
// fails if CI=true or MAPDROP_REQUIRE_ETCD=1, and skips otherwise.
package etcdtest

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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// Binary is the etcd server program.
var Binary = "/usr/bin/etcd"

// Required reports whether a missing etcd must fail the test: env CI=true
// or MAPDROP_REQUIRE_ETCD=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("MAPDROP_REQUIRE_ETCD") == "1"
}

// Require stops the test unless etcd can run here.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Binary); err == nil {
		return
	}
	if Required() {
		t.Fatalf("etcdtest: %s missing (install etcd-server); required because CI=true or MAPDROP_REQUIRE_ETCD=1", Binary)
	}
	t.Skipf("etcdtest: %s missing (install etcd-server)", Binary)
}

// Member is one etcd process.
type Member struct {
	Name      string
	Dir       string // data directory
	ClientURL string
	PeerURL   string
	args      []string
	logPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
}

// Start starts an n-member cluster and waits until it answers a
// linearizable read. The members are killed when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	Require(t)
	c, err := Launch(t.TempDir(), n)
	if c != nil {
		t.Cleanup(c.KillAll)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Launch is Start outside a test (benchmarks): the members' data and logs
// go into dir, and the caller kills them (KillAll), also after an error.
func Launch(dir string, n int) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{}
	var initial []string
	for i := 0; i < n; i++ {
		cp, err1 := testkit.FreePort()
		pp, err2 := testkit.FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
		}
		m.Dir = filepath.Join(dir, m.Name)
		m.logPath = filepath.Join(dir, m.Name+".log")
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "mapdrop-test",
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--logger", "zap",
			"--log-level", "warn",
		}
		if err := m.start(); err != nil {
			return c, err
		}
	}
	return c, c.WaitReady(60 * time.Second)
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcdtest: member %s already running", m.Name)
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	return nil
}

// Kill kills the member with SIGKILL and waits for it to exit.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts a killed member again, with its data.
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
}

// Log returns the member's log so far.
func (m *Member) Log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// KillAll kills every member.
func (c *Cluster) KillAll() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// RestartAll restarts every killed member and waits until the cluster
// answers.
func (c *Cluster) RestartAll(t testing.TB) {
	t.Helper()
	for _, m := range c.Members {
		m.mu.Lock()
		running := m.cmd != nil
		m.mu.Unlock()
		if !running {
			if err := m.start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 10 * time.Second, Logger: zap.NewNop(), MaxCallRecvMsgSize: 1 << 30})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitReady waits until a linearizable read through every running member
// succeeds, and fails after d.
func (c *Cluster) WaitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, m := range c.Members {
		m.mu.Lock()
		running := m.cmd != nil
		m.mu.Unlock()
		if !running {
			continue
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Get(ctx, "health-check")
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				cli.Close()
				return fmt.Errorf("etcdtest: member %s not healthy after %v: %v\n%s", m.Name, d, err, tail(m.Log(), 3000))
			}
			time.Sleep(100 * time.Millisecond)
		}
		cli.Close()
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
