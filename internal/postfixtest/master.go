package postfixtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// StockMasterCF is Debian's shipped master.cf, the one every instance runs.
const StockMasterCF = "/usr/share/postfix/master.cf.dist"

// ConfigureInstance is Debian's script that prepares the chroot (the queue
// directory) before Postfix starts: etc/services, etc/resolv.conf,
// etc/hosts, etc/nsswitch.conf, etc/localtime and the NSS libraries.
const ConfigureInstance = "/usr/lib/postfix/configure-instance.sh"

// Service is one master.cf entry: the eight columns, and whether the
// chroot column turns the chroot on ("y"; "-" means the default, which is
// "n" since Postfix 3.0).
type Service struct {
	Name         string   // e.g. "smtp", "127.0.0.1:2525", "cleanup"
	Type         string   // inet, unix, unix-dgram, fifo, pass
	Private      string   // column 3
	Unpriv       string   // column 4
	ChrootColumn string   // column 5: "y", "n" or "-"
	Wakeup       string   // column 6
	Maxproc      string   // column 7
	Command      string   // the program, e.g. "smtpd", "trivial-rewrite", "pipe"
	Args         []string // what follows the program, -o options included
}

// Chroot reports whether the service runs chrooted in the queue directory.
func (s Service) Chroot() bool { return s.ChrootColumn == "y" }

// parseMaster returns the service entries of master.cf text: an entry
// starts in column one, a line starting with whitespace continues it, and
// blank lines and lines whose first non-blank is "#" are comments.
func parseMaster(text string) ([]Service, error) {
	var entries []string
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(entries) == 0 {
				return nil, fmt.Errorf("line %d: continuation line without an entry: %q", i+1, line)
			}
			entries[len(entries)-1] += " " + trimmed
			continue
		}
		entries = append(entries, trimmed)
	}
	var out []Service
	for _, e := range entries {
		f := strings.Fields(e)
		if len(f) < 8 {
			return nil, fmt.Errorf("master.cf entry with %d fields, want at least 8: %q", len(f), e)
		}
		out = append(out, Service{
			Name: f[0], Type: f[1], Private: f[2], Unpriv: f[3], ChrootColumn: f[4],
			Wakeup: f[5], Maxproc: f[6], Command: f[7], Args: f[8:],
		})
	}
	return out, nil
}

// stockMaster returns Debian's master.cf text and its entries.
func stockMaster() (string, []Service, error) {
	b, err := os.ReadFile(StockMasterCF)
	if err != nil {
		return "", nil, err
	}
	svcs, err := parseMaster(string(b))
	if err != nil {
		return "", nil, fmt.Errorf("%s: %v", StockMasterCF, err)
	}
	return string(b), svcs, nil
}

// checkExtraMaster is the guard on Config.MasterCF: a test may add
// services, but never redefine a stock one (same name and type: Postfix
// would run the later one), and a service that runs a program the stock
// master.cf chroots (smtpd, cleanup, trivial-rewrite, ...) must be chrooted
// too. So no test can turn a chroot off.
func checkExtraMaster(stock []Service, extra []string) error {
	added, err := parseMaster(strings.Join(extra, "\n"))
	if err != nil {
		return fmt.Errorf("Config.MasterCF: %v", err)
	}
	chrooted := map[string]bool{}
	defined := map[string]bool{}
	for _, s := range stock {
		defined[s.Name+"/"+s.Type] = true
		if s.Chroot() {
			chrooted[s.Command] = true
		}
	}
	for _, s := range added {
		if defined[s.Name+"/"+s.Type] {
			return fmt.Errorf("Config.MasterCF redefines the stock service %s/%s of %s; tests run Debian's master.cf as shipped", s.Name, s.Type, StockMasterCF)
		}
		if chrooted[s.Command] && !s.Chroot() {
			return fmt.Errorf("Config.MasterCF runs %s (%s/%s) without a chroot, which %s turns on for %s", s.Command, s.Name, s.Type, StockMasterCF, s.Command)
		}
	}
	return nil
}

// masterCF returns Debian's stock master.cf with one change, the smtpd
// listener's service name "smtp" becoming 127.0.0.1:PORT, followed by the
// extra lines.
func (inst *Instance) masterCF(stock string, extra []string) (string, error) {
	lines := strings.Split(stock, "\n")
	replaced := 0
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 8 && f[0] == "smtp" && f[1] == "inet" && f[7] == "smtpd" && (l[0] != ' ' && l[0] != '\t') {
			lines[i] = fmt.Sprintf("127.0.0.1:%d", inst.SMTPPort) + strings.TrimPrefix(l, "smtp")
			replaced++
		}
	}
	if replaced != 1 {
		return "", fmt.Errorf("%s has %d \"smtp inet ... smtpd\" entries, want 1", StockMasterCF, replaced)
	}
	var b strings.Builder
	b.WriteString(strings.Join(lines, "\n"))
	if !strings.HasSuffix(stock, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("# added by the test\n")
	for _, l := range extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// configureChroot runs Debian's configure-instance.sh for this instance
// (MAIL_CONFIG names its configuration directory), as Debian's postfix
// service does before every start: it copies what chrooted daemons need into
// the queue directory.
func (inst *Instance) configureChroot() error {
	out, err := runEnv(60*time.Second, []string{"MAIL_CONFIG=" + inst.ConfDir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "/bin/sh", ConfigureInstance, "-")
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", ConfigureInstance, err, out)
	}
	for _, f := range []string{"etc/services", "etc/nsswitch.conf"} {
		if _, err := os.Stat(filepath.Join(inst.QueueDir, f)); err != nil {
			return fmt.Errorf("%s left no %s in the chroot: %v", ConfigureInstance, f, err)
		}
	}
	return nil
}

// Services returns the instance's master.cf entries as Postfix itself reads
// them ("postconf -M").
func (inst *Instance) Services(t testing.TB) []Service {
	t.Helper()
	out, err := run(30*time.Second, "/usr/sbin/postconf", "-c", inst.ConfDir, "-M")
	if err != nil {
		t.Fatalf("postfixtest: postconf -M: %v\n%s", err, out)
	}
	svcs, err := parseMaster(out)
	if err != nil {
		t.Fatalf("postfixtest: postconf -M output: %v", err)
	}
	return svcs
}

// Chrooted reports whether the running processes of program (the name in
// /proc/PID/comm, e.g. "smtpd", "cleanup", "trivial-rewrite", "proxymap")
// that this instance's master started all have the queue directory as
// their root directory. It waits up to a minute for one to run and fails
// the test when none does: the caller first makes Postfix use the program.
// A daemon chroots right after it starts, so one just started may still
// have "/" as its root: the answer is false only when some process still
// is outside the queue directory after chrootGrace.
func (inst *Instance) Chrooted(t testing.TB, program string) bool {
	t.Helper()
	want, err := filepath.EvalSymlinks(inst.QueueDir)
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	if !testkit.Poll(testkit.Patience, func() bool {
		roots = inst.processRoots(program)
		return len(roots) > 0
	}) {
		t.Fatalf("postfixtest: no %s process of the master %d runs", program, inst.masterPID())
	}
	var outside string
	inside := testkit.Poll(chrootGrace, func() bool {
		outside = ""
		for _, r := range inst.processRoots(program) {
			if r != want {
				outside = r
			}
		}
		return outside == ""
	})
	if !inside {
		t.Logf("postfixtest: a %s process has root %s, not %s", program, outside, want)
	}
	return inside
}

// chrootGrace bounds how long a daemon may run before it has chrooted.
const chrootGrace = 3 * time.Second

// processRoots returns the root directories of the master's children whose
// comm is program.
func (inst *Instance) processRoots(program string) []string {
	master := inst.masterPID()
	if master <= 0 {
		return nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var roots []string
	for _, p := range procs {
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		comm, state, ppid, ok := parseStat(string(stat))
		if !ok || state == "Z" || comm != program || ppid != master {
			continue
		}
		root, err := os.Readlink(filepath.Join(p, "root"))
		if err != nil {
			continue
		}
		roots = append(roots, root)
	}
	return roots
}
