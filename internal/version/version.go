// Package version describes the running binary from the build information
// that the Go toolchain embeds (runtime/debug.ReadBuildInfo): the main
// module's version and the version-control revision it was built from.
//
// String returns one line:
//
//	PROGRAM VERSION (REVISION[, modified], COMMIT-TIME) GO-VERSION
//
// VERSION is the module version ("v1.2.3" when built with go install
// MODULE@VERSION, "(devel)" when built in a checkout); REVISION is the
// first 12 hex digits of the commit, "modified" when the work tree had
// uncommitted changes; the parenthesis is left out when the build has no
// VCS information (go build -buildvcs=false, or outside a checkout).
package version

import (
	"runtime/debug"
	"strings"
)

// String describes program's build in one line.
func String(program string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return program + " (no build information)"
	}
	return format(program, info)
}

func format(program string, info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var b strings.Builder
	b.WriteString(program + " " + v)
	if rev != "" {
		b.WriteString(" (" + rev[:min(12, len(rev))])
		if modified {
			b.WriteString(", modified")
		}
		if when != "" {
			b.WriteString(", " + when)
		}
		b.WriteString(")")
	}
	b.WriteString(" " + info.GoVersion)
	return b.String()
}
