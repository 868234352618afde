package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/store"
)

// The tests run the built mapdrop binary against a real lookup server on a
// real unix socket: the real mapdropd binary when it builds, else (or with
// env MAPDROP_TEST_INPROCESS=1) the same server code in-process.

var (
	binDir     string // mode 0755, holds mapdrop, mapdrop-sieve (and mapdropd)
	haveDaemon bool
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mapdrop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	binDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "mapdrop"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as the README builds it
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mapdrop: %v\n%s", err, out)
		return 1
	}
	build = exec.Command("go", "build", "-o", filepath.Join(dir, "mapdrop-sieve"), "../mapdrop-sieve")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mapdrop-sieve: %v\n%s", err, out)
		return 1
	}
	if os.Getenv("MAPDROP_TEST_INPROCESS") == "1" {
		fmt.Fprintln(os.Stderr, "MAPDROP_TEST_INPROCESS=1: using the in-process server")
	} else if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "mapdropd"), "../mapdropd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mapdropd failed, using the in-process server: %v\n%s", err, out)
	} else {
		haveDaemon = true
	}
	return m.Run()
}

// world is one test's server, homes and log file.
type world struct {
	t       *testing.T
	base    string // 0755, root of everything below
	sock    string // "unix:/..."
	logFile string
	uid     uint32 // the mailbox owner deliveries run as
	gid     uint32
}

// newWorld starts a lookup server whose userdb map holds entries; in
// values, "UID", "GID" and "BASE" are replaced.
func newWorld(t *testing.T, entries map[string]string) *world {
	t.Helper()
	w := &world{t: t, base: roottest.TempDir(t)}
	w.sock = "unix:" + filepath.Join(w.base, "mapdropd.sock")
	w.logFile = filepath.Join(w.base, "maillog")
	w.uid, w.gid = uint32(os.Getuid()), uint32(os.Getgid())
	if os.Geteuid() == 0 {
		w.uid, w.gid = 65534, 65534
	}
	if err := os.Mkdir(filepath.Join(w.base, "homes"), 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var es []mapfile.Entry
	for k, v := range entries {
		v = w.expand(v)
		lines = append(lines, k+" "+v)
		es = append(es, mapfile.Entry{Key: k, Value: v})
	}
	sort.Strings(lines)
	tables := filepath.Join(w.base, "tables")
	os.Mkdir(tables, 0o755)
	if err := os.WriteFile(filepath.Join(tables, "userdb"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if haveDaemon {
		w.startDaemon(tables)
	} else {
		w.startInProcess(es)
	}
	return w
}

func (w *world) expand(v string) string {
	return strings.NewReplacer("UID", fmt.Sprint(w.uid), "GID", fmt.Sprint(w.gid), "BASE", w.base).Replace(v)
}

func (w *world) startDaemon(tables string) {
	t := w.t
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(binDir, "mapdropd"), "serve", "-tables", tables,
		"-socketmap", w.sock, "-socket-mode", "0666")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	a, _ := sockaddr.Parse(w.sock)
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := oneshot.Lookup(ctx, time.Time{}, a, "userdb", "ready.probe")
		cancel()
		if failure.KindOf(err) == failure.NotFound {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("mapdropd exited: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("mapdropd did not serve userdb within 10s\n%s", stderr.String())
}

func (w *world) startInProcess(es []mapfile.Entry) {
	t := w.t
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Replace("userdb", store.Exact, es); err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Tables: server.TablesFunc(func(ctx context.Context, m, k string) (string, error) {
		return st.Lookup(m, k)
	})}
	a, _ := sockaddr.Parse(w.sock)
	if err := srv.ListenSocketmap(a, server.UnixOptions{Mode: 0o666}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
}

// home makes BASE/homes/NAME owned by the mailbox owner and returns it.
func (w *world) home(name string) string {
	h := filepath.Join(w.base, "homes", name)
	w.mkdirOwned(h)
	return h
}

// mkdirOwned makes a directory (0700) owned by the mailbox owner.
func (w *world) mkdirOwned(p string) {
	w.t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chown(p, int(w.uid), int(w.gid)); err != nil {
		w.t.Fatal(err)
	}
}

// maildirFor makes a home with a Maildir and the given folders.
func (w *world) maildirFor(name string, folders ...string) string {
	h := w.home(name)
	md := filepath.Join(h, "Maildir")
	for _, f := range append([]string{""}, folders...) {
		for _, s := range []string{"", "tmp", "new", "cur"} {
			w.mkdirOwned(filepath.Join(md, f, s))
		}
	}
	return md
}

type result struct {
	code   int
	stderr string
}

// run runs mapdrop with -s pointing at the world's server, then args.
func (w *world) run(stdin io.Reader, args ...string) result {
	return w.runOpts(runOpts{stdin: stdin}, append([]string{"-s", w.sock}, args...)...)
}

type runOpts struct {
	stdin io.Reader
	cred  *syscall.Credential
	env   []string
}

func (w *world) runOpts(o runOpts, args ...string) result {
	w.t.Helper()
	cmd := w.command(o, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return w.result(cmd, err, stderr.String())
}

func (w *world) command(o runOpts, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "mapdrop"), args...)
	if o.stdin == nil {
		o.stdin = strings.NewReader("")
	}
	cmd.Stdin = o.stdin
	env := []string{maillog.EnvFile + "=" + w.logFile}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAPDROP_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, o.env...)
	if o.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	}
	return cmd
}

func (w *world) result(cmd *exec.Cmd, err error, stderr string) result {
	w.t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return result{ee.ExitCode(), stderr}
	}
	if err != nil {
		w.t.Fatalf("running %v: %v", cmd.Args, err)
	}
	return result{0, stderr}
}

// want checks an exit status and that stderr is empty (for 0) or exactly
// one line starting "mapdrop: " and containing substr.
func (r result) want(t *testing.T, code int, substr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
		return
	}
	if code == 0 {
		if r.stderr != "" {
			t.Errorf("stderr %q, want none", r.stderr)
		}
		return
	}
	if !strings.HasPrefix(r.stderr, "mapdrop: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q is not one line starting %q", r.stderr, "mapdrop: ")
	}
	if !strings.Contains(r.stderr, substr) {
		t.Errorf("stderr %q does not contain %q", r.stderr, substr)
	}
}

// files returns name → content of the regular files in dir.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func only(t *testing.T, dir string) []byte {
	t.Helper()
	fs := files(t, dir)
	if len(fs) != 1 {
		t.Fatalf("%s holds %d files, want 1", dir, len(fs))
	}
	for _, b := range fs {
		return b
	}
	return nil
}

func (w *world) log() string {
	b, _ := os.ReadFile(w.logFile)
	return string(b)
}
