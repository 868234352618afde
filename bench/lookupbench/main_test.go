package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestQuick runs the whole benchmark at toy sizes against real mapdropd and
// floorserver processes, so that the program cannot rot.
func TestQuick(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(cfg, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Failed() {
		t.Error("a judged target failed")
	}
	if len(res.Throughput) != len(cfg.Conns) {
		t.Fatalf("%d throughput results for %d connection counts", len(res.Throughput), len(cfg.Conns))
	}
	for _, c := range res.Throughput {
		if c.MapdropdReqs == 0 || c.FloorRPS <= 0 || c.MapdropdRPS <= 0 || c.Ratio <= 0 || c.MapdropdP99 <= 0 {
			t.Errorf("conns %d: nothing measured: %+v", c.Conns, c)
		}
		if c.Errors != 0 || c.FloorErrors != 0 {
			t.Errorf("conns %d: errors: %+v", c.Conns, c)
		}
	}
	if m := res.Metrics; m.Sent <= m.Requests || m.Counted != m.Sent || m.CPURatio <= 0 || m.OnCPUPerReq <= 0 || m.OffCPUPerReq <= 0 || m.Conns != cfg.Conns[len(cfg.Conns)-1] {
		t.Errorf("metrics on vs off not measured: %+v", m)
	}
	l := res.Load
	if len(l.MapdropdStart) != 1 || l.RSSEmpty <= 0 || l.RSSLoaded <= 0 || l.HWMLoaded < l.RSSLoaded {
		t.Errorf("load not measured: %+v", l)
	}
	if benchkit.LookTool("postmap") != "" && len(l.PostmapLMDB) != 1 {
		t.Errorf("postmap is installed but was not timed: %q", l.PostmapError)
	}
	if len(res.Reload.Small) != cfg.Reloads || len(res.Reload.Big) != cfg.BigReloads {
		t.Errorf("reloads: %+v", res.Reload)
	}
	for _, want := range []string{"CONNS", "lookup errors", "reload latency", "-metrics on/off", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestLoadRoundCountsWrongAnswers makes sure the checker can fail: a server
// whose values differ from the generated table's gives errors.
func TestLoadRoundCountsWrongAnswers(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := testkit.BuildInto(context.Background(), bin, false, "./bench/lookupbench/floorserver"); err != nil {
		t.Fatal(err)
	}
	ks := keyspace{entries: 100, domains: domainsFor(100), missPct: 10}
	table := filepath.Join(dir, "wrong")
	err := writeTable(table, ks, func(b []byte, i int) ([]byte, bool) {
		if i%2 == 1 {
			return b, false // odd entries right, even ones wrong
		}
		b = ks.appendKey(b, i, false)
		return append(b, " wrong@else.example\n"...), true
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "floor.sock")
	fl, err := startFloor(filepath.Join(bin, "floorserver"), sock, table, filepath.Join(dir, "floor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.stop()
	rr, err := loadRound(sock, 2, 50*time.Millisecond, ks, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Errors == 0 || rr.Errors >= rr.Requests+100 || !strings.Contains(rr.FirstError, "wrong@else.example") {
		t.Errorf("errors %d of %d requests, first %q", rr.Errors, rr.Requests, rr.FirstError)
	}
	// The right table gives none.
	if err := writeTable(table, ks, nil); err != nil {
		t.Fatal(err)
	}
	fl.stop()
	fl, err = startFloor(filepath.Join(bin, "floorserver"), sock, table, filepath.Join(dir, "floor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.stop()
	rr, err = loadRound(sock, 2, 50*time.Millisecond, ks, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Errors != 0 || rr.Requests == 0 {
		t.Errorf("right table: errors %d of %d requests, first %q", rr.Errors, rr.Requests, rr.FirstError)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-entries", "10", "-conns", "2, 4", "-duration", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Entries != 10 || len(cfg.Conns) != 2 || cfg.Conns[1] != 4 || cfg.Duration != time.Second {
		t.Errorf("got %+v", cfg)
	}
	for _, bad := range [][]string{{"-conns", "0"}, {"-conns", "x"}, {"-entries", "0"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestTableLines(t *testing.T) {
	ks := keyspace{entries: 5000, domains: domainsFor(5000)}
	if got := string(ks.appendLine(nil, 1234)); got != "user1234@domain234.example target1234@else.example\n" {
		t.Errorf("line %q", got)
	}
	if got := string(ks.appendKey(nil, 7, true)); got != "nouser7@domain7.example" {
		t.Errorf("miss key %q", got)
	}
}
