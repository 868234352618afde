package main

import (
	"fmt"
	"io"
	"strings"
)

// The text of "mapdropd -h" around the table of commands. The man page
// mapdropd(8) (doc/mapdropd.8) is generated from "mapdropd -h" and every
// "mapdropd COMMAND -h" by "go generate ./doc", which reads the layout
// package flag prints: a first line "NAME - WHAT IT IS", paragraphs, and
// sections that start with a line "name:", their items indented by two
// spaces, an item's text after a tab on its line or on the lines below,
// indented by four spaces and a tab. The commands are found in the
// "commands:" section, each item's first word.
const (
	helpHead = `mapdropd - serve Postfix lookup tables from plain text map files

usage: mapdropd COMMAND [flag]... [ARG]...
       mapdropd -h | -version

mapdropd serves Postfix lookup tables over Postfix's socketmap and tcp_table protocols, from plain text files in the format postmap(1) reads: every regular file in the tables directory is a map named after the file. The directory is watched and a changed file is loaded again once its writer has closed it; a file that does not load leaves the previous table serving, and so does one that looks cut short or emptied (it would drop more than half of the map's entries, or all of them) until the administrator confirms it with mapdropd confirm FILE. Keys are case-folded. Address maps (names with alias, mailbox, canonical, recipient, sender, relocated or transport, except *_domains and mailbox_command) are looked up in Postfix's own order, user+ext@domain, user@domain, @domain, because Postfix asks a server only for the full address; every other map by exact key.

Postfix asks it with proxy:socketmap:unix:/run/mapdrop/mapdropd.sock:MAP (through proxymap(8), because Debian's master.cf runs smtpd, cleanup and trivial-rewrite chrooted, where the socket does not exist), socketmap:inet:HOST:PORT:MAP or tcp:HOST:PORT; the delivery agent mapdrop(8) looks up its userdb map over the socket directly. For the maps Postfix refuses to read from a server (mailbox_command_maps), serve -export writes cdb snapshots.
`
	helpTail = `
exit status:
  0	success; for query, every key found
  1	a key not found (query, as postmap -q)
  64	usage: a bad command line or flag
  65	a table has errors (check)
  66	a path is missing or unreadable, or there are no tables (check); a file of -etcd-cacert, -etcd-cert, -etcd-key or -etcd-password-file unreadable (serve, push)
  75	temporary failure: the server is unreachable, or it answered TEMP; the etcd cluster is unreachable (serve without a usable -etcd-cache, push)
  78	configuration error, or the server answered PERM; etcd refused mapdropd: its certificate not trusted by either side, a wrong -etcd-user or password, a role without the access (serve without a usable -etcd-cache, push)

signals:
  SIGHUP	serve: load every table again now (a file whose text did not change is not reloaded, and its cdb export not rewritten)
  SIGTERM	serve: stop listening, finish the requests under way, exit 0
  SIGINT	serve: as SIGTERM

files:
  /run/mapdrop/mapdropd.sock
    	the default socketmap socket of serve, and the default server of query and mapdrop
  /etc/mapdrop/tables
    	the tables directory of the shipped systemd unit
  /var/lib/mapdrop
    	the -state and -export directory of the shipped systemd unit: last good copies (MAP.last-good) and cdb exports (MAP.cdb)

see also:
  mapdrop(8)
  postmap(1)
  proxymap(8)
  postconf(5)
  socketmap_table(5)
  tcp_table(5)
  systemd.socket(5)
`
)

// help writes the text of "mapdropd -h": the head, every command with its
// synopsis and summary, and the tail.
func help(w io.Writer) {
	fmt.Fprint(w, helpHead)
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\n    \t%s\n", c.name, c.synopsis, strings.ReplaceAll(c.summary, "\n", "\n    \t"))
	}
	fmt.Fprintln(w, "\nRun \"mapdropd COMMAND -h\" for the flags of a command.")
	fmt.Fprint(w, helpTail)
}
