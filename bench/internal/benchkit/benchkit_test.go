package benchkit

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("Median modified its input: %v", in)
			}
		}
	}
	if got := MedianDuration([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("MedianDuration = %v, want 2", got)
	}
	if got := MaxDuration([]time.Duration{3, 9, 2}); got != 9 {
		t.Errorf("MaxDuration = %v, want 9", got)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("Percentile(nil) = %v", got)
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tmapdropd\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t5\n"
	m, err := parseStatus(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 1024*1024 || m.HWM != 2048*1024 {
		t.Errorf("got %+v", m)
	}
	if _, err := parseStatus(strings.NewReader("Name:\tx\n")); err == nil {
		t.Error("no error for a status without VmRSS")
	}
	if _, err := parseStatus(strings.NewReader("VmRSS:\t12 MB\nVmHWM:\t1 kB\n")); err == nil {
		t.Error("no error for a unit other than kB")
	}
	// The real file of this process.
	self, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.RSS <= 0 || self.HWM < self.RSS {
		t.Errorf("own memory implausible: %+v", self)
	}
}

func TestReport(t *testing.T) {
	var r Report
	r.Add("a", "1", "<2", Judge(true, true))
	r.Add("b", "3", "<2", Judge(false, false))
	if r.Failed() {
		t.Fatal("Failed with a PASS and an info")
	}
	r.Add("c", "3", "<2", Judge(true, false))
	if !r.Failed() {
		t.Fatal("not Failed with a FAIL")
	}
	var b bytes.Buffer
	r.Print(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[1], "PASS") || !strings.HasSuffix(lines[2], "info") || !strings.HasSuffix(lines[3], "FAIL") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestParseStat(t *testing.T) {
	// Fields 14 (utime) = 150 and 15 (stime) = 50 ticks: 2 s.
	line := "1234 (map drop) d) S 1 1234 1234 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 5 0 100 1000 200\n"
	d, err := parseStat(line)
	if err != nil || d != 2*time.Second {
		t.Errorf("parseStat = %v, %v; want 2s", d, err)
	}
	for _, bad := range []string{"1234 no paren", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 4 5 0 0 0 x 50 0"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Error(err)
	}
}
