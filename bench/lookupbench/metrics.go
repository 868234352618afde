package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
)

// MetricsResult compares mapdropd with "-metrics ADDR" to mapdropd without,
// both serving the same table, at the largest -conns count, rounds
// alternating: the server's CPU time per request with metrics on over the
// same without, per round, and its median (judged: <= 1.05), and the
// throughputs. Counted is how much the sum of mapdropd_lookups_total
// scraped from the server with metrics grew over the rounds, which must be
// exactly the requests sent to it, warm-up requests included (judged in
// every run, -quick included: metrics that count nothing cost nothing).
type MetricsResult struct {
	Conns          int           `json:"conns"`
	OffCPUPerReq   time.Duration `json:"off_cpu_per_request_ns"`
	OnCPUPerReq    time.Duration `json:"on_cpu_per_request_ns"`
	CPURatio       float64       `json:"cpu_ratio"` // median of per-round on/off ratios
	RoundCPURatios []float64     `json:"round_cpu_ratios"`
	OffRPS         float64       `json:"off_rps"` // median over rounds
	OnRPS          float64       `json:"on_rps"`
	Requests       int64         `json:"on_requests"` // measured, as in Throughput
	Sent           int64         `json:"on_sent"`     // Requests and the warm-up ones
	Counted        int64         `json:"on_counted"`
	Errors         int64         `json:"errors"`
	FirstError     string        `json:"first_error,omitempty"`
}

// compareMetrics starts a second mapdropd on tables with -metrics and runs
// the rounds against it and off, the mapdropd already serving.
func compareMetrics(cfg config, ks keyspace, mapdropd, dir, tables string, off *server) (MetricsResult, error) {
	conns := cfg.Conns[len(cfg.Conns)-1]
	mr := MetricsResult{Conns: conns}
	addr, err := freeAddr()
	if err != nil {
		return mr, err
	}
	key0 := string(ks.appendKey(nil, 0, false))
	want0 := "OK " + string(ks.appendValue(nil, 0))
	loadLimit := 5*time.Minute + time.Duration(cfg.Entries)*time.Microsecond*50
	on, _, err := startMapdropd(mapdropd, dir, tables, "mapdropd-metrics", key0, hasPrefix(want0), loadLimit, "-metrics", addr)
	if err != nil {
		return mr, err
	}
	defer on.stop()
	before, err := scrapeLookups(addr)
	if err != nil {
		return mr, err
	}
	var offRates, onRates []float64
	var offCPUAll, onCPUAll time.Duration
	var offReqs int64
	for r := range cfg.Rounds {
		seed := uint64(r)*7919 + uint64(conns)
		var offR, onR roundResult
		var offCPU, onCPU time.Duration
		order := []*server{off, on}
		if r%2 == 1 {
			order = []*server{on, off}
		}
		for _, s := range order {
			t0, err := benchkit.CPUTime(s.proc.cmd.Process.Pid)
			if err != nil {
				return mr, err
			}
			rr, err := loadRound(s.sock, conns, cfg.Duration, ks, seed)
			if err != nil {
				return mr, err
			}
			t1, err := benchkit.CPUTime(s.proc.cmd.Process.Pid)
			if err = errors.Join(err, s.proc.alive()); err != nil {
				return mr, err
			}
			if s == on {
				onR, onCPU = rr, t1-t0
			} else {
				offR, offCPU = rr, t1-t0
			}
		}
		if offR.Requests == 0 || onR.Requests == 0 {
			return mr, fmt.Errorf("metrics round %d: no request answered (off %d, on %d)", r, offR.Requests, onR.Requests)
		}
		offPer := float64(offCPU) / float64(offR.Requests)
		onPer := float64(onCPU) / float64(onR.Requests)
		mr.RoundCPURatios = append(mr.RoundCPURatios, onPer/offPer)
		offCPUAll += offCPU
		onCPUAll += onCPU
		offReqs += offR.Requests
		mr.Requests += onR.Requests
		offRates = append(offRates, offR.rate())
		onRates = append(onRates, onR.rate())
		mr.Errors += offR.Errors + onR.Errors
		if mr.FirstError == "" {
			mr.FirstError = offR.FirstError + onR.FirstError
		}
	}
	after, err := scrapeLookups(addr)
	if err != nil {
		return mr, err
	}
	mr.Counted = after - before
	mr.Sent = mr.Requests + int64(warmupRequests*conns*cfg.Rounds)
	mr.OffCPUPerReq = offCPUAll / time.Duration(offReqs)
	mr.OnCPUPerReq = onCPUAll / time.Duration(mr.Requests)
	mr.CPURatio = benchkit.Median(mr.RoundCPURatios)
	mr.OffRPS = benchkit.Median(offRates)
	mr.OnRPS = benchkit.Median(onRates)
	return mr, nil
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var lookupsSample = regexp.MustCompile(`(?m)^mapdropd_lookups_total\{[^}]*\} (\S+)$`)

// scrapeLookups returns the sum of mapdropd_lookups_total over its labels,
// once two scrapes 20ms apart agree: the server counts a lookup after it
// has written the reply, so the client may read a reply before its count.
func scrapeLookups(addr string) (int64, error) {
	last := int64(-1)
	for range 500 {
		n, err := scrapeOnce(addr)
		if err != nil || n == last {
			return n, err
		}
		last = n
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("metrics at %s: mapdropd_lookups_total still moving after 10s with no client", addr)
}

func scrapeOnce(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, m := range lookupsSample.FindAllSubmatch(body, -1) {
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %v", m[0], err)
		}
		sum += int64(v)
	}
	return sum, nil
}
