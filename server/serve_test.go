package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/internal/tlstest"
)

// startServer runs ServeListener on a loopback port until the test ends and
// returns its address and the channel of its result.
func startServer(t *testing.T, cfg Config) (string, <-chan error, context.CancelFunc) {
	t.Helper()
	h := newTestHandler(t, cfg, &recordingProcessor{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, cfg, h, discardLogger()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("ServeListener did not return within 10s of cancel")
		}
	})
	return ln.Addr().String(), done, cancel
}

// servedCertificate connects with TLS and returns the common name of the
// certificate the server presents, verified against roots.
func servedCertificate(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestServeTLSReload swaps the key pair under a running server and checks
// that new connections get the new certificate, and that a broken pair
// leaves the last good one in force.
func TestServeTLSReload(t *testing.T) {
	dir := t.TempDir()
	first, second, third := tlstest.SelfSigned(t, "first"), tlstest.SelfSigned(t, "second"), tlstest.SelfSigned(t, "third")
	roots := x509.NewCertPool()
	for _, p := range []tlstest.Pair{first, second, third} {
		roots.AddCert(p.Cert)
	}
	cfg := bearerConfig(t)
	cfg.TLSCertFile = writeFile(t, dir, "tls.crt", string(first.CertPEM))
	cfg.TLSKeyFile = writeFile(t, dir, "tls.key", string(first.KeyPEM))
	addr, _, _ := startServer(t, cfg)

	steps := []struct {
		name     string
		cert     []byte // nil leaves the file alone
		key      []byte
		inPlace  bool
		wantName string
	}{
		{name: "initial pair", wantName: "first"},
		{name: "both files replaced", cert: second.CertPEM, key: second.KeyPEM, wantName: "second"},
		{name: "certificate without its key keeps the old pair", cert: third.CertPEM, wantName: "second"},
		{name: "then the key arrives", key: third.KeyPEM, wantName: "third"},
		{name: "garbage keeps the old pair", cert: []byte("not a certificate"), inPlace: true, wantName: "third"},
		{name: "rewritten in place", cert: first.CertPEM, key: first.KeyPEM, inPlace: true, wantName: "first"},
	}
	for _, s := range steps {
		write := func(path string, b []byte) {
			switch {
			case b == nil:
			case s.inPlace:
				writeFile(t, dir, path[len(dir)+1:], string(b))
			default:
				replaceFile(t, path, string(b))
			}
		}
		write(cfg.TLSCertFile, s.cert)
		write(cfg.TLSKeyFile, s.key)
		if got := servedCertificate(t, addr, roots); got != s.wantName {
			t.Errorf("%s: served certificate %q, want %q", s.name, got, s.wantName)
		}
	}

	// And the server answers over TLS.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET https://%s/healthz: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("GET https://%s/healthz = %d %s, want 200 ok", addr, resp.StatusCode, body)
	}
}

// TestServeShutdown checks that plain HTTP serves and that cancelling the
// context shuts down gracefully, letting a request in flight finish.
func TestServeShutdown(t *testing.T) {
	cfg := bearerConfig(t)
	release := make(chan struct{})
	started := make(chan struct{})
	slow := ProcessorFunc(func(context.Context, *Message) (any, error) {
		close(started)
		<-release
		return "done", nil
	})
	h := newTestHandler(t, cfg, slow)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, cfg, h, discardLogger()) }()

	client := &http.Client{Timeout: 10 * time.Second}
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		req := postAlerts([]byte(validPayload("A")))
		req.RequestURI = ""
		req.URL.Scheme, req.URL.Host = "http", ln.Addr().String()
		resp, err := client.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers <- answer{code: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("request did not reach the Processor within 10s")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("ServeListener returned %v while a request was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	a := <-answers
	if a.err != nil || a.code != 200 || a.body != `{"status":"ok","decisions":"done"}`+"\n" {
		t.Errorf("request in flight during shutdown = %d %q %v, want 200 with its decisions", a.code, a.body, a.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeListener after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not return within 10s of cancel")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("dial %s after shutdown succeeded, want the port closed", ln.Addr())
	}
}

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		addr    string
		cfg     Config
		wantErr string
	}{
		{"bad address", "127.0.0.1:notaport", Config{InsecureNoAuth: true}, "listen on 127.0.0.1:notaport"},
		{"missing key pair", "127.0.0.1:0", Config{InsecureNoAuth: true, TLSCertFile: dir + "/no.crt", TLSKeyFile: dir + "/no.key"}, "stat TLS certificate"},
		{"half TLS", "127.0.0.1:0", Config{InsecureNoAuth: true, TLSCertFile: dir + "/no.crt"}, "TLS needs both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Serve(ctx, tt.addr, tt.cfg, http.NotFoundHandler(), discardLogger())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Serve(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Serve(%s) ran until the deadline, want an immediate error", tt.name)
			}
		})
	}
}
