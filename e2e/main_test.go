package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
)

// bins are the programs under test, built once by TestMain; buildErr says
// why they are missing.
var (
	bins     postfixtest.Binaries
	buildErr error
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("MAPDROP_E2E_BINDIR"); dir != "" {
		// Test already built (or installed) programs instead; dir must
		// be traversable by the unprivileged delivery users.
		bins = postfixtest.Binaries{Paths: map[string]string{
			"mapdropd": filepath.Join(dir, "mapdropd"),
			"mapdrop":  filepath.Join(dir, "mapdrop"),
			// mapdrop execs mapdrop-sieve from its own directory.
			"mapdrop-sieve": filepath.Join(dir, "mapdrop-sieve"),
		}}
	} else if postfixtest.Missing() == "" {
		bins, buildErr = postfixtest.Build("./cmd/mapdropd", "./cmd/mapdrop", "./cmd/mapdrop-sieve")
	} else {
		buildErr = fmt.Errorf("not built: %s", postfixtest.Missing())
	}
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

// requireBinaries stops the test unless Postfix can run and the binaries
// were built; a build failure always fails.
func requireBinaries(t *testing.T) {
	t.Helper()
	postfixtest.Require(t)
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
}
