package failure

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("something odd"), 75},
		{Temp("server down"), 75},
		{Perm("unknown map x"), 78},
		{ErrNotFound, 67},
		{New(NotFound, "user1: user unknown"), 67},
		{New(Usage, "-d missing"), 64},
		{New(CantCreate, "mkdir"), 73},
		{New(Refused, "mailbox full"), 77},
		{fmt.Errorf("outer: %w", Perm("inner")), 78},
		{Wrap(CantCreate, os.ErrPermission, "create %s", "/x"), 73},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestNotFoundIs(t *testing.T) {
	if !errors.Is(New(NotFound, "x"), ErrNotFound) {
		t.Error("a NotFound error is not ErrNotFound")
	}
	if errors.Is(Temp("x"), ErrNotFound) {
		t.Error("a Temporary error is ErrNotFound")
	}
	if Wrap(Permanent, nil, "x") != nil {
		t.Error("Wrap(nil) is not nil")
	}
	w := Wrap(CantCreate, os.ErrPermission, "create %s", "/m")
	if w.Error() != "create /m: permission denied" || !errors.Is(w, os.ErrPermission) {
		t.Errorf("Wrap = %q", w)
	}
}
