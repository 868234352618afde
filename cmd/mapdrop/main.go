// Command mapdrop is a maildrop-compatible delivery agent for Postfix: it
// reads one message on stdin and writes it into the recipient's Maildir, as
// the uid and gid that mapdropd's userdb map names.
//
// Its usage, options, environment and exit statuses are written once, as
// the help text "mapdrop -h" prints (internal/agentcli.Help), from which
// the man page doc/mapdrop.8 is generated ("go generate ./doc"). The
// command line is parsed by internal/agentcli, which mapdrop-sieve shares;
// every exit status comes from package failure.
//
// mapdrop itself never loads the Sieve engine: after resolving the account
// it looks (stat only) for the scripts that apply (deliver/sievepath) and,
// with one, execs mapdrop-sieve with the same arguments, environment and
// stdin (see packages deliver and deliver/sieve). It runs once per message,
// so what it links is paid per delivery; TestDependencies keeps net, the
// server's packages and the engine out of it.
package main

import "github.com/mapdrop/mapdrop/internal/agentcli"

func main() { agentcli.Main(nil) }
