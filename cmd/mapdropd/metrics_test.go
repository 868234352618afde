package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit"
)

// serve -metrics: lookups through the running daemon show up on /metrics.
func TestServeMetrics(t *testing.T) {
	addr := testkit.Addr(t)
	d := startDaemon(t, writeTables(t, testTables), "-metrics", addr)
	// startDaemon's readiness probe asked virtual_mailbox_domains already
	// (found, at least once); add a known number of other answers.
	for _, q := range []struct {
		m, key string
		code   int
	}{
		{"virtual_mailbox", "user1@some.domain", 0},
		{"virtual_mailbox", "user2@some.domain", 0},
		{"virtual_mailbox", "nobody@some.domain", 1},
		{"no_such_map", "x", 78},
	} {
		if code, _, errOut := mapdropd(t, "", "query", "-s", d.sock, q.m, q.key); code != q.code {
			t.Fatalf("query %s %s: exit %d, want %d: %s", q.m, q.key, code, q.code, errOut)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mapdropd_lookups_total{map="virtual_mailbox",result="found"} 2`,
		`mapdropd_lookups_total{map="virtual_mailbox",result="notfound"} 1`,
		`mapdropd_lookups_total{map="(unknown)",result="perm"} 1`,
		`mapdropd_reloads_total{map="virtual_alias",result="ok"} 1`,
		`mapdropd_map_entries{map="virtual_mailbox"} 3`,
		"mapdropd_map_last_reload_success_timestamp_seconds{map=\"virtual_alias\"}",
		"mapdropd_connections_open ",
		"mapdropd_connections_rejected_total 0",
		"mapdropd_lookup_duration_seconds_bucket",
		"process_open_fds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "no_such_map") {
		t.Error("an unknown map name became a label value")
	}
	if !strings.Contains(d.Log(), "lookup in a map that does not exist") {
		t.Errorf("unknown map not logged:\n%s", d.Log())
	}
}

func TestServeMetricsOffByDefault(t *testing.T) {
	d := startDaemon(t, writeTables(t, testTables))
	if strings.Contains(d.Log(), "serving metrics") {
		t.Errorf("metrics served without -metrics:\n%s", d.Log())
	}
}

func TestServeBadPrivilegedUser(t *testing.T) {
	code, _, errOut := mapdropd(t, "", "serve", "-tables", writeTables(t, testTables),
		"-socketmap", "unix:"+t.TempDir()+"/s.sock", "-privileged-users", "root,no-such-user-here")
	if code != 64 || !strings.Contains(errOut, "no-such-user-here") {
		t.Errorf("serve -privileged-users with an unknown user: exit %d, %s; want 64 naming it", code, errOut)
	}
}
