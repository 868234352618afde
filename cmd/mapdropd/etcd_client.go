package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/failure"
)

// etcdSecurity are the flags of serve and push that secure the connection
// to etcd, with the meaning of etcdctl's --cacert, --cert, --key and
// --user (the password never on the command line, where ps shows it).
//
// Rules: -etcd-cacert, -etcd-cert and -etcd-key need https:// endpoints
// (a refusal, not plaintext); https:// without -etcd-cacert trusts the
// system's roots; -etcd-cert and -etcd-key go together; -etcd-user and
// -etcd-password-file go together, and over http:// only to a loopback
// address; http:// and https:// are not mixed (the etcd client would use
// the first one's scheme for all). A file that cannot be read is a
// NoInput failure (66), one that does not hold what it should a Permanent
// one (78); a rule broken is a Usage failure (64).
type etcdSecurity struct {
	cacert, cert, key  string
	user, passwordFile string
}

func (es *etcdSecurity) register(fs *flag.FlagSet) {
	fs.StringVar(&es.cacert, "etcd-cacert", "", "trust the etcd cluster's certificate when this CA, in PEM `FILE`, signed it (default with https:// URLS: the system's roots)")
	fs.StringVar(&es.cert, "etcd-cert", "", "present the client certificate in PEM `FILE` to etcd (with -etcd-key; read again when it changes)")
	fs.StringVar(&es.key, "etcd-key", "", "the private key of -etcd-cert, in PEM `FILE`")
	fs.StringVar(&es.user, "etcd-user", "", "log in to etcd as user `NAME`, with the password of -etcd-password-file")
	fs.StringVar(&es.passwordFile, "etcd-password-file", "", "the first line of `FILE` is the password of -etcd-user; warned about when group or others may read it")
}

// given reports whether any of the flags was given.
func (es *etcdSecurity) given() bool {
	return es.cacert != "" || es.cert != "" || es.key != "" || es.user != "" || es.passwordFile != ""
}

// config checks the flags against endpoints and returns a client
// configuration with Endpoints, TLS, Username and Password set. warn
// receives what deserves a warning (a password file others may read).
func (es *etcdSecurity) config(endpoints []string, warn func(string)) (clientv3.Config, error) {
	cfg := clientv3.Config{Endpoints: endpoints}
	secure, plain := 0, 0
	for _, ep := range endpoints {
		if isSecureEndpoint(ep) {
			secure++
		} else {
			plain++
		}
	}
	switch {
	case secure > 0 && plain > 0:
		return cfg, failure.New(failure.Usage, "-etcd %s: mixes https:// with plaintext URLs; give https:// for every member", strings.Join(endpoints, ","))
	case (es.cert == "") != (es.key == ""):
		return cfg, failure.New(failure.Usage, "-etcd-cert and -etcd-key go together: give both, or neither")
	case (es.cacert != "" || es.cert != "") && plain > 0:
		return cfg, failure.New(failure.Usage, "-etcd-cacert and -etcd-cert need https:// URLs: -etcd %s would be plaintext", strings.Join(endpoints, ","))
	case strings.Contains(es.user, ":"):
		return cfg, failure.New(failure.Usage, "-etcd-user %q: give the password in -etcd-password-file, never on the command line", es.user[:strings.Index(es.user, ":")]+":...")
	case es.user != "" && es.passwordFile == "":
		return cfg, failure.New(failure.Usage, "-etcd-user needs -etcd-password-file")
	case es.user == "" && es.passwordFile != "":
		return cfg, failure.New(failure.Usage, "-etcd-password-file needs -etcd-user")
	}
	if es.user != "" {
		for _, ep := range endpoints {
			if !isSecureEndpoint(ep) && !isLocalEndpoint(ep) {
				return cfg, failure.New(failure.Usage, "-etcd-user: %s is plaintext to another host, it would carry the password in the clear; use https://", ep)
			}
		}
		pw, err := readPassword(es.passwordFile, warn)
		if err != nil {
			return cfg, err
		}
		cfg.Username, cfg.Password = es.user, pw
	}
	if secure == 0 {
		return cfg, nil
	}
	// https:// without flags: the system's roots, as a browser does.
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if es.cacert != "" {
		b, err := readFlagFile("-etcd-cacert", es.cacert)
		if err != nil {
			return cfg, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return cfg, failure.Perm("-etcd-cacert %s: no PEM certificate in it", es.cacert)
		}
		cfg.TLS.RootCAs = pool
	}
	if es.cert != "" {
		kp := &keyPair{cert: es.cert, key: es.key, warn: warn}
		if _, err := kp.load(); err != nil {
			return cfg, err
		}
		cfg.TLS.GetClientCertificate = kp.get
	}
	return cfg, nil
}

// isSecureEndpoint reports whether the etcd client speaks TLS to ep.
func isSecureEndpoint(ep string) bool {
	return strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unixs:")
}

// isLocalEndpoint reports whether ep stays on this host: a unix socket or
// a loopback address.
func isLocalEndpoint(ep string) bool {
	if strings.HasPrefix(ep, "unix:") || strings.HasPrefix(ep, "unixs:") {
		return true
	}
	host := ep
	if u, err := url.Parse(ep); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(ep); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readFlagFile reads the file of a flag; failing, a NoInput failure that
// names the flag and the file.
func readFlagFile(flagName, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, failure.Wrap(failure.NoInput, err, "%s", flagName)
	}
	return b, nil
}

// readPassword returns the first line of path, without its line end.
func readPassword(path string, warn func(string)) (string, error) {
	b, err := readFlagFile("-etcd-password-file", path)
	if err != nil {
		return "", err
	}
	warnReadable("-etcd-password-file", path, warn)
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", failure.Perm("-etcd-password-file %s: the first line is empty", path)
	}
	return line, nil
}

// warnReadable warns when group or others may read the secret in path.
func warnReadable(flagName, path string, warn func(string)) {
	fi, err := os.Stat(path)
	if err != nil || warn == nil {
		return
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 {
		warn(fmt.Sprintf("%s %s: group or others may read it (mode %04o); chmod go-r %s", flagName, path, m, path))
	}
}

// keyPair is a client certificate and its key, read again at a TLS
// handshake when either file changed: a certificate renewed in place is
// presented at the next connection, without a restart. A pair that does
// not load then (one file renewed, not yet the other) leaves the last good
// one in use.
type keyPair struct {
	cert, key string
	warn      func(string)

	mu    sync.Mutex
	stamp string
	pair  *tls.Certificate
}

// stamp identifies the versions of both files.
func (kp *keyPair) fileStamp() string {
	var b strings.Builder
	for _, p := range []string{kp.cert, kp.key} {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d.%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// load reads both files.
func (kp *keyPair) load() (*tls.Certificate, error) {
	stamp := kp.fileStamp()
	cb, err := readFlagFile("-etcd-cert", kp.cert)
	if err != nil {
		return nil, err
	}
	kb, err := readFlagFile("-etcd-key", kp.key)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "-etcd-cert %s, -etcd-key %s", kp.cert, kp.key)
	}
	kp.mu.Lock()
	first := kp.pair == nil
	kp.pair, kp.stamp = &pair, stamp
	kp.mu.Unlock()
	if first {
		warnReadable("-etcd-key", kp.key, kp.warn)
	}
	return &pair, nil
}

// get is tls.Config.GetClientCertificate.
func (kp *keyPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	stamp, pair := kp.stamp, kp.pair
	kp.mu.Unlock()
	if kp.fileStamp() == stamp {
		return pair, nil
	}
	fresh, err := kp.load()
	if err != nil {
		if kp.warn != nil {
			kp.warn(fmt.Sprintf("client certificate changed but does not load, presenting the previous one: %v", err))
		}
		return pair, nil
	}
	return fresh, nil
}

// etcdRefusal explains why the cluster does not answer a client of cfg
// when etcd refuses it rather than being down: err is etcd refusing the
// login or the access, or a TLS handshake fails (tlsRefusal). It returns a
// Permanent failure (a configuration to fix), or nil when it finds no
// refusal.
func etcdRefusal(cfg clientv3.Config, err error) error {
	for _, refused := range []error{rpctypes.ErrAuthFailed, rpctypes.ErrPermissionDenied, rpctypes.ErrUserEmpty, rpctypes.ErrUserNotFound, rpctypes.ErrRoleNotFound} {
		if errors.Is(err, refused) {
			return failure.Wrap(failure.Permanent, refused, "etcd refused %s", who(cfg))
		}
	}
	return tlsRefusal(cfg)
}

// tlsRefusal makes a TLS handshake with every endpoint of cfg as the etcd
// client would, and returns the first that fails because one side does
// not trust the other's certificate (a Permanent failure), or nil.
func tlsRefusal(cfg clientv3.Config) error {
	if cfg.TLS == nil {
		return nil
	}
	// At once: an endpoint that does not answer costs its timeout once.
	errs := make([]error, len(cfg.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range cfg.Endpoints {
		wg.Go(func() { errs[i] = tlsHandshake(ep, cfg.TLS) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return failure.Wrap(failure.Permanent, err, "etcd %s", cfg.Endpoints[i])
		}
	}
	return nil
}

// who names the client for etcdRefusal.
func who(cfg clientv3.Config) string {
	if cfg.Username != "" {
		return "user " + cfg.Username
	}
	return "the client (no -etcd-user)"
}

// tlsHandshake makes a TLS handshake with the https:// endpoint ep as the
// etcd client would, and returns why it fails, or nil when it succeeds or
// the endpoint does not answer at all.
func tlsHandshake(ep string, conf *tls.Config) error {
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" || u.Port() == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil // down, not a refusal
	}
	defer raw.Close()
	c := conf.Clone()
	if c.ServerName == "" {
		c.ServerName = u.Hostname()
	}
	c.NextProtos = []string{"h2"}
	conn := tls.Client(raw, c)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	err = conn.HandshakeContext(ctx)
	if err == nil {
		// With TLS 1.3 the server checks the client's certificate after
		// the client's handshake is done: its refusal is an alert that
		// the first read returns. etcd sends nothing first, so a good
		// connection makes the read wait until the deadline.
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
	}
	var verr *tls.CertificateVerificationError
	var rerr tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(err, &verr):
		return fmt.Errorf("the cluster's certificate is not trusted (-etcd-cacert): %w", err)
	case errors.As(err, &oe) && oe.Op == "remote error":
		return fmt.Errorf("the cluster refused the TLS connection (a client certificate it does not trust? -etcd-cert): %w", err)
	case errors.As(err, &rerr):
		return fmt.Errorf("not a TLS server (an http:// URL?): %w", err)
	}
	// Anything else (a reset, a timeout) is no refusal to report.
	return nil
}
