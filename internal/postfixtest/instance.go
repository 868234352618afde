package postfixtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/roottest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// Hostname is the fixed myhostname of every instance.
const Hostname = "mapdrop-test.localdomain"

// Config holds what a test adds to the generated configuration.
type Config struct {
	// MainCF lines are appended to the generated main.cf.
	MainCF []string
	// MasterCF lines are appended to the generated master.cf (services such
	// as a pipe(8) transport; continuation lines start with whitespace).
	MasterCF []string
	// Files are written into the configuration directory before the check,
	// by name relative to it (for texthash: tables, for example).
	Files map[string]string
}

// Instance is a running throwaway Postfix.
type Instance struct {
	Dir      string // the instance directory (mode 0755)
	ConfDir  string // the -c directory holding main.cf and master.cf
	QueueDir string // queue_directory, the chroot of the chrooted services
	Maillog  string // the maillog_file
	SMTPPort int    // smtpd listens on 127.0.0.1:SMTPPort
	stopped  bool
}

// Start creates, checks and starts an instance, registers its Stop with
// t.Cleanup, and returns once smtpd accepts connections. It calls Require
// first. On failure it dumps the maillog into the test log.
func Start(t testing.TB, cfg Config) *Instance {
	t.Helper()
	Require(t)
	stock, stockServices, err := stockMaster()
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	if err := checkExtraMaster(stockServices, cfg.MasterCF); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inst := &Instance{
		Dir:      dir,
		ConfDir:  filepath.Join(dir, "conf"),
		Maillog:  filepath.Join(dir, "maillog"),
		QueueDir: filepath.Join(dir, "queue"),
	}
	t.Cleanup(func() {
		inst.Stop(t)
		if t.Failed() {
			inst.DumpLog(t, 60)
		}
		os.RemoveAll(dir)
	})
	pfUID, pfGID := roottest.IDs(t, "postfix")
	for _, d := range []string{inst.ConfDir, filepath.Join(dir, "queue"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), int(pfUID), int(pfGID)); err != nil {
		t.Fatal(err)
	}
	for name, content := range cfg.Files {
		if err := os.WriteFile(filepath.Join(inst.ConfDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		inst.SMTPPort = port
		if err := os.WriteFile(filepath.Join(inst.ConfDir, "main.cf"), []byte(inst.mainCF(cfg.MainCF)), 0o644); err != nil {
			t.Fatal(err)
		}
		master, err := inst.masterCF(stock, cfg.MasterCF)
		if err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
		if err := os.WriteFile(filepath.Join(inst.ConfDir, "master.cf"), []byte(master), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := inst.configureChroot(); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
		if out, err := run(60*time.Second, "/usr/sbin/postfix", "-c", inst.ConfDir, "check"); err != nil {
			inst.DumpLog(t, 40)
			t.Fatalf("postfixtest: postfix check: %v\n%s", err, out)
		}
		out, err := run(60*time.Second, "/usr/sbin/postfix", "-c", inst.ConfDir, "start")
		if err != nil {
			lastErr = fmt.Errorf("postfix start: %v\n%s", err, out)
			inst.Stop(t)
			inst.stopped = false
			if inst.portTaken() {
				continue // someone took the port between our probe and master's bind
			}
			break
		}
		if err := waitSMTP(port, 30*time.Second); err != nil {
			lastErr = err
			inst.Stop(t)
			inst.stopped = false
			continue
		}
		return inst
	}
	inst.stopped = true
	inst.DumpLog(t, 40)
	t.Fatalf("postfixtest: instance did not start: %v", lastErr)
	return nil
}

func (inst *Instance) portTaken() bool {
	log, _ := os.ReadFile(inst.Maillog)
	return bytes.Contains(log, []byte("Address already in use"))
}

var paramLine = regexp.MustCompile(`^([A-Za-z0-9_]+)\s*=`)

// mainCF returns the generated main.cf. An extra line that sets a parameter
// the defaults or an earlier extra line set replaces that setting, with
// its continuation lines, in place (Postfix warns about a parameter set
// twice); other extra lines, comments and continuation lines are appended
// in order.
func (inst *Instance) mainCF(extra []string) string {
	defaults := [][2]string{
		{"compatibility_level", "3.6"},
		{"queue_directory", filepath.Join(inst.Dir, "queue")},
		{"data_directory", filepath.Join(inst.Dir, "data")},
		{"maillog_file", inst.Maillog},
		{"maillog_file_prefixes", inst.Dir},
		{"myhostname", Hostname},
		{"mydomain", "localdomain"},
		{"myorigin", "$myhostname"},
		{"mydestination", ""},
		{"inet_interfaces", "loopback-only"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"disable_dns_lookups", "yes"},
		{"smtp_dns_support_level", "disabled"},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"biff", "no"},
		{"delay_warning_time", "0"},
		{"smtpd_banner", "$myhostname ESMTP postfixtest"},
	}
	lines := make([]string, len(defaults))
	index := map[string]int{}
	for i, kv := range defaults {
		lines[i] = kv[0] + " = " + kv[1]
		index[kv[0]] = i
	}
	param := -1 // the entry of lines a continuation line belongs to
	for _, l := range extra {
		if m := paramLine.FindStringSubmatch(l); m != nil {
			if i, ok := index[m[1]]; ok {
				lines[i] = l
				param = i
				continue
			}
			index[m[1]] = len(lines)
			param = len(lines)
		} else if param >= 0 && l != "" && (l[0] == ' ' || l[0] == '\t') {
			lines[param] += "\n" + l
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n") + "\n"
}

// waitSMTP polls until something accepts on 127.0.0.1:port and greets with 220.
func waitSMTP(port int, limit time.Duration) error {
	var err error
	if testkit.Poll(limit, func() bool {
		var c net.Conn
		c, err = net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		if err != nil {
			return false
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, rerr := c.Read(buf)
		c.Close()
		if rerr == nil && bytes.HasPrefix(buf[:n], []byte("220")) {
			return true
		}
		err = fmt.Errorf("greeting %q: %v", buf[:n], rerr)
		return false
	}) {
		return nil
	}
	return fmt.Errorf("smtpd on 127.0.0.1:%d not ready after %v: %v", port, limit, err)
}

// Postconf returns the value of a main.cf parameter as this instance sees it.
func (inst *Instance) Postconf(t testing.TB, name string) string {
	t.Helper()
	out, err := run(30*time.Second, "/usr/sbin/postconf", "-c", inst.ConfDir, "-h", name)
	if err != nil {
		t.Fatalf("postfixtest: postconf %s: %v\n%s", name, err, out)
	}
	return out
}

// Stop stops the instance (postfix stop, then abort if needed) and waits a
// bounded time for its master process to go. Calling it twice is harmless.
func (inst *Instance) Stop(t testing.TB) {
	t.Helper()
	if inst.stopped {
		return
	}
	inst.stopped = true
	pid := inst.masterPID()
	if out, err := run(30*time.Second, "/usr/sbin/postfix", "-c", inst.ConfDir, "stop"); err != nil && pid > 0 {
		t.Logf("postfixtest: postfix stop: %v: %s", err, out)
		run(30*time.Second, "/usr/sbin/postfix", "-c", inst.ConfDir, "abort")
	}
	if pid <= 0 {
		return
	}
	if !testkit.Poll(10*time.Second, func() bool { return !alive(pid) }) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (inst *Instance) masterPID() int {
	b, err := os.ReadFile(filepath.Join(inst.Dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, state, _, ok := parseStat(string(b))
	return !ok || (state != "Z" && state != "X")
}

// parseStat returns the command name, the state letter and the parent pid
// from the text of /proc/PID/stat, "PID (COMM) STATE PPID ...": COMM may
// hold blanks and parentheses, so it ends at the last ")". ok is false for
// text of another shape.
func parseStat(s string) (comm, state string, ppid int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, '(')
	if i < 0 || j < 0 || j > i || i+2 >= len(s) {
		return "", "", 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return "", "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return s[j+1 : i], f[0], ppid, true
}

// Log returns the maillog so far.
func (inst *Instance) Log() string {
	b, _ := os.ReadFile(inst.Maillog)
	return string(b)
}

// DumpLog writes the last n lines of the maillog into the test log.
func (inst *Instance) DumpLog(t testing.TB, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(inst.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("postfixtest: last %d maillog lines of %s:\n%s", len(lines), inst.Maillog, strings.Join(lines, "\n"))
}

// WaitLog polls the maillog until a line matches re, and returns the first
// such line with its submatches. After timeout it dumps the log and fails
// the test.
func (inst *Instance) WaitLog(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	if m := inst.waitLog(re, timeout); m != nil {
		return m
	}
	inst.DumpLog(t, 40)
	t.Fatalf("postfixtest: no maillog line matching %q within %v", re, timeout)
	return nil
}

func (inst *Instance) waitLog(re *regexp.Regexp, timeout time.Duration) []string {
	var m []string
	testkit.Poll(timeout, func() bool {
		for _, line := range strings.Split(inst.Log(), "\n") {
			if m = re.FindStringSubmatch(line); m != nil {
				return true
			}
		}
		return false
	})
	return m
}

// LogLines returns every maillog line matching re.
func (inst *Instance) LogLines(re *regexp.Regexp) []string {
	var out []string
	for _, line := range strings.Split(inst.Log(), "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// Flush asks the queue manager to retry all deferred mail now (postqueue -f).
func (inst *Instance) Flush(t testing.TB) {
	t.Helper()
	if out, err := run(30*time.Second, "/usr/sbin/postqueue", "-c", inst.ConfDir, "-f"); err != nil {
		t.Fatalf("postfixtest: postqueue -f: %v\n%s", err, out)
	}
}
