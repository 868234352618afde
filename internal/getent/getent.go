// Package getent asks the C library's name service switch (nsswitch.conf:
// files, LDAP, sssd, DNS, ...) through the getent(1) program, for the static
// (CGO_ENABLED=0) binaries that cannot call the C library themselves.
//
// Query runs "getent DATABASE -- KEY" and returns its standard output.
// getent's exit status 2 ("key not found in the database") is ErrNotFound;
// a missing getent program is ErrNoGetent; any other failure is an error
// naming the query and getent's own message.
package getent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Program is the getent program run by Query.
var Program = "/usr/bin/getent"

// ErrNotFound is the answer for a key that is not in the database.
var ErrNotFound = errors.New("not found")

// ErrNoGetent says that the getent program is not installed.
var ErrNoGetent = errors.New("getent is not installed")

// Query asks the database (passwd, ahosts, ...) for key; ctx bounds the
// run.
func Query(ctx context.Context, database, key string) (string, error) {
	if _, err := exec.LookPath(Program); err != nil {
		return "", ErrNoGetent
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, Program, database, "--", key)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("getent %s %s: %v %s", database, key, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}
