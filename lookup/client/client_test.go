package client_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
)

func TestSocketmapLookup(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	c, err := client.Dial(fixtures.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 { // many requests on one connection
		for _, tc := range fixtures.Cases {
			v, err := c.Lookup(fixtures.Ctx(t), tc.MapName, tc.Key)
			fixtures.Check(t, tc.MapName+" "+tc.Key, v, err, tc.Want)
		}
	}
}

func TestSocketmapConcurrentUse(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	c, err := client.Dial(fixtures.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range fixtures.Cases {
				v, err := c.Lookup(fixtures.Ctx(t), tc.MapName, tc.Key)
				fixtures.Check(t, tc.MapName+" "+tc.Key, v, err, tc.Want)
			}
		}()
	}
	wg.Wait()
}

func TestDeadServerIsTemporary(t *testing.T) {
	for _, a := range fixtures.DeadAddrs(t) {
		if _, err := client.Dial(fixtures.Ctx(t), a); err == nil || failure.KindOf(err) != failure.Temporary {
			t.Errorf("Dial(%s) error %v, want Temporary", a, err)
		}
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	s, _ := fixtures.TableServer(t, func(s *server.Server) { s.RequestTimeout = 200 * time.Millisecond })
	a := fixtures.SocketmapAddr(t, s)
	c, err := client.Dial(fixtures.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Lookup(short, "userdb", "block"); failure.KindOf(err) != failure.Temporary || err == nil {
		t.Fatalf("timed-out lookup error %v, want Temporary", err)
	}
	// The connection is usable again (it is redialled).
	if v, err := c.Lookup(fixtures.Ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001 home=/home/user1" {
		t.Fatalf("after timeout: %q, %v", v, err)
	}
}

func TestReconnectAfterServerClosedIdle(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.IdleTimeout = 20 * time.Millisecond })
	a := fixtures.SocketmapAddr(t, s)
	c, err := client.Dial(fixtures.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if v, err := c.Lookup(fixtures.Ctx(t), "userdb", "user1"); err != nil || v != "uid=1001 gid=1001 home=/home/user1" {
			t.Fatalf("lookup %d: %q, %v", i, v, err)
		}
		testkit.Eventually(t, "the server to drop the idle connection", func() bool {
			return strings.Count(logs.String(), "idle connection closed") > i
		})
	}
}
