package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// pki is the lab's throwaway key material: one CA that signs the API
// server's serving certificate and the admin's client certificate, and the
// key pair that signs service account tokens. It lives for one lab.
type pki struct {
	caPEM []byte
	// ca and caKey sign the certificates of the real node's components
	// (issueClient).
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey

	// Files handed to kube-apiserver.
	caFile, servingCertFile, servingKeyFile string
	saPublicFile, saPrivateFile             string

	// The admin's client certificate (group system:masters).
	adminCertPEM, adminKeyPEM []byte
}

// certValidity is long enough for any test run and short enough that a
// leaked file is worthless.
const certValidity = 24 * time.Hour

func newPKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "leakguard-e2e-ca"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{caPEM: pemBlock("CERTIFICATE", caDER), ca: ca, caKey: caKey}

	servingCert, servingKey, err := issue(ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	p.adminCertPEM, p.adminKeyPEM, err = issue(ca, caKey, &x509.Certificate{
		SerialNumber: big.NewInt(3),
		// system:masters is bound to cluster-admin by the bootstrap policy.
		Subject:     pkix.Name{CommonName: "leakguard-e2e-admin", Organization: []string{"system:masters"}},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saPriv, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}

	p.caFile = filepath.Join(dir, "ca.crt")
	p.servingCertFile = filepath.Join(dir, "apiserver.crt")
	p.servingKeyFile = filepath.Join(dir, "apiserver.key")
	p.saPublicFile = filepath.Join(dir, "sa.pub")
	p.saPrivateFile = filepath.Join(dir, "sa.key")
	for name, data := range map[string][]byte{
		p.caFile:          p.caPEM,
		p.servingCertFile: servingCert,
		p.servingKeyFile:  servingKey,
		p.saPublicFile:    pemBlock("PUBLIC KEY", saPub),
		p.saPrivateFile:   pemBlock("EC PRIVATE KEY", saPriv),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// issueClient returns a client certificate and key, as PEM, for the user
// name cn in the groups orgs: the identities of the real node's kubelet,
// controller manager and scheduler, and the API server's own towards the
// kubelet.
func (p *pki) issueClient(cn string, orgs ...string) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	return issue(p.ca, p.caKey, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// issue signs tmpl with the CA for a fresh key and returns both as PEM.
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
