package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

// tlsFlags are the flags that trust the cluster's CA and present cert and
// key.
func tlsFlags(c *etcdtest.Cluster, cert, key string) []string {
	return []string{"-etcd-cacert", c.Certs.CA.CertFile, "-etcd-cert", cert, "-etcd-key", key}
}

// pushWith runs mapdropd push to the cluster with extra flags.
func pushWith(t *testing.T, c *etcdtest.Cluster, extra []string, paths ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"push", "-etcd", strings.Join(c.Endpoints(), ","), "-etcd-prefix", etcdPrefix}, extra...)
	return mapdropd(t, "", append(args, paths...)...)
}

// serveNoCache runs mapdropd serve -etcd without a cache, which must fail
// to start, and returns its exit code and stderr.
func serveNoCache(t *testing.T, c *etcdtest.Cluster, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"serve", "-etcd", strings.Join(c.Endpoints(), ","), "-etcd-prefix", etcdPrefix,
		"-etcd-start-timeout", "1s", "-socketmap", "unix:" + filepath.Join(t.TempDir(), "s.sock")}, extra...)
	code, _, errOut := mapdropd(t, "", args...)
	return code, errOut
}

func writeSecret(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyFile copies src over dst (a certificate renewed in place).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdTLS runs a one-member etcd that serves https:// and requires a
// client certificate, then turns on etcd's authentication: push and serve
// work with the CA, the client certificate and a login; without the CA,
// with a certificate of another CA, with a wrong password or a role that
// may only read, they fail with 78 and say why; a server started from its
// cache with a refused certificate follows the cluster once its
// certificate files are renewed.
func TestEtcdTLS(t *testing.T) {
	c := etcdtest.StartWith(t, 1, etcdtest.Options{TLS: true})
	good := tlsFlags(c, c.Certs.ClientCert, c.Certs.ClientKey)
	other, err := etcdtest.NewCA(t.TempDir(), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.Issue("intruder", "intruder", false)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeTables(t, testTables)

	code, out, errOut := pushWith(t, c, good, dir)
	if code != 0 || !strings.Contains(out, "virtual_mailbox revision ") {
		t.Fatalf("push over TLS with a client certificate: exit %d\n%s%s", code, out, errOut)
	}
	cache := t.TempDir()
	h := startEtcdHost(t, c.Endpoints(), cache, good...)
	if v, err := h.lookup(t, "virtual_mailbox", "user1@some.domain"); v != "some.domain/user1/Maildir/" || err != nil {
		t.Errorf("serve over TLS: user1@some.domain answers %q, %v", v, err)
	}
	code, out, errOut = mapdropd(t, "", "query", "-s", h.sock, "virtual_alias", "postmaster@some.domain")
	if code != 0 || out != "user1@some.domain, user2@some.domain\n" || !strings.Contains(errOut, "etcd revision") {
		t.Errorf("mapdropd query of serve over TLS: exit %d, %q, %q", code, out, errOut)
	}
	testkit.Eventually(t, "the cache written", func() bool {
		_, err := os.Stat(filepath.Join(cache, "manifest"))
		return err == nil
	})

	t.Run("refused certificates", func(t *testing.T) {
		noCA := []string{"-etcd-cert", c.Certs.ClientCert, "-etcd-key", c.Certs.ClientKey}
		badCert := tlsFlags(c, otherCert, otherKey)
		for _, tc := range []struct {
			name  string
			flags []string
			want  string
		}{
			{"without -etcd-cacert (the system's roots)", noCA, "certificate is not trusted (-etcd-cacert)"},
			{"with a client certificate of another CA", badCert, "refused the TLS connection"},
			{"without a client certificate", []string{"-etcd-cacert", c.Certs.CA.CertFile}, "refused the TLS connection"},
		} {
			// A refused TLS connection looks like no answer to the etcd
			// client: push waits out -connect-timeout, then finds out why.
			code, out, errOut := pushWith(t, c, append([]string{"-connect-timeout", "1s"}, tc.flags...), dir)
			if code != failure.Permanent.ExitCode() || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, c.Endpoints()[0]) {
				t.Errorf("push %s: exit %d, %q, %q; want 78 and %q", tc.name, code, out, errOut, tc.want)
			}
			code, errOut = serveNoCache(t, c, tc.flags...)
			if code != failure.Permanent.ExitCode() || !strings.Contains(errOut, tc.want) {
				t.Errorf("serve %s, no cache: exit %d, %q; want 78 and %q", tc.name, code, errOut, tc.want)
			}
		}
	})

	t.Run("a certificate renewed in place", func(t *testing.T) {
		// A copy of the intruder's certificate, where serve reads its own.
		certDir := t.TempDir()
		cert, key := filepath.Join(certDir, "client.crt"), filepath.Join(certDir, "client.key")
		copyFile(t, otherCert, cert)
		copyFile(t, otherKey, key)
		// A copy of the first host's cache: one cache, one server.
		ownCache := t.TempDir()
		des, err := os.ReadDir(cache)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			copyFile(t, filepath.Join(cache, de.Name()), filepath.Join(ownCache, de.Name()))
		}
		h := startEtcdHost(t, c.Endpoints(), ownCache, tlsFlags(c, cert, key)...)
		if !strings.Contains(h.Log(), "SERVING MAPS FROM CACHE") || !strings.Contains(h.Log(), "refused the TLS connection") {
			t.Errorf("serve with a refused certificate and a cache does not say it serves the cache, and why:\n%s", h.Log())
		}
		if v, _ := h.lookup(t, "virtual_mailbox", "user2@some.domain"); v != "some.domain/user2/Maildir/" {
			t.Errorf("from the cache: %q", v)
		}
		copyFile(t, c.Certs.ClientKey, key)
		copyFile(t, c.Certs.ClientCert, cert)
		edit := t.TempDir()
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  renewed@example.net\n")
		if code, out, errOut := pushWith(t, c, good, edit); code != 0 {
			t.Fatalf("push: exit %d %s%s", code, out, errOut)
		}
		testkit.Eventually(t, "serve following the cluster with its renewed certificate", func() bool {
			v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain")
			return v == "renewed@example.net"
		})
	})

	t.Run("authentication", func(t *testing.T) {
		c.EnableAuth(t, "root-secret")
		c.AddUser(t, "mapdrop-push", "push-secret", etcdPrefix, true)
		c.AddUser(t, "mapdrop-serve", "serve-secret", etcdPrefix, false)
		login := func(user, password string, mode os.FileMode) []string {
			return append([]string{"-etcd-user", user, "-etcd-password-file", writeSecret(t, password, mode)}, good...)
		}
		edit := t.TempDir()
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  logged-in@example.net\n")
		code, out, errOut := pushWith(t, c, login("mapdrop-push", "push-secret\n", 0o600), edit)
		if code != 0 || errOut != "" {
			t.Fatalf("push with the right login: exit %d %q %q", code, out, errOut)
		}
		// The password is the first line; others may read this file.
		code, out, errOut = pushWith(t, c, login("mapdrop-push", "push-secret\r\nsecond line\n", 0o644), edit)
		if code != 0 || !strings.Contains(errOut, "warning: -etcd-password-file") || !strings.Contains(errOut, "group or others may read it") {
			t.Errorf("push with a password file of mode 0644: exit %d %q %q; want 0 and a warning", code, out, errOut)
		}
		// A new map, so that the push has something to write.
		refused := t.TempDir()
		writeMap(t, refused, "relocated", "joe@some.domain  joe@elsewhere.example\n")
		for _, tc := range []struct {
			name  string
			flags []string
			want  string
		}{
			{"a wrong password", login("mapdrop-push", "wrong", 0o600), "etcd refused user mapdrop-push: etcdserver: authentication failed"},
			{"a role that may only read", login("mapdrop-serve", "serve-secret", 0o600), "etcd refused user mapdrop-serve: etcdserver: permission denied"},
			{"no login (the certificate's name is no user)", good, "etcd refused the client (no -etcd-user)"},
		} {
			code, out, errOut := pushWith(t, c, tc.flags, refused)
			if code != failure.Permanent.ExitCode() || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("push with %s: exit %d, %q, %q; want 78 and %q", tc.name, code, out, errOut, tc.want)
			}
		}
		// Without a login, etcd takes the user from the certificate's CN.
		cnCert, cnKey, err := c.Certs.CA.Issue("cn-push", "mapdrop-push", false)
		if err != nil {
			t.Fatal(err)
		}
		writeMap(t, refused, "relocated", "joe@some.domain  joe@cn.example\n")
		if code, out, errOut := pushWith(t, c, tlsFlags(c, cnCert, cnKey), refused); code != 0 {
			t.Errorf("push with a certificate whose CN is a user with readwrite, no login: exit %d %q %q", code, out, errOut)
		}
		// In place (one line of a served map): refused too, not reported
		// as switched.
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  read-only@example.net\n")
		if code, out, errOut := pushWith(t, c, login("mapdrop-serve", "serve-secret", 0o600), edit); code != failure.Permanent.ExitCode() || out != "" || !strings.Contains(errOut, "etcd refused user mapdrop-serve: etcdserver: permission denied") {
			t.Errorf("in-place push with a role that may only read: exit %d, %q, %q; want 78", code, out, errOut)
		}
		code, errOut = serveNoCache(t, c, login("mapdrop-serve", "wrong", 0o600)...)
		if code != failure.Permanent.ExitCode() || !strings.Contains(errOut, "authentication failed") {
			t.Errorf("serve with a wrong password, no cache: exit %d, %q; want 78", code, errOut)
		}

		h := startEtcdHost(t, c.Endpoints(), "", login("mapdrop-serve", "serve-secret", 0o600)...)
		if v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain"); v != "logged-in@example.net" {
			t.Errorf("serve with a read-only login: %q", v)
		}
		// Restarted, etcd forgets its tokens: serve logs in again.
		c.KillAll()
		c.RestartAll(t)
		writeMap(t, edit, "virtual_alias", "postmaster@some.domain  after-restart@example.net\n")
		if code, out, errOut := pushWith(t, c, login("mapdrop-push", "push-secret", 0o600), edit); code != 0 {
			t.Fatalf("push after the restart: exit %d %q %q", code, out, errOut)
		}
		testkit.Eventually(t, "serve following after the cluster's restart", func() bool {
			v, _ := h.lookup(t, "virtual_alias", "postmaster@some.domain")
			return v == "after-restart@example.net"
		})
	})
}

// TestEtcdTLSFlags: serve and push refuse the same misuses of the TLS and
// login flags, with the same exit status, before they talk to etcd (none
// listens at these URLs): 64 for a bad command line, 66 for a file they
// cannot read, 78 for a file that does not hold what it should.
func TestEtcdTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := etcdtest.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("client", "client", false)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ca.Issue("other", "other", false)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := writeMap(t, dir, "not-pem", "hello\n")
	password := writeSecret(t, "secret\n", 0o600)
	empty := writeSecret(t, "\nsecond\n", 0o600)
	missing := filepath.Join(dir, "missing")
	maps := writeTables(t, testTables)
	const https, http = "https://127.0.0.1:1", "http://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"-etcd-cert without -etcd-key", []string{"-etcd", https, "-etcd-cert", cert}, 64, "-etcd-cert and -etcd-key go together"},
		{"-etcd-key without -etcd-cert", []string{"-etcd", https, "-etcd-key", key}, 64, "-etcd-cert and -etcd-key go together"},
		{"-etcd-cacert with http://", []string{"-etcd", http, "-etcd-cacert", ca.CertFile}, 64, "need https:// URLs: -etcd http://127.0.0.1:1 would be plaintext"},
		{"-etcd-cert with http://", []string{"-etcd", http, "-etcd-cert", cert, "-etcd-key", key}, 64, "need https:// URLs"},
		{"http:// and https:// mixed", []string{"-etcd", https + "," + http, "-etcd-cacert", ca.CertFile}, 64, "mixes https:// with plaintext URLs"},
		{"a password in -etcd-user", []string{"-etcd", https, "-etcd-user", "joe:secret"}, 64, "give the password in -etcd-password-file, never on the command line"},
		{"-etcd-user without a password file", []string{"-etcd", https, "-etcd-user", "joe"}, 64, "-etcd-user needs -etcd-password-file"},
		{"a password file without -etcd-user", []string{"-etcd", https, "-etcd-password-file", password}, 64, "-etcd-password-file needs -etcd-user"},
		{"a login over http:// to another host", []string{"-etcd", "http://192.0.2.1:2379", "-etcd-user", "joe", "-etcd-password-file", password}, 64, "http://192.0.2.1:2379 is plaintext to another host"},
		{"a CA file missing", []string{"-etcd", https, "-etcd-cacert", missing}, 66, "-etcd-cacert: open " + missing},
		{"a key file missing", []string{"-etcd", https, "-etcd-cert", cert, "-etcd-key", missing}, 66, "-etcd-key: open " + missing},
		{"a password file missing", []string{"-etcd", https, "-etcd-user", "joe", "-etcd-password-file", missing}, 66, "-etcd-password-file: open " + missing},
		{"a CA file without a certificate", []string{"-etcd", https, "-etcd-cacert", notPEM}, 78, "-etcd-cacert " + notPEM + ": no PEM certificate in it"},
		{"a key of another certificate", []string{"-etcd", https, "-etcd-cert", cert, "-etcd-key", otherKey}, 78, "-etcd-cert " + cert + ", -etcd-key " + otherKey + ": tls: private key does not match public key"},
		{"an empty password", []string{"-etcd", https, "-etcd-user", "joe", "-etcd-password-file", empty}, 78, "-etcd-password-file " + empty + ": the first line is empty"},
	} {
		code, out, errOut := mapdropd(t, "", append(append([]string{"push"}, tc.args...), maps)...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("push with %s: exit %d, %q, %q; want %d and %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
		code, out, errOut = mapdropd(t, "", append([]string{"serve", "-socketmap", "unix:" + filepath.Join(t.TempDir(), "s.sock")}, tc.args...)...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("serve with %s: exit %d, %q, %q; want %d and %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
	}
	code, _, errOut := mapdropd(t, "", "serve", "-tables", dir, "-etcd-cacert", ca.CertFile, "-socketmap", "unix:"+filepath.Join(t.TempDir(), "s.sock"))
	if code != 64 || !strings.Contains(errOut, "need -etcd") {
		t.Errorf("serve -etcd-cacert without -etcd: exit %d, %q; want 64", code, errOut)
	}
	// Over http:// on loopback a login is allowed: the push gets as far as
	// the cluster, which is not there.
	code, _, errOut = mapdropd(t, "", "push", "-etcd", "http://127.0.0.1:1", "-connect-timeout", "1s", "-etcd-user", "joe", "-etcd-password-file", password, maps)
	if code != failure.Temporary.ExitCode() {
		t.Errorf("push with a login over http:// on loopback, nobody listening: exit %d, %q; want 75", code, errOut)
	}
}
