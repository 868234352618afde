package account

import (
	"context"
	"errors"
	"os/user"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/format/quota"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
)

// resolver answers from a real store holding a userdb map, the way
// mapdropd would, and records the keys asked.
func resolver(t *testing.T, entries map[string]string) (*Resolver, *[]string) {
	t.Helper()
	var text strings.Builder
	for k, v := range entries {
		text.WriteString(k + " " + v + "\n")
	}
	st := fixtures.Store(t, "userdb", text.String())
	var asked []string
	return &Resolver{Delimiters: "+", Lookup: func(ctx context.Context, key string) (string, error) {
		asked = append(asked, key)
		return st.Lookup("userdb", key)
	}}, &asked
}

var testdb = map[string]string{
	"user1@some.domain":  "uid=5000|gid=5001|home=/var/vmail/some.domain/user1|quota=1000S,10C",
	"user2@some.domain":  "uid=5000|gid=5000|home=/var/vmail/u2|mail=/srv/mail/u2/",
	"a+b@some.domain":    "uid=6000|gid=6000|home=/var/vmail/ab",
	"broken@some.domain": "uid=0|gid=5000|home=/x",
	"localonly":          "uid=7000|gid=7000|home=/var/vmail/localonly",
}

func TestResolveUserdb(t *testing.T) {
	for _, c := range []struct {
		name, ext      string
		key, wantExt   string
		wantUID        uint32
		maildir        string
		asked          string
		qbytes, qcount int64
	}{
		{"user1@some.domain", "", "user1@some.domain", "", 5000, "/var/vmail/some.domain/user1/Maildir/", "user1@some.domain", 1000, 10},
		{"USER1@Some.Domain", "work", "user1@some.domain", "work", 5000, "/var/vmail/some.domain/user1/Maildir/", "user1@some.domain", 1000, 10},
		{"user1+work@some.domain", "", "user1@some.domain", "work", 5000, "/var/vmail/some.domain/user1/Maildir/", "user1+work@some.domain user1@some.domain", 1000, 10},
		{"user1+work+x@some.domain", "", "user1@some.domain", "work+x", 5000, "/var/vmail/some.domain/user1/Maildir/", "user1+work+x@some.domain user1@some.domain", 1000, 10},
		{"user1+work@some.domain", "other", "user1@some.domain", "other", 5000, "/var/vmail/some.domain/user1/Maildir/", "user1+work@some.domain user1@some.domain", 1000, 10},
		// A full address that is itself a key is not cut.
		{"a+b@some.domain", "", "a+b@some.domain", "", 6000, "/var/vmail/ab/Maildir/", "a+b@some.domain", 0, 0},
		{"user2@some.domain", "", "user2@some.domain", "", 5000, "/srv/mail/u2/", "user2@some.domain", 0, 0},
		{"localonly+x", "", "localonly", "x", 7000, "/var/vmail/localonly/Maildir/", "localonly+x localonly", 0, 0},
	} {
		r, asked := resolver(t, testdb)
		a, err := r.Resolve(context.Background(), c.name, c.ext)
		if err != nil {
			t.Errorf("Resolve(%q, %q): %v", c.name, c.ext, err)
			continue
		}
		if a.Source != "userdb" || a.Name != c.key || a.Extension != c.wantExt || a.UID != c.wantUID ||
			a.Maildir != c.maildir || a.Quota != (quota.Limits{Bytes: c.qbytes, Messages: c.qcount}) {
			t.Errorf("Resolve(%q, %q) = %+v", c.name, c.ext, a)
		}
		if got := strings.Join(*asked, " "); got != c.asked {
			t.Errorf("Resolve(%q): asked %q, want %q", c.name, got, c.asked)
		}
	}
}

func TestResolveUnknown(t *testing.T) {
	r, asked := resolver(t, testdb)
	_, err := r.Resolve(context.Background(), "nobody+x@some.domain", "")
	if failure.KindOf(err) != failure.NotFound || err.Error() != "nobody+x@some.domain: user unknown" {
		t.Errorf("Resolve = %v, want NotFound %q", err, "nobody+x@some.domain: user unknown")
	}
	// An address with "@" is never looked up in passwd, even if the local
	// part is a system account ("nobody" is one on Debian).
	if got := strings.Join(*asked, " "); got != "nobody+x@some.domain nobody@some.domain" {
		t.Errorf("asked %q", got)
	}
	_, err = r.Resolve(context.Background(), "no-such-user-mapdrop", "")
	if failure.KindOf(err) != failure.NotFound || err.Error() != "no-such-user-mapdrop: user unknown" {
		t.Errorf("Resolve = %v", err)
	}
}

func TestResolvePasswd(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody account:", err)
	}
	r, _ := resolver(t, testdb)
	for _, c := range []struct{ name, ext, wantExt string }{
		{"nobody", "", ""},
		{"nobody", "x", "x"},
		{"nobody+work", "", "work"},
	} {
		a, err := r.Resolve(context.Background(), c.name, c.ext)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", c.name, err)
		}
		if a.Source != "passwd" || a.Name != "nobody" || a.Home != nobody.HomeDir ||
			a.Maildir != strings.TrimSuffix(nobody.HomeDir, "/")+"/Maildir/" || a.Extension != c.wantExt ||
			a.Quota.Enabled() {
			t.Errorf("Resolve(%q, %q) = %+v", c.name, c.ext, a)
		}
	}
	// root resolves (uid 0 is refused later, when switching to it).
	a, err := r.Resolve(context.Background(), "root", "")
	if err != nil || a.UID != 0 || a.Source != "passwd" {
		t.Errorf("Resolve(root) = %+v, %v", a, err)
	}
}

func TestLookupFailuresAreTemporary(t *testing.T) {
	systemAsked := false
	for _, lookupErr := range []error{
		failure.Temp("connection refused"),
		failure.Perm("unknown map userdb"),
		errors.New("timeout"),
	} {
		r := &Resolver{
			Lookup: func(context.Context, string) (string, error) { return "", lookupErr },
			System: func(string) (*user.User, error) { systemAsked = true; return user.Lookup("nobody") },
		}
		_, err := r.Resolve(context.Background(), "nobody", "")
		if err == nil || failure.KindOf(err) != failure.Temporary || !errors.Is(err, lookupErr) {
			t.Errorf("lookup error %v: Resolve = %v, want Temporary wrapping it", lookupErr, err)
		}
	}
	if systemAsked {
		t.Error("passwd was consulted although userdb failed")
	}
	// A failure on the second (cut) lookup is temporary too.
	calls := 0
	r := &Resolver{Delimiters: "+", Lookup: func(context.Context, string) (string, error) {
		calls++
		if calls == 1 {
			return "", failure.ErrNotFound
		}
		return "", failure.Temp("gone")
	}}
	if _, err := r.Resolve(context.Background(), "u+x@d", ""); failure.KindOf(err) != failure.Temporary {
		t.Errorf("second lookup failing: %v", err)
	}
	// A broken passwd database is temporary, not "unknown".
	r = &Resolver{
		Lookup: func(context.Context, string) (string, error) { return "", failure.ErrNotFound },
		System: func(string) (*user.User, error) { return nil, errors.New("nss down") },
	}
	if _, err := r.Resolve(context.Background(), "someone", ""); failure.KindOf(err) != failure.Temporary {
		t.Errorf("passwd failing: %v", err)
	}
	// A passwd entry with a relative home is refused.
	r.System = func(string) (*user.User, error) {
		return &user.User{Uid: "1000", Gid: "1000", Username: "someone", HomeDir: "relative"}, nil
	}
	if _, err := r.Resolve(context.Background(), "someone", ""); failure.KindOf(err) != failure.Temporary {
		t.Errorf("relative home: %v", err)
	}
}

func TestInvalidUserdbEntry(t *testing.T) {
	r, _ := resolver(t, testdb)
	_, err := r.Resolve(context.Background(), "broken@some.domain", "")
	if failure.KindOf(err) != failure.Temporary || !strings.Contains(err.Error(), "userdb entry for broken@some.domain is invalid") {
		t.Errorf("Resolve = %v", err)
	}
}
