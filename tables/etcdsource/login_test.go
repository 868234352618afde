package etcdsource

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// TestSourceTLSLogin: over TLS with a client certificate and a login whose
// role may read the prefix, a source loads and follows the maps. A login
// needs the cluster, yet with the cluster down a source still starts from
// its cache within StartTimeout, and logs in and follows once the cluster
// is back. A wrong password fails Start.
func TestSourceTLSLogin(t *testing.T) {
	c := etcdtest.StartWith(t, 1, etcdtest.Options{TLS: true})
	const prefix = "/login-test/"
	c.EnableAuth(t, "root-pw")
	c.AddUser(t, "reader", "reader-pw", prefix, false)
	cli := c.Client(t)
	pushMap(t, cli, prefix, "virtual_alias", "joe@example.com", "joe.user@example.net")
	tlsConf, err := c.Certs.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	config := func(cache, password string) Config {
		return Config{Endpoints: c.Endpoints(), TLS: tlsConf, Username: "reader", Password: password,
			Prefix: prefix, CacheDir: cache, StartTimeout: time.Second, ProbeInterval: 100 * time.Millisecond}
	}

	cache := t.TempDir()
	st := newStore(t)
	src, err := New(config(cache, "reader-pw"), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	rev := pushMap(t, cli, prefix, "virtual_alias", "ann@example.com", "ann@example.net")
	testkit.Eventually(t, "the pushed version", func() bool { return st.Revision() >= rev })
	testkit.Eventually(t, "the cache at the last revision", func() bool {
		b, _ := os.ReadFile(filepath.Join(cache, "manifest"))
		return strings.Contains(string(b), "revision "+itoa(rev)+"\n")
	})
	cancel()
	<-done
	src.Close()

	if _, err := New(Config{Endpoints: c.Endpoints(), Prefix: prefix, Username: "reader"}, newStore(t)); failure.KindOf(err) != failure.Usage {
		t.Errorf("a user without a password: %v, want a Usage failure", err)
	}
	bad, err := New(config("", "wrong"), newStore(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("start with a wrong password: %v", err)
	}
	bad.Close()

	c.KillAll()
	st2 := newStore(t)
	var logs testkit.Buffer
	cfg := config(cache, "reader-pw")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	src2, err := New(cfg, st2)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	began := time.Now()
	if err := src2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 10*time.Second || !src2.FromCache() {
		t.Fatalf("start with a login and the cluster down: %v, from the cache %v; want the cache within StartTimeout\n%s", d, src2.FromCache(), logs.String())
	}
	if got := lookup(st2, "virtual_alias", "ann@example.com"); got != "ann@example.net" {
		t.Errorf("from the cache: %q", got)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { src2.Run(ctx2); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	c.RestartAll(t)
	rev = pushMap(t, c.Client(t), prefix, "virtual_alias", "bob@example.com", "bob@example.net")
	testkit.Eventually(t, "the source logged in and following", func() bool { return st2.Revision() >= rev && !src2.FromCache() })
	if got := lookup(st2, "virtual_alias", "bob@example.com"); got != "bob@example.net" {
		t.Errorf("after the cluster's return: %q", got)
	}
}
