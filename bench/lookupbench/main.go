// Command lookupbench measures mapdropd, the socketmap table server, as a
// separate process the way Postfix uses it, against baselines measured in the
// same run.
//
// Usage:
//
//	go run ./bench/lookupbench [-entries 1000000] [-duration 2s] [-rounds 5]
//	                          [-conns 1,8,64] [-reloads 20] [-big-reloads 3]
//	                          [-load-rounds 3] [-bin DIR] [-dir DIR] [-json FILE] [-quick]
//
// # What is measured
//
// The table is a virtual_alias source file of -entries lines
// "userN@domainM.example targetN@else.example" (M = N mod 1000). mapdropd
// serves it with "mapdropd serve -tables DIR -socketmap unix:SOCK".
//
//  1. Lookups per second and p99 latency at each -conns count of persistent
//     unix-socket connections, each a goroutine sending one socketmap request
//     and reading its reply in a loop: random keys, 90% hits and 10% misses
//     ("nouserN@domainM.example", which mapdropd, virtual_alias being an
//     address map, also looks up as "@domainM.example"). The floor is
//     floorserver (a separate process too): read a netstring, answer
//     "OK value" from a Go map, nothing else. Rounds alternate floor and
//     mapdropd; the ratio is the median of the per-round ratios of
//     mapdropd's rate to the floor's. Every reply is checked: a wrong answer
//     or an I/O error is an error. Beside it, each server's CPU time (user +
//     system, /proc/PID/stat) per request over all rounds, which shows where
//     a difference comes from. Targets: ratio >= 0.8 at the largest -conns
//     count; zero errors.
//
//  2. Load: time from starting a mapdropd process to its first correct answer
//     (it listens only once its tables are loaded), beside "postmap -c
//     CONFDIR lmdb:FILE" building the same file (when postmap is installed;
//     rounds alternate). Memory: VmRSS and VmHWM of /proc/PID/status right
//     after the first answer; bytes per entry = (VmRSS loaded - VmRSS of a
//     mapdropd serving an empty tables directory) / entries. Targets: load
//     time <= postmap lmdb's; < 600 bytes per entry.
//
//  3. Reload: a small second table (reload_probe, 1000 lines) in the same
//     directory is rewritten as a dot-file and renamed over the map; the time
//     from rename() to the first reply carrying the new value, polled in a
//     tight loop on a persistent connection, -reloads times (median and max).
//     Target: median < 100 ms. The same is done -big-reloads times with the
//     whole -entries file (polled every millisecond so that the poller does
//     not steal a core from the parse); reported, not judged.
//
//  4. The cost of metrics: a second mapdropd serving the same table with
//     "-metrics 127.0.0.1:PORT", rounds alternating with the first at the
//     largest -conns count; the ratio is the median of the per-round ratios
//     of server CPU time per request, metrics on over off. Target: <= 1.05.
//     The lookups the metrics counted over the rounds must be exactly the
//     requests sent (checked in -quick runs too).
//
// With -quick everything runs at toy sizes and only the correctness targets
// (zero errors, every reload seen) are judged; that is what the package's test
// runs. The exit status is 1 when a judged target fails, 2 on an error.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// config is the command line.
type config struct {
	Entries    int           `json:"entries"`
	Duration   time.Duration `json:"duration_per_round_ns"`
	Rounds     int           `json:"rounds"`
	Conns      []int         `json:"conns"`
	Reloads    int           `json:"reloads"`
	BigReloads int           `json:"big_reloads"`
	LoadRounds int           `json:"load_rounds"`
	Quick      bool          `json:"quick"`
	bin        string
	dir        string
	jsonPath   string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lookupbench:", err)
		os.Exit(64)
	}
	res, err := run(cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lookupbench:", err)
		os.Exit(2)
	}
	if cfg.jsonPath != "" {
		if err := benchkit.WriteJSON(cfg.jsonPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "lookupbench:", err)
			os.Exit(2)
		}
	}
	if res.Report.Failed() {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("lookupbench", flag.ContinueOnError)
	var cfg config
	quick := fs.Bool("quick", false, "smoke test: toy sizes, only correctness judged")
	fs.IntVar(&cfg.Entries, "entries", 1_000_000, "lines in the virtual_alias table")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of one load round per server and connection count")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "load rounds per server and connection count")
	conns := fs.String("conns", "1,8,64", "comma-separated connection counts")
	fs.IntVar(&cfg.Reloads, "reloads", 20, "reloads of the small table to time")
	fs.IntVar(&cfg.BigReloads, "big-reloads", 3, "reloads of the big table to time (0: none)")
	fs.IntVar(&cfg.LoadRounds, "load-rounds", 3, "rounds of mapdropd start vs postmap lmdb")
	fs.StringVar(&cfg.bin, "bin", "", "directory with prebuilt mapdropd and floorserver (default: build them)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory (default: a new one under $TMPDIR, removed afterwards)")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() != 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		cfg = quickConfig(cfg)
		return cfg, nil
	}
	var err error
	if cfg.Conns, err = parseInts(*conns); err != nil {
		return cfg, fmt.Errorf("-conns: %v", err)
	}
	if cfg.Entries < 1 || cfg.Rounds < 1 || cfg.LoadRounds < 1 || cfg.Reloads < 1 || cfg.BigReloads < 0 || cfg.Duration <= 0 {
		return cfg, errors.New("-entries, -rounds, -load-rounds, -reloads and -duration must be positive")
	}
	return cfg, nil
}

// quickConfig keeps the paths of cfg and sets the smoke-test sizes.
func quickConfig(cfg config) config {
	cfg.Quick = true
	cfg.Entries = 5000
	cfg.Duration = 200 * time.Millisecond
	cfg.Rounds = 1
	cfg.Conns = []int{1, 8}
	cfg.Reloads = 3
	cfg.BigReloads = 1
	cfg.LoadRounds = 1
	return cfg
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ConcResult is the throughput comparison at one connection count.
type ConcResult struct {
	Conns        int       `json:"conns"`
	FloorRPS     float64   `json:"floor_rps"`    // median over rounds
	MapdropdRPS  float64   `json:"mapdropd_rps"` // median over rounds
	Ratio        float64   `json:"ratio"`        // median of per-round ratios
	RoundRatios  []float64 `json:"round_ratios"`
	FloorP99     float64   `json:"floor_p99_ms"`    // median over rounds
	MapdropdP99  float64   `json:"mapdropd_p99_ms"` // median over rounds
	FloorErrors  int64     `json:"floor_errors"`
	Errors       int64     `json:"mapdropd_errors"`
	FirstError   string    `json:"first_error,omitempty"`
	MapdropdReqs int64     `json:"mapdropd_requests"`
	// Server CPU time (user + system, from /proc/PID/stat) per request,
	// over all rounds: where the difference goes.
	FloorCPUPerReq    time.Duration `json:"floor_cpu_per_request_ns"`
	MapdropdCPUPerReq time.Duration `json:"mapdropd_cpu_per_request_ns"`
}

// LoadResult is the start-up comparison.
type LoadResult struct {
	MapdropdStart  []time.Duration `json:"mapdropd_start_ns"`
	PostmapLMDB    []time.Duration `json:"postmap_lmdb_ns,omitempty"`
	PostmapError   string          `json:"postmap_error,omitempty"`
	RSSEmpty       int64           `json:"rss_empty_bytes"`
	RSSLoaded      int64           `json:"rss_loaded_bytes"`
	HWMLoaded      int64           `json:"hwm_loaded_bytes"`
	RSSAfterLoad   int64           `json:"rss_after_lookups_bytes"`
	BytesPerEntry  float64         `json:"bytes_per_entry"`
	FileBytes      int64           `json:"file_bytes"`
	MapdropdMedian time.Duration   `json:"mapdropd_start_median_ns"`
	PostmapMedian  time.Duration   `json:"postmap_lmdb_median_ns,omitempty"`
}

// ReloadResult is the rename-to-served latency.
type ReloadResult struct {
	Small       []time.Duration `json:"small_ns"`
	SmallMedian time.Duration   `json:"small_median_ns"`
	SmallMax    time.Duration   `json:"small_max_ns"`
	Big         []time.Duration `json:"big_ns,omitempty"`
	BigMedian   time.Duration   `json:"big_median_ns,omitempty"`
}

// Result is everything one run measured.
type Result struct {
	Config     config          `json:"config"`
	Throughput []ConcResult    `json:"throughput"`
	Load       LoadResult      `json:"load"`
	Reload     ReloadResult    `json:"reload"`
	Metrics    MetricsResult   `json:"metrics"`
	Report     benchkit.Report `json:"report"`
}

// run performs the whole benchmark and prints its tables to out.
func run(cfg config, out io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "lookupbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	bin := cfg.bin
	if bin == "" {
		bin = filepath.Join(dir, "bin")
		fmt.Fprintln(out, "building mapdropd and floorserver ...")
		if err := testkit.BuildInto(context.Background(), bin, false, "./cmd/mapdropd", "./bench/lookupbench/floorserver"); err != nil {
			return nil, err
		}
	}
	mapdropd := filepath.Join(bin, "mapdropd")
	floor := filepath.Join(bin, "floorserver")

	tables := filepath.Join(dir, "tables")
	empty := filepath.Join(dir, "empty")
	pm := filepath.Join(dir, "postmap")
	for _, d := range []string{tables, empty, pm} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	ks := keyspace{entries: cfg.Entries, domains: domainsFor(cfg.Entries), missPct: 10}
	table := filepath.Join(tables, mapName)
	fmt.Fprintf(out, "writing %d-entry %s ...\n", cfg.Entries, mapName)
	if err := writeTable(table, ks, nil); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(table); err == nil {
		res.Load.FileBytes = fi.Size()
	}

	// 2. Load time and memory, interleaved with postmap lmdb.
	srv, err := measureLoad(cfg, res, out, mapdropd, dir, tables, empty, pm, table)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	sock := srv.sock

	// 1. Throughput against the floor.
	fl, err := startFloor(floor, filepath.Join(dir, "floor.sock"), table, filepath.Join(dir, "floorserver.log"))
	if err != nil {
		return nil, err
	}
	defer fl.stop()
	fmt.Fprintf(out, "lookups: %d round(s) of %v per server and connection count, floor and mapdropd alternating ...\n", cfg.Rounds, cfg.Duration)
	for _, n := range cfg.Conns {
		cr, err := compareThroughput(cfg, ks, n, filepath.Join(dir, "floor.sock"), sock, fl, srv.proc)
		if err != nil {
			return nil, err
		}
		res.Throughput = append(res.Throughput, cr)
	}
	if m, err := benchkit.ReadMemory(srv.proc.cmd.Process.Pid); err == nil {
		res.Load.RSSAfterLoad = m.RSS
	}

	// 4. The cost of -metrics.
	fmt.Fprintf(out, "metrics: %d round(s) of %v at %d connections, mapdropd with and without -metrics alternating ...\n", cfg.Rounds, cfg.Duration, cfg.Conns[len(cfg.Conns)-1])
	if res.Metrics, err = compareMetrics(cfg, ks, mapdropd, dir, tables, srv); err != nil {
		return nil, err
	}

	// 3. Reload latency.
	if err := measureReload(cfg, res, out, srv, tables, ks); err != nil {
		return nil, err
	}

	printResult(out, res)
	return res, nil
}

// writeTable writes the table file atomically: writeStaged, then a rename
// over path.
func writeTable(path string, ks keyspace, edit func(b []byte, i int) ([]byte, bool)) error {
	tmp, err := writeStaged(path, ks, edit)
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// stagedName is where writeStaged puts the next version of path: a dot-file
// beside it, which mapdropd ignores.
func stagedName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
}

// writeStaged writes the table to stagedName(path) and returns that name.
// When edit is not nil, it may replace entry i's line: it returns the
// extended buffer and true when it did.
func writeStaged(path string, ks keyspace, edit func(b []byte, i int) ([]byte, bool)) (string, error) {
	tmp := stagedName(path)
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i := range ks.entries {
		line = line[:0]
		done := false
		if edit != nil {
			line, done = edit(line, i)
		}
		if !done {
			line = ks.appendLine(line, i)
		}
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return tmp, f.Close()
}

// server is the mapdropd that serves the lookup rounds.
type server struct {
	proc *proc
	sock string
	conn *conn // the connection that got the first answer
}

func (s *server) stop() {
	if s.conn != nil {
		s.conn.close()
	}
	s.proc.stop()
}

func hasPrefix(prefix string) func([]byte) bool {
	return func(b []byte) bool { return strings.HasPrefix(string(b), prefix) }
}

func anyReply(b []byte) bool {
	for _, p := range []string{"OK ", "NOTFOUND", "PERM ", "TEMP "} {
		if strings.HasPrefix(string(b), p) {
			return true
		}
	}
	return false
}

// startMapdropd starts "mapdropd serve" on tablesDir and returns it once it
// has answered key with want, and the time that took.
func startMapdropd(bin, dir, tablesDir, name, key string, ok func([]byte) bool, limit time.Duration, extra ...string) (*server, time.Duration, error) {
	sock := filepath.Join(dir, name+".sock")
	os.Remove(sock)
	t0 := time.Now()
	args := append([]string{"serve", "-tables", tablesDir, "-socketmap", "unix:" + sock, "-socket-mode", "0666"}, extra...)
	p, err := start("mapdropd", filepath.Join(dir, name+".log"), bin, args...)
	if err != nil {
		return nil, 0, err
	}
	c, err := waitAnswer(p, sock, mapName, key, ok, limit)
	took := time.Since(t0)
	if err != nil {
		p.stop()
		return nil, 0, err
	}
	return &server{proc: p, sock: sock, conn: c}, took, nil
}

func measureLoad(cfg config, res *Result, out io.Writer, mapdropd, dir, tables, empty, pm, table string) (*server, error) {
	postmap := benchkit.LookTool("postmap")
	pmFile := filepath.Join(pm, mapName)
	if postmap != "" {
		if err := os.Link(table, pmFile); err != nil {
			return nil, err
		}
		mainCF := filepath.Join(pm, "main.cf")
		if err := os.WriteFile(mainCF, nil, 0o644); err != nil {
			return nil, err
		}
		// postmap re-reads a main.cf younger than a few seconds.
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(mainCF, old, old); err != nil {
			return nil, err
		}
	} else {
		res.Load.PostmapError = "postmap not installed"
	}
	key0 := string(ksOf(cfg).appendKey(nil, 0, false))
	want0 := "OK " + string(ksOf(cfg).appendValue(nil, 0))
	loadLimit := 5*time.Minute + time.Duration(cfg.Entries)*time.Microsecond*50
	var loaded, hwm, emptyRSS []float64
	var srv *server
	fmt.Fprintf(out, "load: %d round(s) of mapdropd start vs postmap lmdb ...\n", cfg.LoadRounds)
	for r := range cfg.LoadRounds {
		// An empty mapdropd, for the memory baseline.
		e, _, err := startMapdropd(mapdropd, dir, empty, "empty", key0, anyReply, time.Minute)
		if err != nil {
			return nil, err
		}
		if m, err := benchkit.ReadMemory(e.proc.cmd.Process.Pid); err == nil {
			emptyRSS = append(emptyRSS, float64(m.RSS))
		}
		e.stop()

		pmRound := func() {
			if postmap == "" || res.Load.PostmapError != "" {
				return
			}
			os.Remove(pmFile + ".lmdb")
			t0 := time.Now()
			out, err := exec.Command(postmap, "-c", pm, "lmdb:"+pmFile).CombinedOutput()
			took := time.Since(t0)
			if err != nil {
				res.Load.PostmapError = fmt.Sprintf("postmap: %v: %s", err, strings.TrimSpace(string(out)))
				return
			}
			res.Load.PostmapLMDB = append(res.Load.PostmapLMDB, took)
		}
		if r%2 == 0 {
			pmRound()
		}
		s, took, err := startMapdropd(mapdropd, dir, tables, "mapdropd", key0, hasPrefix(want0), loadLimit)
		if err != nil {
			return nil, err
		}
		res.Load.MapdropdStart = append(res.Load.MapdropdStart, took)
		m, err := benchkit.ReadMemory(s.proc.cmd.Process.Pid)
		if err != nil {
			s.stop()
			return nil, err
		}
		loaded = append(loaded, float64(m.RSS))
		hwm = append(hwm, float64(m.HWM))
		if r == cfg.LoadRounds-1 {
			srv = s
		} else {
			s.stop()
		}
		if r%2 == 1 {
			pmRound()
		}
	}
	os.Remove(pmFile + ".lmdb")
	l := &res.Load
	l.RSSEmpty = int64(benchkit.Median(emptyRSS))
	l.RSSLoaded = int64(benchkit.Median(loaded))
	l.HWMLoaded = int64(benchkit.Median(hwm))
	l.BytesPerEntry = float64(l.RSSLoaded-l.RSSEmpty) / float64(cfg.Entries)
	l.MapdropdMedian = benchkit.MedianDuration(l.MapdropdStart)
	l.PostmapMedian = benchkit.MedianDuration(l.PostmapLMDB)
	return srv, nil
}

func ksOf(cfg config) keyspace {
	return keyspace{entries: cfg.Entries, domains: domainsFor(cfg.Entries), missPct: 10}
}

func compareThroughput(cfg config, ks keyspace, conns int, floorSock, sock string, fl, md *proc) (ConcResult, error) {
	cr := ConcResult{Conns: conns}
	var fRates, mRates, fP99, mP99 []float64
	var fCPU, mCPU time.Duration
	var fReqs int64
	// timed runs one round and adds the server's CPU time to *cpu.
	timed := func(p *proc, sock string, seed uint64, cpu *time.Duration) (roundResult, error) {
		before, err := benchkit.CPUTime(p.cmd.Process.Pid)
		if err != nil {
			return roundResult{}, err
		}
		rr, err := loadRound(sock, conns, cfg.Duration, ks, seed)
		if err != nil {
			return rr, err
		}
		after, err := benchkit.CPUTime(p.cmd.Process.Pid)
		*cpu += after - before
		return rr, errors.Join(err, p.alive())
	}
	for r := range cfg.Rounds {
		seed := uint64(r)*1000 + uint64(conns)
		var f, m roundResult
		var err error
		order := []bool{true, false} // floor first on even rounds
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, isFloor := range order {
			if isFloor {
				f, err = timed(fl, floorSock, seed, &fCPU)
			} else {
				m, err = timed(md, sock, seed, &mCPU)
			}
			if err != nil {
				return cr, err
			}
		}
		fRates = append(fRates, f.rate())
		mRates = append(mRates, m.rate())
		fP99 = append(fP99, ms(f.P99))
		mP99 = append(mP99, ms(m.P99))
		cr.RoundRatios = append(cr.RoundRatios, m.rate()/f.rate())
		cr.FloorErrors += f.Errors
		cr.Errors += m.Errors
		cr.MapdropdReqs += m.Requests
		fReqs += f.Requests
		cr.FirstError = cmp.Or(cr.FirstError, m.FirstError, f.FirstError)
	}
	cr.FloorRPS = benchkit.Median(fRates)
	cr.MapdropdRPS = benchkit.Median(mRates)
	cr.Ratio = benchkit.Median(cr.RoundRatios)
	cr.FloorP99 = benchkit.Median(fP99)
	cr.MapdropdP99 = benchkit.Median(mP99)
	if fReqs > 0 && cr.MapdropdReqs > 0 {
		cr.FloorCPUPerReq = fCPU / time.Duration(fReqs)
		cr.MapdropdCPUPerReq = mCPU / time.Duration(cr.MapdropdReqs)
	}
	return cr, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

const probeMap = "reload_probe"
const probeLines = 1000

func writeProbe(tables string, gen int) error {
	var b []byte
	for i := range probeLines {
		b = fmt.Appendf(b, "probe%d value%d-gen%d\n", i, i, gen)
	}
	return os.WriteFile(stagedName(filepath.Join(tables, probeMap)), b, 0o644)
}

// timeRename renames tmp over path and polls key in mapName on c until the
// reply is want; pause is slept between polls.
func timeRename(c *conn, tmp, path, mapName, key, want string, pause, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	deadline := t0.Add(limit)
	for {
		reply, err := c.ask(mapName, key)
		if err != nil {
			return 0, err
		}
		if string(reply) == want {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s %s still answered %q %v after the rename, want %q", mapName, key, reply, limit, want)
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

func measureReload(cfg config, res *Result, out io.Writer, srv *server, tables string, ks keyspace) error {
	fmt.Fprintf(out, "reload: %d edit(s) of a %d-line table, %d of the %d-line one ...\n", cfg.Reloads, probeLines, cfg.BigReloads, cfg.Entries)
	// A fresh connection: the first one has been idle long enough for the
	// server to close it.
	c, err := dial(srv.sock)
	if err != nil {
		return err
	}
	defer c.close()
	// The probe map appears (a new file in the watched directory).
	if err := writeProbe(tables, 0); err != nil {
		return err
	}
	path := filepath.Join(tables, probeMap)
	tmp := stagedName(path)
	if _, err := timeRename(c, tmp, path, probeMap, "probe0", "OK value0-gen0", time.Millisecond, time.Minute); err != nil {
		return err
	}
	for i := 1; i <= cfg.Reloads; i++ {
		if err := writeProbe(tables, i); err != nil {
			return err
		}
		d, err := timeRename(c, tmp, path, probeMap, "probe0", fmt.Sprintf("OK value0-gen%d", i), 0, time.Minute)
		if err != nil {
			return err
		}
		res.Reload.Small = append(res.Reload.Small, d)
		// Let the directory settle, so edits are not debounced together.
		time.Sleep(20 * time.Millisecond)
	}
	res.Reload.SmallMedian = benchkit.MedianDuration(res.Reload.Small)
	res.Reload.SmallMax = benchkit.MaxDuration(res.Reload.Small)

	table := filepath.Join(tables, mapName)
	key0 := string(ks.appendKey(nil, 0, false))
	for i := 1; i <= cfg.BigReloads; i++ {
		want := fmt.Sprintf("changed%d@else.example", i)
		tmp, err := writeStaged(table, ks, func(b []byte, n int) ([]byte, bool) {
			if n != 0 {
				return b, false
			}
			return append(append(append(b, key0...), ' '), want+"\n"...), true
		})
		if err != nil {
			return err
		}
		d, err := timeRename(c, tmp, table, mapName, key0, "OK "+want, time.Millisecond, 5*time.Minute)
		if err != nil {
			return err
		}
		res.Reload.Big = append(res.Reload.Big, d)
	}
	res.Reload.BigMedian = benchkit.MedianDuration(res.Reload.Big)
	return nil
}

func printResult(out io.Writer, res *Result) {
	cfg := res.Config
	judged := !cfg.Quick
	fmt.Fprintf(out, "\nlookupbench: %d-entry %s, socketmap over a unix socket, %d round(s) x %v per server and connection count (%d CPUs)\n\n",
		cfg.Entries, mapName, cfg.Rounds, cfg.Duration, runtime.NumCPU())
	tw := benchkit.NewTable(out)
	fmt.Fprintln(tw, "CONNS\tFLOOR req/s\tMAPDROPD req/s\tRATIO\tFLOOR p99\tMAPDROPD p99\tSERVER CPU/req FLOOR\tMAPDROPD\tERRORS")
	var errs int64
	firstErr := ""
	for _, c := range res.Throughput {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%.3f ms\t%.3f ms\t%.1f µs\t%.1f µs\t%d\n", c.Conns, c.FloorRPS, c.MapdropdRPS, c.Ratio, c.FloorP99, c.MapdropdP99,
			us(c.FloorCPUPerReq), us(c.MapdropdCPUPerReq), c.Errors)
		errs += c.Errors + c.FloorErrors
		firstErr = cmp.Or(firstErr, c.FirstError)
	}
	tw.Flush()

	l := res.Load
	fmt.Fprintf(out, "\nload of the %.1f MB file: mapdropd start -> first answer %s (median of %d)", float64(l.FileBytes)/1e6, benchkit.Ms(l.MapdropdMedian), len(l.MapdropdStart))
	if len(l.PostmapLMDB) > 0 {
		fmt.Fprintf(out, "; postmap lmdb: %s", benchkit.Ms(l.PostmapMedian))
	} else {
		fmt.Fprintf(out, "; postmap lmdb: n/a (%s)", l.PostmapError)
	}
	fmt.Fprintf(out, "\nmapdropd memory: VmRSS empty %s, loaded %s (VmHWM %s), after the lookup rounds %s\n",
		benchkit.MiB(l.RSSEmpty), benchkit.MiB(l.RSSLoaded), benchkit.MiB(l.HWMLoaded), benchkit.MiB(l.RSSAfterLoad))
	r := res.Reload
	fmt.Fprintf(out, "reload, rename() -> new value served: %d-line table median %s, max %s (n=%d)", probeLines, benchkit.Ms(r.SmallMedian), benchkit.Ms(r.SmallMax), len(r.Small))
	if len(r.Big) > 0 {
		fmt.Fprintf(out, "; %d-line table median %s (n=%d)", cfg.Entries, benchkit.Ms(r.BigMedian), len(r.Big))
	}
	fmt.Fprintln(out)
	mr := res.Metrics
	fmt.Fprintf(out, "-metrics on vs off at %d conns: server CPU/req %.1f µs vs %.1f µs (median round ratio %.3f), %.0f vs %.0f req/s; lookups counted %d of %d sent\n",
		mr.Conns, us(mr.OnCPUPerReq), us(mr.OffCPUPerReq), mr.CPURatio, mr.OnRPS, mr.OffRPS, mr.Counted, mr.Sent)
	fmt.Fprintln(out)

	rep := &res.Report
	if len(res.Throughput) > 0 {
		last := res.Throughput[len(res.Throughput)-1]
		rep.Add(fmt.Sprintf("lookups/s vs floor at %d conns", last.Conns), fmt.Sprintf("%.2f", last.Ratio), ">= 0.80", benchkit.Judge(judged, last.Ratio >= 0.8))
	}
	measured := strconv.FormatInt(errs, 10)
	if firstErr != "" {
		measured += " (first: " + firstErr + ")"
	}
	errs += mr.Errors
	firstErr = cmp.Or(firstErr, mr.FirstError)
	if firstErr != "" {
		measured = strconv.FormatInt(errs, 10) + " (first: " + firstErr + ")"
	} else {
		measured = strconv.FormatInt(errs, 10)
	}
	rep.Add("lookup errors (wrong answer or I/O)", measured, "0", benchkit.Judge(true, errs == 0))
	rep.Add(fmt.Sprintf("server CPU/req, -metrics on/off at %d conns", mr.Conns), fmt.Sprintf("%.3f", mr.CPURatio), "<= 1.05", benchkit.Judge(judged, mr.CPURatio <= 1.05))
	rep.Add("lookups counted by -metrics", fmt.Sprintf("%d of %d", mr.Counted, mr.Sent), "all, exactly", benchkit.Judge(true, mr.Counted == mr.Sent))
	if len(l.PostmapLMDB) > 0 {
		ratio := float64(l.MapdropdMedian) / float64(l.PostmapMedian)
		rep.Add("load time vs postmap lmdb", fmt.Sprintf("%.2fx (%s vs %s)", ratio, benchkit.Ms(l.MapdropdMedian), benchkit.Ms(l.PostmapMedian)), "<= 1.00x", benchkit.Judge(judged, ratio <= 1))
	} else {
		rep.Add("load time vs postmap lmdb", benchkit.Ms(l.MapdropdMedian)+" (postmap: "+l.PostmapError+")", "<= 1.00x", benchkit.Info)
	}
	rep.Add("memory per entry (VmRSS loaded - empty)", fmt.Sprintf("%.0f bytes", l.BytesPerEntry), "< 600 bytes", benchkit.Judge(judged, l.BytesPerEntry < 600))
	rep.Add("reload latency, median of "+strconv.Itoa(len(r.Small)), fmt.Sprintf("%s (max %s)", benchkit.Ms(r.SmallMedian), benchkit.Ms(r.SmallMax)), "< 100 ms", benchkit.Judge(judged, r.SmallMedian < 100*time.Millisecond))
	rep.Print(out)
}
