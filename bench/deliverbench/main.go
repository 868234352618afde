// Command deliverbench measures mapdrop, the delivery agent, the way Postfix's
// pipe(8) runs it — a new process per message, started as the unprivileged
// mailbox owner, message on stdin, userdb lookup over a unix socket to a real
// mapdropd process — against baselines measured in the same run.
//
// Usage:
//
//	go run ./bench/deliverbench [-count 100] [-turn 10] [-rounds 5] [-sizes 4096,102400]
//	                            [-parallel 2] [-bin DIR] [-dir DIR] [-json FILE] [-quick]
//	                            [-baseline REV]
//
// # What is measured
//
// Deliveries per second of a message of each -sizes byte count, run
// sequentially and -parallel at a time, -count deliveries per deliverer,
// size, mode and round, each a new process exec'd with the mailbox owner's
// uid and gid and the message written into its stdin through a pipe, as
// Postfix's pipe(8) and local(8) hand it over (a file as stdin would let a
// Go io.Copy, the floor's, copy in the kernel with copy_file_range, which no
// Postfix delivery allows). The deliverers, each writing into
// its own Maildir (tmp/, new/, cur/ made beforehand, owned by the user):
//
//   - floor: bench/deliverbench/floorwriter, which only writes tmp/NAME,
//     fsyncs it, renames it into new/ and fsyncs new/;
//   - mapdrop: "mapdrop -s unix:SOCK -d bench@bench.example", its userdb
//     entry (uid, gid, home, mail; no quota) served by "mapdropd serve";
//     one log line per delivery goes to a file (env MAPDROP_LOG_FILE), there
//     being no syslog here;
//   - maildrop (when installed): Courier's "maildrop FILTERFILE", the filter
//     file (owned by the user, mode 0600) holding `to "MAILDIR/"`;
//   - dovecot-lda (when installed): "dovecot-lda -c CONF" with HOME set and
//     a config of "mail_location = maildir:MAILDIR" and "mail_fsync = always";
//   - mapdrop-base (with -baseline REV): mapdrop built from the git revision
//     REV of this repository ("git archive REV", then the same go build),
//     run exactly as mapdrop: what a delivery without a Sieve script cost
//     before;
//   - mapdrop+sieve: mapdrop for a second userdb entry whose home holds
//     .dovecot.sieve, the 50-rule script of sieveScript (no rule matches
//     the benchmark message, so every rule is evaluated and the message is
//     kept in INBOX); mapdrop execs mapdrop-sieve, which must be in the
//     same directory;
//   - dovecot-lda+sieve (when dovecot-lda and Pigeonhole, Debian's
//     dovecot-sieve, are installed): dovecot-lda as above with the sieve
//     plugin and the same script as HOME/.dovecot.sieve (Pigeonhole
//     compiles it to HOME/.dovecot.svbin on the first delivery and reuses
//     that).
//
// Run as root, the deliverers run as user nobody (uid and gid 65534), the
// realistic pipe(8) case (user=... in master.cf); otherwise as the current
// user. Within a round the deliverers take turns of -turn deliveries each
// (the order rotating every turn) until each has made -count; a
// deliverer's rate in the round is its -count deliveries over the sum of
// its turns' times. Short interleaved turns give every deliverer the same
// share of a shared machine's changing load: with whole batches of 100 one
// after the other (a quarter of a second each), load swings between two
// batches moved a round's ratio by several percent either way. After each
// round the files in the Maildir are counted (every delivery must have
// landed in new/) and removed, along with any index files a deliverer made.
// A ratio is the median of the per-round ratios of two deliverers' rates.
//
// Targets, per size and mode: mapdrop >= 0.8 of the floor; mapdrop faster than
// maildrop and than dovecot-lda; mapdrop >= 0.95 of mapdrop-base (no cost
// without a script); mapdrop+sieve faster than dovecot-lda+sieve; every
// delivery landed. With -quick (what the
// package's test runs) the sizes are tiny and only landing is judged. The exit
// status is 1 when a judged target fails, 2 on an error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/lookup/oneshot"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// config is the command line.
type config struct {
	Count    int    `json:"count"`
	Turn     int    `json:"turn"`
	Rounds   int    `json:"rounds"`
	Sizes    []int  `json:"sizes"`
	Parallel int    `json:"parallel"`
	Quick    bool   `json:"quick"`
	Baseline string `json:"baseline,omitempty"`
	bin      string
	dir      string
	jsonPath string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "deliverbench:", err)
		os.Exit(64)
	}
	res, err := run(cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deliverbench:", err)
		os.Exit(2)
	}
	if cfg.jsonPath != "" {
		if err := benchkit.WriteJSON(cfg.jsonPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "deliverbench:", err)
			os.Exit(2)
		}
	}
	if res.Report.Failed() {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("deliverbench", flag.ContinueOnError)
	var cfg config
	quick := fs.Bool("quick", false, "smoke test: a few deliveries, only landing judged")
	fs.IntVar(&cfg.Count, "count", 100, "deliveries per deliverer, size, mode and round")
	fs.IntVar(&cfg.Turn, "turn", 10, "deliveries per deliverer and turn within a round")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "rounds")
	sizes := fs.String("sizes", "4096,102400", "comma-separated message sizes in bytes")
	fs.IntVar(&cfg.Parallel, "parallel", 2, "deliveries at a time in the parallel mode")
	fs.StringVar(&cfg.bin, "bin", "", "directory with prebuilt mapdropd, mapdrop and floorwriter (default: build them)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory (default: a new one under $TMPDIR, removed afterwards); must be on the disk, not tmpfs")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&cfg.Baseline, "baseline", "", "also measure mapdrop built from this git revision (mapdrop-base)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() != 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for f := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < minSize {
			return cfg, fmt.Errorf("-sizes: %q is not a size of at least %d bytes", f, minSize)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if *quick {
		cfg.Quick = true
		cfg.Count, cfg.Turn, cfg.Rounds, cfg.Sizes = 2, 1, 1, []int{4096}
	}
	if cfg.Count < 1 || cfg.Turn < 1 || cfg.Rounds < 1 || cfg.Parallel < 2 {
		return cfg, errors.New("-count, -turn and -rounds must be positive, -parallel at least 2")
	}
	return cfg, nil
}

// deliverer is one program that delivers a message on stdin into a Maildir.
type deliverer struct {
	Name    string
	maildir string
	argv    []string
	env     []string
	cred    *syscall.Credential
	dir     string // working directory
}

// deliver runs one delivery of the message file msg and waits for it.
func (d *deliverer) deliver(msg []byte) error {
	cmd := exec.Command(d.argv[0], d.argv[1:]...)
	cmd.Stdin = bytes.NewReader(msg) // not an *os.File: exec makes a pipe and writes into it
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.Env = d.env
	cmd.Dir = d.dir
	if d.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", d.Name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// batch runs count deliveries, par at a time, and returns the elapsed time.
func (d *deliverer) batch(msg []byte, count, par int) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, par)
	start := time.Now()
	for w := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if err := d.deliver(msg); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return elapsed, errors.Join(errs...)
}

// landed counts the files in new/ and then empties the Maildir: the files in
// new/, cur/ and tmp/, and every other file (index, uid list, log) a
// deliverer made at its top.
func (d *deliverer) landed() (int, error) {
	ents, err := os.ReadDir(filepath.Join(d.maildir, "new"))
	if err != nil {
		return 0, err
	}
	n := len(ents)
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(d.maildir, sub))
		if err != nil {
			return n, err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(d.maildir, sub, e.Name())); err != nil {
				return n, err
			}
		}
	}
	top, err := os.ReadDir(d.maildir)
	if err != nil {
		return n, err
	}
	for _, e := range top {
		switch e.Name() {
		case "new", "cur", "tmp":
		default:
			if err := os.RemoveAll(filepath.Join(d.maildir, e.Name())); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Cell is the measurement of one deliverer at one size and mode.
type Cell struct {
	Deliverer   string    `json:"deliverer"`
	Rates       []float64 `json:"rates"` // deliveries per second, per round
	Rate        float64   `json:"rate"`  // median
	VsFloor     float64   `json:"vs_floor"`
	RoundRatios []float64 `json:"round_ratios_vs_floor"`
	Missing     int       `json:"missing"` // deliveries that did not land, over all rounds
}

// Row is one size and mode.
type Row struct {
	Size     int     `json:"size"`
	Parallel int     `json:"parallel"`
	Cells    []*Cell `json:"cells"`
}

// Result is everything one run measured.
type Result struct {
	Config  config          `json:"config"`
	User    string          `json:"user"`
	Skipped []string        `json:"skipped,omitempty"`
	Rows    []Row           `json:"rows"`
	Report  benchkit.Report `json:"report"`
}

// The userdb entries: mapdrop's, mapdrop-base's (same home, its own
// Maildir) and mapdrop+sieve's (a home with the script).
const (
	benchUser = "bench@bench.example"
	baseUser  = "base@bench.example"
	sieveUser = "sieve@bench.example"
)

// pigeonholePlugin is Debian's dovecot-sieve plugin for dovecot-lda.
const pigeonholePlugin = "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"

// sieveScript returns the 50-rule script of mapdrop+sieve and
// dovecot-lda+sieve: the tests a user's filters typically make (subject,
// sender, list, envelope detail, spam header, size), none matching the
// benchmark's message, so all 50 run and the message is kept.
func sieveScript() string {
	var b strings.Builder
	b.WriteString(`require ["fileinto","envelope","subaddress","imap4flags","variables","relational","copy","mailbox"];` + "\n")
	for i := range 50 {
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "if header :contains \"subject\" \"topic-%d\" { fileinto \"Topic%d\"; stop; }\n", i, i)
		case 1:
			fmt.Fprintf(&b, "if address :is \"from\" \"user%d@lists.example\" { fileinto :create \"Lists/L%d\"; stop; }\n", i, i)
		case 2:
			fmt.Fprintf(&b, "if header :matches \"list-id\" \"*<list%d.*\" { addflag \"\\\\Seen\"; fileinto \"List%d\"; stop; }\n", i, i)
		case 3:
			fmt.Fprintf(&b, "if envelope :detail \"to\" \"tag%d\" { fileinto \"Tag%d\"; stop; }\n", i, i)
		case 4:
			fmt.Fprintf(&b, "if allof (exists \"x-spam-flag\", header :value \"ge\" \"x-spam-level\" \"%d\") { fileinto \"Junk\"; stop; }\n", i)
		case 5:
			fmt.Fprintf(&b, "if anyof (size :over 50M, address :domain \"from\" \"spam%d.example\") { discard; stop; }\n", i)
		}
	}
	return b.String()
}

// writeOwned writes a file of mode 0600 owned by uid:gid.
func writeOwned(path, text string, uid, gid uint32) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Lchown(path, int(uid), int(gid))
}

// buildBaseline builds ./cmd/mapdrop of the git revision rev of this
// repository into outDir: "git archive rev" unpacked into outDir/src, then
// go build there as testkit.BuildInto builds (CGO_ENABLED=0).
func buildBaseline(ctx context.Context, rev, outDir string) error {
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	src := filepath.Join(outDir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(outDir, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var aerr, terr bytes.Buffer
	archive.Stderr, untar.Stderr = &aerr, &terr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return fmt.Errorf("git archive %s: %v: %s", rev, err, strings.TrimSpace(aerr.String()))
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar: %v: %s", err, strings.TrimSpace(terr.String()))
	}
	build := exec.CommandContext(ctx, testkit.GoTool(), "build", "-o", filepath.Join(outDir, "mapdrop"), "./cmd/mapdrop")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building mapdrop of %s: %v\n%s", rev, err, out)
	}
	return os.Chmod(filepath.Join(outDir, "mapdrop"), 0o755)
}

// identity returns whom the deliverers run as: nobody when we are root,
// else ourselves (cred nil).
func identity() (name string, uid, gid uint32, cred *syscall.Credential) {
	if os.Geteuid() != 0 {
		name = strconv.Itoa(os.Getuid())
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		return name, uint32(os.Getuid()), uint32(os.Getgid()), nil
	}
	uid, gid = 65534, 65534
	name = "nobody"
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil && n != 0 {
			uid = uint32(n)
		}
		if n, err := strconv.ParseUint(u.Gid, 10, 32); err == nil && n != 0 {
			gid = uint32(n)
		}
	}
	return name, uid, gid, &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
}

// checkTraversable makes sure another user can reach dir: every directory
// from / down to dir must be searchable by others.
func checkTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (mode %v) is not searchable by others: the deliverers, running as another user, cannot reach %s", d, fi.Mode().Perm(), abs)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// mkdirs makes each directory (and parents, mode 0755) and gives it to
// uid:gid with mode perm.
func mkdirs(uid, gid uint32, perm os.FileMode, dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, perm); err != nil {
			return err
		}
		if err := os.Lchown(d, int(uid), int(gid)); err != nil {
			return err
		}
	}
	return nil
}

func makeMaildir(path string, uid, gid uint32) error {
	return mkdirs(uid, gid, 0o700, path, filepath.Join(path, "tmp"), filepath.Join(path, "new"), filepath.Join(path, "cur"))
}

// minSize is the smallest message size: the headers must fit.
const minSize = 512

// message returns a plausible message of exactly size (>= minSize) bytes.
func message(size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <sender@example.org>\nDelivered-To: %s\nFrom: Sender <sender@example.org>\nTo: %s\nSubject: deliverbench %d bytes\nMessage-ID: <%d@bench.example>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n", benchUser, benchUser, size, size)
	line := []byte("The quick brown fox jumps over the lazy dog, again and again and again.\n")
	for b.Len() < size {
		b.Write(line[:min(len(line), size-b.Len())])
	}
	out := b.Bytes()[:size]
	out[size-1] = '\n'
	return out
}

// run performs the whole benchmark and prints its tables to out.
func run(cfg config, out io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	base := cfg.dir
	if base == "" {
		d, err := os.MkdirTemp("", "deliverbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		base = d
	} else if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	// The deliverers' user must reach binaries, socket and home.
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	name, uid, gid, cred := identity()
	res.User = fmt.Sprintf("%s (uid %d, gid %d)", name, uid, gid)
	if cred != nil {
		if err := checkTraversable(base); err != nil {
			return nil, err
		}
	}

	bin := cfg.bin
	if bin == "" {
		bin = filepath.Join(base, "bin")
		fmt.Fprintln(out, "building mapdropd, mapdrop, mapdrop-sieve and floorwriter ...")
		if err := testkit.BuildInto(context.Background(), bin, false, "./cmd/mapdropd", "./cmd/mapdrop", "./cmd/mapdrop-sieve", "./bench/deliverbench/floorwriter"); err != nil {
			return nil, err
		}
	}
	baseBin := ""
	if cfg.Baseline != "" {
		baseBin = filepath.Join(base, "baseline")
		fmt.Fprintf(out, "building mapdrop from %s ...\n", cfg.Baseline)
		if err := buildBaseline(context.Background(), cfg.Baseline, baseBin); err != nil {
			return nil, err
		}
	}
	tables := filepath.Join(base, "tables")
	runDir := filepath.Join(base, "run")
	home := filepath.Join(base, "home")
	for _, d := range []string{tables, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := mkdirs(uid, gid, 0o755, home); err != nil {
		return nil, err
	}
	msgs := map[int][]byte{}
	for _, size := range cfg.Sizes {
		msgs[size] = message(size)
	}

	// mapdropd serving the userdb.
	mailDir := filepath.Join(home, "Maildir")
	sieveHome := filepath.Join(home, "sieveuser")
	baseDir := filepath.Join(home, "base")
	if err := mkdirs(uid, gid, 0o700, sieveHome); err != nil {
		return nil, err
	}
	if err := writeOwned(filepath.Join(sieveHome, ".dovecot.sieve"), sieveScript(), uid, gid); err != nil {
		return nil, err
	}
	userdb := fmt.Sprintf("%s uid=%d|gid=%d|home=%s|mail=%s/\n", benchUser, uid, gid, home, mailDir) +
		fmt.Sprintf("%s uid=%d|gid=%d|home=%s\n", sieveUser, uid, gid, sieveHome) +
		fmt.Sprintf("%s uid=%d|gid=%d|home=%s|mail=%s/\n", baseUser, uid, gid, home, baseDir)
	if err := os.WriteFile(filepath.Join(tables, "userdb"), []byte(userdb), 0o644); err != nil {
		return nil, err
	}
	sock := filepath.Join(runDir, "mapdropd.sock")
	stop, err := startMapdropd(filepath.Join(bin, "mapdropd"), tables, sock, filepath.Join(base, "mapdropd.log"))
	if err != nil {
		return nil, err
	}
	defer stop()

	env := func(extra ...string) []string {
		return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "USER=" + name, "LOGNAME=" + name}, extra...)
	}
	mk := func(name, maildir string, argv []string, envv []string) (*deliverer, error) {
		if err := makeMaildir(maildir, uid, gid); err != nil {
			return nil, err
		}
		return &deliverer{Name: name, maildir: maildir, argv: argv, env: envv, cred: cred, dir: home}, nil
	}
	var ds []*deliverer
	floorDir := filepath.Join(home, "floor")
	d, err := mk("floor", floorDir, []string{filepath.Join(bin, "floorwriter"), floorDir}, env())
	if err != nil {
		return nil, err
	}
	ds = append(ds, d)
	logFile := filepath.Join(home, "mapdrop.log")
	if err := os.WriteFile(logFile, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Lchown(logFile, int(uid), int(gid)); err != nil {
		return nil, err
	}
	d, err = mk("mapdrop", mailDir, []string{filepath.Join(bin, "mapdrop"), "-s", "unix:" + sock, "-d", benchUser}, env("MAPDROP_LOG_FILE="+logFile))
	if err != nil {
		return nil, err
	}
	ds = append(ds, d)
	if baseBin != "" {
		// Its own userdb entry, alike but for the Maildir, so that each
		// deliverer's landings are counted apart.
		d, err = mk("mapdrop-base", baseDir, []string{filepath.Join(baseBin, "mapdrop"), "-s", "unix:" + sock, "-d", baseUser}, env("MAPDROP_LOG_FILE="+logFile))
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	d, err = mk("mapdrop+sieve", filepath.Join(sieveHome, "Maildir"), []string{filepath.Join(bin, "mapdrop"), "-s", "unix:" + sock, "-d", sieveUser}, env("MAPDROP_LOG_FILE="+logFile))
	if err != nil {
		return nil, err
	}
	ds = append(ds, d)
	if p := benchkit.LookTool("maildrop"); p != "" {
		dir := filepath.Join(home, "maildrop")
		filter := filepath.Join(home, "maildrop.filter")
		if err := os.WriteFile(filter, fmt.Appendf(nil, "to \"%s/\"\n", dir), 0o600); err != nil {
			return nil, err
		}
		if err := os.Lchown(filter, int(uid), int(gid)); err != nil {
			return nil, err
		}
		d, err := mk("maildrop", dir, []string{p, filter}, env())
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	} else {
		res.Skipped = append(res.Skipped, "maildrop: not installed")
	}
	if p := benchkit.LookTool("dovecot-lda", "/usr/lib/dovecot", "/usr/libexec/dovecot"); p != "" {
		dir := filepath.Join(home, "dovecot")
		conf := filepath.Join(base, "dovecot.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, "mail_location = maildir:%s\nmail_fsync = always\n", dir), 0o644); err != nil {
			return nil, err
		}
		d, err := mk("dovecot-lda", dir, []string{p, "-c", conf}, env())
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
		if _, err := os.Stat(pigeonholePlugin); err == nil {
			phHome := filepath.Join(home, "phuser")
			if err := mkdirs(uid, gid, 0o700, phHome); err != nil {
				return nil, err
			}
			if err := writeOwned(filepath.Join(phHome, ".dovecot.sieve"), sieveScript(), uid, gid); err != nil {
				return nil, err
			}
			conf := filepath.Join(base, "dovecot-sieve.conf")
			text := "mail_location = maildir:~/Maildir\nmail_fsync = always\nprotocol lda {\n  mail_plugins = sieve\n}\nplugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n"
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return nil, err
			}
			phEnv := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + phHome, "USER=" + name, "LOGNAME=" + name}
			d, err := mk("dovecot-lda+sieve", filepath.Join(phHome, "Maildir"), []string{p, "-c", conf}, phEnv)
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		} else {
			res.Skipped = append(res.Skipped, "dovecot-lda+sieve: Pigeonhole (dovecot-sieve) not installed")
		}
	} else {
		res.Skipped = append(res.Skipped, "dovecot-lda: not installed")
	}

	// Warm up (page cache, first-use Maildir work) and drop a baseline that
	// cannot deliver; the floor and mapdrop must.
	warm := ds[:0]
	for _, d := range ds {
		err := d.deliver(msgs[cfg.Sizes[0]])
		if err == nil {
			var n int
			n, err = d.landed()
			if err == nil && n != 1 {
				err = fmt.Errorf("%s: warm-up delivery: %d files in %s/new, want 1", d.Name, n, d.maildir)
			}
		}
		if err != nil {
			if d.Name == "floor" || d.Name == "mapdrop" || d.Name == "mapdrop-base" {
				return nil, err
			}
			res.Skipped = append(res.Skipped, err.Error())
			continue
		}
		warm = append(warm, d)
	}
	ds = warm

	fmt.Fprintf(out, "delivering as %s: %d round(s) of %d deliveries per deliverer, size and mode, in turns of %d ...\n", res.User, cfg.Rounds, cfg.Count, cfg.Turn)
	for _, size := range cfg.Sizes {
		for _, par := range []int{1, cfg.Parallel} {
			row, err := measureRow(cfg, ds, msgs[size], size, par)
			if err != nil {
				return nil, err
			}
			res.Rows = append(res.Rows, row)
		}
	}
	printResult(out, res)
	return res, nil
}

func measureRow(cfg config, ds []*deliverer, msg []byte, size, par int) (Row, error) {
	row := Row{Size: size, Parallel: par}
	for _, d := range ds {
		row.Cells = append(row.Cells, &Cell{Deliverer: d.Name})
	}
	for r := range cfg.Rounds {
		elapsed := make([]time.Duration, len(ds))
		for t, done := 0, 0; done < cfg.Count; t, done = t+1, done+cfg.Turn {
			n := min(cfg.Turn, cfg.Count-done)
			for k := range ds {
				i := (k + r + t) % len(ds) // rotate the order every turn
				e, err := ds[i].batch(msg, n, par)
				if err != nil {
					return row, err
				}
				elapsed[i] += e
			}
		}
		rates := make([]float64, len(ds))
		for i, d := range ds {
			n, err := d.landed()
			if err != nil {
				return row, err
			}
			if n != cfg.Count {
				row.Cells[i].Missing += cfg.Count - n
			}
			rates[i] = float64(cfg.Count) / elapsed[i].Seconds()
			row.Cells[i].Rates = append(row.Cells[i].Rates, rates[i])
		}
		for i, c := range row.Cells {
			c.RoundRatios = append(c.RoundRatios, rates[i]/rates[0])
		}
	}
	for _, c := range row.Cells {
		c.Rate = benchkit.Median(c.Rates)
		c.VsFloor = benchkit.Median(c.RoundRatios)
	}
	return row, nil
}

// startMapdropd starts "mapdropd serve" on tables and waits until it answers
// the userdb lookup.
func startMapdropd(bin, tables, sock, logPath string) (stop func(), err error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "-tables", tables, "-socketmap", "unix:"+sock, "-socket-mode", "0666")
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	a := sockaddr.Addr{Network: "unix", Address: sock}
	var last error
	for range 2000 {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("mapdropd exited; its log:\n%s", b)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, last = oneshot.Lookup(ctx, time.Time{}, a, "userdb", benchUser)
		cancel()
		if last == nil {
			return stop, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	b, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("mapdropd does not answer userdb %s: %v; its log:\n%s", benchUser, last, b)
}

func cellOf(row Row, name string) *Cell {
	for _, c := range row.Cells {
		if c.Deliverer == name {
			return c
		}
	}
	return nil
}

// vs returns the median of the per-round ratios of a's rate to b's.
func vs(a, b *Cell) float64 {
	var rs []float64
	for i := range a.Rates {
		rs = append(rs, a.Rates[i]/b.Rates[i])
	}
	return benchkit.Median(rs)
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func modeName(par int) string {
	if par == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d parallel", par)
}

func printResult(out io.Writer, res *Result) {
	cfg := res.Config
	judged := !cfg.Quick
	fmt.Fprintf(out, "\ndeliverbench: a new process per delivery, as %s; %d round(s) x %d deliveries per deliverer, size and mode, in interleaved turns of %d; median deliveries/s (ratio to the floor, median of per-round ratios)\n",
		res.User, cfg.Rounds, cfg.Count, cfg.Turn)
	for _, s := range res.Skipped {
		fmt.Fprintf(out, "skipped %s\n", s)
	}
	fmt.Fprintln(out)
	if len(res.Rows) == 0 {
		return
	}
	tw := benchkit.NewTable(out)
	head := "SIZE\tMODE"
	for _, c := range res.Rows[0].Cells {
		head += "\t" + strings.ToUpper(c.Deliverer) + " /s"
	}
	fmt.Fprintln(tw, head)
	for _, row := range res.Rows {
		line := sizeName(row.Size) + "\t" + modeName(row.Parallel)
		for i, c := range row.Cells {
			if i == 0 {
				line += fmt.Sprintf("\t%.1f", c.Rate)
			} else {
				line += fmt.Sprintf("\t%.1f (%.2f)", c.Rate, c.VsFloor)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(out)

	rep := &res.Report
	missing := 0
	for _, row := range res.Rows {
		for _, c := range row.Cells {
			missing += c.Missing
		}
	}
	rep.Add("deliveries not found in new/", strconv.Itoa(missing), "0", benchkit.Judge(true, missing == 0))
	for _, row := range res.Rows {
		what := sizeName(row.Size) + " " + modeName(row.Parallel)
		md := cellOf(row, "mapdrop")
		rep.Add("mapdrop vs floor, "+what, fmt.Sprintf("%.2f", md.VsFloor), ">= 0.80", benchkit.Judge(judged, md.VsFloor >= 0.8))
		for _, other := range []string{"maildrop", "dovecot-lda"} {
			if c := cellOf(row, other); c != nil {
				r := vs(md, c)
				rep.Add("mapdrop vs "+other+", "+what, fmt.Sprintf("%.2fx", r), "> 1.00x", benchkit.Judge(judged, r > 1))
			}
		}
		if c := cellOf(row, "mapdrop-base"); c != nil {
			r := vs(md, c)
			rep.Add("mapdrop (no script) vs mapdrop-base "+cfg.Baseline+", "+what, fmt.Sprintf("%.2fx", r), ">= 0.95x", benchkit.Judge(judged, r >= 0.95))
		}
		if ms, ph := cellOf(row, "mapdrop+sieve"), cellOf(row, "dovecot-lda+sieve"); ms != nil && ph != nil {
			r := vs(ms, ph)
			rep.Add("mapdrop+sieve vs dovecot-lda+sieve (50 rules), "+what, fmt.Sprintf("%.2fx", r), "> 1.00x", benchkit.Judge(judged, r > 1))
		}
		if ms := cellOf(row, "mapdrop+sieve"); ms != nil {
			rep.Add("mapdrop+sieve vs mapdrop (cost of the script), "+what, fmt.Sprintf("%.2fx", vs(ms, md)), "(reported)", benchkit.Judge(false, true))
		}
	}
	rep.Print(out)
}
