package tlstest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// Each certificate verifies against the pool that should trust it, for the
// use and the name it is for, and not for another; its files hold its PEM.
func TestCertificatesVerify(t *testing.T) {
	ca := NewCA(t, "test CA")
	other := NewCA(t, "other CA")
	serving := ca.Serving(t, "server")
	client := ca.Issue(t, "client", Options{Client: true})
	named := ca.Issue(t, "webhook", Options{Serial: 1001, DNSNames: []string{"leakguard.leakguard.svc"}})
	self := SelfSigned(t, "self")
	selfRoots := x509.NewCertPool()
	selfRoots.AddCert(self.Cert)

	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		roots   *x509.CertPool
		dnsName string
		usage   []x509.ExtKeyUsage
		ok      bool
	}{
		{"serving for 127.0.0.1", serving.Cert, ca.Pool(), "127.0.0.1", server, true},
		{"serving for localhost", serving.Cert, ca.Pool(), "localhost", server, true},
		{"serving for another host", serving.Cert, ca.Pool(), "example.com", server, false},
		{"serving, another CA's pool", serving.Cert, other.Pool(), "127.0.0.1", server, false},
		{"serving is no client certificate", serving.Cert, ca.Pool(), "", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false},
		{"client", client.Cert, ca.Pool(), "", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true},
		{"client is no serving certificate", client.Cert, ca.Pool(), "", server, false},
		{"named by its DNS name", named.Cert, ca.Pool(), "leakguard.leakguard.svc", server, true},
		{"self-signed, trusted alone", self.Cert, selfRoots, "127.0.0.1", server, true},
		{"self-signed, not by a CA", self.Cert, ca.Pool(), "127.0.0.1", server, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cert.Verify(x509.VerifyOptions{Roots: tt.roots, DNSName: tt.dnsName, KeyUsages: tt.usage})
			if (err == nil) != tt.ok {
				t.Errorf("Verify() = %v, want ok %v", err, tt.ok)
			}
		})
	}

	if got := named.Cert.SerialNumber.Int64(); got != 1001 {
		t.Errorf("serial = %d, want the 1001 asked for", got)
	}
	if s, c := serving.Cert.SerialNumber.Int64(), client.Cert.SerialNumber.Int64(); s < 2 || c <= s {
		t.Errorf("serials %d then %d, want increasing from 2 (the CA's is 1)", s, c)
	}
	for _, f := range []struct {
		path string
		want []byte
	}{
		{ca.CertFile, ca.CertPEM}, {serving.CertFile, serving.CertPEM}, {serving.KeyFile, serving.KeyPEM},
		{self.CertFile, self.CertPEM}, {self.KeyFile, self.KeyPEM},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil || !bytes.Equal(b, f.want) {
			t.Errorf("%s holds %q (%v), want its PEM", f.path, b, err)
		}
	}
	for _, p := range []Pair{serving, client, named, self} {
		if _, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile); err != nil {
			t.Errorf("LoadX509KeyPair(%s) = %v", p.Cert.Subject.CommonName, err)
		}
	}
}

// ServerConfig serves on loopback to a client trusting the CA; with client
// authentication it refuses a client without a certificate of the CA.
func TestServerConfigHandshake(t *testing.T) {
	ca := NewCA(t, "test CA")
	client := ca.Issue(t, "client", Options{Client: true})
	clientPair, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		clientAuth bool
		certs      []tls.Certificate
		ok         bool
	}{
		{name: "server only", ok: true},
		{name: "mutual, with a client certificate", clientAuth: true, certs: []tls.Certificate{clientPair}, ok: true},
		{name: "mutual, without one", clientAuth: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(t, "server", tt.clientAuth))
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					served <- err
					return
				}
				_, err = conn.Write([]byte("ok"))
				served <- err
			}()
			d := &net.Dialer{Timeout: 10 * time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: tt.certs, MinVersion: tls.VersionTLS12})
			if err == nil {
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				// TLS 1.3 reports a refused client certificate on the
				// first read, not in the client's handshake.
				var b [2]byte
				_, err = io.ReadFull(conn, b[:])
				conn.Close()
			}
			ln.Close() // an Accept still waiting (no connection came) returns
			serr := <-served
			if tt.ok && (err != nil || serr != nil) {
				t.Errorf("handshake: client %v, server %v; want both fine", err, serr)
			}
			if !tt.ok && (err == nil || serr == nil) {
				t.Errorf("handshake: client %v, server %v; want both refused", err, serr)
			}
		})
	}
}
