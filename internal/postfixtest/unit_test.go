package postfixtest

import (
	"os"
	"strings"
	"testing"
)

func TestMainCFOverridesInPlace(t *testing.T) {
	inst := &Instance{Dir: "/x", Maillog: "/x/maillog"}
	got := inst.mainCF([]string{
		"mydestination = local.test",
		"virtual_transport = mapdrop",
		"alias_maps = hash:/etc/aliases,",
		"  texthash:/etc/more",
		"# a comment",
	})
	if n := strings.Count(got, "mydestination"); n != 1 {
		t.Errorf("mydestination appears %d times:\n%s", n, got)
	}
	for _, want := range []string{
		"\nmydestination = local.test\n",
		"\nvirtual_transport = mapdrop\n",
		"\nalias_maps = hash:/etc/aliases,\n  texthash:/etc/more\n",
		"\nmaillog_file = /x/maillog\n",
		"\n# a comment\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("main.cf lacks %q:\n%s", want, got)
		}
	}
	// The override stays where the default was: before the appended lines.
	if strings.Index(got, "mydestination") > strings.Index(got, "virtual_transport") {
		t.Errorf("override moved to the end:\n%s", got)
	}

	// A later extra line replaces an earlier one, continuation lines
	// included, where the earlier one stood.
	got = inst.mainCF([]string{
		"virtual_alias_maps = hash:/a,",
		"  hash:/b",
		"virtual_transport = mapdrop",
		"virtual_alias_maps = hash:/c",
	})
	if n := strings.Count(got, "virtual_alias_maps"); n != 1 || strings.Contains(got, "hash:/b") {
		t.Errorf("virtual_alias_maps set %d times, or its old continuation kept:\n%s", n, got)
	}
	if !strings.Contains(got, "\nvirtual_alias_maps = hash:/c\nvirtual_transport = mapdrop\n") {
		t.Errorf("the later virtual_alias_maps is not where the earlier one was:\n%s", got)
	}
}

func TestMasterGuard(t *testing.T) {
	stock, err := parseMaster(`# comment
smtp      inet  n       -       y       -       -       smtpd
cleanup   unix  n       -       y       -       0       cleanup
proxymap  unix  -       -       n       -       -       proxymap
local     unix  -       n       n       -       -       local
`)
	if err != nil || len(stock) != 4 {
		t.Fatalf("parseMaster: %v %v", stock, err)
	}
	for _, tc := range []struct {
		extra []string
		ok    bool
	}{
		{[]string{"mapdrop   unix  -       n       n       -       -       pipe", "  flags=ODRhu user=x argv=/bin/true ${recipient}"}, true},
		{[]string{"local2    unix  -       n       n       -       -       local", "  -o mailbox_command_maps=cdb:/x"}, true},
		{[]string{"cleanup   unix  n       -       n       -       0       cleanup"}, false}, // redefines, chroot off
		{[]string{"cleanup   unix  n       -       y       -       0       cleanup"}, false}, // redefines even as shipped
		{[]string{"smtp      inet  n       -       y       -       -       smtpd"}, false},   // redefines
		{[]string{"127.0.0.1:2 inet  n     -       n       -       -       smtpd"}, false},   // smtpd without chroot
		{[]string{"127.0.0.1:2 inet  n     -       -       -       -       smtpd"}, false},   // "-" is n since Postfix 3.0
		{[]string{"cleanup2  unix  n       -       y       -       0       cleanup"}, true},  // chrooted as shipped
		{[]string{"  -o x=y"}, false}, // continuation without entry
	} {
		err := checkExtraMaster(stock, tc.extra)
		if (err == nil) != tc.ok {
			t.Errorf("checkExtraMaster(%q) = %v, want ok=%v", tc.extra, err, tc.ok)
		}
	}
}

func TestMasterCFStock(t *testing.T) {
	stock, svcs, err := stockMaster()
	if err != nil {
		if Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	inst := &Instance{SMTPPort: 2525}
	got, err := inst.masterCF(stock, []string{"x unix - n n - - pipe", "  argv=/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseMaster(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(svcs)+1 {
		t.Fatalf("%d services, want the %d stock ones plus one", len(parsed), len(svcs))
	}
	for i, s := range svcs {
		p := parsed[i]
		if s.Name == "smtp" && s.Type == "inet" {
			s.Name = "127.0.0.1:2525"
		}
		if p.Name != s.Name || p.ChrootColumn != s.ChrootColumn || p.Command != s.Command || strings.Join(p.Args, " ") != strings.Join(s.Args, " ") {
			t.Errorf("service %d: %+v, want %+v", i, p, s)
		}
		if s.Command == "smtpd" || s.Command == "cleanup" || s.Command == "trivial-rewrite" {
			if !p.Chroot() {
				t.Errorf("%s is not chrooted in the stock master.cf", s.Command)
			}
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		stat, comm, state string
		ppid              int
		ok                bool
	}{
		{"123 (smtpd) S 77 123 123 0 -1", "smtpd", "S", 77, true},
		{"9 (a) (b) c) Z 1 9", "a) (b) c", "Z", 1, true},
		{"9 (trivial-rewrite) R 42\n", "trivial-rewrite", "R", 42, true},
		{"9 smtpd S 1", "", "", 0, false},
		{"9 (smtpd)", "", "", 0, false},
		{"9 (smtpd) S", "", "", 0, false},
		{"9 ) ( S 1", "", "", 0, false},
	} {
		comm, state, ppid, ok := parseStat(c.stat)
		if comm != c.comm || state != c.state || ppid != c.ppid || ok != c.ok {
			t.Errorf("parseStat(%q) = %q, %q, %d, %v; want %q, %q, %d, %v", c.stat, comm, state, ppid, ok, c.comm, c.state, c.ppid, c.ok)
		}
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(string(c), "\n")
	if comm, _, ppid, ok := parseStat(string(b)); !ok || comm != want || ppid != os.Getppid() {
		t.Errorf("parseStat(/proc/self/stat) = comm %q, ppid %d, %v; want %q, %d, true", comm, ppid, ok, want, os.Getppid())
	}
}
