package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// TestExportDifferential: for every entry of a generated table, Postfix
// reading the exported cdb file (postmap -q - cdb:...) answers exactly what
// mapdropd serves (mapdropd query -), and a missing key is missing in both.
func TestExportDifferential(t *testing.T) {
	conf := postmapConf(t)
	src, generated := awkwardEntries(10000)
	var keys []string
	for _, k := range generated {
		keys = append(keys, strings.ToLower(k))
	}
	missing := []string{"nobody@some.domain", "user1@other.domain", "ümläut1@nowhere"}
	dir := writeTables(t, map[string]string{"mailbox_command": src, "virtual_mailbox_domains": "some.domain OK\n"})
	exportDir := t.TempDir()
	d := startDaemon(t, dir, "-export", exportDir, "-log-level", "info")

	stdin := strings.Join(append(append([]string{}, keys...), missing...), "\n") + "\n"
	// -timeout bounds the whole run of 10,000 lookups: generous, for the
	// race-built binary on a loaded machine (the default 10s is not).
	code, served, errOut := mapdropd(t, stdin, "query", "-s", d.sock, "-timeout", "2m", "mailbox_command", "-")
	if code != 1 { // the missing keys make it 1
		t.Fatalf("mapdropd query -: exit %d, want 1 (some keys missing): %s", code, errOut)
	}
	code, fromCDB, errOut := runCmd(t, stdin, "/usr/sbin/postmap", "-c", conf, "-q", "-", "cdb:"+filepath.Join(exportDir, "mailbox_command"))
	if code != 0 || errOut != "" {
		t.Fatalf("postmap -q - cdb: exit %d: %s", code, errOut)
	}
	if n := strings.Count(served, "\n"); n != len(keys) {
		t.Errorf("mapdropd answered %d keys, want %d", n, len(keys))
	}
	if served != fromCDB {
		a, b := strings.Split(served, "\n"), strings.Split(fromCDB, "\n")
		sort.Strings(a)
		sort.Strings(b)
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				t.Fatalf("first difference: mapdropd %q, postmap cdb %q", a[i], b[i])
			}
		}
		t.Fatalf("answers differ in length: mapdropd %d lines, postmap %d", len(a), len(b))
	}
	for _, k := range missing {
		if code, out := postmapQ(t, conf, k, "cdb:"+filepath.Join(exportDir, "mailbox_command")); code != 1 || out != "" {
			t.Errorf("postmap -q %q cdb: exit %d %q, want 1", k, code, out)
		}
		if code, _, _ := mapdropd(t, "", "query", "-s", d.sock, "mailbox_command", k); code != 1 {
			t.Errorf("mapdropd query %q: exit %d, want 1", k, code)
		}
	}
}

// TestConcurrentClientsDuringReloads: many persistent clients query while the
// table is replaced again and again by rename-over; every answer is a whole
// generation (all keys of one file carry its generation number), never an
// error, and a client never sees a generation go backwards.
func TestConcurrentClientsDuringReloads(t *testing.T) {
	const keysPerGen, gens, clients = 50, 40, 16
	dir := writeTables(t, map[string]string{"virtual_mailbox_domains": "some.domain OK\n"})
	writeGen := func(g int) {
		var b strings.Builder
		for k := 0; k < keysPerGen; k++ {
			fmt.Fprintf(&b, "key%d@some.domain  gen%04d\n", k, g)
		}
		tmp := filepath.Join(dir, ".virtual_alias.tmp")
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, filepath.Join(dir, "virtual_alias")); err != nil {
			t.Error(err)
		}
	}
	writeGen(0)
	d := startDaemon(t, dir)
	waitAnswer(t, d, "virtual_alias", "key0@some.domain", "gen0000")
	a, err := sockaddr.Parse(d.sock)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	answers := make([]int, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := client.Dial(ctx, a)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			last := 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("KEY%d@Some.Domain", (i*7+c)%keysPerGen)
				v, err := conn.Lookup(ctx, "virtual_alias", key)
				if err != nil {
					errs <- fmt.Errorf("client %d: %s: %v", c, key, err)
					return
				}
				var g int
				if _, err := fmt.Sscanf(v, "gen%04d", &g); err != nil || g < last || g >= gens {
					errs <- fmt.Errorf("client %d: %s = %q after gen%04d", c, key, v, last)
					return
				}
				last = g
				answers[c]++
			}
		}(c)
	}
	for g := 1; g < gens; g++ {
		writeGen(g)
		time.Sleep(20 * time.Millisecond)
	}
	waitAnswer(t, d, "virtual_alias", "key1@some.domain", fmt.Sprintf("gen%04d", gens-1))
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for c, n := range answers {
		if n == 0 {
			t.Errorf("client %d got no answers", c)
		}
	}
}

// awkwardEntries generates a map source file of n entries that exercise the
// awkward parts of a table (UTF-8 keys and values, mixed case and
// extensions in keys, values of several KiB, runs of spaces) and returns it
// with the keys as written.
func awkwardEntries(n int) (string, []string) {
	var src strings.Builder
	keys := make([]string, 0, n)
	for i := 0; i < n; i++ {
		var k, v string
		switch i % 4 {
		case 0:
			k, v = fmt.Sprintf("user%d@some.domain", i), fmt.Sprintf("/usr/local/bin/mapdrop -d user%d", i)
		case 1:
			k, v = fmt.Sprintf("ümläut%d@dömäin.example", i), fmt.Sprintf("zïel %d, ✓ über", i)
		case 2:
			k, v = fmt.Sprintf("Mixed%d+Ext@Some.Domain", i), strings.Repeat(fmt.Sprintf("long%d ", i), 300)
		default:
			k, v = fmt.Sprintf("local%d", i), fmt.Sprintf("|/bin/cat   >> /var/mail/local%d", i)
		}
		fmt.Fprintf(&src, "%s\t%s\n", k, strings.TrimSpace(v))
		keys = append(keys, k)
	}
	return src.String(), keys
}
