package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/leakguard/leakguard/server"
)

// BuildLeakguard builds the leakguard binary (./cmd/leakguard) of the
// module at repoRoot into dir and returns its path. The Go build cache
// makes a second build take a second or two.
func BuildLeakguard(ctx context.Context, repoRoot, dir string) (string, error) {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	out := filepath.Join(dir, "leakguard")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-ldflags", "-X main.version=lab", "-o", out, "./cmd/leakguard")
	cmd.Dir = repoRoot
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build leakguard: %w\n%s", err, msg)
	}
	return out, nil
}

// Serve is one replica of `leakguard serve`, the built binary, serving
// HTTPS on loopback with the lab's serving certificate and authenticating
// webhook requests with a bearer token.
type Serve struct {
	Name string
	// ProfileDir is its --profile-dir, "" without one.
	ProfileDir string
	addr       string
	token      string
	p          *process
	c          *http.Client
}

// ServeOptions configure StartServe.
type ServeOptions struct {
	// Bin is the leakguard binary (BuildLeakguard).
	Bin string
	// Name names the replica in logs ("serve-1").
	Name string
	// Dir holds its log.
	Dir string
	// Kubeconfig authenticates it to the API server (the service account's
	// token: WriteTokenKubeconfig).
	Kubeconfig string
	// PrometheusURL is what its checks query.
	PrometheusURL string
	// TokenFile holds the webhook bearer token.
	TokenFile string
	// CertFile, KeyFile and CAFile: its serving certificate, and the CA
	// that signed it (to reach it).
	CertFile, KeyFile, CAFile string
	// ProfileDir, when set, is its --profile-dir: where the profile
	// remediator stores what it fetches, listed at GET /profiles.
	ProfileDir string
	// Args are added to serve's flags (--policy FILE, --dry-run).
	Args []string
	// StartTimeout bounds the start until /healthz; 0 means 30 s.
	StartTimeout time.Duration
}

// StartServe starts one replica on a free loopback port.
func StartServe(ctx context.Context, o ServeOptions) (*Serve, error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	ca, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", o.CAFile)
	}
	token, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	var last error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		s := &Serve{Name: o.Name, ProfileDir: o.ProfileDir, addr: freeAddr(), token: strings.TrimSpace(string(token)), c: client}
		var extra []string
		if o.ProfileDir != "" {
			extra = append(extra, "--profile-dir="+o.ProfileDir)
		}
		args := append([]string{"serve",
			"--listen-address=" + s.addr,
			"--kubeconfig=" + o.Kubeconfig,
			"--prometheus-url=" + o.PrometheusURL,
			"--bearer-token-file=" + o.TokenFile,
			"--tls-cert-file=" + o.CertFile,
			"--tls-key-file=" + o.KeyFile,
			"--log-level=info",
		}, append(extra, o.Args...)...)
		// POD_NAME as the Deployment sets it (the downward API): the
		// replica's name, which profile's Event names.
		p, err := startProcess(o.Name, filepath.Join(o.Dir, o.Name+".log"), []string{"POD_NAME=" + o.Name}, o.Bin, args...)
		if err != nil {
			return nil, err
		}
		s.p = p
		last = waitFor(ctx, o.StartTimeout, p, func(ctx context.Context) error {
			return httpOK(ctx, client, s.URL()+"/healthz")
		})
		if last == nil {
			return s, nil
		}
		_ = p.stop()
		if !errors.Is(last, errExited) {
			break
		}
	}
	return nil, fmt.Errorf("lab: %s: %w", o.Name, last)
}

// Addr is the replica's host:port.
func (s *Serve) Addr() string { return s.addr }

// URL is its base URL.
func (s *Serve) URL() string { return "https://" + s.addr }

// LogPath is the file its JSON logs go to.
func (s *Serve) LogPath() string { return s.p.logPath }

// Log is the tail of its log.
func (s *Serve) Log(lines int) string { return s.p.tail(lines) }

// Reload sends the replica SIGHUP: it reloads its --policy and
// --prometheus-config-file files.
func (s *Serve) Reload() error {
	if err := s.p.running(); err != nil {
		return err
	}
	return s.p.cmd.Process.Signal(syscall.SIGHUP)
}

// Stop stops the replica.
func (s *Serve) Stop() error { return s.p.stop() }

// Client is an HTTP client that trusts the replica's certificate.
func (s *Serve) Client() *http.Client { return s.c }

// WebhookAnswers counts the replica's answers to webhook deliveries with
// the HTTP status code, from its own /metrics
// (leakguard_http_request_duration_seconds_count of POST requests).
func (s *Serve) WebhookAnswers(ctx context.Context, code int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	want := fmt.Sprintf(`code="%d"`, code)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "leakguard_http_request_duration_seconds_count{") ||
			!strings.Contains(line, want) || !strings.Contains(line, `method="POST"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum, nil
}

// Profiles lists the profiles the replica stores, from its GET /profiles
// (authenticated with the webhook's bearer token, as serve requires).
func (s *Serve) Profiles(ctx context.Context) ([]server.ProfileInfo, error) {
	body, err := s.getAuthorized(ctx, server.ProfilesPath, 1<<20)
	if err != nil {
		return nil, err
	}
	var list struct {
		Profiles []server.ProfileInfo `json:"profiles"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.Name, server.ProfilesPath, err)
	}
	return list.Profiles, nil
}

// Profile downloads the stored profile name from GET /profiles/{name}.
func (s *Serve) Profile(ctx context.Context, name string) ([]byte, error) {
	return s.getAuthorized(ctx, server.ProfilesPath+"/"+url.PathEscape(name), 64<<20)
}

func (s *Serve) getAuthorized(ctx context.Context, path string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s GET %s: %s: %s", s.Name, path, resp.Status, body)
	}
	return body, nil
}
