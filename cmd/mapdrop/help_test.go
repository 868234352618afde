package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// mapdrop -h and --help print the help on stdout and exit 0; -version
// prints the build. Neither reads stdin nor logs a delivery.
func TestHelpAndVersion(t *testing.T) {
	bin := testkit.Build(t).Mapdrop()
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"-version"}, {"--version"}} {
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = []string{"MAPDROP_LOG_FILE=/dev/full"}
		err := cmd.Run()
		want := "usage: mapdrop "
		if strings.HasSuffix(args[0], "version") {
			want = " go1."
		}
		if err != nil || stderr.Len() != 0 || !strings.Contains(stdout.String(), want) {
			t.Errorf("mapdrop %v: %v, stdout %q, stderr %q; want exit 0 and %q on stdout", args, err, stdout.String(), stderr.String(), want)
		}
	}
}
