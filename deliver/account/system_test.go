package account

import (
	"errors"
	"os"
	"os/user"
	"testing"

	"github.com/mapdrop/mapdrop/internal/getent"
)

func TestSystemLookup(t *testing.T) {
	u, err := SystemLookup("root")
	if err != nil || u.Uid != "0" || u.HomeDir == "" {
		t.Fatalf("SystemLookup(root) = %+v, %v", u, err)
	}
	var unknown user.UnknownUserError
	if _, err := SystemLookup("no-such-user-mapdrop"); !errors.As(err, &unknown) {
		t.Errorf("SystemLookup of a missing account: %v, want user.UnknownUserError", err)
	}
}

// An account os/user does not know is asked of getent: here a stand-in
// getent that answers like an LDAP-backed one.
func TestSystemLookupAsksGetent(t *testing.T) {
	fake := t.TempDir() + "/getent"
	script := "#!/bin/sh\n[ \"$3\" = ldapuser ] || exit 2\necho 'ldapuser:*:7001:7002:LDAP User,,,:/home/ldapuser:/bin/sh'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := getent.Program
	getent.Program = fake
	t.Cleanup(func() { getent.Program = old })
	u, err := SystemLookup("ldapuser")
	if err != nil || u.Uid != "7001" || u.Gid != "7002" || u.HomeDir != "/home/ldapuser" || u.Name != "LDAP User" {
		t.Fatalf("SystemLookup(ldapuser) = %+v, %v", u, err)
	}
	var unknown user.UnknownUserError
	if _, err := SystemLookup("nobody-at-all"); !errors.As(err, &unknown) {
		t.Errorf("getent exit 2: %v, want user.UnknownUserError", err)
	}
	if _, err := parsePasswd("x", "y:*:1:1::/h:/bin/sh"); err == nil {
		t.Error("a line for another account was accepted")
	}
}
