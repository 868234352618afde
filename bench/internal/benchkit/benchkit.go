// Package benchkit holds what mapdrop's benchmark programs (bench/lookupbench,
// bench/deliverbench) share: statistics over interleaved rounds, reading a
// process's memory from /proc, and the result table. They build the binaries
// under test with internal/testkit.BuildInto, as the tests do.
//
// # Method
//
// The machine the benchmarks run on is small, shared and noisy, so every goal
// is a ratio against a baseline measured in the same run: the rounds are
// interleaved (baseline, subject, baseline, subject, ...) and the medians of
// the rounds are compared, never an absolute time.
//
// # Result table
//
// Report prints one line per target:
//
//	TARGET  MEASURED  GOAL  RESULT
//
// where RESULT is PASS, FAIL, or "info" for a target that is reported but not
// judged (quick mode, or a baseline that could not run). Report.Failed says
// whether any judged target failed; the programs exit 1 then.
package benchkit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// LookTool finds an executable by name on PATH or in the sbin and libexec
// directories Debian installs mail tools into, which a non-root PATH often
// lacks. It returns "" when there is none.
func LookTool(name string, extraDirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs := append([]string{"/usr/sbin", "/sbin", "/usr/local/sbin"}, extraDirs...)
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianDuration is Median for durations.
func MedianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(Median(xs))
}

// MaxDuration returns the largest of ds, or 0 for none.
func MaxDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// Percentile returns the p-th percentile (0 < p <= 100, nearest rank) of ds,
// sorting ds in place. It returns 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100+0.999999999) - 1
	rank = max(0, min(rank, len(ds)-1))
	return ds[rank]
}

// Memory is a process's resident memory as /proc/PID/status reports it.
type Memory struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM (peak RSS), bytes
}

// ReadMemory reads VmRSS and VmHWM of process pid from /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads the VmRSS and VmHWM lines ("VmRSS:\t  1234 kB") of a
// /proc/PID/status file.
func parseStatus(r io.Reader) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("/proc status: bad %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status: bad %s line %q", name, sc.Text())
		}
		if name == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.HWM = kb * 1024
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen != 2 {
		return m, errors.New("/proc status: no VmRSS/VmHWM lines")
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the user plus system CPU time process pid has used, from
// fields 14 and 15 (utime, stime) of /proc/PID/stat, in 10 ms steps.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime from the text of /proc/PID/stat:
// "PID (COMM) STATE PPID ..." where COMM may contain spaces and parentheses,
// so the fields are counted after the last ")"; utime and stime are fields
// 14 and 15 of the whole line, the 12th and 13th after COMM.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: bad time %q", v)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// MiB formats a byte count in mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Ms formats a duration in milliseconds with two significant decimals.
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

// Verdict is the outcome of one target.
type Verdict string

// The verdicts.
const (
	Pass Verdict = "PASS"
	Fail Verdict = "FAIL"
	Info Verdict = "info" // reported, not judged
)

// Judge returns Pass or Fail for ok, or Info when judged is false.
func Judge(judged, ok bool) Verdict {
	switch {
	case !judged:
		return Info
	case ok:
		return Pass
	default:
		return Fail
	}
}

// Target is one line of the result table.
type Target struct {
	Name     string  `json:"name"`
	Measured string  `json:"measured"`
	Goal     string  `json:"goal"`
	Result   Verdict `json:"result"`
}

// Report is the list of targets of one benchmark run.
type Report struct {
	Targets []Target `json:"targets"`
}

// Add appends a target.
func (r *Report) Add(name, measured, goal string, v Verdict) {
	r.Targets = append(r.Targets, Target{name, measured, goal, v})
}

// Failed reports whether any target is FAIL.
func (r *Report) Failed() bool {
	for _, t := range r.Targets {
		if t.Result == Fail {
			return true
		}
	}
	return false
}

// Print writes the targets as an aligned table.
func (r *Report) Print(w io.Writer) {
	tw := NewTable(w)
	fmt.Fprintln(tw, "TARGET\tMEASURED\tGOAL\tRESULT")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Measured, t.Goal, t.Result)
	}
	tw.Flush()
}

// NewTable returns a tabwriter for the aligned tables the benchmarks print.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// WriteJSON writes v as indented JSON to path, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
