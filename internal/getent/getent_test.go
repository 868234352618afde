package getent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuery(t *testing.T) {
	ctx := context.Background()
	out, err := Query(ctx, "passwd", "root")
	if err != nil || !strings.HasPrefix(out, "root:") {
		t.Fatalf(`Query(passwd, root) = %q, %v`, out, err)
	}
	if _, err := Query(ctx, "passwd", "no-such-user-mapdrop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v, want ErrNotFound", err)
	}
	if _, err := Query(ctx, "no-such-database", "x"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no-such-database") {
		t.Errorf("unknown database: %v, want an error naming it", err)
	}
	old := Program
	Program = filepath.Join(t.TempDir(), "getent")
	defer func() { Program = old }()
	if _, err := Query(ctx, "passwd", "root"); !errors.Is(err, ErrNoGetent) {
		t.Errorf("no getent: %v, want ErrNoGetent", err)
	}
}
