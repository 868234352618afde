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
	"fmt"
	"net"
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
	t       testing.TB
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts an n-member cluster and waits until it answers a
// linearizable read. The members are killed when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	c := &Cluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
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
		m.start(t)
	}
	t.Cleanup(c.KillAll)
	c.WaitHealthy(t, 60*time.Second)
	return c
}

func (m *Member) start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		t.Fatalf("etcdtest: member %s already running", m.Name)
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("etcdtest: start %s: %v", m.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
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
func (m *Member) Restart(t testing.TB) { m.start(t) }

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
			m.start(t)
		}
	}
	c.WaitHealthy(t, 60*time.Second)
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

// WaitHealthy waits until a linearizable read through every running member
// succeeds, failing the test after d.
func (c *Cluster) WaitHealthy(t testing.TB, d time.Duration) {
	t.Helper()
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
			t.Fatal(err)
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
				t.Fatalf("etcdtest: member %s not healthy after %v: %v\n%s", m.Name, d, err, tail(m.Log(), 3000))
			}
			time.Sleep(100 * time.Millisecond)
		}
		cli.Close()
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
