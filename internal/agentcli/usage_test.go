package agentcli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// Every option the help lists is one parse accepts, and the help lists
// every option parse knows (the older spelling -delimiter aside).
func TestHelpListsTheOptions(t *testing.T) {
	_, after, ok := strings.Cut(Help, "\nflags:\n")
	if !ok {
		t.Fatal("no flags: section in Help")
	}
	flags, _, _ := strings.Cut(after, "\n\n")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(flags, -1) {
		listed[m[1]] = true
	}
	for name := range listed {
		if name == "h" || name == "version" || name == "d" {
			continue
		}
		args := []string{"-" + name, "/x", "-d", "user@example.com"}
		if _, err := parse(args); err != nil && strings.Contains(err.Error(), "unknown option") {
			t.Errorf("help lists -%s, parse says %v", name, err)
		}
	}
	for _, name := range []string{"s", "recipient-delimiter", "quota-bounce", "n", "a", "f", "sieve-before", "sieve-after", "sendmail", "sieve-bin", "d", "h", "version"} {
		if !listed[name] {
			t.Errorf("help does not list -%s", name)
		}
	}
	if _, err := parse([]string{"-no-such-option", "-d", "u"}); err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Errorf("an unknown option: %v, want unknown option (else the check above cannot fail)", err)
	}
}

func TestHelpOrVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}} {
		var out bytes.Buffer
		code, done := helpOrVersion(args, &out, "mapdrop")
		if !done || code != 0 || out.String() != Help {
			t.Errorf("%v: done %v, code %d, %d bytes of output; want the help, exit 0", args, done, code, out.Len())
		}
	}
	for _, args := range [][]string{{"-version"}, {"--version"}} {
		var out bytes.Buffer
		code, done := helpOrVersion(args, &out, "mapdrop")
		if !done || code != 0 || !strings.HasPrefix(out.String(), "mapdrop ") || !strings.Contains(out.String(), " go1.") {
			t.Errorf("%v: done %v, code %d, %q; want the version", args, done, code, out.String())
		}
	}
	for _, args := range [][]string{nil, {"-d", "-h"}, {"-s", "unix:/x", "-d", "u"}} {
		if _, done := helpOrVersion(args, &bytes.Buffer{}, "mapdrop"); done {
			t.Errorf("%q taken for a help or version request", args)
		}
	}
}
