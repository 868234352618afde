package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// get reads key through a client made with cfg (each step within d) and
// returns the error of New or of the read.
func get(cfg clientv3.Config, key string, d time.Duration) error {
	cfg.Logger, cfg.DialTimeout = zap.NewNop(), d
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err = cli.Get(ctx, key)
	return err
}

// TestTLSAndAuth: a TLS cluster answers a client that presents the test
// client certificate, and refuses one without a certificate, one whose
// certificate another CA signed, and one that does not trust the cluster's
// CA; with authentication on, a user's role decides what it may do.
func TestTLSAndAuth(t *testing.T) {
	// A refused client waits out its timeout; an accepted one does not.
	const refusal, patience = time.Second, 30 * time.Second
	c := StartWith(t, 1, Options{TLS: true})
	eps := c.Endpoints()
	if !strings.HasPrefix(eps[0], "https://127.0.0.1:") {
		t.Fatalf("endpoint %s, want https://127.0.0.1:PORT", eps[0])
	}
	cli := c.Client(t)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/p/k", "v"); err != nil {
		t.Fatalf("put with the client certificate: %v", err)
	}
	good, err := c.Certs.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}

	other, err := NewCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	ocert, okey, err := other.Issue("other-client", "intruder", false)
	if err != nil {
		t.Fatal(err)
	}
	opair, err := tls.LoadX509KeyPair(ocert, okey)
	if err != nil {
		t.Fatal(err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	otherCert := good.Clone()
	otherCert.Certificates = []tls.Certificate{opair}
	otherRoots := good.Clone()
	otherRoots.RootCAs = x509.NewCertPool()
	otherRoots.RootCAs.AddCert(other.Cert)
	for name, tc := range map[string]*tls.Config{"no client certificate": noCert, "a certificate of another CA": otherCert, "another CA trusted": otherRoots} {
		if err := get(clientv3.Config{Endpoints: eps, TLS: tc}, "/p/k", refusal); err == nil {
			t.Errorf("%s: the cluster answered", name)
		}
	}
	if err := get(clientv3.Config{Endpoints: []string{strings.Replace(eps[0], "https:", "http:", 1)}}, "/p/k", refusal); err == nil {
		t.Errorf("plain http: the cluster answered")
	}

	c.EnableAuth(t, "rootpw")
	c.AddUser(t, "reader", "readpw", "/p/", false)
	c.AddUser(t, "writer", "writepw", "/p/", true)
	if _, err := c.Client(t).Put(ctx, "/elsewhere", "x"); err != nil {
		t.Errorf("root after EnableAuth: %v", err)
	}
	login := func(user, pw string) clientv3.Config {
		return clientv3.Config{Endpoints: eps, TLS: good.Clone(), Username: user, Password: pw}
	}
	if err := get(login("reader", "readpw"), "/p/k", patience); err != nil {
		t.Errorf("reader reads /p/k: %v", err)
	}
	if err := get(login("reader", "readpw"), "/elsewhere", patience); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("reader reads /elsewhere: %v, want permission denied", err)
	}
	if err := get(login("reader", "wrong"), "/p/k", patience); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Errorf("reader with a wrong password: %v, want authentication failed", err)
	}
	// Without a login, etcd takes the user from the certificate's CN.
	if err := get(clientv3.Config{Endpoints: eps, TLS: good.Clone()}, "/p/k", refusal); err == nil {
		t.Errorf("no login, certificate of %s (no such user): the cluster answered", c.Certs.ClientCN)
	}
	wcfg := login("writer", "writepw")
	wcfg.Logger = zap.NewNop()
	w, err := clientv3.New(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Put(ctx, "/p/k2", "v"); err != nil {
		t.Errorf("writer writes /p/k2: %v", err)
	}
	// Restarted, the member comes back with TLS and auth.
	c.Members[0].Kill()
	c.RestartAll(t)
	if err := get(login("reader", "readpw"), "/p/k2", patience); err != nil {
		t.Errorf("reader after a restart: %v", err)
	}
}
