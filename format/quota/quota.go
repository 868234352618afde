// Package quota is the Maildir++ quota definition, the one form a quota
// takes in mapdrop: the quota= field of a userdb entry and the first line
// of a Maildir's maildirsize file.
//
// # Format
//
// A definition is a comma-separated list of members, each a decimal number
// followed by a letter: S the total size of all messages in bytes, C the
// number of messages. "104857600S", "1000C", "104857600S,1000C" and
// "1000C,104857600S" are definitions; 0, or a missing member, means no limit
// of that kind.
//
// Parse reads what an administrator writes (the userdb field) and refuses
// anything else: another letter, a letter given twice, a sign, spaces, an
// empty member. ParseFile reads what a Maildir may hold, written by other
// implementations as well: members are trimmed of spaces, unknown letters
// are ignored, and an empty definition means no quota.
package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits is a Maildir++ quota. Zero means no limit.
type Limits struct {
	Bytes    int64 // S
	Messages int64 // C
}

// Enabled reports whether any limit is set.
func (l Limits) Enabled() bool { return l.Bytes > 0 || l.Messages > 0 }

// String returns the definition, e.g. "1000S,10C", "1000S", "10C", or ""
// when no limit is set. Parse(l.String()) == l for every enabled l.
func (l Limits) String() string {
	var parts []string
	if l.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(l.Bytes, 10)+"S")
	}
	if l.Messages > 0 {
		parts = append(parts, strconv.FormatInt(l.Messages, 10)+"C")
	}
	return strings.Join(parts, ",")
}

var errSyntax = errors.New(`want NNNS, NNNC or NNNS,MMMC`)

// Parse parses a definition strictly, as the package documentation says.
func Parse(s string) (Limits, error) {
	var l Limits
	var haveS, haveC bool
	for _, m := range strings.Split(s, ",") {
		n, unit, err := member(m)
		if err != nil {
			return Limits{}, err
		}
		switch {
		case unit == 'S' && !haveS:
			haveS, l.Bytes = true, n
		case unit == 'C' && !haveC:
			haveC, l.Messages = true, n
		case unit == 'S' || unit == 'C':
			return Limits{}, fmt.Errorf("%c given twice", unit)
		default:
			return Limits{}, errSyntax
		}
	}
	return l, nil
}

// ParseFile parses the definition line of a maildirsize file leniently, as
// the package documentation says.
func ParseFile(s string) (Limits, error) {
	var l Limits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, m := range strings.Split(s, ",") {
		n, unit, err := member(strings.TrimSpace(m))
		if err != nil {
			return Limits{}, fmt.Errorf("bad quota definition %q", s)
		}
		switch unit {
		case 'S':
			l.Bytes = n
		case 'C':
			l.Messages = n
		}
	}
	return l, nil
}

// member splits "NNNX" into its number and letter.
func member(m string) (n int64, unit byte, err error) {
	if len(m) < 2 {
		return 0, 0, errSyntax
	}
	num := m[:len(m)-1]
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, 0, errSyntax
		}
	}
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, 0, errors.New("number out of range")
	}
	return n, m[len(m)-1], nil
}
