package server_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
)

// explainTables explains every lookup of fixtures.Lookup in one line.
type explainTables struct{}

func (explainTables) Lookup(ctx context.Context, m, k string) (string, error) {
	return fixtures.Lookup(ctx, m, k)
}

func (explainTables) Explain(ctx context.Context, m, k string) (string, error) {
	v, err := fixtures.Lookup(ctx, m, k)
	if failure.KindOf(err) == failure.Permanent {
		return "", err
	}
	return "map " + m + "\nkey " + k + "\nvalue " + v, nil
}

// TestServePassedListeners serves listeners the server did not open
// (as systemd passes them), both protocols, and answers explain requests
// on the socketmap one.
func TestServePassedListeners(t *testing.T) {
	s, logs := fixtures.TableServer(t, func(s *server.Server) { s.Tables = explainTables{} })
	sock := filepath.Join(t.TempDir(), "passed.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeSocketmap(ln, "passed-socketmap"); err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTCPTable(tl, "userdb", "passed-tcp"); err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTCPTable(tl, "", "x"); err == nil {
		t.Error("ServeTCPTable without a map name: no error")
	}

	ctx := context.Background()
	c, err := client.Dial(ctx, fixtures.MustParse(t, "unix:"+sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Lookup(ctx, "virtual_mailbox", "user1@some.domain"); err != nil || v != "some.domain/user1/" {
		t.Errorf("lookup on a passed listener = %q, %v", v, err)
	}
	if v, err := c.Lookup(ctx, server.ExplainPrefix+"virtual_mailbox", "user1@some.domain"); err != nil || v != "map virtual_mailbox\nkey user1@some.domain\nvalue some.domain/user1/" {
		t.Errorf("explain = %q, %v", v, err)
	}
	if _, err := c.Lookup(ctx, server.ExplainPrefix+"nosuchmap", "x"); failure.KindOf(err) != failure.Permanent {
		t.Errorf("explain of an unknown map: %v, want PERM", err)
	}
	if !strings.Contains(logs.String(), "passed-socketmap") {
		t.Errorf("log does not name the passed listener:\n%s", logs)
	}

	nc, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("get user1\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := nc.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "200 uid=1001") {
		t.Errorf("tcp_table on a passed listener: %q", got)
	}
}

// TestExplainWithoutExplainer answers PERM when the Tables cannot explain.
func TestExplainWithoutExplainer(t *testing.T) {
	s, _ := fixtures.TableServer(t, nil)
	a := fixtures.SocketmapAddr(t, s)
	c, err := client.Dial(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Lookup(context.Background(), server.ExplainPrefix+"virtual_mailbox", "user1@some.domain")
	if failure.KindOf(err) != failure.Permanent || !strings.Contains(err.Error(), "cannot explain") {
		t.Errorf("explain without an Explainer: %v, want PERM cannot explain", err)
	}
}
