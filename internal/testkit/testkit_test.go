package testkit

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(time.Minute, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Poll stopped after %d calls, want true at the third", n)
	}
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Error("Poll reported a condition that never held")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Poll with a 50ms limit returned after %v", time.Since(start))
	}
}

// TestImportsNothingOfMapdrop keeps testkit usable from the tests of every
// package without an import cycle.
func TestImportsNothingOfMapdrop(t *testing.T) {
	out, err := exec.Command(GoTool(), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/mapdrop/mapdrop/") && pkg != "github.com/mapdrop/mapdrop/internal/testkit" {
			t.Errorf("testkit imports %s", pkg)
		}
	}
}
