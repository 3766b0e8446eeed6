package promclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"

	"github.com/leakguard/leakguard/internal/tlstest"
)

// TestLoadConfigFile: a good file loads (relative file names beside it);
// a bad one fails naming the flag, the file and the problem, whether
// prometheus/common's loader finds it (unknown field, not YAML, two
// kinds of credentials, a reserved header) or a file it names is missing.
func TestLoadConfigFile(t *testing.T) {
	cfg, err := LoadConfigFile("testdata/good.yml")
	if err != nil {
		t.Fatalf("LoadConfigFile(good.yml) = %v", err)
	}
	if got, want := cfg.BasicAuth.PasswordFile, "testdata/password"; got != want {
		t.Errorf("password_file = %q, want %q (beside the file)", got, want)
	}

	tests := []struct {
		file string
		want string
	}{
		{"absent.yml", "open testdata/absent.yml: no such file or directory"},
		{"unknown-field.yml", "line 3: field pasword not found"},
		{"not-yaml.yml", "yaml: line 1: did not find expected"},
		{"two-auths.yml", "at most one of basic_auth, oauth2 & authorization must be configured"},
		{"reserved-header.yml", `setting header "Authorization" is not allowed`},
		{"missing-password-file.yml", "basic_auth.password_file: open testdata/absent-password: no such file or directory"},
		{"missing-ca-file.yml", "tls_config.ca_file: open /nonexistent/leakguard-ca.crt: no such file or directory"},
		{"missing-header-file.yml", "http_headers.X-Scope-OrgID.files: open testdata/absent-tenant: no such file or directory"},
		{"missing-files.yml", "basic_auth.password_file: open testdata/absent-password: no such file or directory; " +
			"tls_config.ca_file: open testdata/absent-ca.crt: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadConfigFile(path)
			if err == nil {
				t.Fatalf("LoadConfigFile(%s) = nil, want an error", path)
			}
			if prefix := "--prometheus-config-file " + path + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("LoadConfigFile(%s) = %q, want it to start with %q", path, err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadConfigFile(%s) = %q, want it to contain %q", path, err, tt.want)
			}
			// The same error from New, which serve, replay and recommend
			// call at start.
			if _, nerr := New("http://127.0.0.1:9090", path, ""); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("New(%s) = %v, want %q", path, nerr, err)
			}
		})
	}
}

// TestNewRefusesWhatOnlyTheClientFinds: files that load but from which
// prometheus/common cannot build a client (a CA that is no certificate, a
// secret reference without a secret manager) fail New, naming the file.
func TestNewRefusesWhatOnlyTheClientFinds(t *testing.T) {
	for file, want := range map[string]string{
		"bad-ca.yml":     "unable to use specified CA cert",
		"secret-ref.yml": "unable to use credentials: cannot use secret ref without manager",
	} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			_, err := New("http://127.0.0.1:9090", path, "")
			if err == nil {
				t.Fatalf("New(%s) = nil, want an error", path)
			}
			if !strings.HasPrefix(err.Error(), "--prometheus-config-file "+path+": ") || !strings.Contains(err.Error(), want) {
				t.Errorf("New(%s) = %q, want the file named and %q", path, err, want)
			}
		})
	}
}

// TestExampleConfigParses: the commented example under docs/ is a valid
// configuration for prometheus/common (the files it names are the
// example's, absent here).
func TestExampleConfigParses(t *testing.T) {
	cfg, _, err := config.LoadHTTPConfigFile("../docs/prometheus-client.yml")
	if err != nil {
		t.Fatalf("docs/prometheus-client.yml: %v", err)
	}
	if cfg.BasicAuth == nil || cfg.BasicAuth.PasswordFile == "" || cfg.TLSConfig.CAFile == "" || cfg.HTTPHeaders == nil {
		t.Errorf("docs/prometheus-client.yml = %+v, want basic_auth with a password_file, tls_config.ca_file and http_headers", cfg)
	}
}

// TestAuthKinds sends a query with each kind of credentials the file
// offers to a fake Prometheus on loopback and compares what it got.
func TestAuthKinds(t *testing.T) {
	ca := tlstest.NewCA(t, "leakguard-promclient-test-ca")
	dir := t.TempDir()
	password := writeFile(t, dir, "password", "s3cret\n")
	token := writeFile(t, dir, "token", "file-token\n")
	tenant := writeFile(t, dir, "tenant", "tenant-from-file\n")
	clientSecret := writeFile(t, dir, "client-secret", "oauth-secret\n")
	client := ca.Issue(t, "leakguard-client", tlstest.Options{Client: true})
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}

	// The OAuth2 token endpoint: client credentials in, a token out.
	var oauthMu sync.Mutex
	var oauthClient string
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, "want client_credentials", http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		oauthMu.Lock()
		oauthClient = id + ":" + secret
		oauthMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"oauth-token","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(tokenSrv.Close)

	tests := []struct {
		name string
		// config is the file's content; "" means no file.
		config string
		// tls serves HTTPS with the test CA's certificate; mtls also
		// demands a client certificate; proxy sends through a proxy.
		tls, mtls, proxy bool
		want             map[string]string
	}{
		{name: "no file", want: map[string]string{"Authorization": ""}},
		{name: "basic_auth", config: "basic_auth: {username: leakguard, password: inline}",
			want: map[string]string{"Authorization": basic("leakguard", "inline")}},
		{name: "basic_auth password_file", config: "basic_auth: {username: leakguard, password_file: " + password + "}",
			want: map[string]string{"Authorization": basic("leakguard", "s3cret")}},
		{name: "authorization credentials", config: "authorization: {credentials: inline-token}",
			want: map[string]string{"Authorization": "Bearer inline-token"}},
		{name: "authorization credentials_file and type", config: "authorization: {type: Token, credentials_file: " + token + "}",
			want: map[string]string{"Authorization": "Token file-token"}},
		{name: "bearer_token_file", config: "bearer_token_file: " + token,
			want: map[string]string{"Authorization": "Bearer file-token"}},
		{name: "oauth2", config: "oauth2: {client_id: leakguard, client_secret_file: " + clientSecret + ", token_url: " + tokenSrv.URL + "/token}",
			want: map[string]string{"Authorization": "Bearer oauth-token"}},
		{name: "http_headers", config: "http_headers:\n  X-Scope-OrgID: {values: [tenant-a]}\n  X-From-File: {files: [" + tenant + "]}\n  X-Secret: {secrets: [hidden]}",
			want: map[string]string{"X-Scope-Orgid": "tenant-a", "X-From-File": "tenant-from-file", "X-Secret": "hidden", "Authorization": ""}},
		{name: "tls_config ca_file", config: "tls_config: {ca_file: " + ca.CertFile + "}", tls: true,
			want: map[string]string{"Authorization": ""}},
		{name: "tls_config client certificate", config: "tls_config: {ca_file: " + ca.CertFile + ", cert_file: " + client.CertFile + ", key_file: " + client.KeyFile + "}",
			tls: true, mtls: true, want: map[string]string{"Authorization": ""}},
		{name: "proxy_url", config: "proxy_url: PROXY", proxy: true,
			want: map[string]string{"X-Test-Host": "prometheus.invalid:9090"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prom := &fakeProm{}
			srv := httptest.NewUnstartedServer(prom)
			if tt.tls {
				srv.TLS = ca.ServerConfig(t, "prometheus", tt.mtls)
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			url, content := srv.URL, tt.config
			if tt.proxy {
				// The proxy answers for Prometheus: an address that
				// resolves nowhere is reached through it alone.
				url, content = "http://prometheus.invalid:9090", strings.ReplaceAll(content, "PROXY", srv.URL)
			}
			file := ""
			if content != "" {
				file = writeFile(t, t.TempDir(), "prometheus-client.yml", content)
			}
			c, err := New(url, file, "leakguard/test")
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			query42(t, c)
			got := prom.last()
			for k, want := range tt.want {
				if g := got.Get(k); g != want {
					t.Errorf("%s = %q, want %q", k, g, want)
				}
			}
			if tt.mtls && prom.requests() == 0 {
				t.Error("no request with a client certificate")
			}
			if file != "" && got.Get("User-Agent") != "leakguard/test" {
				t.Errorf("User-Agent = %q, want leakguard/test", got.Get("User-Agent"))
			}
		})
	}
	oauthMu.Lock()
	defer oauthMu.Unlock()
	if oauthClient != "leakguard:oauth-secret" {
		t.Errorf("the token endpoint got client %q, want leakguard:oauth-secret", oauthClient)
	}
}

// TestTLSWithoutTheCA: without the CA (no file, or a file without
// tls_config) the certificate does not verify and the error says where
// the CA goes; with a client certificate missing, the server refuses the
// handshake.
func TestTLSWithoutTheCA(t *testing.T) {
	ca := tlstest.NewCA(t, "leakguard-promclient-test-ca")
	prom := &fakeProm{}
	srv := httptest.NewUnstartedServer(prom)
	srv.TLS = ca.ServerConfig(t, "prometheus", false)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	withHeader := writeFile(t, t.TempDir(), "c.yml", "http_headers: {X-Scope-OrgID: {values: [tenant-a]}}")
	for name, file := range map[string]string{"no file": "", "file without tls_config": withHeader} {
		t.Run(name, func(t *testing.T) {
			c, err := New(srv.URL, file, "")
			if err != nil {
				t.Fatal(err)
			}
			err = tryQuery42(c)
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "tls_config.ca_file") {
				t.Errorf("query = %v, want an unknown-authority error naming tls_config.ca_file", err)
			}
			if prom.requests() != 0 {
				t.Errorf("Prometheus got %d requests over an unverified connection", prom.requests())
			}
		})
	}
}

// TestRefusedQueries: a 401 or 403, from Prometheus or a proxy in front
// of it, is an AuthError that says who refused, the answer and where the
// credentials came from, and still wraps client_golang's error (a
// permanent 4xx for remediate's classification); other errors are not.
func TestRefusedQueries(t *testing.T) {
	file := writeFile(t, t.TempDir(), "c.yml", "basic_auth: {username: leakguard, password: wrong}")
	tests := []struct {
		name, file string
		status     int
		body       string
		want       []string
		auth       bool
	}{
		{"401 without a file", "", http.StatusUnauthorized, "no org id\n", []string{
			"refused the query: 401 Unauthorized", `("no org id")`, "none were sent: give them in a --prometheus-config-file"}, true},
		{"401 with a file", file, http.StatusUnauthorized, "Unauthorized", []string{
			"refused the query: 401 Unauthorized", "check the credentials and headers of --prometheus-config-file " + file}, true},
		{"403", file, http.StatusForbidden, strings.Repeat("x", 300), []string{
			"403 Forbidden", strings.Repeat("x", maxBody) + "...\""}, true},
		{"500", file, http.StatusInternalServerError, "boom", []string{"server error: 500"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prom := &fakeProm{status: tt.status, body: tt.body}
			srv := httptest.NewServer(prom)
			t.Cleanup(srv.Close)
			c, err := New(srv.URL, tt.file, "")
			if err != nil {
				t.Fatal(err)
			}
			err = tryQuery42(c)
			if err == nil {
				t.Fatal("query = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("query = %q, want it to contain %q", err, w)
				}
			}
			var authErr *AuthError
			if got := errors.As(err, &authErr); got != tt.auth {
				t.Errorf("errors.As(%v, *AuthError) = %v, want %v", err, got, tt.auth)
			}
			var apiErr *v1.Error
			if !errors.As(err, &apiErr) || apiErr.Type != v1.ErrClient && tt.auth {
				t.Errorf("errors.As(%v, *v1.Error) = %v, want client_golang's client error", err, apiErr)
			}
			// The range query says the same.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, _, rerr := c.QueryRange(ctx, "vector(42)", v1.Range{Start: time.Now().Add(-time.Minute), End: time.Now(), Step: time.Minute})
			if rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("QueryRange = %v, want %q", rerr, err)
			}
		})
	}
}

// TestSecretFileReread: prometheus/common reads password_file on every
// request: a rotated password is sent from the next query on, with no
// reload.
func TestSecretFileReread(t *testing.T) {
	prom := &fakeProm{}
	srv := httptest.NewServer(prom)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writeFile(t, dir, "password", "first")
	c, err := New(srv.URL, writeFile(t, dir, "c.yml", "basic_auth: {username: leakguard, password_file: password}"), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range []string{"first", "second"} {
		writeFile(t, dir, "password", p)
		query42(t, c)
		_, pass, _ := (&http.Request{Header: prom.last()}).BasicAuth()
		got = append(got, pass)
	}
	if diff := cmp.Diff([]string{"first", "second"}, got); diff != "" {
		t.Errorf("passwords sent (-want +got):\n%s", diff)
	}
}

// TestReload: Reload reads the file again; a bad file keeps the running
// client, and says so naming the file; without a file, Reload does
// nothing.
func TestReload(t *testing.T) {
	prom := &fakeProm{}
	srv := httptest.NewServer(prom)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	file := writeFile(t, dir, "c.yml", "http_headers: {X-Scope-OrgID: {values: [tenant-a]}}")
	c, err := New(srv.URL, file, "")
	if err != nil {
		t.Fatal(err)
	}
	tenant := func() string {
		t.Helper()
		query42(t, c)
		return prom.last().Get("X-Scope-OrgID")
	}
	var got []string
	got = append(got, tenant())
	writeFile(t, dir, "c.yml", "http_headers: {X-Scope-OrgID: {values: [tenant-b]}}")
	got = append(got, tenant()) // not reloaded yet
	if err := c.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	got = append(got, tenant())
	writeFile(t, dir, "c.yml", "http_headers: {X-Scope-OrgID: {valuez: [tenant-c]}}")
	err = c.Reload()
	if err == nil || !strings.Contains(err.Error(), "keeping the running Prometheus client: --prometheus-config-file "+file+": ") ||
		!strings.Contains(err.Error(), "field valuez not found") {
		t.Errorf("Reload() of a bad file = %v, want it to keep the running client, naming the file and the field", err)
	}
	got = append(got, tenant())
	if diff := cmp.Diff([]string{"tenant-a", "tenant-a", "tenant-b", "tenant-b"}, got); diff != "" {
		t.Errorf("X-Scope-OrgID sent (-want +got):\n%s", diff)
	}

	none, err := New(srv.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := none.Reload(); err != nil {
		t.Errorf("Reload() without a file = %v, want nil", err)
	}
}

// TestReloadOnSignal: each signal reloads the file and logs the outcome;
// a bad file is logged as a failure and the running client goes on.
func TestReloadOnSignal(t *testing.T) {
	prom := &fakeProm{}
	srv := httptest.NewServer(prom)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	file := writeFile(t, dir, "c.yml", "http_headers: {X-Scope-OrgID: {values: [tenant-a]}}")
	c, err := New(srv.URL, file, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal)
	done := make(chan struct{})
	go func() {
		c.ReloadOnSignal(ctx, sig, logger)
		close(done)
	}()

	writeFile(t, dir, "c.yml", "http_headers: {X-Scope-OrgID: {values: [tenant-b]}}")
	sig <- os.Interrupt // unbuffered: received once this returns
	waitLog(t, &logs, `"msg":"prometheus client config reloaded"`)
	query42(t, c)
	if got := prom.last().Get("X-Scope-OrgID"); got != "tenant-b" {
		t.Errorf("after a reload X-Scope-OrgID = %q, want tenant-b", got)
	}

	writeFile(t, dir, "c.yml", "not: [valid")
	sig <- os.Interrupt
	waitLog(t, &logs, `"msg":"prometheus client config reload failed"`)
	query42(t, c)
	if got := prom.last().Get("X-Scope-OrgID"); got != "tenant-b" {
		t.Errorf("after a failed reload X-Scope-OrgID = %q, want tenant-b (the running client)", got)
	}
	cancel()
	<-done
}

// syncBuffer is a bytes.Buffer for a logger in another goroutine.
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

// waitLog polls logs until it holds want, for at most 10 s.
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %s in:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
