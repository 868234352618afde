package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/server"
)

// checkedTables is fixtures.Lookup with a MapChecker: the maps of tables, and
// "temp", exist.
type checkedTables struct{}

func (checkedTables) Lookup(ctx context.Context, m, k string) (string, error) {
	return fixtures.Lookup(ctx, m, k)
}

func (checkedTables) HasMap(m string) bool {
	_, ok := fixtures.Tables[m]
	return ok || m == "temp"
}

// logLines returns the lines of logs that contain every one of subs.
func logLines(logs *testkit.Buffer, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(logs.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func TestFailedLookupsLogged(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.Tables = checkedTables{} })
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	for i := range server.FailureLogBurst + 3 {
		if got := c.query("temp", fmt.Sprintf("k%d", i)); !strings.HasPrefix(got, "TEMP ") {
			t.Fatalf("temp: %q", got)
		}
	}
	if got := c.query("userdb", "empty"); got != "PERM empty value" {
		t.Fatalf("empty value: %q", got)
	}
	for range 3 {
		c.query("nosuchmap", "x")
		c.query("othermap", "y")
	}
	c.query("userdb", "user1")
	c.query("userdb", "nokey")

	temp := logLines(logs, "level=WARN", `msg="lookup failed"`, "map=temp")
	if len(temp) != server.FailureLogBurst {
		t.Errorf("%d TEMP lines for map temp, want %d (rate limit):\n%s", len(temp), server.FailureLogBurst, logs)
	}
	if len(temp) > 0 && (!strings.Contains(temp[0], "key=k0") || !strings.Contains(temp[0], "answer=TEMP") ||
		!strings.Contains(temp[0], `cause="table temp is reloading`)) {
		t.Errorf("TEMP line without key, answer or cause: %s", temp[0])
	}
	if l := logLines(logs, "level=WARN", `msg="lookup failed"`, "map=userdb", "key=empty", "answer=PERM", `cause="empty value"`); len(l) != 1 {
		t.Errorf("PERM empty value: %d lines, want 1:\n%s", len(l), logs)
	}
	for _, m := range []string{"nosuchmap", "othermap"} {
		if l := logLines(logs, "level=WARN", "map that does not exist", "map="+m); len(l) != 1 {
			t.Errorf("unknown map %s: %d lines, want 1:\n%s", m, len(l), logs)
		}
	}
	if l := logLines(logs, "level=WARN", "lookup failed", "nosuchmap"); len(l) != 0 {
		t.Errorf("unknown map logged as a failed lookup too: %q", l)
	}
	if l := logLines(logs, "level=WARN", "map=userdb", "user1"); len(l) != 0 {
		t.Errorf("found key logged at WARN: %q", l)
	}
	if l := logLines(logs, "level=WARN", "nokey"); len(l) != 0 {
		t.Errorf("NOTFOUND logged at WARN: %q", l)
	}
}

func TestTCPTableFailureLogged(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.Tables = checkedTables{} })
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, fixtures.MustParse(t, "inet:"+s.Addrs()[0].String()))
	c.send("get big\n")
	if got := c.line(); !strings.HasPrefix(got, "400 ") {
		t.Fatalf("too long a value: %q", got)
	}
	// The line is logged after the reply is written.
	testkit.Poll(10*time.Second, func() bool { return len(logLines(logs, "answer=400")) > 0 })
	if l := logLines(logs, "level=WARN", "lookup failed", "map=userdb", "key=big", "answer=400", "protocol=tcp_table"); len(l) != 1 {
		t.Errorf("400 answer: %d lines, want 1:\n%s", len(l), logs)
	}
}

func TestWrongProtocol(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	sm := fixtures.SocketmapAddr(t, s)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	tt := fixtures.MustParse(t, "inet:"+s.Addrs()[1].String())

	// tcp_table's "get" on the socketmap listener: a tcp_table error reply.
	c := dialRaw(t, sm)
	c.send("get user1\n")
	if got := c.line(); !strings.HasPrefix(got, "400 wrong%20protocol") {
		t.Errorf("tcp_table request on socketmap: %q", got)
	}
	c.expectClosed()
	if l := logLines(logs, "level=WARN", "client speaks tcp_table on a socketmap listener", "hint="); len(l) != 1 {
		t.Errorf("want one line naming the mistake:\n%s", logs)
	}

	// A netstring on the tcp_table listener: a socketmap error reply.
	c = dialRaw(t, tt)
	c.send(string(netstring.AppendString(nil, "userdb user1")))
	if got := c.reply(); got != "PERM wrong protocol: this is a tcp_table server" {
		t.Errorf("socketmap request on tcp_table: %q", got)
	}
	c.expectClosed()
	if l := logLines(logs, "level=WARN", "client speaks socketmap on a tcp_table listener", "map userdb"); len(l) != 1 {
		t.Errorf("want one line naming the mistake:\n%s", logs)
	}

	// Other garbage is still what it was: a framing error.
	c = dialRaw(t, sm)
	c.send("xyz\n")
	c.expectClosed()
	if l := logLines(logs, "malformed request"); len(l) != 1 {
		t.Errorf("garbage on socketmap: want a malformed-request line:\n%s", logs)
	}
}

func TestNormalCloseNotLoggedAboveDebug(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	c := dialRaw(t, fixtures.SocketmapAddr(t, s))
	c.query("userdb", "user1")
	c.nc.Close()
	testkit.Eventually(t, "the close to be logged", func() bool { return strings.Contains(logs.String(), "connection closed by client") })
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(l, "level=DEBUG") && !strings.Contains(l, "msg=listening") {
			t.Errorf("logged above Debug: %s", l)
		}
	}
}
