// Command mapdropd serves Postfix lookup tables from plain text map files,
// over Postfix's socketmap and tcp_table protocols, reloading each file as
// soon as it changes.
//
// Usage (the text of "mapdropd -h" and "mapdropd COMMAND -h", from which
// the man page doc/mapdropd.8 is generated; see help.go and package doc):
//
//	mapdropd serve  -tables DIR [-map NAME=PATH]... [-socketmap ADDR]... [-tcp NAME=HOST:PORT]... [flag]...
//	mapdropd query  [-s ADDR] [-timeout D] [-explain] MAP KEY...
//	mapdropd check  [-state DIR] PATH...
//	mapdropd confirm FILE...
//	mapdropd push   -etcd URLS [-etcd-prefix P] [-timeout D] PATH...
//	mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR
//	mapdropd -h | -version
//
// Exit status (package failure): 0 success (query: every key found), 1 a key
// not found (query, as postmap -q), 64 usage, 65 a table has errors
// (check), 66 a path is missing or unreadable (check), 75 temporary failure
// (server unreachable, TEMP), 78 configuration error or PERM.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// command is one of mapdropd's commands. Its synopsis and summary are the
// text of the usage messages, "mapdropd -h" and "mapdropd NAME -h", from
// which "go generate ./doc" writes the man page doc/mapdropd.8: a new
// command needs only its entry here and its flags in newFlagSet/parseFlags.
type command struct {
	name     string
	synopsis string // the arguments after the command name
	summary  string // what it does
}

var commands = []command{
	{"serve", "[-tables DIR] [-map NAME=PATH]... [-etcd URLS -etcd-cache DIR] [-socketmap ADDR]... [-tcp NAME=HOST:PORT]... [flag]...",
		"Serve the tables over socketmap and tcp_table, reloading each file as soon as it changes."},
	{"query", "[-s ADDR] [-timeout D] [-explain] MAP KEY...",
		"Look keys up in the running server, as postmap -q does; KEY - reads keys from standard input. With -explain, show how the server finds the answer to one key."},
	{"push", "-etcd URLS [-etcd-prefix P] [-timeout D] PATH...",
		"Parse map files and directories as check does and, when all parse, push them into etcd: each map replaced atomically, on every mapdropd serve -etcd. Prints NAME revision REV per map."},
	{"check", "[-state DIR] PATH...",
		"Parse table files and directories as serve would, print every error as FILE:LINE: REASON (also a file serve would hold back as cut short or empty, a dangling or looping symbolic link, a FIFO) and, when all is well, one summary line."},
	{"confirm", "FILE...",
		"Let a map file that looks cut short or emptied go live: record the SHA-256 of its content in .FILE.confirmed beside it, which the server watches."},
	{"export", "-tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR",
		"Write the -export-maps once as cdb files into OUTDIR."},
}

func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return failure.Usage.ExitCode()
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		help(os.Stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Println(version.String("mapdropd"))
		return 0
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "query":
		return query(args[1:])
	case "check":
		return check(args[1:])
	case "confirm":
		return confirm(args[1:])
	case "push":
		return push(args[1:])
	case "export":
		return exportCmd(args[1:])
	}
	fmt.Fprintf(os.Stderr, "mapdropd: unknown command %q\n", args[0])
	usage(os.Stderr)
	return failure.Usage.ExitCode()
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  mapdropd %-6s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w, "  mapdropd -version")
	fmt.Fprintln(w, `Run "mapdropd COMMAND -h" for the flags of a command.`)
}

// newFlagSet returns the flag set of command name, whose usage message is
// its synopsis, summary and flags.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mapdropd "+name, flag.ContinueOnError)
	fs.Usage = func() {
		for _, c := range commands {
			if c.name == name {
				fmt.Fprintf(fs.Output(), "usage: mapdropd %s %s\n\n%s\n", name, c.synopsis, c.summary)
			}
		}
		if hasFlags(fs) {
			fmt.Fprintf(fs.Output(), "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args with fs. With -h or --help it prints the usage
// message on standard output and returns 0, done; on a bad flag it prints
// the error and the usage message on standard error and returns the usage
// exit status, done. Otherwise done is false and the command goes on.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Stdout.Write(out.Bytes())
		return 0, true
	case err != nil:
		os.Stderr.Write(out.Bytes())
		return failure.Usage.ExitCode(), true
	}
	return 0, false
}
