package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// The pipe(8) user that runs mapdrop in the tests (as in e2e), and the
// hostile local user.
const (
	lockoutPipeUser = "mdtest-pipe"
	lockoutAttacker = "nobody"
)

// attacker is holdconns (testdata/holdconns) running as another uid.
type attacker struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	last    string // its last status line
	maxHeld int
}

// startAttacker runs holdconns as uid/gid against the unix socket sock
// (a path), holding n connections.
func startAttacker(t *testing.T, binDir, sock string, n int, uid, gid uint32) *attacker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "holdconns"), "-addr", sock, "-n", strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &attacker{cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			held := 0
			if m := regexp.MustCompile(`held=(\d+)`).FindStringSubmatch(sc.Text()); m != nil {
				held, _ = strconv.Atoi(m[1])
			}
			a.mu.Lock()
			a.last, a.maxHeld = sc.Text(), max(a.maxHeld, held)
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		<-done
		if stderr.Len() > 0 {
			t.Logf("holdconns stderr: %s", stderr.String())
		}
	})
	return a
}

func (a *attacker) status() (string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, a.maxHeld
}

// metric reads one sample of mapdropd's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("metrics: no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lockoutWorld is a mapdropd serving a userdb for the pipe user on a 0666
// unix socket, with metrics, as the README's install runs it (default
// limits, privileged users root and postfix).
type lockoutWorld struct {
	d                *testkit.Mapdropd
	sock, metrics    string
	base, maildir    string
	pipeUID, pipeGID uint32
	bins             testkit.Binaries
	helpers          string // directory with holdconns
}

func newLockoutWorld(t *testing.T, extra ...string) *lockoutWorld {
	t.Helper()
	roottest.Require(t)
	postfixtest.Postmap(t)
	w := &lockoutWorld{base: roottest.TempDir(t), bins: testkit.Build(t), metrics: testkit.Addr(t)}
	w.pipeUID, w.pipeGID = postfixtest.EnsureUser(t, lockoutPipeUser)
	w.helpers = filepath.Join(w.base, "helpers")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testkit.BuildInto(ctx, w.helpers, false, "./cmd/mapdropd/testdata/holdconns"); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(w.base, "home")
	w.maildir = filepath.Join(home, "Maildir")
	for _, d := range []string{home, w.maildir, filepath.Join(w.maildir, "tmp"), filepath.Join(w.maildir, "new"), filepath.Join(w.maildir, "cur")} {
		postfixtest.MkdirOwned(t, d, 0o700, w.pipeUID, w.pipeGID)
	}
	tables := filepath.Join(w.base, "tables")
	os.Mkdir(tables, 0o755)
	userdb := fmt.Sprintf("user1@some.domain uid=%d|gid=%d|home=%s\n", w.pipeUID, w.pipeGID, home)
	os.WriteFile(filepath.Join(tables, "userdb"), []byte(userdb), 0o644)
	os.WriteFile(filepath.Join(tables, "virtual_mailbox_domains"), []byte("some.domain OK\n"), 0o644)
	w.sock = filepath.Join(w.base, "mapdropd.sock")
	args := append([]string{"-tables", tables, "-socketmap", "unix:" + w.sock, "-socket-mode", "0666", "-metrics", w.metrics}, extra...)
	w.d = testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin: w.bins.Mapdropd(), Args: args,
		ProbeAddr: "unix:" + w.sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
	})
	return w
}

// timed runs cmd with a limit, and returns its exit status (-1: killed
// at the limit), its output and how long it took.
func timed(cmd *exec.Cmd, limit time.Duration, stdin string) (int, string, time.Duration) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = strings.NewReader(stdin)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return -2, err.Error(), 0
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	took := time.Since(start)
	if !timer.Stop() {
		return -1, out.String(), took
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -2
	}
	return code, out.String(), took
}

// asUser sets cmd to run as the named user.
func asUser(t *testing.T, cmd *exec.Cmd, name string) *exec.Cmd {
	t.Helper()
	uid, gid := roottest.IDs(t, name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return cmd
}

// Issue 10: a local user holding 2000 connections to the 0666 socket locks
// out neither Postfix's lookups (postmap -q as root and as postfix, as
// Postfix's daemons ask) nor mapdrop's (as the pipe(8) user, which the
// default -privileged-users does not list: it gets through on its own
// fair share), 20 times each, each answered within 5 seconds.
func TestNoLockoutByLocalUser(t *testing.T) {
	w := newLockoutWorld(t)
	auid, agid := roottest.IDs(t, lockoutAttacker)
	a := startAttacker(t, w.helpers, w.sock, 2000, auid, agid)
	// The attack is on: the attacker holds its share of the server's
	// connections and keeps pressing for more.
	testkit.Eventually(t, "the attacker to hold 100 connections and be refused or evicted 2000 times", func() bool {
		_, held := a.status()
		pressed := metric(t, w.metrics, "mapdropd_connections_evicted_total") + metric(t, w.metrics, "mapdropd_connections_rejected_total")
		return held >= 100 && pressed >= 2000
	})
	postmap := postfixtest.Postmap(t)
	// An empty main.cf, made old: Postfix waits for a main.cf modified in
	// the last moments to settle.
	conf := filepath.Join(w.base, "postfix")
	os.Mkdir(conf, 0o755)
	old := time.Now().Add(-time.Hour)
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(conf, "main.cf"), old, old)
	var worst time.Duration
	for i := range 20 {
		for _, as := range []string{"root", "postfix"} {
			cmd := exec.Command(postmap, "-c", conf, "-q", "user1@some.domain", "socketmap:unix:"+w.sock+":userdb")
			if as != "root" {
				asUser(t, cmd, as)
			}
			code, out, took := timed(cmd, 5*time.Second, "")
			worst = max(worst, took)
			if code != 0 || !strings.Contains(out, "uid=") {
				st, _ := a.status()
				t.Fatalf("round %d: postmap -q as %s: exit %d after %v, %q (attacker: %s)\n%s", i, as, code, took, out, st, w.d.Log())
			}
		}
		cmd := asUser(t, exec.Command(w.bins.Mapdrop(), "-s", "unix:"+w.sock, "-d", "user1@some.domain"), lockoutPipeUser)
		cmd.Env = []string{"MAPDROP_LOG_FILE=/dev/null"}
		msg := fmt.Sprintf("Subject: round %d\n\nbody\n", i)
		code, out, took := timed(cmd, 5*time.Second, msg)
		worst = max(worst, took)
		if code != 0 {
			st, _ := a.status()
			t.Fatalf("round %d: mapdrop: exit %d after %v, %q (attacker: %s)\n%s", i, code, took, out, st, w.d.Log())
		}
	}
	entries, err := os.ReadDir(filepath.Join(w.maildir, "new"))
	if err != nil || len(entries) != 20 {
		t.Errorf("%d messages in new/ (%v), want 20", len(entries), err)
	}
	st, held := a.status()
	t.Logf("attacker at the end: %s (most held at once %d); server: %v connections open, %v evicted, %v rejected; slowest lookup or delivery %v",
		st, held, metric(t, w.metrics, "mapdropd_connections_open"), metric(t, w.metrics, "mapdropd_connections_evicted_total"),
		metric(t, w.metrics, "mapdropd_connections_rejected_total"), worst)
	if !w.d.Running() {
		t.Fatalf("mapdropd died:\n%s", w.d.Log())
	}
}

// The check above can fail: when the attacker's uid is privileged (never
// limited per uid nor closed while stalled), it fills every slot and an
// unprivileged lookup waits until it gives up.
func TestLockoutWhenAttackerPrivileged(t *testing.T) {
	w := newLockoutWorld(t, "-privileged-users", "root,postfix,"+lockoutAttacker, "-max-conns", "200")
	auid, agid := roottest.IDs(t, lockoutAttacker)
	a := startAttacker(t, w.helpers, w.sock, 2000, auid, agid)
	testkit.Eventually(t, "the attacker to fill the 200 slots", func() bool {
		return metric(t, w.metrics, "mapdropd_connections_open") >= 200
	})
	// Let the half-sent requests stall (a privileged stalled request is
	// never closed).
	time.Sleep(2 * time.Second)
	cmd := asUser(t, exec.Command(w.bins.Mapdropd(), "query", "-timeout", "3s", "-s", "unix:"+w.sock, "userdb", "user1@some.domain"), lockoutPipeUser)
	code, out, took := timed(cmd, 20*time.Second, "")
	if code != 75 {
		st, _ := a.status()
		t.Errorf("query as %s against a privileged attacker: exit %d after %v, %q; want 75 (attacker: %s)", lockoutPipeUser, code, took, out, st)
	}
	t.Logf("query as %s against a privileged attacker: exit %d after %v: %s", lockoutPipeUser, code, took, out)
}
