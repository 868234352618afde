package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// check implements "mapdropd check": parse files and directories as serve
// would, print every error as "file:line: reason" (and every warning, such
// as a duplicate key or a byte order mark, prefixed "warning: "). Besides
// parse errors, a file that a running server would hold back (its last line
// has no newline, or it has no entries; unless "mapdropd confirm"
// confirmed its content), a dangling symbolic link, a symbolic link loop
// and a FIFO, socket or device are errors (reload.Check); a FIFO is never
// opened for a blocking read. With -state DIR, a map that drops more than
// half of the entries of its last good copy in DIR is an error too. Exit status: 0 every table
// parses, 65 (EX_DATAERR) a table has errors, 66 (EX_NOINPUT) a path is
// missing or unreadable, or there is no table at all (66 wins when both
// happen), 64 usage. On success it prints one line:
// "ok: N maps, M entries, W warnings".
func check(args []string) int {
	fs := newFlagSet("check")
	state := fs.String("state", "", "compare each map with its last good copy in `DIR`, serve's -state directory: a map that drops more than half of its entries is an error, as serve holds it back")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError("mapdropd check [-state DIR] PATH...")
	}
	maps, entries, errs, warnings := reload.CheckWith(reload.CheckOptions{StateDir: *state}, fs.Args()...)
	if maps == 0 && len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "mapdropd check: no tables in %s\n", strings.Join(fs.Args(), " "))
		return failure.NoInput.ExitCode()
	}
	for _, w := range warnings {
		fmt.Printf("warning: %v\n", w)
	}
	worst := error(nil)
	for _, err := range errs {
		fmt.Println(err)
		if worst == nil || failure.KindOf(err) == failure.NoInput {
			worst = err
		}
	}
	if worst != nil && failure.KindOf(worst) != failure.NoInput {
		worst = failure.New(failure.Invalid, "%v", worst)
	}
	if worst == nil {
		fmt.Printf("ok: %d maps, %d entries, %d warnings\n", maps, entries, len(warnings))
	}
	return failure.ExitCode(worst)
}

// usageError prints the usage line of a command and returns the usage
// exit status.
func usageError(line string) int {
	fmt.Fprintln(os.Stderr, "usage: "+line)
	return failure.Usage.ExitCode()
}
