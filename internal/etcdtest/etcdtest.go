// Package etcdtest runs a real etcd cluster on loopback for tests: Debian's
// etcd-server binary (/usr/bin/etcd, 3.4), each member in its own process
// with its own data directory under the test's temporary directory, client
// and peer URLs on free 127.0.0.1 ports. Members can be killed (SIGKILL)
// and restarted with their data, one at a time or all at once.
//
// With Options.TLS the client URLs are https://, with certificates made
// for the test (a CA, a server certificate for 127.0.0.1, a client
// certificate: Cluster.Certs), and the members require a client
// certificate signed by that CA (--client-cert-auth); the peer URLs stay
// plain http on loopback. EnableAuth turns on etcd's authentication, and
// AddUser adds users whose role reads or writes one prefix.
//
// A test that needs etcd calls Require: when the binary is missing it
// fails if CI=true or MAPDROP_REQUIRE_ETCD=1, and skips otherwise.
package etcdtest

import (
	"context"
	"crypto/tls"
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
	// Certs are the certificates of a cluster started with Options.TLS,
	// nil otherwise.
	Certs *Certs

	tls            *tls.Config // the clients', with Certs
	user, password string      // the clients' login, after EnableAuth
	mu             sync.Mutex
}

// Options change how a cluster is started.
type Options struct {
	// TLS serves the client URLs over https:// and requires client
	// certificates signed by the cluster's CA (see Cluster.Certs).
	TLS bool
}

// Start starts an n-member cluster and waits until it answers a
// linearizable read. The members are killed when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	Require(t)
	c, err := LaunchWith(t.TempDir(), n, o)
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
	return LaunchWith(dir, n, Options{})
}

// LaunchWith is Launch with options.
func LaunchWith(dir string, n int, o Options) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{}
	scheme := "http"
	if o.TLS {
		certs, err := newCerts(filepath.Join(dir, "certs"))
		if err != nil {
			return nil, err
		}
		if c.tls, err = certs.ClientTLS(); err != nil {
			return nil, err
		}
		c.Certs, scheme = certs, "https"
	}
	var initial []string
	for i := 0; i < n; i++ {
		cp, err1 := testkit.FreePort()
		pp, err2 := testkit.FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, cp),
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
		if o.TLS {
			m.args = append(m.args,
				"--cert-file", c.Certs.ServerCert,
				"--key-file", c.Certs.ServerKey,
				"--trusted-ca-file", c.Certs.CA.CertFile,
				"--client-cert-auth")
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
// It presents the client certificate of a TLS cluster, and logs in as root
// after EnableAuth.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cfg := c.clientConfig(c.Endpoints())
	cfg.DialTimeout, cfg.MaxCallRecvMsgSize = 10*time.Second, 1<<30
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// clientConfig is the configuration of a client of endpoints.
func (c *Cluster) clientConfig(endpoints []string) clientv3.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := clientv3.Config{Endpoints: endpoints, Logger: zap.NewNop(), Username: c.user, Password: c.password}
	if c.tls != nil {
		cfg.TLS = c.tls.Clone()
	}
	return cfg
}

// EnableAuth creates the user root with rootPassword and the role root,
// and enables etcd's authentication. From then on the cluster's Client
// and WaitReady log in as root; a client without a login is refused (on
// a TLS cluster, etcd takes the user name from the client certificate's
// common name, Certs.ClientCN, which is no user).
func (c *Cluster) EnableAuth(t testing.TB, rootPassword string) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, "root", rootPassword); err != nil {
		t.Fatalf("etcdtest: add user root: %v", err)
	}
	if _, err := cli.RoleAdd(ctx, "root"); err != nil {
		t.Fatalf("etcdtest: add role root: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("etcdtest: grant root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("etcdtest: enable auth: %v", err)
	}
	c.mu.Lock()
	c.user, c.password = "root", rootPassword
	c.mu.Unlock()
}

// AddUser creates the user name with password and a role of the same name
// that may read every key under prefix, or with write read and write them,
// and grants it to the user. Call it after EnableAuth.
func (c *Cluster) AddUser(t testing.TB, name, password, prefix string, write bool) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	perm := clientv3.PermissionType(clientv3.PermRead)
	if write {
		perm = clientv3.PermissionType(clientv3.PermReadWrite)
	}
	if _, err := cli.RoleAdd(ctx, name); err != nil {
		t.Fatalf("etcdtest: add role %s: %v", name, err)
	}
	if _, err := cli.RoleGrantPermission(ctx, name, prefix, clientv3.GetPrefixRangeEnd(prefix), perm); err != nil {
		t.Fatalf("etcdtest: grant %s on %s: %v", name, prefix, err)
	}
	if _, err := cli.UserAdd(ctx, name, password); err != nil {
		t.Fatalf("etcdtest: add user %s: %v", name, err)
	}
	if _, err := cli.UserGrantRole(ctx, name, name); err != nil {
		t.Fatalf("etcdtest: grant role %s: %v", name, err)
	}
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
		for {
			err := c.read(m.ClientURL)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcdtest: member %s not healthy after %v: %v\n%s", m.Name, d, err, tail(m.Log(), 3000))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// read makes a linearizable read through the member at url, within 2s.
func (c *Cluster) read(url string) error {
	cfg := c.clientConfig([]string{url})
	// With a login, New waits (DialTimeout) for the member to answer.
	cfg.DialTimeout = 2 * time.Second
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "health-check")
	return err
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
