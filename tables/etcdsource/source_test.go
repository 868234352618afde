package etcdsource

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/tables/etcdmaps"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.New("+")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func pushMap(t *testing.T, cli *clientv3.Client, prefix, name string, kv ...string) int64 {
	t.Helper()
	m := etcdmaps.Map{Name: name, Path: name}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Entries = append(m.Entries, mapfile.Entry{Key: kv[i], Value: kv[i+1], Line: i/2 + 1})
	}
	res, err := etcdmaps.Push(context.Background(), cli, etcdmaps.NewLayout(prefix), []etcdmaps.Map{m}, etcdmaps.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Revision
}

func lookup(st *store.Store, m, k string) string {
	v, err := st.Lookup(m, k)
	if err != nil {
		return "error: " + failure.KindOf(err).String()
	}
	return v
}

// TestSourceFollowsAndCaches: a snapshot, then a push, a direct single-key
// edit of the served version, a removed pointer; the cache holds the served
// maps at the revision that last changed them, and a second source started
// with the cluster unreachable serves them from it.
func TestSourceFollowsAndCaches(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	const prefix = "/src-test"
	pushMap(t, cli, prefix, "virtual_alias", "joe@example.com", "joe.user@example.net")
	pushMap(t, cli, prefix, "gone_map", "k", "v")

	cache := t.TempDir()
	st := newStore(t)
	var logs testkit.Buffer
	var hooks hookLog
	src, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, CacheDir: cache,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProbeInterval: 100 * time.Millisecond,
		OnMap: hooks.onMap, OnRemove: hooks.onRemove}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lookup(st, "virtual_alias", "joe+x@example.com"); got != "joe.user+x@example.net" {
		t.Errorf("after start: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()

	rev := pushMap(t, cli, prefix, "virtual_alias", "ann@example.com", "ann@example.net")
	testkit.Eventually(t, "the new version", func() bool { return st.Revision() >= rev })
	if got := lookup(st, "virtual_alias", "joe@example.com"); got != "error: notfound" {
		t.Errorf("old entry after the switch: %q", got)
	}
	// A direct edit of one key of the served version.
	resp, err := cli.Get(context.Background(), prefix+"/ptr/virtual_alias")
	if err != nil {
		t.Fatal(err)
	}
	ver := string(resp.Kvs[0].Value)
	put, err := cli.Put(context.Background(), prefix+"/v/virtual_alias/"+ver+"/bob@example.com", "bob@example.net")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the single-key edit", func() bool { return st.Revision() >= put.Header.Revision })
	if got := lookup(st, "virtual_alias", "bob@example.com"); got != "bob@example.net" {
		t.Errorf("direct edit: %q", got)
	}
	if ok, changed := st.Incremental("virtual_alias"); !ok || changed != put.Header.Revision {
		t.Errorf("changed at %d, want %d", changed, put.Header.Revision)
	}
	del, err := cli.Delete(context.Background(), prefix+"/ptr/gone_map")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the removed map", func() bool { return st.Revision() >= del.Header.Revision })
	if st.Has("gone_map") {
		t.Error("gone_map still served after its pointer was deleted")
	}
	// The removal is reported once the store no longer serves the map.
	testkit.Eventually(t, "OnRemove(gone_map)", func() bool { return strings.Contains(hooks.String(), "remove gone_map") })
	if got := hooks.String(); strings.Count(got, "remove ") != 1 {
		t.Errorf("hooks: %s; want one removal, of gone_map", got)
	}
	if !strings.Contains(logs.String(), `msg="etcd map removed" map=gone_map revision=`+itoa(del.Header.Revision)) {
		t.Errorf("removal not logged at its revision:\n%s", logs.String())
	}
	testkit.Eventually(t, "the cache at the last revision", func() bool {
		b, _ := os.ReadFile(filepath.Join(cache, "manifest"))
		return strings.Contains(string(b), "revision "+itoa(del.Header.Revision)+"\n")
	})
	cancel()
	<-done

	// The cluster is gone: a new source serves the cache, loudly.
	c.KillAll()
	st2 := newStore(t)
	var logs2 testkit.Buffer
	src2, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, CacheDir: cache,
		Logger: slog.New(slog.NewTextHandler(&logs2, nil)), StartTimeout: time.Second}, st2)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	if err := src2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !src2.FromCache() || !strings.Contains(logs2.String(), "SERVING MAPS FROM CACHE") {
		t.Errorf("start from the cache not said: %s", logs2.String())
	}
	for _, k := range []string{"ann@example.com", "bob@example.com", "joe@example.com"} {
		if a, b := lookup(st, "virtual_alias", k), lookup(st2, "virtual_alias", k); a != b {
			t.Errorf("%s: from the cache %q, live %q", k, b, a)
		}
	}
	if st2.Has("gone_map") || st2.Revision() != del.Header.Revision {
		t.Errorf("cache: gone_map %v, revision %d want %d", st2.Has("gone_map"), st2.Revision(), del.Header.Revision)
	}

	// A truncated map file makes the cache unusable: no start.
	files, _ := filepath.Glob(filepath.Join(cache, "virtual_alias.*.map"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one for virtual_alias", files)
	}
	b, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], b[:len(b)-5], 0o640)
	src3, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, CacheDir: cache, StartTimeout: time.Second}, newStore(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src3.Close()
	if err := src3.Start(context.Background()); failure.KindOf(err) != failure.Temporary || !strings.Contains(err.Error(), "cache") {
		t.Errorf("start with a broken cache and no cluster: %v, want a Temporary failure naming the cache", err)
	}
	// A cache of another prefix is not served.
	src4, _ := New(Config{Endpoints: c.Endpoints(), Prefix: "/other", CacheDir: cache, StartTimeout: time.Second}, newStore(t))
	defer src4.Close()
	if err := src4.Start(context.Background()); err == nil {
		t.Error("a cache written for another prefix was served")
	}
}

// hookLog records the calls of OnMap and OnRemove, in order.
type hookLog struct {
	mu    sync.Mutex
	calls []string
}

func (h *hookLog) onMap(name string, entries int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "map "+name+" "+strconv.Itoa(entries))
}

func (h *hookLog) onRemove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, "remove "+name)
}

func (h *hookLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.calls, ", ")
}

// TestSnapshotRemovesMap: a map served from the cache whose pointer was
// deleted while the source was away is removed by the snapshot taken when
// the cluster answers, logged and reported through OnRemove like a
// removal seen by the watch.
func TestSnapshotRemovesMap(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	const prefix = "/snap-remove"
	pushMap(t, cli, prefix, "kept_map", "a", "1")
	rev := pushMap(t, cli, prefix, "gone_map", "k", "v")

	// A first source writes both maps to the cache.
	cache := t.TempDir()
	src, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, CacheDir: cache}, newStore(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	testkit.Eventually(t, "both maps in the cache", func() bool {
		b, _ := os.ReadFile(filepath.Join(cache, "manifest"))
		return strings.Contains(string(b), "revision "+itoa(rev)+"\n") && strings.Contains(string(b), "map gone_map ")
	})
	cancel()
	<-done

	// gone_map is removed while no source follows; then the cluster goes.
	if _, err := cli.Delete(context.Background(), prefix+"/ptr/gone_map"); err != nil {
		t.Fatal(err)
	}
	c.KillAll()
	st := newStore(t)
	var logs testkit.Buffer
	var hooks hookLog
	src2, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, CacheDir: cache, StartTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProbeInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnMap: hooks.onMap, OnRemove: hooks.onRemove}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	if err := src2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !src2.FromCache() || !st.Has("gone_map") {
		t.Fatalf("not started from the cache with gone_map: from cache %v, has gone_map %v", src2.FromCache(), st.Has("gone_map"))
	}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { src2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	c.RestartAll(t)
	testkit.Eventually(t, "the snapshot without gone_map", func() bool { return !src2.FromCache() && !st.Has("gone_map") })
	testkit.Eventually(t, "OnRemove(gone_map)", func() bool { return strings.Contains(hooks.String(), "remove gone_map") })
	if got := hooks.String(); strings.Count(got, "remove ") != 1 || !st.Has("kept_map") {
		t.Errorf("hooks: %s; kept_map served: %v; want one removal, of gone_map", got, st.Has("kept_map"))
	}
	if !strings.Contains(logs.String(), `msg="etcd map removed" map=gone_map`) {
		t.Errorf("removal by the snapshot not logged:\n%s", logs.String())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
