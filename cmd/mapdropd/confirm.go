package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// confirm implements "mapdropd confirm FILE...": the admin's word that the
// current content of each map file is meant, although it looks cut short
// or emptied and a running server holds it back ("MAP LOAD HELD BACK" in
// its log, an error in "mapdropd check"). It writes the SHA-256 of the
// content to .FILE.confirmed beside the file (reload.Confirm); a server
// that watches the file loads it at once, or on SIGHUP. Only this exact
// content is confirmed: any other edit that the guard holds back needs
// confirming again. Exit status: 0 every file confirmed, 65 a file has
// errors (printed as check prints them; nothing is confirmed for it), 66 a
// file is missing or unreadable, 75 the confirmation could not be written,
// 64 usage.
func confirm(args []string) int {
	fs := newFlagSet("confirm")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError("mapdropd confirm FILE...")
	}
	var worst error
	for _, path := range fs.Args() {
		entries, sum, err := reload.Confirm(path)
		if err == nil {
			fmt.Printf("confirmed %s: %d entries, sha256 %s, recorded in %s\n", path, entries, sum, reload.ConfirmName(path))
			continue
		}
		var list mapfile.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Println(e)
			}
			err = failure.New(failure.Invalid, "%s: not confirmed: it has errors", path)
		}
		fmt.Fprintf(os.Stderr, "mapdropd confirm: %v\n", err)
		if worst == nil || failure.ExitCode(err) > failure.ExitCode(worst) {
			worst = err
		}
	}
	return failure.ExitCode(worst)
}
