package server_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/server"
)

// postmap runs Postfix's own client, "postmap -c DIR -q KEY TABLE" (or
// "-q -" with stdin when key is "-"), with an empty main.cf.
func postmap(t *testing.T, table, key, stdin string) (stdout, stderr string, exitCode int) {
	t.Helper()
	postmapPath := postfixtest.Postmap(t)
	conf := t.TempDir()
	mainCf := filepath.Join(conf, "main.cf")
	if err := os.WriteFile(mainCf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix waits (up to seconds) for a main.cf modified in the last
	// moments to settle: make it old.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(mainCf, old, old); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(postmapPath, "-c", conf, "-q", key, table)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exitCode = ee.ExitCode()
	default:
		t.Fatalf("running postmap: %v", err)
	}
	return out.String(), errb.String(), exitCode
}

func TestPostmapSocketmap(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	sock := filepath.Join(t.TempDir(), "mapdropd.sock")
	if err := s.ListenSocketmap(fixtures.MustParse(t, "unix:"+sock), server.UnixOptions{Mode: 0o666}); err != nil {
		t.Fatal(err)
	}
	inet := fixtures.SocketmapAddr(t, s)
	tables := []string{
		"socketmap:unix:" + sock + ":virtual_mailbox",
		"socketmap:" + inet.String() + ":virtual_mailbox",
	}
	for _, table := range tables {
		for _, tc := range []struct {
			key, out string
			code     int
		}{
			{"user1@some.domain", "some.domain/user1/\n", 0},
			{"USER1@Some.Domain", "capitals/\n", 0}, // no case folding on the way
			{"a b  c", "spaced key\n", 0},
			{"ümläut@dömain.test", "dömain.test/ümläut/\n", 0},
			{"nobody@some.domain", "", 1},
		} {
			out, errOut, code := postmap(t, table, tc.key, "")
			if out != tc.out || code != tc.code {
				t.Errorf("postmap -q %q %s = %q, exit %d (stderr %q); want %q, exit %d", tc.key, table, out, code, errOut, tc.out, tc.code)
			}
		}
	}

	// Several keys on one connection, as postmap -q - and Postfix's
	// daemons send them.
	before := strings.Count(logs.String(), "connection opened")
	out, errOut, code := postmap(t, tables[0], "-", "user1@some.domain\nnobody@x\nUSER1@Some.Domain\n")
	if code != 0 || out != "user1@some.domain\tsome.domain/user1/\nUSER1@Some.Domain\tcapitals/\n" {
		t.Errorf("postmap -q - = %q, exit %d, stderr %q", out, code, errOut)
	}
	if n := strings.Count(logs.String(), "connection opened") - before; n != 1 {
		t.Errorf("postmap -q - used %d connections, want 1", n)
	}

	// TEMP and PERM: postmap warns with the reason and fails.
	for _, tc := range []struct{ table, text string }{
		{"socketmap:unix:" + sock + ":temp", "table temp is reloading  second line"},
		{"socketmap:unix:" + sock + ":nosuchmap", `unknown map "nosuchmap"`},
	} {
		out, errOut, code := postmap(t, tc.table, "x", "")
		if code == 0 || out != "" || !strings.Contains(errOut, tc.text) {
			t.Errorf("postmap -q x %s = %q, exit %d, stderr %q; want failure mentioning %q", tc.table, out, code, errOut, tc.text)
		}
	}
}

func TestPostmapTCPTable(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "virtual_mailbox", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	vm, udb := "tcp:"+addrs[0].String(), "tcp:"+addrs[1].String()
	for _, tc := range []struct {
		table, key, out string
		code            int
	}{
		{vm, "user1@some.domain", "some.domain/user1/\n", 0},
		{vm, "a b  c", "spaced key\n", 0},
		{vm, "ümläut@dömain.test", "dömain.test/ümläut/\n", 0},
		{vm, "nobody@some.domain", "", 1},
		{udb, "percent", "a b%c\tü\n", 0},
	} {
		out, errOut, code := postmap(t, tc.table, tc.key, "")
		if out != tc.out || code != tc.code {
			t.Errorf("postmap -q %q %s = %q, exit %d (stderr %q); want %q, exit %d", tc.key, tc.table, out, code, errOut, tc.out, tc.code)
		}
	}
}

// The commonest mistake: main.cf names the wrong protocol for a listener.
// Postfix's own clients get an answer that says so, and so does the log.
func TestPostmapWrongProtocol(t *testing.T) {
	s, logs := fixtures.TableServer(t, nil)
	sm := fixtures.SocketmapAddr(t, s)
	if err := s.ListenTCPTable(fixtures.MustParse(t, "inet:127.0.0.1:0"), "userdb", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	tt := s.Addrs()[1].String()

	out, errOut, code := postmap(t, "tcp:"+strings.TrimPrefix(sm.String(), "inet:"), "user1", "")
	if code == 0 || out != "" {
		t.Errorf("postmap -q via tcp: on a socketmap listener = %q, exit %d, stderr %q", out, code, errOut)
	}
	testkit.Eventually(t, "the log line", func() bool {
		return strings.Contains(logs.String(), "client speaks tcp_table on a socketmap listener")
	})

	out, errOut, code = postmap(t, "socketmap:inet:"+tt+":userdb", "user1", "")
	if code == 0 || out != "" || !strings.Contains(errOut, "wrong protocol: this is a tcp_table server") {
		t.Errorf("postmap -q via socketmap: on a tcp_table listener = %q, exit %d, stderr %q", out, code, errOut)
	}
	testkit.Eventually(t, "the log line", func() bool {
		return strings.Contains(logs.String(), "client speaks socketmap on a tcp_table listener")
	})
}
