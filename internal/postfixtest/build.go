package postfixtest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Binaries are programs built for a test binary by Build.
type Binaries struct {
	Dir   string            // mode 0755, so that pipe(8) and local(8) users can run what is in it
	Paths map[string]string // base name of the package path (e.g. "mapdropd") → executable
}

// Path returns the executable built from the package whose last path
// element is name, or "" when there is none.
func (b Binaries) Path(name string) string { return b.Paths[name] }

// Remove deletes the binaries' directory.
func (b Binaries) Remove() error {
	if b.Dir == "" {
		return nil
	}
	return os.RemoveAll(b.Dir)
}

// ModuleRoot returns the directory of the go.mod governing the current
// directory (the package under test, when called from a test).
func ModuleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// Build compiles each package (import paths relative to the module root,
// such as "./cmd/mapdropd") into a fresh 0755 temporary directory; call it
// once from TestMain and Remove the result when the tests end. It is bounded
// to ten minutes in all.
func Build(pkgs ...string) (Binaries, error) {
	root, err := ModuleRoot()
	if err != nil {
		return Binaries{}, err
	}
	dir, err := os.MkdirTemp("", "postfixtest-bin-")
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Dir: dir, Paths: map[string]string{}}
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Remove()
		return Binaries{}, err
	}
	// One go build writes every main package into dir (-o ending in "/").
	cmd := exec.Command(goTool(), append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	// As the README builds them: static, no C library (see deliver/account).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var output []byte
	done := make(chan error, 1)
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		<-done
		err = fmt.Errorf("timed out")
	}
	if err != nil {
		b.Remove()
		return Binaries{}, fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, output)
	}
	for _, pkg := range pkgs {
		name := path.Base(pkg)
		out := filepath.Join(dir, name)
		if err := os.Chmod(out, 0o755); err != nil {
			b.Remove()
			return Binaries{}, err
		}
		b.Paths[name] = out
	}
	return b, nil
}

// goTool returns the go command: the one in PATH, else the one next to
// this Go installation's default location.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}
