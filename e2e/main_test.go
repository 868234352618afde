package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// requireBinaries stops the test unless Postfix can run, and returns the
// programs under test: those in env MAPDROP_E2E_BINDIR when it is set,
// else the ones built from this checkout (a build failure always fails).
func requireBinaries(t *testing.T) testkit.Binaries {
	t.Helper()
	postfixtest.Require(t)
	if dir := os.Getenv("MAPDROP_E2E_BINDIR"); dir != "" {
		// Already built (or installed) programs; dir must be traversable
		// by the unprivileged delivery users.
		return testkit.Binaries{Dir: filepath.Clean(dir)}
	}
	return testkit.Build(t)
}
