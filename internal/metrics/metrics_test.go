package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/internal/metrics"
	"github.com/mapdrop/mapdrop/lookup/netstring"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// storeTables is mapdropd's adapter: lookups from the store, HasMap too.
type storeTables struct{ st *store.Store }

func (t storeTables) Lookup(_ context.Context, m, k string) (string, error) { return t.st.Lookup(m, k) }
func (t storeTables) HasMap(m string) bool                                  { return t.st.Has(m) }

// scrape fetches /metrics and returns its sample lines by series.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsCountExactly(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"virtual_alias": "a@x.test b@y.test\n@catch.test c@y.test\n",
		"userdb":        "u1 uid=5000|gid=5000|home=/home/u1\n",
		"broken":        "key-without-value\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New()
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	rl, err := reload.New(reload.Config{Dir: dir, OnResult: m.Loaded}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.LoadAll(); err == nil {
		t.Fatal("LoadAll accepted the broken map")
	}
	if err := rl.LoadAll(); err == nil { // SIGHUP: an unchanged map is not loaded again, a failing one is
		t.Fatal("LoadAll accepted the broken map")
	}

	srv := &server.Server{Tables: storeTables{st}, Observer: m, Logger: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	sock := sockaddr.Addr{Network: "unix", Address: filepath.Join(t.TempDir(), "s.sock")}
	if err := srv.ListenSocketmap(sock, server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenTCPTable(sockaddr.Addr{Network: "tcp", Address: "127.0.0.1:0"}, "virtual_alias", server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(m.Handler())
	defer web.Close()

	sm, err := net.Dial("unix", sock.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	sm.SetDeadline(time.Now().Add(30 * time.Second))
	nr := netstring.NewReader(bufio.NewReader(sm), 200000)
	ask := func(req, want string) {
		t.Helper()
		if _, err := sm.Write(netstring.AppendString(nil, req)); err != nil {
			t.Fatal(err)
		}
		got, err := nr.Read()
		if err != nil || !strings.HasPrefix(string(got), want) {
			t.Fatalf("%q: %q, %v; want %s...", req, got, err, want)
		}
	}
	// The known sequence.
	for range 3 {
		ask("virtual_alias a@x.test", "OK ")
	}
	ask("virtual_alias z@catch.test", "OK ")
	ask("virtual_alias nobody@nowhere.test", "NOTFOUND")
	ask("userdb u1", "OK ")
	ask("userdb u2", "NOTFOUND")
	ask("userdb u3", "NOTFOUND")
	ask("broken k", "PERM ")       // failed to load: known to metrics, not served
	ask("typo_map k", "PERM ")     // unknown
	ask("another_typo k", "PERM ") // unknown, same label

	tc, err := net.Dial("tcp", srv.Addrs()[1].String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(tc)
	for _, q := range []struct{ key, want string }{{"a@x.test", "200 "}, {"q@nowhere.test", "500 "}} {
		io.WriteString(tc, "get "+q.key+"\n")
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, q.want) {
			t.Fatalf("tcp_table %s: %q, %v", q.key, line, err)
		}
	}

	// The server records a lookup just after writing its reply (the
	// duration includes the write), so the last lookups may reach the
	// metrics a moment after the client has read their replies: wait,
	// boundedly, until all 13 are recorded, then compare everything.
	got := scrape(t, web.URL)
	for deadline := time.Now().Add(5 * time.Second); got[`mapdropd_lookup_duration_seconds_count`] < 13 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		got = scrape(t, web.URL)
	}
	want := map[string]float64{
		`mapdropd_lookups_total{map="virtual_alias",result="found"}`:    5,
		`mapdropd_lookups_total{map="virtual_alias",result="notfound"}`: 2,
		`mapdropd_lookups_total{map="virtual_alias",result="temp"}`:     0,
		`mapdropd_lookups_total{map="virtual_alias",result="perm"}`:     0,
		`mapdropd_lookups_total{map="userdb",result="found"}`:           1,
		`mapdropd_lookups_total{map="userdb",result="notfound"}`:        2,
		`mapdropd_lookups_total{map="broken",result="perm"}`:            1,
		`mapdropd_lookups_total{map="(unknown)",result="perm"}`:         2,
		`mapdropd_lookups_total{map="(unknown)",result="found"}`:        0,
		`mapdropd_lookup_duration_seconds_count`:                        13,
		`mapdropd_reloads_total{map="virtual_alias",result="ok"}`:       1, // the second LoadAll finds the file unchanged: no reload
		`mapdropd_reloads_total{map="virtual_alias",result="error"}`:    0,
		`mapdropd_reloads_total{map="broken",result="ok"}`:              0,
		`mapdropd_reloads_total{map="broken",result="error"}`:           2,
		`mapdropd_map_entries{map="virtual_alias"}`:                     2,
		`mapdropd_map_entries{map="userdb"}`:                            1,
		`mapdropd_connections_open`:                                     2,
		`mapdropd_connections_rejected_total`:                           0,
		`mapdropd_connections_evicted_total`:                            0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.Contains(k, "typo") {
			t.Errorf("an unknown map name became a label value: %s", k)
		}
	}
	if _, ok := got[`mapdropd_map_entries{map="broken"}`]; ok {
		t.Error("a map that never loaded has an entry count")
	}
	ts := got[`mapdropd_map_last_reload_success_timestamp_seconds{map="userdb"}`]
	if ts < float64(before.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("last reload success timestamp %v, want about %v", ts, before.Unix())
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s missing: Go and process collectors", k)
		}
	}

	sm.Close()
	tc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for scrape(t, web.URL)[`mapdropd_connections_open`] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("mapdropd_connections_open did not return to 0 after the clients closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	m := metrics.New()
	m.Loaded("virtual_alias", 10, nil)
	m.Loaded("broken", 0, errors.New("bad"))
	name := strings.Clone("virtual_alias")
	if n := testing.AllocsPerRun(1000, func() {
		m.Lookup(name, server.Found, 30*time.Microsecond)
		m.Lookup("no_such_map", server.Perm, time.Microsecond)
	}); n != 0 {
		t.Errorf("Lookup allocates %v times per call", n)
	}
}

// A map served from its last good copy at startup shows as
// mapdropd_map_served_from_last_good 1 until its file loads again; other
// maps show 0.
func TestServedFromLastGood(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("virtual_alias", "a@x.test b@y.test\n")
	write("userdb", "u1 uid=5000|gid=5000|home=/home/u1\n")
	start := func() (*metrics.Metrics, *reload.Reloader, *httptest.Server) {
		m := metrics.New()
		st, err := store.New("+")
		if err != nil {
			t.Fatal(err)
		}
		rl, err := reload.New(reload.Config{Dir: dir, StateDir: state, OnResult: m.Loaded, OnStale: m.Stale,
			Logger: slog.New(slog.DiscardHandler)}, st)
		if err != nil {
			t.Fatal(err)
		}
		web := httptest.NewServer(m.Handler())
		t.Cleanup(web.Close)
		return m, rl, web
	}
	_, rl, web := start()
	if err := rl.LoadAll(); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, web.URL)[`mapdropd_map_served_from_last_good{map="virtual_alias"}`]; got != 0 {
		t.Errorf("after a good load: %v, want 0", got)
	}
	// A broken edit, then a restart: served from the copy.
	write("virtual_alias", "a@x.test\n")
	_, rl, web = start()
	rl.LoadAll()
	got := scrape(t, web.URL)
	if got[`mapdropd_map_served_from_last_good{map="virtual_alias"}`] != 1 || got[`mapdropd_map_served_from_last_good{map="userdb"}`] != 0 {
		t.Errorf("after a restart with a broken file: %v", got)
	}
	write("virtual_alias", "a@x.test c@y.test\n")
	if err := rl.LoadAll(); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, web.URL)[`mapdropd_map_served_from_last_good{map="virtual_alias"}`]; got != 0 {
		t.Errorf("after the file was fixed: %v, want 0", got)
	}
}

// A load held back as an emptied file shows as
// mapdropd_map_load_held_back 1 (and counts as a reload error) until the
// admin confirms it and it loads.
func TestLoadHeldBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "virtual_alias")
	if err := os.WriteFile(path, []byte("a@x.test b@y.test\nc@x.test d@y.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := reload.New(reload.Config{Dir: dir, OnResult: m.Loaded, Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(m.Handler())
	defer web.Close()
	if err := rl.LoadAll(); err != nil {
		t.Fatal(err)
	}
	const series = `mapdropd_map_load_held_back{map="virtual_alias"}`
	if got := scrape(t, web.URL); got[series] != 0 || got[`mapdropd_map_entries{map="virtual_alias"}`] != 2 {
		t.Errorf("after a good load: %v", got)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rl.LoadAll(); err == nil {
		t.Fatal("an emptied map went live unconfirmed")
	}
	got := scrape(t, web.URL)
	if got[series] != 1 || got[`mapdropd_reloads_total{map="virtual_alias",result="error"}`] != 1 || got[`mapdropd_map_entries{map="virtual_alias"}`] != 2 {
		t.Errorf("after emptying the file: %v", got)
	}
	if _, _, err := reload.Confirm(path); err != nil {
		t.Fatal(err)
	}
	if err := rl.LoadAll(); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, web.URL); got[series] != 0 || got[`mapdropd_map_entries{map="virtual_alias"}`] != 0 {
		t.Errorf("after the confirmation: %v", got)
	}
}

// A removed map (an etcd map whose pointer was deleted) loses every series
// labelled with its name; its lookups count under map="(unknown)"; the
// other maps keep theirs; and the map coming back starts afresh.
func TestRemoved(t *testing.T) {
	m := metrics.New()
	web := httptest.NewServer(m.Handler())
	defer web.Close()
	m.Loaded("gone", 2, nil)
	m.Entries("gone", 3)
	m.Loaded("gone", 0, &reload.HeldBack{})
	m.Stale("gone", "/state/gone")
	m.Lookup("gone", server.Found, time.Microsecond)
	m.Loaded("kept", 5, nil)
	m.Lookup("kept", server.Found, time.Microsecond)
	series := func(got map[string]float64, name string) []string {
		var s []string
		for k := range got {
			if strings.Contains(k, `map="`+name+`"`) {
				s = append(s, k)
			}
		}
		return s
	}
	before := scrape(t, web.URL)
	// entries, last success, last good, held back, 2 reloads, 4 lookups
	if s := series(before, "gone"); len(s) != 10 {
		t.Fatalf("before the removal, %d series of the map, want 10: %v", len(s), s)
	}

	m.Removed("gone")
	m.Lookup("gone", server.NotFound, time.Microsecond)
	got := scrape(t, web.URL)
	if s := series(got, "gone"); len(s) != 0 {
		t.Errorf("series of the removed map: %v", s)
	}
	if s, s0 := series(got, "kept"), series(before, "kept"); len(s) != len(s0) || got[`mapdropd_map_entries{map="kept"}`] != 5 || got[`mapdropd_lookups_total{map="kept",result="found"}`] != 1 {
		t.Errorf("the other map's series changed: %v, were %v", s, s0)
	}
	if got[`mapdropd_lookups_total{map="(unknown)",result="notfound"}`] != 1 {
		t.Errorf("a lookup of the removed map did not count under (unknown): %v", got)
	}
	m.Removed("gone")             // twice: nothing more to remove
	m.Removed(metrics.UnknownMap) // not a map: stays
	if got := scrape(t, web.URL); got[`mapdropd_lookups_total{map="(unknown)",result="notfound"}`] != 1 {
		t.Errorf("Removed(%q) removed the unknown map's series", metrics.UnknownMap)
	}

	// Back again: every series from zero, as for a new map.
	m.Loaded("gone", 1, nil)
	m.Lookup("gone", server.Found, time.Microsecond)
	got = scrape(t, web.URL)
	for k, want := range map[string]float64{
		`mapdropd_map_entries{map="gone"}`:                     1,
		`mapdropd_reloads_total{map="gone",result="ok"}`:       1,
		`mapdropd_reloads_total{map="gone",result="error"}`:    0,
		`mapdropd_map_load_held_back{map="gone"}`:              0,
		`mapdropd_map_served_from_last_good{map="gone"}`:       0,
		`mapdropd_lookups_total{map="gone",result="found"}`:    1,
		`mapdropd_lookups_total{map="gone",result="notfound"}`: 0,
	} {
		if g, ok := got[k]; !ok || g != want {
			t.Errorf("after the map came back: %s = %v (present %v), want %v", k, g, ok, want)
		}
	}
}
