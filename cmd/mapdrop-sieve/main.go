// Command mapdrop-sieve is mapdrop with the Sieve engine: the same
// command line, the same delivery, plus the user's and the administrator's
// Sieve scripts (see cmd/mapdrop, packages deliver and deliver/sieve).
// mapdrop execs it when a script applies; it is installed next to mapdrop.
package main

import (
	"github.com/mapdrop/mapdrop/deliver/action"
	"github.com/mapdrop/mapdrop/deliver/sieve"
	"github.com/mapdrop/mapdrop/internal/agentcli"
)

func main() {
	agentcli.Main(func(s agentcli.FilterSettings) action.Filter {
		return sieve.Filter{Delimiters: s.Delimiters, Before: s.Before, After: s.After}
	})
}
