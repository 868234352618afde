package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/addr"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
)

// silentServer accepts connections on network ("unix" or "tcp") and never
// answers; every accepted connection is announced on the returned channel.
func silentServer(t *testing.T, network string) (addr.Addr, <-chan net.Conn) {
	t.Helper()
	where := "127.0.0.1:0"
	if network == "unix" {
		where = filepath.Join(t.TempDir(), "silent.sock")
	}
	ln, err := net.Listen(network, where)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case nc := <-accepted:
				nc.Close()
			default:
				return
			}
		}
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- nc
		}
	}()
	if network == "unix" {
		return mustParse(t, "unix:"+where), accepted
	}
	return mustParse(t, "inet:"+ln.Addr().String()), accepted
}

// A server that accepts but never answers is a timeout, Temporary, on both
// kinds of raw socket.
func TestLookupOnceSilentServerTimesOut(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		a, _ := silentServer(t, network)
		short, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		_, err := client.LookupOnce(short, a, "userdb", "user1")
		cancel()
		if err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) ||
			!errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: LookupOnce from a silent server: error %v, want a Temporary deadline error", network, err)
		}
	}
}

// Cancelling a context without a deadline wakes a lookup blocked on the
// reply.
func TestLookupOnceCancel(t *testing.T) {
	a, accepted := silentServer(t, "unix")
	c, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-accepted: // the request is on its way: now cancel
		case <-time.After(20 * time.Second):
		}
		cancel()
	}()
	_, err := client.LookupOnce(c, a, "userdb", "user1")
	if err == nil || failure.KindOf(err) != failure.Temporary || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled LookupOnce: error %v, want Temporary wrapping context.Canceled", err)
	}
}

// A server that closes the connection without a reply is Temporary.
func TestLookupOnceClosedWithoutReply(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		a, accepted := silentServer(t, network)
		go func() {
			if nc, ok := <-accepted; ok {
				nc.Close()
			}
		}()
		_, err := client.LookupOnce(ctx(t), a, "userdb", "user1")
		if err == nil || failure.KindOf(err) != failure.Temporary || errors.Is(err, failure.ErrNotFound) {
			t.Errorf("%s: closed without reply: error %v, want Temporary", network, err)
		}
	}
}

// A host name goes through Go's resolver and net.Conn, with the same
// outcomes.
func TestLookupOnceHostName(t *testing.T) {
	s := start(t, nil)
	if err := s.ListenSocketmap(mustParse(t, "inet:127.0.0.1:0"), server.UnixOptions{}); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addrs()[0].String())
	a := mustParse(t, "inet:localhost:"+port)
	for _, tc := range cases {
		v, err := client.LookupOnce(ctx(t), a, tc.mapName, tc.key)
		check(t, "LookupOnce localhost "+tc.mapName+" "+tc.key, v, err, tc.want)
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := client.LookupOnce(short, a, "userdb", "block"); err == nil || failure.KindOf(err) != failure.Temporary {
		t.Errorf("slow lookup by host name: error %v, want Temporary", err)
	}
}

// Every way a one-shot lookup ends closes its socket.
func TestLookupOnceLeavesNoDescriptors(t *testing.T) {
	s := start(t, nil)
	a := mustParse(t, "unix:"+filepath.Join(t.TempDir(), "mapdropd.sock"))
	if err := s.ListenSocketmap(a, server.UnixOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	silent, accepted := silentServer(t, "unix")
	dead := mustParse(t, "unix:"+filepath.Join(t.TempDir(), "none.sock"))
	open := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(ents)
	}
	lookups := func() {
		for _, tc := range cases {
			client.LookupOnce(ctx(t), a, tc.mapName, tc.key)
		}
		client.LookupOnce(ctx(t), dead, "userdb", "user1")
		short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		client.LookupOnce(short, silent, "userdb", "user1")
		cancel()
		(<-accepted).Close()
	}
	lookups() // first use may open descriptors that stay (the poller)
	before := open()
	for range 5 {
		lookups()
	}
	// The in-process server closes its ends when it sees ours closed:
	// give it time. A leak of ours would stay (5 rounds, 5 descriptors
	// per path at least).
	after := open()
	for i := 0; i < 500 && after > before; i++ {
		time.Sleep(10 * time.Millisecond)
		after = open()
	}
	if after > before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}
