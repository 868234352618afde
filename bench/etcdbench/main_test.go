package main

import (
	"bytes"
	"testing"

	"github.com/mapdrop/mapdrop/internal/etcdtest"
)

// TestQuick runs the whole benchmark at toy sizes against a real etcd
// cluster and real mapdropd processes, so that the program cannot rot.
func TestQuick(t *testing.T) {
	etcdtest.Require(t)
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
	if res.Report.Failed() || res.Errors != 0 {
		t.Errorf("a judged target failed, or %d wrong replies", res.Errors)
	}
	if res.PushSeconds <= 0 || res.LatencyP50Ms <= 0 || res.EtcdRPS <= 0 || res.FileRPS <= 0 {
		t.Errorf("nothing measured: %+v", res)
	}
}
