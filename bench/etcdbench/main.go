// Command etcdbench measures maps served from etcd (mapdropd push, serve
// -etcd) against the same map served from a file, on a real 3-member etcd
// cluster on loopback (Debian's etcd-server, /usr/bin/etcd).
//
// Usage:
//
//	go run ./bench/etcdbench [-entries 1000000] [-pushes 30] [-conns 8]
//	                        [-duration 2s] [-rounds 3] [-bin DIR] [-dir DIR]
//	                        [-json FILE] [-quick]
//
// # What is measured
//
// The map is a virtual_alias source file of -entries lines
// "userN@domainM.example targetN@else.example" (M = N mod 1000), as in
// lookupbench.
//
//  1. Push: wall time of "mapdropd push" of the file into the empty cluster
//     (parse, write in 128-put transactions, switch), beside "postmap -c
//     CONFDIR lmdb:FILE" of the same file (when postmap is installed).
//  2. Memory: VmRSS of a "mapdropd serve -etcd" host serving the map, minus
//     that of a host serving an empty prefix, per entry.
//  3. Push to served: three hosts follow the cluster; -pushes times a small
//     map (latency_probe, 100 entries) is pushed in-process (etcdmaps.Push,
//     Full: a new version and a pointer switch) with a new value, and the
//     time from the start of the push to each host's first reply carrying
//     it (each host polled on its own connection) is one sample; p50 and
//     p99 over all hosts and pushes.
//  4. One-line edit: the big map pushed again with one value changed
//     (read back from etcd, changed in place in one transaction), three
//     times: the push's time and the time until all three hosts serve it.
//  5. Lookups per second with -conns persistent connections, random keys
//     (90% hits), on an etcd host and on a "mapdropd serve -tables" host
//     serving the same file; rounds alternate; the ratio is the median of
//     the per-round ratios etcd/file. Target: >= 0.8 (judged without
//     -quick).
//
// With -quick everything runs at toy sizes and only correctness is judged
// (every reply right, every push seen).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/tables/etcdmaps"
	"github.com/mapdrop/mapdrop/tables/mapfile"
)

type config struct {
	Entries  int           `json:"entries"`
	Pushes   int           `json:"pushes"`
	Conns    int           `json:"conns"`
	InFlight int           `json:"push_inflight"`
	Duration time.Duration `json:"duration_per_round_ns"`
	Rounds   int           `json:"rounds"`
	Quick    bool          `json:"quick"`
	bin, dir string
	jsonPath string
}

// Result is what one run measured.
type Result struct {
	Config         config          `json:"config"`
	PushSeconds    float64         `json:"push_seconds"`
	PostmapSeconds float64         `json:"postmap_lmdb_seconds"`
	BytesPerEntry  float64         `json:"rss_bytes_per_entry"`
	LatencyP50Ms   float64         `json:"push_to_served_p50_ms"`
	LatencyP99Ms   float64         `json:"push_to_served_p99_ms"`
	LatencyMaxMs   float64         `json:"push_to_served_max_ms"`
	EditPushMs     float64         `json:"one_line_push_ms"`
	EditServedMs   float64         `json:"one_line_push_to_served_ms"`
	EtcdRPS        float64         `json:"etcd_lookups_per_second"`
	FileRPS        float64         `json:"file_lookups_per_second"`
	Ratio          float64         `json:"ratio_etcd_to_file"`
	Errors         int64           `json:"errors"`
	Report         benchkit.Report `json:"report"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		os.Exit(2)
	}
	res, err := run(cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		os.Exit(2)
	}
	if cfg.jsonPath != "" {
		if err := benchkit.WriteJSON(cfg.jsonPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "etcdbench:", err)
			os.Exit(2)
		}
	}
	if res.Report.Failed() {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("etcdbench", flag.ContinueOnError)
	var cfg config
	fs.IntVar(&cfg.Entries, "entries", 1_000_000, "entries of the pushed map")
	fs.IntVar(&cfg.Pushes, "pushes", 30, "pushes timed for push-to-served latency")
	fs.IntVar(&cfg.Conns, "conns", 8, "persistent connections for lookups/s")
	fs.IntVar(&cfg.InFlight, "inflight", 32, "mapdropd push -inflight: write transactions at once")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of one lookup round")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "lookup rounds per server")
	fs.BoolVar(&cfg.Quick, "quick", false, "toy sizes; judge correctness only")
	fs.StringVar(&cfg.bin, "bin", "", "directory with a built mapdropd (default: build one)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory (default: a temporary one)")
	fs.StringVar(&cfg.jsonPath, "json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.Quick {
		cfg.Entries, cfg.Pushes, cfg.Duration, cfg.Rounds = 2000, 5, 200*time.Millisecond, 1
	}
	return cfg, nil
}

const prefix = "/bench/"

func key(i int) string   { return fmt.Sprintf("user%d@domain%d.example", i, i%1000) }
func value(i int) string { return fmt.Sprintf("target%d@else.example", i) }

func run(cfg config, out io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	if cfg.dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "etcdbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.dir = d
	}
	if cfg.bin == "" {
		cfg.bin = filepath.Join(cfg.dir, "bin")
		if err := testkit.BuildInto(context.Background(), cfg.bin, false, "./cmd/mapdropd"); err != nil {
			return nil, err
		}
	}
	mapdropd := filepath.Join(cfg.bin, "mapdropd")
	tables := filepath.Join(cfg.dir, "tables")
	os.MkdirAll(tables, 0o755)
	file := filepath.Join(tables, "virtual_alias")
	if err := writeMap(file, cfg.Entries); err != nil {
		return nil, err
	}

	cluster, err := etcdtest.Launch(filepath.Join(cfg.dir, "etcd"), 3)
	if cluster != nil {
		defer cluster.KillAll()
	}
	if err != nil {
		return nil, err
	}
	eps := strings.Join(cluster.Endpoints(), ",")

	// 1. Push, and postmap lmdb: of the same file.
	start := time.Now()
	if b, err := exec.Command(mapdropd, "push", "-inflight", fmt.Sprint(cfg.InFlight), "-etcd", eps, "-etcd-prefix", prefix, file).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("push: %v: %s", err, b)
	}
	res.PushSeconds = time.Since(start).Seconds()
	if pm := benchkit.LookTool("postmap", "/usr/sbin"); pm != "" {
		conf := filepath.Join(cfg.dir, "postfix")
		os.MkdirAll(conf, 0o755)
		os.WriteFile(filepath.Join(conf, "main.cf"), []byte("compatibility_level = 3.6\n"), 0o644)
		// postmap waits on a main.cf changed in the last seconds.
		old := time.Now().Add(-time.Hour)
		os.Chtimes(filepath.Join(conf, "main.cf"), old, old)
		cp := filepath.Join(cfg.dir, "postmap-copy")
		b, _ := os.ReadFile(file)
		os.WriteFile(cp, b, 0o644)
		start := time.Now()
		if b, err := exec.Command(pm, "-c", conf, "lmdb:"+cp).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("postmap: %v: %s", err, b)
		}
		res.PostmapSeconds = time.Since(start).Seconds()
	}

	// 2. Memory: an empty host, then the hosts.
	empty, err := startHost(mapdropd, cfg.dir, "empty", "-etcd", eps, "-etcd-prefix", "/bench-empty/")
	if err != nil {
		return nil, err
	}
	emptyMem, _ := benchkit.ReadMemory(empty.Process.Pid)
	stopHost(empty)
	var hosts []*host
	defer func() {
		for _, h := range hosts {
			stopHost(h)
		}
	}()
	for i := 0; i < 3; i++ {
		cache := filepath.Join(cfg.dir, fmt.Sprintf("cache%d", i))
		os.MkdirAll(cache, 0o755)
		h, err := startHost(mapdropd, cfg.dir, fmt.Sprintf("etcd%d", i), "-etcd", eps, "-etcd-prefix", prefix, "-etcd-cache", cache)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	fileHost, err := startHost(mapdropd, cfg.dir, "file", "-tables", tables)
	if err != nil {
		return nil, err
	}
	hosts = append(hosts, fileHost)
	last := key(cfg.Entries - 1)
	for _, h := range hosts {
		if err := waitValue(h, "virtual_alias", last, value(cfg.Entries-1), 10*time.Minute); err != nil {
			return nil, err
		}
	}
	mem, _ := benchkit.ReadMemory(hosts[0].Process.Pid)
	res.BytesPerEntry = float64(mem.RSS-emptyMem.RSS) / float64(cfg.Entries)

	// 3. Push to served.
	cli, err := clientv3.New(clientv3.Config{Endpoints: cluster.Endpoints(), Logger: zap.NewNop(), DialTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var lat []time.Duration
	for p := 0; p < cfg.Pushes; p++ {
		m := etcdmaps.Map{Name: "latency_probe", Path: "latency_probe"}
		want := fmt.Sprintf("gen%d", p)
		for i := 0; i < 100; i++ {
			m.Entries = append(m.Entries, mapfile.Entry{Key: fmt.Sprintf("k%d", i), Value: want, Line: i + 1})
		}
		var wg sync.WaitGroup
		got := make([]time.Duration, 3)
		errs := make([]error, 3)
		begin := time.Now()
		ready := make(chan struct{})
		for i, h := range hosts[:3] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := h.dial()
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close()
				<-ready
				deadline := time.Now().Add(time.Minute)
				for time.Now().Before(deadline) {
					if v, _ := c.Lookup(context.Background(), "latency_probe", "k7"); v == want {
						got[i] = time.Since(begin)
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
				errs[i] = fmt.Errorf("host %d never served %s", i, want)
			}()
		}
		begin = time.Now()
		close(ready)
		if _, err := etcdmaps.Push(context.Background(), cli, etcdmaps.NewLayout(prefix), []etcdmaps.Map{m}, etcdmaps.PushOptions{Full: true}); err != nil {
			return nil, err
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		lat = append(lat, got...)
	}
	res.LatencyP50Ms = ms(benchkit.Percentile(lat, 50))
	res.LatencyP99Ms = ms(benchkit.Percentile(lat, 99))
	res.LatencyMaxMs = ms(benchkit.MaxDuration(lat))

	// 4. A one-line edit of the big map, pushed: changed in place.
	var edit, editPush []time.Duration
	for r := 0; r < 3; r++ {
		m := etcdmaps.Map{Name: "virtual_alias", Path: file, Entries: make([]mapfile.Entry, cfg.Entries)}
		want := fmt.Sprintf("edited%d@else.example", r)
		for i := range m.Entries {
			m.Entries[i] = mapfile.Entry{Key: key(i), Value: value(i), Line: i + 1}
		}
		m.Entries[7].Value = want
		begin := time.Now()
		pr, err := etcdmaps.Push(context.Background(), cli, etcdmaps.NewLayout(prefix), []etcdmaps.Map{m}, etcdmaps.PushOptions{})
		if err != nil {
			return nil, err
		}
		if !pr[0].InPlace || pr[0].Changed != 1 {
			return nil, fmt.Errorf("one-line push: %+v, want one key changed in place", pr[0])
		}
		editPush = append(editPush, time.Since(begin))
		for _, h := range hosts[:3] {
			if err := waitValue(h, "virtual_alias", key(7), want, time.Minute); err != nil {
				return nil, err
			}
		}
		edit = append(edit, time.Since(begin))
	}
	// Back to the file's contents, which the lookups check against.
	restore := etcdmaps.Map{Name: "virtual_alias", Path: file, Entries: make([]mapfile.Entry, cfg.Entries)}
	for i := range restore.Entries {
		restore.Entries[i] = mapfile.Entry{Key: key(i), Value: value(i), Line: i + 1}
	}
	if _, err := etcdmaps.Push(context.Background(), cli, etcdmaps.NewLayout(prefix), []etcdmaps.Map{restore}, etcdmaps.PushOptions{}); err != nil {
		return nil, err
	}
	if err := waitValue(hosts[0], "virtual_alias", key(7), value(7), time.Minute); err != nil {
		return nil, err
	}
	res.EditPushMs = ms(benchkit.MedianDuration(editPush))
	res.EditServedMs = ms(benchkit.MedianDuration(edit))

	// 5. Lookups per second, etcd host vs file host, alternating.
	var ratios, etcdRates, fileRates []float64
	for r := 0; r < cfg.Rounds; r++ {
		e, errE := lookupRound(hosts[0], cfg, uint64(r))
		f, errF := lookupRound(fileHost, cfg, uint64(r))
		if err := errors.Join(errE, errF); err != nil {
			return nil, err
		}
		etcdRates, fileRates = append(etcdRates, e.rate), append(fileRates, f.rate)
		ratios = append(ratios, e.rate/f.rate)
		res.Errors += e.errors + f.errors
	}
	res.EtcdRPS, res.FileRPS, res.Ratio = benchkit.Median(etcdRates), benchkit.Median(fileRates), benchkit.Median(ratios)

	judged := !cfg.Quick
	res.Report.Add(fmt.Sprintf("push of %d entries, -inflight %d", cfg.Entries, cfg.InFlight), fmt.Sprintf("%.1f s", res.PushSeconds),
		fmt.Sprintf("postmap lmdb: %.1f s", res.PostmapSeconds), benchkit.Info)
	res.Report.Add("memory per entry (etcd host RSS)", fmt.Sprintf("%.0f B", res.BytesPerEntry), "< 600 B", benchkit.Judge(judged, res.BytesPerEntry < 600))
	res.Report.Add("one-line edit of the big map: push / push to served on 3 hosts",
		fmt.Sprintf("%.0f ms / %.0f ms (median of 3)", res.EditPushMs, res.EditServedMs), "in place", benchkit.Info)
	res.Report.Add(fmt.Sprintf("push to served (new version), 3 hosts x %d pushes", cfg.Pushes),
		fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs), "p99 < 1 s", benchkit.Judge(judged, res.LatencyP99Ms < 1000))
	res.Report.Add(fmt.Sprintf("lookups/s, %d conns, etcd/file", cfg.Conns),
		fmt.Sprintf("%.0f / %.0f = %.2f", res.EtcdRPS, res.FileRPS, res.Ratio), ">= 0.8", benchkit.Judge(judged, res.Ratio >= 0.8))
	res.Report.Add("wrong replies", fmt.Sprint(res.Errors), "0", benchkit.Judge(true, res.Errors == 0))
	res.Report.Print(out)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeMap(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "%s %s\n", key(i), value(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// host is a running mapdropd serve.
type host struct {
	*exec.Cmd
	sock   string
	log    string
	exited chan struct{}
}

func (h *host) dial() (*client.Socketmap, error) {
	a, err := sockaddr.Parse(h.sock)
	if err != nil {
		return nil, err
	}
	return client.Dial(context.Background(), a)
}

func startHost(bin, dir, name string, args ...string) (*host, error) {
	h := &host{sock: "unix:" + filepath.Join(dir, name+".sock"), log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(h.log)
	if err != nil {
		return nil, err
	}
	h.Cmd = exec.Command(bin, append([]string{"serve", "-socketmap", h.sock}, args...)...)
	h.Stdout, h.Stderr = logf, logf
	if err := h.Start(); err != nil {
		return nil, err
	}
	go func() { h.Wait(); close(h.exited) }()
	ok := testkit.Poll(10*time.Minute, func() bool {
		select {
		case <-h.exited:
			return true
		default:
		}
		c, err := h.dial()
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case <-h.exited:
		b, _ := os.ReadFile(h.log)
		return nil, fmt.Errorf("mapdropd %s exited: %s", name, b)
	default:
	}
	if !ok {
		stopHost(h)
		return nil, fmt.Errorf("mapdropd %s did not start", name)
	}
	return h, nil
}

func stopHost(h *host) {
	h.Process.Kill()
	<-h.exited
}

func waitValue(h *host, m, k, want string, limit time.Duration) error {
	ok := testkit.Poll(limit, func() bool {
		c, err := h.dial()
		if err != nil {
			return false
		}
		defer c.Close()
		v, _ := c.Lookup(context.Background(), m, k)
		return v == want
	})
	if !ok {
		return fmt.Errorf("%s never answered %s %s = %s", h.sock, m, k, want)
	}
	return nil
}

type round struct {
	rate   float64
	errors int64
}

// lookupRound runs cfg.Conns connections of lookups for cfg.Duration.
func lookupRound(h *host, cfg config, seed uint64) (round, error) {
	var n, bad atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(cfg.Duration)
	start := time.Now()
	for c := 0; c < cfg.Conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := h.dial()
			if err != nil {
				once.Do(func() { firstErr = err })
				return
			}
			defer conn.Close()
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for time.Now().Before(stop) {
				i := rng.IntN(cfg.Entries)
				miss := rng.IntN(10) == 0
				k := key(i)
				if miss {
					k = "no" + k
				}
				v, err := conn.Lookup(context.Background(), "virtual_alias", k)
				switch {
				case miss && err == nil, !miss && (err != nil || v != value(i)):
					bad.Add(1)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return round{rate: float64(n.Load()) / time.Since(start).Seconds(), errors: bad.Load()}, firstErr
}
