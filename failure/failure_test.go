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
		{New(Bounce, "mailbox full"), 77},
		{New(Invalid, "t:1: expected format"), 65},
		{New(NoInput, "no such file"), 66},
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

func TestLookupExitCode(t *testing.T) {
	for err, want := range map[error]int{
		nil:                            0,
		ErrNotFound:                    ExitNotFound,
		Temp("down"):                   75,
		Perm("unknown map x"):          78,
		New(Usage, "missing argument"): 64,
	} {
		if got := LookupExitCode(err); got != want {
			t.Errorf("LookupExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
