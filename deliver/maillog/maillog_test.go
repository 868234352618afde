package maillog

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{User: "u@d", Account: "userdb:u@d", Folder: ".Work", Size: 1234, Duration: 12345 * time.Microsecond},
			`user=u@d account=userdb:u@d folder=.Work size=1234 duration=12ms status=sent exit=0`},
		{Entry{User: "u@d", Folder: "INBOX", Size: 99, Exit: 75, Reason: "u@d: mailbox full"},
			`user=u@d folder=INBOX size=99 duration=0s status=deferred exit=75 reason="u@d: mailbox full"`},
		{Entry{User: "x y\n", Exit: 67, Reason: "x: user unknown"},
			`user="x y\n" size=0 duration=0s status=bounced exit=67 reason="x: user unknown"`},
		{Entry{User: "alice", Sender: "bob@example.org", HaveSender: true, Account: "passwd:alice", Folder: "INBOX", Size: 99},
			`user=alice from=<bob@example.org> account=passwd:alice folder=INBOX size=99 duration=0s status=sent exit=0`},
		{Entry{User: "alice", HaveSender: true, Size: 1},
			`user=alice from=<> size=1 duration=0s status=sent exit=0`},
		{Entry{User: "alice", Sender: `"a b"@x`, HaveSender: true, Size: 1},
			`user=alice from="<\"a b\"@x>" size=1 duration=0s status=sent exit=0`},
		{Entry{User: "", Exit: 64, Reason: "a=b"},
			`user="" size=0 duration=0s status=bounced exit=64 reason="a=b"`},
	} {
		if got := c.e.Line(); got != c.want {
			t.Errorf("Line() = %s\nwant     %s", got, c.want)
		}
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	t.Setenv(EnvFile, p)
	for range 2 {
		l, err := OpenPath("")
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Entry{User: "u@d", Folder: "INBOX", Size: 5})
		l.Close()
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ mapdrop\[\d+\]: user=u@d folder=INBOX size=5 duration=0s status=sent exit=0$`)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !re.MatchString(lines[0]) || !re.MatchString(lines[1]) {
		t.Errorf("log file:\n%s", b)
	}
}

func TestSyslog(t *testing.T) {
	t.Setenv(EnvFile, "")
	conn := fakeSyslog(t)
	l, err := OpenPath("")
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Entry{User: "u@d", Exit: 75, Reason: "mailbox full"})
	l.Log(Entry{User: "u@d", Folder: "INBOX", Size: 3})
	l.Close()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	// <PRI> with facility mail (2) and severity warning (4): 2*8+4 = 20.
	got := string(buf[:n])
	want := regexp.MustCompile(`^<20>mapdrop\[\d+\]: user=u@d size=0 duration=0s status=deferred exit=75 reason="mailbox full"$`)
	if !want.MatchString(got) {
		t.Errorf("syslog datagram %q", got)
	}
	// A delivery is mail.info: 2*8+6 = 22.
	if n, err = conn.Read(buf); err != nil || !regexp.MustCompile(`^<22>mapdrop\[\d+\]: user=u@d folder=INBOX size=3 `).Match(buf[:n]) {
		t.Errorf("second syslog datagram %q, %v", buf[:n], err)
	}
}

func TestNowhere(t *testing.T) {
	t.Setenv(EnvFile, "")
	defer func(old string) { devLog = old }(devLog)
	devLog = filepath.Join(t.TempDir(), "missing")
	l, err := OpenPath("")
	if err != nil || l.dest != none {
		t.Fatalf("Open = %+v, %v; want a discarding logger", l, err)
	}
	l.Log(Entry{User: "u"}) // does not panic
	var nilLogger *Logger
	nilLogger.Log(Entry{})
	nilLogger.Close()
}

// TestFileFallsBackToSyslog: a log file that cannot be opened does not
// lose the line when syslog is there.
func TestFileFallsBackToSyslog(t *testing.T) {
	t.Setenv(EnvFile, "")
	conn := fakeSyslog(t)
	path := filepath.Join(t.TempDir(), "missing-dir", "log")
	l, err := OpenPath(path)
	if err == nil || l.dest != syslog {
		t.Fatalf("OpenPath(missing dir) = %+v, %v; want syslog and the open error", l, err)
	}
	l.Log(Entry{User: "u@d"})
	l.Close()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "user=u@d ") {
		t.Errorf("syslog got %q, %v", buf[:n], err)
	}
	// The admin learns why the file stays empty.
	if !strings.HasSuffix(string(buf[:n]), ` log-file-error="open `+path+`: no such file or directory"`) {
		t.Errorf("syslog line does not say why the file was not used: %q", buf[:n])
	}
}

// fakeSyslog listens on a datagram socket of its own and points devLog at
// it for the rest of the test.
func fakeSyslog(t *testing.T) *net.UnixConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	old := devLog
	t.Cleanup(func() { devLog = old })
	devLog = sock
	return conn
}
