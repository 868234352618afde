package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/postfixtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// Users the tests create (idempotently) and leave on the machine.
const (
	pipeUser   = "mdtest-pipe" // pipe(8) runs mapdrop as this user for the virtual domains
	localCmd   = "mdtest-la"   // local user delivered by mailbox_command
	localMap   = "mdtest-lb"   // local user delivered by mailbox_command_maps (cdb export)
	localFwd   = "mdtest-lc"   // local user delivered by ~/.forward
	localSock  = "mdtest-ld"   // local user whose transport asks a socketmap for mailbox_command_maps
	localDom   = "local.test"  // mydestination
	sender     = "sender@example.net"
	waitLonger = 90 * time.Second // bound for any one delivery on a slow shared machine
)

// env is one Postfix instance with two mapdropd servers on the same tables:
// maps answers Postfix's own lookups (and exports mailbox_command.cdb),
// deliver answers the userdb lookups of the mapdrop processes Postfix runs.
// Stopping deliver lets mail be accepted and then meet a dead server at
// delivery time.
type env struct {
	base           string // 0755 temp dir holding everything below
	tables         string // -tables DIR of both servers
	export         string // -export DIR of the maps server
	vmail          string // homes of the virtual users
	homes          string // homes of the local users
	mapdrop        string // the mapdrop binary
	uid            uint32 // pipeUser
	gid            uint32
	deliverAddr    string // where deliver listens, as mapdrop's -s
	mapdropDir     string // mapdrop's directory in mailbox_command and pipe(8)
	binMaps        string // mapdrop's directory in the mailbox_command table
	binFwd         string // mapdrop's directory in ~/.forward
	subst          readmeSubst
	mailboxCommand string // the README's mailbox_command table line
	maps           *testkit.Mapdropd
	deliver        *testkit.Mapdropd
	pf             *postfixtest.Instance
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bins := requireBinaries(t)
	base, err := os.MkdirTemp("", "mapdrop-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	e := &env{
		base:    base,
		tables:  filepath.Join(base, "tables"),
		export:  filepath.Join(base, "export"),
		vmail:   filepath.Join(base, "vmail"),
		homes:   filepath.Join(base, "home"),
		mapdrop: bins.Mapdrop(),
	}
	e.uid, e.gid = postfixtest.EnsureUser(t, pipeUser)
	for _, d := range []string{e.tables, e.export, e.vmail, e.homes, filepath.Join(base, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mapsSock := filepath.Join(base, "run", "maps.sock")
	deliverSock := filepath.Join(base, "run", "deliver.sock")
	deliverAddr := "unix:" + deliverSock
	mapsAddr := "unix:" + mapsSock
	e.deliverAddr = deliverAddr

	// Virtual users: homes owned by the pipe user. user1's and user3's
	// Maildirs exist beforehand with an extension folder (.work, .Work);
	// user2's Maildir is left for mapdrop to create.
	for _, u := range []string{"some.domain/user1", "some.domain/user2", "someother.domain/user3"} {
		postfixtest.MkdirOwned(t, filepath.Join(e.vmail, u), 0o700, e.uid, e.gid)
	}
	e.makeMaildir(t, e.vmailMaildir("user1@some.domain"), e.uid, e.gid, ".work")
	e.makeMaildir(t, e.vmailMaildir("user3@someother.domain"), e.uid, e.gid, ".Work")

	// Local users with homes in the temp dir.
	for _, name := range []string{localCmd, localMap, localFwd, localSock} {
		uid, gid := postfixtest.EnsureUser(t, name)
		home := filepath.Join(e.homes, name)
		postfixtest.MkdirOwned(t, home, 0o700, uid, gid)
		postfixtest.SetHome(t, name, home)
	}
	cuid, cgid := postfixtest.EnsureUser(t, localCmd)
	e.makeMaildir(t, filepath.Join(e.homes, localCmd, "Maildir"), cuid, cgid, ".lists")
	luid, lgid := postfixtest.EnsureUser(t, localMap)
	e.makeMaildir(t, filepath.Join(e.homes, localMap, "Maildir"), luid, lgid, ".somefolder", ".lists")
	fuid, fgid := postfixtest.EnsureUser(t, localFwd)
	e.makeMaildir(t, filepath.Join(e.homes, localFwd, "Maildir"), fuid, fgid, ".lists")

	// The README's commands name /usr/local/bin/mapdrop. Each way of
	// running it gets its own directory here, so the maillog's "delivered
	// to command: DIR/mapdrop" tells which one ran: bins.Dir for
	// mailbox_command and pipe(8), bin-maps for the mailbox_command table,
	// bin-fwd for ~/.forward.
	e.mapdropDir = bins.Dir
	e.binMaps = filepath.Join(base, "bin-maps")
	e.binFwd = filepath.Join(base, "bin-fwd")
	for _, d := range []string{e.binMaps, e.binFwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, prog := range []string{"mapdrop", "mapdrop-sieve"} {
			if err := os.Symlink(filepath.Join(bins.Dir, prog), filepath.Join(d, prog)); err != nil {
				t.Fatal(err)
			}
		}
	}
	inetPort, tcpPort := testkit.Port(t), testkit.Port(t)
	e.subst = readmeSubst{
		Socket: mapsSock, Inet: inetPort, TCP: tcpPort, BinDir: bins.Dir,
		Export: e.export, Tables: e.tables, PipeUser: pipeUser,
	}
	fwd := filepath.Join(e.homes, localFwd, ".forward")
	fwdSubst := e.subst
	fwdSubst.BinDir = e.binFwd
	writeFile(t, fwd, fwdSubst.apply(readmeBlock(t, "local-forward"))+"\n")
	if err := os.Chown(fwd, int(fuid), int(fgid)); err != nil {
		t.Fatal(err)
	}

	ug := fmt.Sprintf("uid=%d|gid=%d", e.uid, e.gid)
	writeFile(t, filepath.Join(e.tables, "virtual_mailbox_domains"), "some.domain OK\nsomeother.domain OK\n")
	writeFile(t, filepath.Join(e.tables, "virtual_mailbox"), `# virtual_mailbox_maps
user1@some.domain        some.domain/user1/Maildir/
user2@some.domain        some.domain/user2/Maildir/
user3@someother.domain   someother.domain/user3/Maildir/
`)
	// An alias target without @ would get @$myorigin and leave the virtual
	// domains: alias to a virtual mailbox.
	// work@some.domain shows the extension carried over to the target.
	writeFile(t, filepath.Join(e.tables, "virtual_alias"), "postmaster@some.domain  user2@some.domain\n"+
		"work@some.domain        user1@some.domain\n")
	writeFile(t, filepath.Join(e.tables, "userdb"), fmt.Sprintf(`# userdb: homes under %[2]s
user1@some.domain       %[1]s|home=%[2]s/some.domain/user1
user2@some.domain       %[1]s|home=%[2]s/some.domain/user2
user3@someother.domain  %[1]s|home=%[2]s/someother.domain/user3|quota=52428800S,1000C
`, ug, e.vmail))
	e.mailboxCommand = readmeBlock(t, "mailbox_command-table")
	writeFile(t, filepath.Join(e.tables, "mailbox_command"), e.mailboxCommandTable(""))

	// The maps server runs the README's "mapdropd serve" command.
	e.maps = testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin:       bins.Mapdropd(),
		Args:      strings.Fields(e.subst.apply(strings.Join(serveArgs(t, readmeBlock(t, "serve")), " "))),
		ProbeAddr: mapsAddr, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
		LogFile: mapsSock + ".log",
	})
	e.deliver = testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin:       bins.Mapdropd(),
		Args:      []string{"-tables", e.tables, "-socketmap", deliverAddr, "-socket-mode", "0666"},
		ProbeAddr: deliverAddr, ProbeMap: "userdb", ProbeKey: "user1@some.domain",
		LogFile: deliverSock + ".log",
	})
	cdb := e.cdbPath()
	testkit.Eventually(t, "the mailbox_command.cdb export", func() bool {
		_, err := os.Stat(cdb)
		return err == nil
	})

	// main.cf: the README's direct and indirect blocks, then what only
	// the test needs: a local domain, the transport map that sends user3
	// to the extension form and localSock to local2, and MAPDROP_SERVER
	// for the mapdrop processes (pipe(8) and local(8) pass
	// export_environment on), so that they ask the deliver server while
	// Postfix's own lookups go to the maps server.
	mainCF := mainCFLines(e.subst.apply(readmeBlock(t, "direct-main.cf")))
	mainCF = append(mainCF, mainCFLines(e.subst.apply(readmeBlock(t, "local-mailbox_command")))...)
	mainCF = append(mainCF, mainCFLines(e.subst.apply(readmeBlock(t, "local-mailbox_command_maps")))...)
	mainCF = append(mainCF,
		"mydestination = "+localDom,
		"mapdropx_destination_recipient_limit = 1",
		"transport_maps = texthash:${config_directory}/transport",
		"import_environment = "+defaultParam(t, "import_environment")+" MAPDROP_SERVER="+deliverAddr,
		"export_environment = "+defaultParam(t, "export_environment")+" MAPDROP_SERVER",
	)
	// master.cf: the README's mapdrop service, and the same first line
	// under the name mapdropx with the extension form's second line.
	direct := strings.Split(e.subst.apply(readmeBlock(t, "direct-master.cf")), "\n")
	first := strings.Fields(direct[0])
	if len(first) != 8 || first[0] != "mapdrop" {
		t.Fatalf("README direct-master.cf: first line %q is not a mapdrop service entry", direct[0])
	}
	masterCF := append([]string{}, direct...)
	masterCF = append(masterCF, "mapdropx"+strings.TrimPrefix(direct[0], "mapdrop"))
	masterCF = append(masterCF, strings.Split(e.subst.apply(readmeBlock(t, "direct-master.cf-extension")), "\n")...)
	masterCF = append(masterCF,
		"local2    unix  -       n       n       -       -       local",
		"  -o mailbox_command_maps=socketmap:unix:"+mapsSock+":mailbox_command")
	e.pf = postfixtest.Start(t, postfixtest.Config{
		MainCF:   mainCF,
		MasterCF: masterCF,
		Files: map[string]string{
			"transport": "user3@someother.domain  mapdropx:\n" + localSock + "@" + localDom + "  local2:\n",
		},
	})
	return e
}

// defaultParam returns Postfix's built-in default of a main.cf parameter.
func defaultParam(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("/usr/sbin/postconf", "-d", "-h", name).Output()
	if err != nil {
		t.Fatalf("postconf -d %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// mailboxCommandTable is the README's mailbox_command table with its
// example user "you" replaced by localMap and localSock, its command run
// from bin-maps, and extra arguments appended (an extension folder, say).
func (e *env) mailboxCommandTable(extra string) string {
	s := e.subst
	s.BinDir = e.binMaps
	line := s.apply(e.mailboxCommand)
	key, cmd, ok := strings.Cut(line, " ")
	if !ok || key != "you" {
		panic(fmt.Sprintf("README mailbox_command-table block %q is not \"you COMMAND\"", line))
	}
	cmd = strings.TrimSpace(cmd)
	if extra != "" {
		cmd += " " + extra
	}
	return fmt.Sprintf("# mailbox_command_maps, exported as cdb\n%s  %s\n%s  %s\n", localMap, cmd, localSock, cmd)
}

func (e *env) cdbPath() string { return filepath.Join(e.export, "mailbox_command.cdb") }

// vmailMaildir is the Maildir userdb names for a virtual user (home/Maildir).
func (e *env) vmailMaildir(address string) string {
	local, domain, _ := strings.Cut(address, "@")
	return filepath.Join(e.vmail, domain, local, "Maildir")
}

// makeMaildir creates a Maildir with cur/new/tmp and the given Maildir++
// folders, owned by uid:gid.
func (e *env) makeMaildir(t *testing.T, dir string, uid, gid uint32, folders ...string) {
	t.Helper()
	dirs := []string{dir}
	for _, f := range folders {
		dirs = append(dirs, filepath.Join(dir, f))
	}
	for _, d := range dirs {
		for _, sub := range []string{"", "cur", "new", "tmp"} {
			postfixtest.MkdirOwned(t, filepath.Join(d, sub), 0o700, uid, gid)
		}
	}
}

// send submits a message with a unique marker in its body to rcpt and
// returns the reply and the body.
func (e *env) send(t *testing.T, rcpt, subject string) (postfixtest.Reply, string) {
	t.Helper()
	body := fmt.Sprintf("marker %s %d\n.a line starting with a dot\nFrom the start of a line\n\ttabbed line with trailing space \nlast line\n",
		subject, time.Now().UnixNano())
	r := e.pf.Send(t, sender, rcpt, postfixtest.Message(sender, rcpt, subject, body))
	return r, body
}

// accepted sends and requires 250 with a queue id.
func (e *env) accepted(t *testing.T, rcpt, subject string) (qid, body string) {
	t.Helper()
	r, body := e.send(t, rcpt, subject)
	if r.Code != 250 || r.QueueID == "" {
		t.Fatalf("sending to %s: %v, want 250 queued", rcpt, r)
	}
	return r.QueueID, body
}

// outcome waits for the delivery status of queue id qid to rcpt and returns
// the status (sent, deferred, bounced, expired) and the log line.
func (e *env) outcome(t *testing.T, qid, rcpt string) (status, line string) {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(qid) + `: to=<` + regexp.QuoteMeta(rcpt) + `>.*status=(\w+).*`)
	m := e.pf.WaitLog(t, re, waitLonger)
	return m[1], m[0]
}

// delivered waits until qid was sent to rcpt and returns the one file in
// dir/new (dir a Maildir or a Maildir++ folder) whose body is body.
func (e *env) delivered(t *testing.T, qid, rcpt, dir, body string) (path string, content []byte) {
	t.Helper()
	if status, line := e.outcome(t, qid, rcpt); status != "sent" {
		t.Fatalf("delivery to %s: %s", rcpt, line)
	}
	found := findBody(t, dir, body)
	if len(found) != 1 {
		t.Fatalf("%s/new holds %d messages with this body, want 1 (%v)", dir, len(found), found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return found[0], b
}

// findBody returns the files in dir/new whose body is exactly body.
func findBody(t *testing.T, dir, body string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(postfixtest.Body(b), []byte(body)) {
			found = append(found, f)
		}
	}
	return found
}

// header returns the first value of the named header field in msg, or "".
func header(msg []byte, name string) string {
	head, _, _ := strings.Cut(strings.ReplaceAll(string(msg), "\r\n", "\n"), "\n\n")
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// owner returns the uid and gid owning path.
func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content next to path under a dot name (which mapdropd
// ignores) and renames it over path, as editors and config tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
