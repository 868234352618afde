package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// check implements "mapdropd check": parse files and directories as serve
// would, print every error as "file:line: reason" (and every warning, such
// as a duplicate key, prefixed "warning: "). Exit status: 0 every table
// parses, 65 (EX_DATAERR) a table has errors, 66 (EX_NOINPUT) a path is
// missing or unreadable (66 wins when both happen), 64 usage.
func check(args []string) int {
	fs := flag.NewFlagSet("mapdropd check", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return failure.Usage.ExitCode()
	}
	if fs.NArg() == 0 {
		return usageError("mapdropd check PATH...")
	}
	errs, warnings := reload.Check(fs.Args()...)
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
	return failure.ExitCode(worst)
}

// usageError prints the usage line of a command and returns the usage
// exit status.
func usageError(line string) int {
	fmt.Fprintln(os.Stderr, "usage: "+line)
	return failure.Usage.ExitCode()
}
