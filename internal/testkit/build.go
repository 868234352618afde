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
	"testing"
	"time"
)

// Commands are the main packages Binaries builds, relative to the module
// root.
var Commands = []string{"./cmd/mapdrop", "./cmd/mapdropd"}

// Binaries are the project's programs built from this checkout, in a
// directory of mode 0755 so that the unprivileged users pipe(8) and
// local(8) run as may run them.
type Binaries struct {
	Dir string
}

// Mapdrop is the delivery agent's executable.
func (b Binaries) Mapdrop() string { return filepath.Join(b.Dir, "mapdrop") }

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
