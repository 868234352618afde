package etcdtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority made for a test: an ECDSA P-256 key and a
// self-signed certificate valid for a day, written to CertFile.
type CA struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertFile string
	dir      string
}

// NewCA makes a CA named name and writes its certificate to
// dir/name.crt.
func NewCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, Key: key, CertFile: filepath.Join(dir, name+".crt"), dir: dir}
	if err := writePEM(ca.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue makes a certificate signed by the CA, with common name cn, and
// writes it and its key to the CA's directory as name.crt and name.key
// (mode 0600). A server certificate is for 127.0.0.1, ::1 and localhost
// (and may also authenticate as a client, as etcd's gateway does with
// it); any other is a client certificate only.
func (ca *CA) Issue(name, cn string, server bool) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", kder, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// Certs are the files of a cluster started with Options.TLS: its CA, the
// members' server certificate, and a client certificate (common name
// ClientCN) that the members accept.
type Certs struct {
	CA                    *CA
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	ClientCN              string
}

// newCerts makes the CA and certificates of a TLS cluster in dir.
func newCerts(dir string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA(dir, "ca")
	if err != nil {
		return nil, err
	}
	c := &Certs{CA: ca, ClientCN: "mapdrop-test-client"}
	if c.ServerCert, c.ServerKey, err = ca.Issue("server", "etcd-test-server", true); err != nil {
		return nil, err
	}
	if c.ClientCert, c.ClientKey, err = ca.Issue("client", c.ClientCN, false); err != nil {
		return nil, err
	}
	return c, nil
}

// ClientTLS is the TLS configuration of a client of the cluster: it trusts
// the CA and presents the client certificate.
func (c *Certs) ClientTLS() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.CA.Cert)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	return nil
}
