package agentcli

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPanicIsTemporary(t *testing.T) {
	var stderr bytes.Buffer
	code := safely(&stderr, func() error { panic("boom\nsecond line") })
	if code != 75 || stderr.String() != "mapdrop: internal error: boom second line\n" {
		t.Errorf("safely = %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := safely(&stderr, func() error { return nil }); code != 0 || stderr.Len() != 0 {
		t.Errorf("safely(nil) = %d, %q", code, stderr.String())
	}
	if code := safely(io.Discard, func() error { return errors.New("plain") }); code != 75 {
		t.Errorf("plain error: %d, want 75", code)
	}
}
