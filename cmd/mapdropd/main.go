// Command mapdropd serves Postfix lookup tables from plain text map files,
// over Postfix's socketmap and tcp_table protocols, reloading each file as
// soon as it changes.
//
// Usage:
//
//	mapdropd serve  -tables DIR [-map NAME=PATH]... [-socketmap ADDR]... [-tcp NAME=HOST:PORT]...
//	                [-socket-mode 0660] [-socket-group GROUP] [-export DIR] [-export-maps LIST]
//	                [-recipient-delimiter +] [-address-maps LIST] [-exact-maps LIST]
//	                [-log-level info|debug]
//	mapdropd query  [-s ADDR] MAP KEY...     (KEY "-" reads keys from stdin, as postmap -q -)
//	mapdropd check  PATH...
//	mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR
//
// Exit status follows sysexits(3): 0 success, 1 not found (query), 64 usage,
// 75 temporary failure, 78 configuration error.
package main

import (
	"fmt"
	"os"
)

// defaultSocket is where serve listens and query, like the delivery agent,
// connects when no address is given.
const defaultSocket = "unix:/run/mapdrop/mapdropd.sock"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 64
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "query":
		return query(args[1:])
	case "check":
		return check(args[1:])
	case "export":
		return exportCmd(args[1:])
	case "-h", "-help", "--help", "help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "mapdropd: unknown command %q\n", args[0])
	usage()
	return 64
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  mapdropd serve  -tables DIR [-map NAME=PATH]... [-socketmap ADDR]... [-tcp NAME=HOST:PORT]... [flags]
  mapdropd query  [-s ADDR] MAP KEY...
  mapdropd check  PATH...
  mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR
Run "mapdropd COMMAND -h" for the flags of a command.
`)
}
