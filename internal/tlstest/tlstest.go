// Package tlstest makes throwaway certificates for tests: a certificate
// authority that signs serving and client certificates, and self-signed
// serving certificates. Keys are ECDSA P-256 in PKCS #8; every certificate
// and key is PEM-encoded and also written to a file of the test's
// temporary directory, for the configurations that name files. A
// certificate is valid from an hour before it was made, a CA's for a day
// and the others' for an hour.
//
// Only tests import it: it fails the test it is given on any error.
package tlstest

import (
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
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority for one test.
type CA struct {
	// Cert is the CA's certificate, CertPEM its PEM encoding and CertFile
	// the file holding it (a ca_file, a ca.crt).
	Cert     *x509.Certificate
	CertPEM  []byte
	CertFile string

	key *ecdsa.PrivateKey
	dir string

	mu     sync.Mutex
	serial int64 // the last serial number given
}

// Pair is a certificate and its key, PEM-encoded and in files.
type Pair struct {
	Cert              *x509.Certificate
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// Options shape a certificate that Issue signs.
type Options struct {
	// Serial is the certificate's serial number; 0 takes the CA's next
	// one (the CA's own is 1).
	Serial int64
	// DNSNames and IPs are the names a serving certificate is for.
	DNSNames []string
	IPs      []net.IP
	// Client makes a client certificate (client authentication) instead
	// of a serving one (server authentication).
	Client bool
}

// NewCA makes a CA named commonName, with its certificate written to
// CertFile in a temporary directory of t.
func NewCA(t testing.TB, commonName string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, certPEM := create(t, tmpl, tmpl, key, key)
	ca := &CA{Cert: cert, CertPEM: certPEM, key: key, dir: t.TempDir(), serial: 1}
	ca.CertFile = writeFile(t, ca.dir, "ca.crt", certPEM)
	return ca
}

// Pool is a certificate pool holding the CA alone, as a client or a
// server that trusts it alone holds it.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a certificate for commonName as o says, valid for an hour,
// and writes it and its key to files beside the CA's.
func (ca *CA) Issue(t testing.TB, commonName string, o Options) Pair {
	t.Helper()
	ca.mu.Lock()
	serial := o.Serial
	if serial == 0 {
		ca.serial++
		serial = ca.serial
	}
	ca.mu.Unlock()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	key := newKey(t)
	cert, certPEM := create(t, tmpl, ca.Cert, key, ca.key)
	return pair(t, ca.dir, fmt.Sprintf("%s-%d", commonName, serial), cert, certPEM, key)
}

// Serving is a serving certificate of the CA for a server on loopback:
// named commonName, for 127.0.0.1 and localhost.
func (ca *CA) Serving(t testing.TB, commonName string) Pair {
	t.Helper()
	return ca.Issue(t, commonName, Options{DNSNames: []string{"localhost"}, IPs: []net.IP{loopback()}})
}

// ServerConfig is a TLS configuration serving a certificate of the CA for
// a server on loopback (Serving); with clientAuth it also demands a client
// certificate of the CA.
func (ca *CA) ServerConfig(t testing.TB, commonName string, clientAuth bool) *tls.Config {
	t.Helper()
	p := ca.Serving(t, commonName)
	kp, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatalf("tlstest: key pair of %s: %v", commonName, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	if clientAuth {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	}
	return cfg
}

// SelfSigned is a serving certificate for 127.0.0.1 named commonName that
// signs itself: a client trusts it alone by adding Cert to its roots. Its
// serial number is random, and its files are in a temporary directory of t.
func SelfSigned(t testing.TB, commonName string) Pair {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{loopback()},
	}
	key := newKey(t)
	cert, certPEM := create(t, tmpl, tmpl, key, key)
	return pair(t, t.TempDir(), commonName, cert, certPEM, key)
}

// loopback is the address the serving certificates of Serving and
// SelfSigned are for: the tests' servers listen on loopback only.
func loopback() net.IP { return net.IPv4(127, 0, 0, 1) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return key
}

// create signs tmpl for key with the parent's signer and returns the
// certificate, parsed and PEM-encoded.
func create(t testing.TB, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatalf("tlstest: create certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// pair encodes key, and writes the certificate and the key to
// dir/name.crt and dir/name.key.
func pair(t testing.TB, dir, name string, cert *x509.Certificate, certPEM []byte, key *ecdsa.PrivateKey) Pair {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: encode key of %s: %v", name, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return Pair{
		Cert:     cert,
		CertPEM:  certPEM,
		KeyPEM:   keyPEM,
		CertFile: writeFile(t, dir, name+".crt", certPEM),
		KeyFile:  writeFile(t, dir, name+".key", keyPEM),
	}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return path
}
