package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// etcdHost is one "mapdropd serve -etcd" of the tests.
type etcdHost struct {
	*testkit.Mapdropd
	sock    string
	metrics string
	cache   string
}

const etcdPrefix = "/mapdrop-test/"

// startEtcdHost starts mapdropd serving the etcd maps of endpoints, with
// its own cache directory (cache "" makes one).
func startEtcdHost(t *testing.T, endpoints []string, cache string, extra ...string) *etcdHost {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	h := &etcdHost{
		sock:    "unix:" + filepath.Join(t.TempDir(), "mapdropd.sock"),
		metrics: testkit.Addr(t),
		cache:   cache,
	}
	args := append([]string{"-etcd", strings.Join(endpoints, ","), "-etcd-prefix", etcdPrefix,
		"-etcd-cache", cache, "-etcd-start-timeout", "2s",
		"-socketmap", h.sock, "-metrics", h.metrics}, extra...)
	h.Mapdropd = testkit.StartMapdropd(t, testkit.MapdropdConfig{
		Bin: bin(t), Args: args,
		ProbeAddr: h.sock, ProbeMap: "virtual_mailbox_domains", ProbeKey: "some.domain",
	})
	return h
}

// scrape returns the host's /metrics page, "" when it does not answer.
func (h *etcdHost) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + h.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric returns the value of a metric line of the host, "" when absent.
func (h *etcdHost) metric(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(h.scrape(t))
	if m == nil {
		return ""
	}
	return m[1]
}

// lookup asks the host once for key in map m.
func (h *etcdHost) lookup(t *testing.T, m, key string) (string, error) {
	t.Helper()
	a, err := sockaddr.Parse(h.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, a)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.Lookup(ctx, m, key)
}

// differentialTables are the repository's testdata maps plus the
// generated map of TestExportDifferential (UTF-8, long values, mixed case).
func differentialTables(t *testing.T) (dir string, keys map[string][]string) {
	t.Helper()
	dir = t.TempDir()
	keys = map[string][]string{}
	des, err := os.ReadDir("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join("../../testdata", de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(line, "#") {
				keys[de.Name()] = append(keys[de.Name()], f[0], strings.ToUpper(f[0]))
				if l, d, ok := strings.Cut(f[0], "@"); ok {
					keys[de.Name()] = append(keys[de.Name()], l+"+ext@"+d, "nobody@"+d, l+"@nowhere.example")
				}
			}
		}
	}
	src, generated := awkwardEntries(2000)
	for _, k := range generated {
		keys["virtual_alias_generated"] = append(keys["virtual_alias_generated"], k, strings.ToUpper(k), strings.Replace(k, "@", "+x@", 1))
	}
	keys["virtual_alias_generated"] = append(keys["virtual_alias_generated"], "nobody@some.domain", "@some.domain")
	if err := os.WriteFile(filepath.Join(dir, "virtual_alias_generated"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, keys
}

// queryAll runs "mapdropd query -s sock MAP -" with keys on stdin.
func queryAll(t *testing.T, sock, m string, keys []string) (int, string, string) {
	t.Helper()
	return mapdropd(t, strings.Join(keys, "\n")+"\n", "query", "-s", sock, "-timeout", "2m", m, "-")
}

// push runs mapdropd push and returns its exit code, stdout and stderr.
func pushCmd(t *testing.T, endpoints []string, paths ...string) (int, string, string) {
	t.Helper()
	return mapdropd(t, "", append([]string{"push", "-etcd", strings.Join(endpoints, ","), "-etcd-prefix", etcdPrefix}, paths...)...)
}

func writeMap(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEtcd runs a real 3-member etcd cluster and three "mapdropd serve
// -etcd" hosts through the issue's list: answers equal to the files',
// an edit everywhere within a second, a refused broken push, a
// 200,000-entry switch seen without going back, one member killed (and
// the compaction that a host behind it must resync from), the whole
// cluster killed and back, a host restarted from its cache.
func TestEtcd(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	eps := cluster.Endpoints()
	cli := cluster.Client(t)
	ctx := context.Background()

	dir, keys := differentialTables(t)
	code, out, errOut := pushCmd(t, eps, dir)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, out, errOut)
	}
	for name := range keys {
		if !regexp.MustCompile(`(?m)^` + name + ` revision \d+ entries \d+ version [0-9a-f]+$`).MatchString(out) {
			t.Errorf("push output lacks the line of %s:\n%s", name, out)
		}
	}

	files := startDaemon(t, dir)
	// Host 3 talks to member 0 only: killing that member cuts it off while
	// the cluster goes on.
	hosts := []*etcdHost{
		startEtcdHost(t, eps, ""),
		startEtcdHost(t, eps, ""),
		startEtcdHost(t, eps[:1], ""),
	}

	t.Run("same answers as the files", func(t *testing.T) {
		names := make([]string, 0, len(keys))
		for n := range keys {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			wantCode, want, _ := queryAll(t, files.sock, name, keys[name])
			if strings.Count(want, "\n") < len(keys[name])/4 {
				t.Fatalf("%s: the file server found only %d of %d keys", name, strings.Count(want, "\n"), len(keys[name]))
			}
			for i, h := range hosts {
				code, got, errOut := queryAll(t, h.sock, name, keys[name])
				if code != wantCode || got != want {
					t.Errorf("host %d, map %s: exit %d, %d bytes; files: exit %d, %d bytes", i, name, code, len(got), wantCode, len(want))
				}
				if !strings.Contains(errOut, "etcd revision") {
					t.Errorf("host %d, map %s: query does not name the etcd revision: %q", i, name, errOut)
				}
			}
		}
		code, out, _ := mapdropd(t, "", "query", "-s", hosts[0].sock, "-explain", "virtual_alias", "postmaster+x@some.domain")
		if code != 0 || !regexp.MustCompile(`source: etcd revision \d+ \(map last changed at revision \d+\)`).MatchString(out) {
			t.Errorf("query -explain: exit %d\n%s", code, out)
		}
	})

	t.Run("an edit reaches every host within 1s", func(t *testing.T) {
		edit := t.TempDir()
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  edited@example.net\n")
		code, out, errOut := pushCmd(t, eps, edit)
		pushed := time.Now()
		if code != 0 {
			t.Fatalf("push: exit %d %s%s", code, out, errOut)
		}
		for i, h := range hosts {
			testkit.Eventually(t, "the edit on a host", func() bool {
				v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain")
				return v == "edited@example.net"
			})
			if d := time.Since(pushed); d > time.Second {
				t.Errorf("host %d served the edit %v after the push, want within 1s", i, d)
			}
		}
	})

	t.Run("-address-maps and -exact-maps apply to etcd maps", func(t *testing.T) {
		m := t.TempDir()
		writeMap(t, m, "users", "joe@example.com  joe.user@example.net\n")
		if code, out, errOut := pushCmd(t, eps, m); code != 0 {
			t.Fatalf("push: exit %d %s%s", code, out, errOut)
		}
		h := startEtcdHost(t, eps, "", "-address-maps", "users", "-exact-maps", "virtual_alias")
		if v, err := h.lookup(t, "users", "joe+x@example.com"); v != "joe.user@example.net" || err != nil {
			t.Errorf("users, an address map by -address-maps: joe+x@example.com answers %q, %v", v, err)
		}
		if v, err := h.lookup(t, "virtual_alias", "postmaster+x@some.domain"); failure.KindOf(err) != failure.NotFound {
			t.Errorf("virtual_alias, exact by -exact-maps: postmaster+x@some.domain answers %q, %v; want not found", v, err)
		}
		// A usage error comes before any talk to etcd (none listens here).
		code, _, errOut := mapdropd(t, "", "serve", "-etcd", "http://127.0.0.1:1", "-etcd-start-timeout", "1s", "-address-maps", "users", "-exact-maps", "users",
			"-socketmap", "unix:"+filepath.Join(t.TempDir(), "s.sock"))
		if code != failure.Usage.ExitCode() || !strings.Contains(errOut, "in both -address-maps and -exact-maps") {
			t.Errorf("serve -etcd with a map in both -address-maps and -exact-maps: exit %d, %s; want 64", code, errOut)
		}
	})

	t.Run("a broken push is refused", func(t *testing.T) {
		before, err := cli.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		bad := t.TempDir()
		writeMap(t, bad, "virtual_alias", "postmaster@some.domain  broken@example.net\n")
		p := writeMap(t, bad, "virtual_mailbox", "user1@some.domain ok/\nnovalue@some.domain\n")
		code, out, errOut := pushCmd(t, eps, bad)
		if code != 1 || !strings.Contains(errOut, p+":2: ") || out != "" {
			t.Errorf("broken push: exit %d, stdout %q, stderr %q; want 1 and %s:2:", code, out, errOut, p)
		}
		after, err := cli.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if before.Header.Revision != after.Header.Revision {
			t.Errorf("a broken push wrote to etcd: revision %d → %d", before.Header.Revision, after.Header.Revision)
		}
		if v, _ := hosts[0].lookup(t, "virtual_alias", "postmaster@some.domain"); v != "edited@example.net" {
			t.Errorf("after the broken push: %q", v)
		}
	})

	t.Run("a 200,000-entry switch never goes back", func(t *testing.T) {
		const n = 200_000
		big := t.TempDir()
		write := func(gen int) {
			var b strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "k%d@big.example v%d-%d\n", i, gen, i)
			}
			writeMap(t, big, "big_map", b.String())
		}
		write(1)
		if code, out, errOut := pushCmd(t, eps, big); code != 0 {
			t.Fatalf("push 1: exit %d %s%s", code, out, errOut)
		}
		testkit.Eventually(t, "generation 1 on host 0", func() bool {
			v, _ := hosts[0].lookup(t, "big_map", "k199999@big.example")
			return v == "v1-199999"
		})
		write(2)
		var stop atomic.Bool
		var seen2, back, mixed atomic.Int64
		var wg sync.WaitGroup
		// The reader stops before the subtest ends, also when it fails:
		// the next subtests restart hosts, which it must not report.
		defer func() {
			stop.Store(true)
			wg.Wait()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _ := sockaddr.Parse(hosts[0].sock)
			c, err := client.Dial(context.Background(), a)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			saw2 := false
			for !stop.Load() {
				i := rand.IntN(n)
				v, err := c.Lookup(context.Background(), "big_map", fmt.Sprintf("k%d@big.example", i))
				if err != nil {
					t.Errorf("lookup during the switch: %v", err)
					return
				}
				switch v {
				case fmt.Sprintf("v2-%d", i):
					saw2 = true
					seen2.Add(1)
				case fmt.Sprintf("v1-%d", i):
					if saw2 {
						back.Add(1)
					}
				default:
					mixed.Add(1)
				}
			}
		}()
		start := time.Now()
		code, out, errOut := pushCmd(t, eps, big)
		if code != 0 {
			t.Fatalf("push 2: exit %d after %v: %s%s", code, time.Since(start), out, errOut)
		}
		t.Logf("push 2 took %v", time.Since(start))
		testkit.Eventually(t, "the reader seeing generation 2", func() bool { return seen2.Load() > 100 })
		stop.Store(true)
		wg.Wait()
		if back.Load() != 0 || mixed.Load() != 0 {
			t.Errorf("reader went back to the old version %d times, saw other values %d times", back.Load(), mixed.Load())
		}
		for i, h := range hosts {
			testkit.Eventually(t, "generation 2 on every host", func() bool {
				v, _ := h.lookup(t, "big_map", "k0@big.example")
				return v == "v2-0"
			})
			_ = i
		}
		// One line changed: the push changes that key in place, and the
		// hosts change that key, with no new version to switch to.
		b, err := os.ReadFile(filepath.Join(big, "big_map"))
		if err != nil {
			t.Fatal(err)
		}
		writeMap(t, big, "big_map", strings.Replace(string(b), "k7@big.example v2-7\n", "k7@big.example edited-7\n", 1))
		switches := strings.Count(hosts[0].Log(), "etcd map switched")
		code, out, errOut = pushCmd(t, eps, big)
		if code != 0 || !regexp.MustCompile(`^big_map revision \d+ entries 200000 version [0-9a-f]+ in-place 1\n$`).MatchString(out) {
			t.Fatalf("one-line push: exit %d %q %s", code, out, errOut)
		}
		for _, h := range hosts {
			testkit.Eventually(t, "the one-key change on every host", func() bool {
				v, _ := h.lookup(t, "big_map", "k7@big.example")
				return v == "edited-7"
			})
		}
		if n := strings.Count(hosts[0].Log(), "etcd map switched"); n != switches {
			t.Errorf("a one-key push made host 0 switch versions (%d switches, were %d)", n, switches)
		}
		// The metrics know the map: its size, and its lookups under its name.
		if got := hosts[0].metric(t, `mapdropd_map_entries{map="big_map"}`); got != "200000" {
			t.Errorf("mapdropd_map_entries of big_map: %q, want 200000", got)
		}
		if got := hosts[0].metric(t, `mapdropd_lookups_total{map="big_map",result="found"}`); got == "" || got == "0" {
			t.Errorf("lookups of big_map not counted under its name: %q", got)
		}
		// The old version is gone from etcd.
		resp, err := cli.Get(ctx, etcdPrefix+"v/big_map/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count != n {
			t.Errorf("etcd holds %d big_map entries, want %d (%v)", resp.Count, n, err)
		}
		// A key added in place: the hosts' entries gauge follows it.
		b, err = os.ReadFile(filepath.Join(big, "big_map"))
		if err != nil {
			t.Fatal(err)
		}
		writeMap(t, big, "big_map", string(b)+"added@big.example new\n")
		code, out, errOut = pushCmd(t, eps, big)
		if code != 0 || !regexp.MustCompile(`^big_map revision \d+ entries 200001 version [0-9a-f]+ in-place 1\n$`).MatchString(out) {
			t.Fatalf("one-key addition: exit %d %q %s", code, out, errOut)
		}
		for _, h := range hosts {
			testkit.Eventually(t, "the entries gauge after an in-place addition", func() bool {
				return h.metric(t, `mapdropd_map_entries{map="big_map"}`) == "200001"
			})
		}
	})

	t.Run("a removed map leaves /metrics", func(t *testing.T) {
		m := t.TempDir()
		writeMap(t, m, "removed_map", "a@removed.example  b@example.net\nc@removed.example  d@example.net\n")
		if code, out, errOut := pushCmd(t, eps, m); code != 0 {
			t.Fatalf("push: exit %d %s%s", code, out, errOut)
		}
		series := []string{
			`mapdropd_map_entries{map="removed_map"}`,
			`mapdropd_map_last_reload_success_timestamp_seconds{map="removed_map"}`,
			`mapdropd_map_served_from_last_good{map="removed_map"}`,
			`mapdropd_map_load_held_back{map="removed_map"}`,
			`mapdropd_reloads_total{map="removed_map",result="ok"}`,
			`mapdropd_lookups_total{map="removed_map",result="found"}`,
		}
		for _, h := range hosts {
			testkit.Eventually(t, "the pushed map on every host", func() bool {
				v, _ := h.lookup(t, "removed_map", "a@removed.example")
				return v == "b@example.net"
			})
			testkit.Eventually(t, "the pushed map's series on every host", func() bool {
				for _, s := range series {
					if h.metric(t, s) == "" {
						return false
					}
				}
				return h.metric(t, series[0]) == "2"
			})
		}
		del, err := cli.Delete(ctx, etcdPrefix+"ptr/removed_map")
		if err != nil || del.Deleted != 1 {
			t.Fatalf("delete the pointer of removed_map: %v, %d deleted", err, del.Deleted)
		}
		for i, h := range hosts {
			testkit.Eventually(t, "the removed map no longer served", func() bool {
				_, err := h.lookup(t, "removed_map", "a@removed.example")
				return failure.KindOf(err) == failure.Permanent
			})
			// A lookup of the removed map counts under map="(unknown)".
			testkit.Eventually(t, "no series of the removed map", func() bool {
				page := h.scrape(t)
				return strings.Contains(page, "mapdropd_source_revision ") && !strings.Contains(page, `map="removed_map"`)
			})
			if !regexp.MustCompile(`msg="etcd map removed".* map=removed_map `).MatchString(h.Log()) {
				t.Errorf("host %d did not log the removal:\n%s", i, h.Log())
			}
		}
		// The other maps keep theirs.
		if got := hosts[0].metric(t, `mapdropd_map_entries{map="virtual_mailbox_domains"}`); got != "2" {
			t.Errorf("mapdropd_map_entries of virtual_mailbox_domains after another map's removal: %q, want 2", got)
		}
	})

	// A host with table files too: a file that appears with an etcd map's
	// name is refused while etcd serves the map, and goes live as soon as
	// the etcd map is removed.
	t.Run("a file refused while etcd serves its name goes live when the etcd map is removed", func(t *testing.T) {
		m := t.TempDir()
		writeMap(t, m, "takeover_map", "k@takeover.example  from-etcd\n")
		if code, out, errOut := pushCmd(t, eps, m); code != 0 {
			t.Fatalf("push: exit %d %s%s", code, out, errOut)
		}
		files := t.TempDir()
		writeMap(t, files, "file_only", "k@file.example v\n")
		h := startEtcdHost(t, eps, "", "-tables", files)
		testkit.Eventually(t, "the etcd map on the host with files", func() bool {
			v, _ := h.lookup(t, "takeover_map", "k@takeover.example")
			return v == "from-etcd"
		})
		writeMap(t, files, "takeover_map", "k@takeover.example  from-file\n")
		testkit.Eventually(t, "the file refused", func() bool {
			return regexp.MustCompile(`level=ERROR msg="map not loaded" map=takeover_map`).MatchString(h.Log())
		})
		if v, _ := h.lookup(t, "takeover_map", "k@takeover.example"); v != "from-etcd" {
			t.Errorf("while etcd serves the map: %q, want from-etcd", v)
		}
		if _, err := cli.Delete(ctx, etcdPrefix+"ptr/takeover_map"); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, "the file's map served once the etcd map is removed", func() bool {
			v, _ := h.lookup(t, "takeover_map", "k@takeover.example")
			return v == "from-file"
		})
		testkit.Eventually(t, "its series back, from the file", func() bool {
			return h.metric(t, `mapdropd_map_entries{map="takeover_map"}`) == "1"
		})
	})

	t.Run("one member killed, then compaction", func(t *testing.T) {
		cluster.Members[0].Kill()
		edit := t.TempDir()
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  while-m0-down@example.net\n")
		if code, out, errOut := pushCmd(t, eps[1:], edit); code != 0 {
			t.Fatalf("push with a member down: exit %d %s%s", code, out, errOut)
		}
		for _, h := range hosts[:2] {
			testkit.Eventually(t, "the edit on the hosts that reach the others", func() bool {
				v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain")
				return v == "while-m0-down@example.net"
			})
		}
		// Host 3 is cut off: it says so and keeps serving.
		testkit.Eventually(t, "host 3 disconnected", func() bool { return hosts[2].metric(t, "mapdropd_source_connected") == "0" })
		if v, _ := hosts[2].lookup(t, "virtual_alias", "postmaster@some.domain"); v != "edited@example.net" {
			t.Errorf("host 3 cut off serves %q, want the last revision it had", v)
		}
		// Compact away the revisions host 3 has not seen: the edit's, and
		// one more, so that the next one it asks for is gone too.
		resp, err := cli.Put(ctx, "/unrelated-key", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		cluster.Members[0].Restart(t)
		testkit.Eventually(t, "host 3 following again", func() bool {
			v, _ := hosts[2].lookup(t, "virtual_alias", "postmaster@some.domain")
			return v == "while-m0-down@example.net"
		})
		if !strings.Contains(hosts[2].Log(), "watch revision compacted") {
			t.Errorf("host 3 did not resync from a fresh snapshot after the compaction:\n%s", hosts[2].Log())
		}
		testkit.Eventually(t, "host 3 counting the resync", func() bool { return hosts[2].metric(t, "mapdropd_source_resyncs_total") == "1" })
		testkit.Eventually(t, "host 3 connected", func() bool { return hosts[2].metric(t, "mapdropd_source_connected") == "1" })
	})

	t.Run("whole cluster killed and back", func(t *testing.T) {
		cluster.KillAll()
		for i, h := range hosts {
			testkit.Eventually(t, "hosts disconnected", func() bool { return h.metric(t, "mapdropd_source_connected") == "0" })
			if v, err := h.lookup(t, "virtual_alias", "postmaster@some.domain"); v != "while-m0-down@example.net" {
				t.Errorf("host %d without the cluster: %q, %v", i, v, err)
			}
		}
		if !strings.Contains(hosts[0].Log(), "etcd cluster unreachable") {
			t.Errorf("host 0 did not log the outage:\n%s", hosts[0].Log())
		}
		// A restarted host serves from its cache, loudly.
		if code := hosts[0].Stop(t); code != 0 {
			t.Fatalf("host 0 exit %d on SIGTERM", code)
		}
		hosts[0].Start(t)
		if !strings.Contains(hosts[0].Log(), "ETCD UNREACHABLE: SERVING MAPS FROM CACHE") {
			t.Errorf("host 0 restarted without the cluster does not say it serves its cache:\n%s", hosts[0].Log())
		}
		for name, ks := range map[string][]string{"virtual_mailbox": keys["virtual_mailbox"], "big_map": {"k5@big.example", "k199999@big.example"}} {
			_, want, _ := queryAll(t, hosts[1].sock, name, ks)
			if _, got, _ := queryAll(t, hosts[0].sock, name, ks); got != want || want == "" {
				t.Errorf("host 0 from its cache, map %s:\n%s\nwant\n%s", name, got, want)
			}
		}
		if v, _ := hosts[0].lookup(t, "virtual_alias", "postmaster@some.domain"); v != "while-m0-down@example.net" {
			t.Errorf("host 0 from its cache: %q", v)
		}
		// No cluster: a push fails quickly (75), nothing written.
		if code, out, errOut := mapdropd(t, "", "push", "-etcd", strings.Join(eps, ","), "-etcd-prefix", etcdPrefix, "-connect-timeout", "2s", dir); code != failure.Temporary.ExitCode() || out != "" || !strings.Contains(errOut, "unreachable") {
			t.Errorf("push without the cluster: exit %d, %q %q; want 75", code, out, errOut)
		}
		// No cluster and no cache: no start (75).
		code, _, errOut := mapdropd(t, "", "serve", "-etcd", strings.Join(eps, ","), "-etcd-prefix", etcdPrefix,
			"-etcd-start-timeout", "1s", "-socketmap", "unix:"+filepath.Join(t.TempDir(), "s.sock"))
		if code != failure.Temporary.ExitCode() || !strings.Contains(errOut, "unreachable") {
			t.Errorf("serve without cluster or cache: exit %d, %s; want 75", code, errOut)
		}

		cluster.RestartAll(t)
		edit := t.TempDir()
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  back@example.net\n")
		if code, out, errOut := pushCmd(t, eps, edit); code != 0 {
			t.Fatalf("push after the restart: exit %d %s%s", code, out, errOut)
		}
		for _, h := range hosts {
			testkit.Eventually(t, "every host following again", func() bool {
				v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain")
				return v == "back@example.net" && h.metric(t, "mapdropd_source_connected") == "1"
			})
		}
		if !strings.Contains(hosts[1].Log(), "etcd reachable again") {
			t.Errorf("host 1 did not log the cluster's return:\n%s", hosts[1].Log())
		}
	})

	t.Run("a map from both files and etcd is refused", func(t *testing.T) {
		code, _, errOut := mapdropd(t, "", "serve", "-tables", dir, "-etcd", strings.Join(eps, ","), "-etcd-prefix", etcdPrefix,
			"-socketmap", "unix:"+filepath.Join(t.TempDir(), "s.sock"))
		if code != failure.Permanent.ExitCode() || !strings.Contains(errOut, "comes from both") {
			t.Errorf("serve -tables and -etcd with the same maps: exit %d, %s; want 78", code, errOut)
		}
	})
}
