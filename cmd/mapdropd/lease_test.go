package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// Issue 10, half-written tables: a map file that a writer holds open when
// mapdropd starts is not read, also when mapdropd runs as the systemd unit
// runs it with a CAP_LEASE drop-in (README, "Reload"): as an unprivileged
// user with that capability only, on tables owned by root. Without
// CAP_LEASE (the unit as shipped) the kernel tells such a user nothing and
// the file is read as before (the guard still applies); the test shows
// that too, so it fails if the capability stops mattering.
func TestStartWhileWriterOpenAsServiceUser(t *testing.T) {
	roottest.Require(t)
	uid, gid := roottest.IDs(t, "nobody")
	tables := roottest.TempDir(t)
	for name, text := range map[string]string{
		"virtual_mailbox_domains": "some.domain OK\n",
		"userdb":                  "u1@some.domain uid=5001|gid=5000|home=/var/vmail/u1\n",
	} {
		if err := os.WriteFile(filepath.Join(tables, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := roottest.TempDir(t)
	if err := os.Chown(run, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	sock := "unix:" + filepath.Join(run, "mapdropd.sock")
	fh, err := os.OpenFile(filepath.Join(tables, "userdb"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString("u2@some.domain uid=5002|gid=5000|home=/var/vmail/u2\n"); err != nil {
		t.Fatal(err)
	}
	start := func(caps []uintptr) *testkit.Mapdropd {
		return testkit.StartMapdropd(t, testkit.MapdropdConfig{
			Bin:       bin(t),
			Args:      []string{"-tables", tables, "-socketmap", sock, "-socket-mode", "0666", "-log-level", "debug"},
			ProbeAddr: sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
			SysProcAttr: &syscall.SysProcAttr{
				Credential:  &syscall.Credential{Uid: uid, Gid: gid},
				AmbientCaps: caps,
			},
		})
	}
	const busy = `msg="map file is open for writing by another process: not read now, it is loaded once its writer closes it" map=userdb`

	// Without CAP_LEASE: read while the writer is at work.
	d := start(nil)
	if code, out, errOut := mapdropd(t, "", "query", "-s", sock, "userdb", "u2@some.domain"); code != 0 {
		t.Errorf("without CAP_LEASE: exit %d %q %s, want the file read as it is (0)", code, out, errOut)
	}
	if strings.Contains(d.Log(), busy) {
		t.Errorf("without CAP_LEASE the writer was seen: the test cannot tell the capability matters")
	}
	d.Stop(t)

	// With CAP_LEASE, as the unit runs it: not read until the close.
	d = start([]uintptr{unix.CAP_LEASE})
	if code, _, errOut := mapdropd(t, "", "query", "-s", sock, "userdb", "u1@some.domain"); code != failure.Permanent.ExitCode() {
		t.Errorf("with CAP_LEASE, writer at work: exit %d %s, want the map not served (78)", code, errOut)
	}
	if !strings.Contains(d.Log(), busy) {
		t.Errorf("log lacks %s", busy)
	}
	// The one-shot export (run as root here) and check refuse it too.
	code, _, errOut := mapdropd(t, "", "export", "-tables", tables, "-export-maps", "userdb", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "userdb: the file is open for writing by another process") {
		t.Errorf("export while the writer is at work: exit %d %s, want it refused, saying why", code, errOut)
	}
	if code, out, errOut := mapdropd(t, "", "check", tables); code == 0 || !strings.Contains(out+errOut, "open for writing by another process") {
		t.Errorf("check while the writer is at work: exit %d %s%s, want it refused, saying why", code, out, errOut)
	}
	if _, err := fh.WriteString("u3@some.domain uid=5003|gid=5000|home=/var/vmail/u3\n"); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "userdb loaded at the writer's close", func() bool {
		code, out, _ := mapdropd(t, "", "query", "-s", sock, "userdb", "u3@some.domain")
		return code == 0 && strings.Contains(out, "home=/var/vmail/u3")
	})
}
