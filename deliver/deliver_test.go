package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/deliver/account"
	"github.com/mapdrop/mapdrop/deliver/maillog"
	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
)

// These tests run in-process, so the credential switch is replaced by a
// recorder (cmd/mapdrop's tests run the real switch in the built binary).
// The recorder checks that nothing exists below home when it is first
// called: the switch comes before any mailbox path is touched.

type fixture struct {
	preset int // entries the test placed in home before delivering
	home   string
	agent  *Agent
	logf   string
	became []string
}

func newFixture(t *testing.T, quota string) *fixture {
	t.Helper()
	f := &fixture{home: filepath.Join(t.TempDir(), "home")}
	if err := os.Mkdir(f.home, 0o700); err != nil {
		t.Fatal(err)
	}
	value := fmt.Sprintf("uid=%d|gid=%d|home=%s", os.Getuid()+1000, os.Getgid()+1000, f.home)
	if quota != "" {
		value += "|quota=" + quota
	}
	st := fixtures.Store(t, "userdb", "u@d "+value+"\n")
	f.logf = filepath.Join(t.TempDir(), "log")
	t.Setenv(maillog.EnvFile, f.logf)
	log, err := maillog.OpenPath("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	f.agent = &Agent{
		Resolver: &account.Resolver{Delimiters: "+", Lookup: func(ctx context.Context, key string) (string, error) {
			return st.Lookup("userdb", key)
		}},
		Log: log,
		Become: func(who string, uid, gid uint32) error {
			if es, _ := os.ReadDir(f.home); len(f.became) == 0 && len(es) != f.preset {
				t.Errorf("Become called after the mailbox was touched: home holds %v", es)
			}
			f.became = append(f.became, fmt.Sprintf("%s %d %d", who, uid, gid))
			return nil
		},
	}
	return f
}

func (f *fixture) messages(t *testing.T, folder string) [][]byte {
	t.Helper()
	dir := filepath.Join(f.home, "Maildir", folder, "new")
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (f *fixture) log(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(f.logf)
	return string(b)
}

func TestDeliverInbox(t *testing.T) {
	f := newFixture(t, "")
	msg := []byte("Delivered-To: u@d\nSubject: x\n\nbody\n")
	if err := f.agent.Deliver(context.Background(), "U@D", "", bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	got := f.messages(t, "")
	if len(got) != 1 || !bytes.Equal(got[0], msg) {
		t.Errorf("INBOX holds %q", got)
	}
	want := fmt.Sprintf("u@d %d %d", os.Getuid()+1000, os.Getgid()+1000)
	if len(f.became) != 1 || f.became[0] != want {
		t.Errorf("became %v, want [%s]", f.became, want)
	}
	if l := f.log(t); strings.Count(l, "\n") != 1 ||
		!strings.Contains(l, fmt.Sprintf("user=U@D account=userdb:u@d folder=INBOX size=%d duration=", len(msg))) ||
		!strings.HasSuffix(l, " status=sent exit=0\n") {
		t.Errorf("log %q", l)
	}
}

func TestDeliverFolder(t *testing.T) {
	f := newFixture(t, "")
	// First delivery creates the Maildir; then the user makes a folder.
	if err := f.agent.Deliver(context.Background(), "u+work@d", "", strings.NewReader("1\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(f.home, "Maildir", ".Work"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ user, ext string }{{"u+work@d", ""}, {"u@d", "WORK"}, {"u+x@d", "work"}} {
		if err := f.agent.Deliver(context.Background(), c.user, c.ext, strings.NewReader(c.user+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.messages(t, "")); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1", n)
	}
	if n := len(f.messages(t, ".Work")); n != 3 {
		t.Errorf(".Work holds %d messages, want 3", n)
	}
	if l := f.log(t); strings.Count(l, "folder=.Work") != 3 {
		t.Errorf("log %q", l)
	}
}

func TestDeliverQuota(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		f := newFixture(t, "20S,5C")
		f.agent.QuotaBounce = refuse
		if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader("0123456789")); err != nil {
			t.Fatal(err)
		}
		if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader("0123456789")); err != nil {
			t.Fatalf("delivery up to the quota: %v", err)
		}
		err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader("x"))
		want := failure.Temporary
		if refuse {
			want = failure.Bounce
		}
		if failure.KindOf(err) != want || !strings.HasPrefix(err.Error(), "u@d: mailbox full") {
			t.Errorf("refuse=%v: over quota: %v (%v), want %v starting %q", refuse, err, failure.KindOf(err), want, "u@d: mailbox full")
		}
		if n := len(f.messages(t, "")); n != 2 {
			t.Errorf("INBOX holds %d messages, want 2", n)
		}
		if es, _ := os.ReadDir(filepath.Join(f.home, "Maildir", "tmp")); len(es) != 0 {
			t.Errorf("tmp/ holds %d files", len(es))
		}
		got, _ := os.ReadFile(filepath.Join(f.home, "Maildir", "maildirsize"))
		if string(got) != "20S,5C\n       0    0\n      10    1\n      10    1\n" {
			t.Errorf("maildirsize %q", got)
		}
	}
}

func TestUnknownUser(t *testing.T) {
	f := newFixture(t, "")
	err := f.agent.Deliver(context.Background(), "who@d", "", strings.NewReader("x"))
	if failure.ExitCode(err) != 67 || err.Error() != "who@d: user unknown" {
		t.Errorf("Deliver = %v", err)
	}
	if len(f.became) != 0 {
		t.Error("Become called for an unknown user")
	}
	if l := f.log(t); !strings.Contains(l, `user=who@d size=0 duration=`) || !strings.Contains(l, `status=bounced exit=67 reason="who@d: user unknown"`) {
		t.Errorf("log %q", l)
	}
}

func TestBecomeFailure(t *testing.T) {
	f := newFixture(t, "")
	f.agent.Become = func(string, uint32, uint32) error { return failure.Temp("not allowed") }
	err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader("x"))
	if failure.ExitCode(err) != 75 || err.Error() != "u@d: not allowed" {
		t.Errorf("Deliver = %v", err)
	}
	if es, _ := os.ReadDir(f.home); len(es) != 0 {
		t.Errorf("home touched: %v", es)
	}
}

func TestReadErrorDefers(t *testing.T) {
	f := newFixture(t, "")
	r := io.MultiReader(strings.NewReader("partial"), errReader{})
	err := f.agent.Deliver(context.Background(), "u@d", "", r)
	if failure.ExitCode(err) != 75 || !strings.Contains(err.Error(), "reading message: stdin broke") {
		t.Errorf("Deliver = %v", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if es, _ := os.ReadDir(filepath.Join(f.home, "Maildir", sub)); len(es) != 0 {
			t.Errorf("%s/ holds %d files", sub, len(es))
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("stdin broke") }

// A new user's first mail creates the missing home, mode 0700, as virtual(8)
// and dovecot-lda do.
func TestMissingHomeCreated(t *testing.T) {
	f := newFixture(t, "")
	if err := os.RemoveAll(f.home); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.Deliver(context.Background(), "u@d", "", strings.NewReader("x")); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	fi, err := os.Stat(f.home)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home after delivery: %v, %v; want a 0700 directory", fi, err)
	}
	if es, _ := os.ReadDir(filepath.Join(f.home, "Maildir", "new")); len(es) != 1 {
		t.Errorf("new/ holds %d files, want 1", len(es))
	}
}
