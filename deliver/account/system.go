package account

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/internal/getent"
)

// SystemLookup finds a passwd account by name. It asks os/user first, which
// in mapdrop's static (CGO_ENABLED=0) build reads /etc/passwd only; an
// account that is not there is then asked of `getent passwd NAME` (package
// internal/getent), so that accounts from NSS sources (LDAP, sssd,
// systemd-homed) are found too, as the C library would find them. getent's
// "not found" is user.UnknownUserError; a missing getent leaves os/user's
// answer.
func SystemLookup(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if err == nil || !errors.As(err, &unknown) {
		return u, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, qerr := getent.Query(ctx, "passwd", name)
	switch {
	case errors.Is(qerr, getent.ErrNoGetent):
		return nil, err
	case errors.Is(qerr, getent.ErrNotFound):
		return nil, unknown
	case qerr != nil:
		return nil, qerr
	}
	return parsePasswd(name, strings.TrimSpace(out))
}

// parsePasswd reads one passwd(5) line, name:password:uid:gid:gecos:home:shell,
// which must be the account asked for.
func parsePasswd(name, line string) (*user.User, error) {
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] != name {
		return nil, fmt.Errorf("getent passwd %s: unexpected answer %q", name, line)
	}
	gecos, _, _ := strings.Cut(f[4], ",")
	return &user.User{Username: f[0], Uid: f[2], Gid: f[3], Name: gecos, HomeDir: f[5]}, nil
}
