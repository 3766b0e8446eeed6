package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/internal/tlstest"
)

// webhookName is the name the webhook's serving certificates are for, as
// cert-manager's CA issuer would sign them.
const webhookName = "leakguard.leakguard.svc"

// issueServing signs a serving certificate of ca for webhookName with the
// serial, and returns its PEM and its key's PEM.
func issueServing(t *testing.T, ca *tlstest.CA, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	p := ca.Issue(t, webhookName, tlstest.Options{Serial: serial, DNSNames: []string{webhookName}})
	return p.CertPEM, p.KeyPEM
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
	ca := tlstest.NewCA(t, "leakguard webhook CA")
	crt1, key1 := issueServing(t, ca, 1001)
	vol := newSecretVolume(t, map[string][]byte{"tls.crt": crt1, "tls.key": key1, "ca.crt": ca.CertPEM})
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

	crt2, key2 := issueServing(t, ca, 1002)
	vol.update(map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": ca.CertPEM})
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
	ca := tlstest.NewCA(t, "leakguard webhook CA")
	crt, key := issueServing(t, ca, 1)
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
