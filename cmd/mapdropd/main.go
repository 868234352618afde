// Command mapdropd serves Postfix lookup tables from plain text map files,
// over Postfix's socketmap and tcp_table protocols, reloading each file as
// soon as it changes.
//
// Usage:
//
//	mapdropd serve  -tables DIR [-map NAME=PATH]... [-socketmap ADDR]... [-tcp NAME=HOST:PORT]...
//	                [-socket-mode 0660] [-socket-group GROUP] [-export DIR] [-export-maps LIST]
//	                [-recipient-delimiter +] [-address-maps LIST] [-exact-maps LIST]
//	                [-max-conns 1000] [-idle-timeout 60s] [-request-timeout 10s]
//	                [-log-level info|debug]
//	mapdropd query  [-s ADDR] [-timeout 10s] MAP KEY...  (KEY "-" reads keys from stdin, as postmap -q -)
//	mapdropd check  PATH...
//	mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR
//
// serve's flags:
//
//	-tables DIR            every regular file in DIR is a map named after the file
//	-map NAME=PATH         also serve the file PATH as map NAME (repeatable)
//	-socketmap ADDR        socketmap listener, unix:/path or inet:host:port
//	                       (repeatable; default unix:/run/mapdrop/mapdropd.sock)
//	-tcp NAME=HOST:PORT    serve map NAME over tcp_table on HOST:PORT (repeatable)
//	-socket-mode MODE      file mode of unix sockets (default 0660)
//	-socket-group GROUP    group of unix sockets, a name or a gid
//	-export DIR            write cdb snapshots of the -export-maps into DIR after every load
//	-export-maps LIST      comma-separated maps to export (default mailbox_command)
//	-recipient-delimiter C characters that start an address extension, as Postfix's
//	                       recipient_delimiter (default "+"; empty: none)
//	-address-maps LIST     maps looked up as addresses whatever their name
//	-exact-maps LIST       maps looked up by exact key whatever their name
//	-max-conns N           most concurrent connections (default 1000)
//	-idle-timeout D        close a connection idle this long (default 60s)
//	-request-timeout D     deadline for one request and its reply (default 10s)
//	-log-level L           info or debug (debug logs every query)
//
// query's flags: -s ADDR, the server (default env MAPDROP_SERVER, else
// unix:/run/mapdrop/mapdropd.sock); -timeout D, give up after D (default 10s).
//
// Exit status (package failure): 0 success (query: every key found), 1 a key
// not found (query, as postmap -q), 64 usage, 65 a table has errors
// (check), 66 a path is missing or unreadable (check), 75 temporary failure
// (server unreachable, TEMP), 78 configuration error or PERM.
package main

import (
	"fmt"
	"os"

	"github.com/mapdrop/mapdrop/failure"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return failure.Usage.ExitCode()
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
	return failure.Usage.ExitCode()
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
