package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a CA that signs serving certificates, as cert-manager's CA
// issuer does.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "leakguard webhook CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a serving certificate for leakguard.leakguard.svc with the
// serial, and returns its PEM and its key's PEM.
func (ca testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "leakguard.leakguard.svc"},
		DNSNames:     []string{"leakguard.leakguard.svc"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// secretVolume lays out a Secret volume as the kubelet writes one: the
// files in a timestamped directory, ..data a symlink to it, and each key a
// symlink through ..data. update swaps ..data atomically to a new
// directory (a symlink renamed over it), and removes the old one.
type secretVolume struct {
	t       *testing.T
	dir     string
	version int
}

func newSecretVolume(t *testing.T, files map[string][]byte) *secretVolume {
	t.Helper()
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *secretVolume) update(files map[string][]byte) {
	v.t.Helper()
	v.version++
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	ts := "..2026_12_07_08_00_00." + strings.Repeat("1", v.version)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), data, 0o644); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			v.t.Fatal(err)
		}
	}
}

// TestServeTLSRenewal: a renewal delivered as the kubelet delivers a
// Secret's new content (..data swapped to a new directory holding a new
// certificate from the same CA) is served to new connections, within a
// bounded poll, by the same running server; the client trusts the CA
// alone (ca.crt), as Prometheus and Alertmanager do.
func TestServeTLSRenewal(t *testing.T) {
	ca := newTestCA(t)
	crt1, key1 := ca.issue(t, 1001)
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": crt1, "tls.key": key1, "ca.crt": ca.certPEM})
	cfg := bearerConfig(t)
	cfg.TLSCertFile = filepath.Join(vol.dir, "tls.crt")
	cfg.TLSKeyFile = filepath.Join(vol.dir, "tls.key")
	addr, done, _ := startServer(t, cfg)

	caPEM, err := os.ReadFile(filepath.Join(vol.dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	serial := func() int64 {
		t.Helper()
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "leakguard.leakguard.svc", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS dial %s: %v", addr, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1001 {
		t.Fatalf("serial %d before the renewal, want 1001", got)
	}

	crt2, key2 := ca.issue(t, 1002)
	vol.update(map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": ca.certPEM})
	deadline := time.Now().Add(10 * time.Second)
	for got := serial(); got != 1002; got = serial() {
		if time.Now().After(deadline) {
			t.Fatalf("serial %d 10s after the renewal, want 1002", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the server stopped: %v", err)
	default:
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServePlainHTTPWarns: without a key pair, serve speaks plain HTTP and
// says so at start, as a warning; with one, it does not.
func TestServePlainHTTPWarns(t *testing.T) {
	ca := newTestCA(t)
	crt, key := ca.issue(t, 1)
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		tls      bool
		wantWarn bool
	}{
		{name: "no key pair", wantWarn: true},
		{name: "key pair", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bearerConfig(t)
			if tc.tls {
				cfg.TLSCertFile = writeFile(t, dir, "tls.crt", string(crt))
				cfg.TLSKeyFile = writeFile(t, dir, "tls.key", string(key))
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- ServeListener(ctx, ln, cfg, newTestHandler(t, cfg, &recordingProcessor{}), slog.New(slog.NewTextHandler(&logs, nil)))
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "msg=serving") {
				if time.Now().After(deadline) {
					t.Fatalf("no start log within 10s: %q", logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			warned := strings.Contains(logs.String(), `level=WARN msg="serving plain HTTP`)
			if warned != tc.wantWarn {
				t.Errorf("plain HTTP warning %v, want %v; log:\n%s", warned, tc.wantWarn, logs.String())
			}
		})
	}
}
