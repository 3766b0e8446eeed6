package promclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/leakguard/leakguard/internal/tlstest"
)

// TestRealPrometheusBehindAuth runs the client that serve's checks and
// recommend query through (New, as promQuerier and promRangeAPI build it)
// against Debian's Prometheus started with --web.config.file requiring
// TLS and basic auth, directly and through a reverse proxy on loopback
// that demands a tenant header as Mimir does (X-Scope-OrgID: tenant-a;
// 401 "no org id" without it).
func TestRealPrometheusBehindAuth(t *testing.T) {
	bin := prometheusBinary(t)
	ca := tlstest.NewCA(t, "leakguard-promclient-test-ca")
	dir := t.TempDir()
	const user, password = "leakguard", "correct horse"
	prom := startAuthPrometheus(t, bin, dir, ca, user, password)

	// The proxy: TLS with a certificate of the test CA (and a plain HTTP
	// twin), passing the request on, credentials and all, to Prometheus
	// over TLS, once it carries the tenant.
	target, err := url.Parse(prom)
	if err != nil {
		t.Fatal(err)
	}
	var tenantsMu sync.Mutex
	var tenants []string
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		},
	}
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.Header.Get("X-Scope-OrgID")
		if tenant != "tenant-a" {
			http.Error(w, "no org id", http.StatusUnauthorized)
			return
		}
		tenantsMu.Lock()
		tenants = append(tenants, tenant)
		tenantsMu.Unlock()
		rp.ServeHTTP(w, r)
	})
	tlsProxy := httptest.NewUnstartedServer(proxy)
	tlsProxy.TLS = ca.ServerConfig(t, "proxy", false)
	tlsProxy.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	tlsProxy.StartTLS()
	t.Cleanup(tlsProxy.Close)
	plainProxy := httptest.NewServer(proxy)
	t.Cleanup(plainProxy.Close)

	passwordFile := writeFile(t, dir, "password", password+"\n")
	wrongFile := writeFile(t, dir, "wrong-password", "battery staple\n")
	config := func(name string, lines ...string) string {
		return writeFile(t, dir, name, strings.Join(lines, "\n")+"\n")
	}
	caLine := "tls_config: {ca_file: " + ca.CertFile + "}"
	authLine := "basic_auth: {username: " + user + ", password_file: " + passwordFile + "}"
	tenantLine := "http_headers: {X-Scope-OrgID: {values: [tenant-a]}}"
	full := config("full.yml", authLine, caLine, tenantLine)

	t.Run("direct: TLS and basic auth", func(t *testing.T) {
		c := mustNew(t, prom, config("direct.yml", authLine, caLine))
		query42(t, c)
		rangeQuery(t, c)
	})
	t.Run("through the proxy: TLS, basic auth and the tenant", func(t *testing.T) {
		tenantsMu.Lock()
		before := len(tenants)
		tenantsMu.Unlock()
		c := mustNew(t, tlsProxy.URL, full)
		query42(t, c)
		rangeQuery(t, c)
		tenantsMu.Lock()
		defer tenantsMu.Unlock()
		if len(tenants) <= before {
			t.Error("the proxy passed no request on")
		}
	})

	refused := []struct {
		name, url, file string
		want            []string
	}{
		{"no config file, plain proxy", plainProxy.URL, "", []string{
			"Prometheus at " + plainProxy.URL + " refused the query: 401 Unauthorized", `("no org id")`, "none were sent"}},
		{"no tenant header", tlsProxy.URL, config("no-tenant.yml", authLine, caLine), []string{
			"401 Unauthorized", `("no org id")`, "check the credentials and headers of --prometheus-config-file"}},
		{"no credentials", prom, config("ca-only.yml", caLine), []string{
			"Prometheus at " + prom + " refused the query: 401 Unauthorized", `("Unauthorized")`}},
		{"wrong password, through the proxy", tlsProxy.URL, config("wrong.yml",
			"basic_auth: {username: "+user+", password_file: "+wrongFile+"}", caLine, tenantLine), []string{
			"401 Unauthorized", `("Unauthorized")`, "--prometheus-config-file " + filepath.Join(dir, "wrong.yml")}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := tryQuery42(mustNew(t, tt.url, tt.file))
			t.Logf("query: %v", err)
			var authErr *AuthError
			if !errors.As(err, &authErr) || authErr.Status != http.StatusUnauthorized {
				t.Fatalf("query = %v, want an AuthError with 401", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("query = %q, want it to contain %q", err, w)
				}
			}
		})
	}

	t.Run("no config file, TLS", func(t *testing.T) {
		for _, u := range []string{prom, tlsProxy.URL} {
			err := tryQuery42(mustNew(t, u, ""))
			t.Logf("query of %s: %v", u, err)
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "tls_config.ca_file") {
				t.Errorf("query of %s = %v, want an unknown-authority error naming tls_config.ca_file", u, err)
			}
		}
	})

	t.Run("rotated password file, no reload", func(t *testing.T) {
		rotating := writeFile(t, dir, "rotating-password", "battery staple\n")
		c := mustNew(t, tlsProxy.URL, config("rotating.yml",
			"basic_auth: {username: "+user+", password_file: "+rotating+"}", caLine, tenantLine))
		var authErr *AuthError
		if err := tryQuery42(c); !errors.As(err, &authErr) {
			t.Fatalf("query with the old password = %v, want an AuthError", err)
		}
		writeFile(t, dir, "rotating-password", password+"\n")
		query42(t, c)
	})
}

// prometheusBinary finds Debian's prometheus on PATH. Without it the test
// skips, unless LEAKGUARD_E2E=1 or CI is set (.ci/run installs it), when
// it fails.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err == nil {
		return p
	}
	if os.Getenv("LEAKGUARD_E2E") == "1" || os.Getenv("CI") != "" {
		t.Fatalf("prometheus not on PATH (Debian: apt-get install prometheus): %v", err)
	}
	t.Skipf("prometheus not on PATH (Debian: apt-get install prometheus); set LEAKGUARD_E2E=1 to make this a failure")
	return ""
}

// startAuthPrometheus starts prometheus on a loopback port with a web
// configuration that serves TLS with a certificate of ca and wants basic
// auth of user (a bcrypt hash of password), waits until /-/ready answers
// to those credentials, and returns its https URL. It stops with the test.
// A start that exits before it is ready (the port, free a moment before,
// taken by another process) is tried again on another port, three times
// at most.
func startAuthPrometheus(t *testing.T, bin, dir string, ca *tlstest.CA, user, password string) string {
	t.Helper()
	serving := ca.Serving(t, "prometheus")
	// The lowest cost: Prometheus checks the hash on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := writeFile(t, dir, "web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %q\n",
		serving.CertFile, serving.KeyFile, user, hash))
	cfg := writeFile(t, dir, "prometheus.yml", "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}},
	}
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		addr := freeLoopbackAddr(t)
		var exited bool
		exited, last = runAuthPrometheus(t, bin, dir, cfg, web, addr, attempt, func() error {
			req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/-/ready", nil)
			if err != nil {
				return err
			}
			req.SetBasicAuth(user, password)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /-/ready: %s", resp.Status)
			}
			return nil
		})
		if last == nil {
			return "https://" + addr
		}
		if !exited {
			break
		}
	}
	t.Fatal(last)
	return ""
}

// runAuthPrometheus starts prometheus on addr and polls ready until it
// succeeds, for 60 s at most. It reports whether prometheus exited
// before, and the error then. A started prometheus stops with the test.
func runAuthPrometheus(t *testing.T, bin, dir, cfg, web, addr string, attempt int, ready func() error) (exited bool, err error) {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--web.config.file="+web,
		"--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--log.level=info",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Prometheus dies with the test binary, even one killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return true, fmt.Errorf("prometheus on %s exited before it was ready:\n%s", addr, tail())
		default:
		}
		err := ready()
		if err == nil {
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("prometheus on %s not ready after 60 s: %w\n%s", addr, err, tail())
		}
		<-tick.C
	}
}

// freeLoopbackAddr returns a loopback address whose port was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// mustNew is New or a fatal error.
func mustNew(t *testing.T, url, file string) *Client {
	t.Helper()
	c, err := New(url, file, "leakguard/test")
	if err != nil {
		t.Fatalf("New(%s, %q): %v", url, file, err)
	}
	return c
}

// rangeQuery runs vector(42) over a minute through c's QueryRange
// (recommend's reads) and wants 42 at each step.
func rangeQuery(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	end := time.Now()
	v, _, _, err := c.QueryRange(ctx, "vector(42)", v1.Range{Start: end.Add(-time.Minute), End: end, Step: 15 * time.Second})
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	m, ok := v.(model.Matrix)
	if !ok || len(m) != 1 || len(m[0].Values) == 0 {
		t.Fatalf("QueryRange(vector(42)) = %v, want one series", v)
	}
	for _, p := range m[0].Values {
		if p.Value != 42 {
			t.Errorf("QueryRange(vector(42)) has %v, want 42", p)
		}
	}
}
