// Package promclient builds leakguard's client of the Prometheus HTTP API:
// the one serve's and replay's checks query and recommend reads. It takes
// the API's base URL (--prometheus-url) and, optionally, an HTTP client
// configuration file (--prometheus-config-file) in prometheus/common's
// format, the one of promtool's --http.config.file: basic auth,
// authorization (a bearer token), OAuth2, TLS (a CA, a client certificate),
// a proxy and custom headers such as Mimir's and Cortex's X-Scope-OrgID.
//
// prometheus/common loads, validates and applies the file; this package
// adds what a long-running receiver needs around it: a start that fails on
// a file it names, a reload that keeps the running client when the new
// file is bad, and errors that say which side refused a query.
package promclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// FlagName is the command-line flag that names the configuration file,
// as errors name it.
const FlagName = "prometheus-config-file"

// LoadConfigFile reads path with prometheus/common's own loader
// (config.LoadHTTPConfigFile: strict YAML, so an unknown field is an
// error, and the configuration's own validation; relative file names are
// taken from path's directory) and checks that every file it names can be
// read now. prometheus/common reads the secret files (password_file,
// credentials_file, client_secret_file, the headers' files) on every
// request and the TLS files whenever they change; checking them here makes
// a missing one fail at start, naming it, rather than at the first query.
// Every error names path.
func LoadConfigFile(path string) (*config.HTTPClientConfig, error) {
	cfg, _, err := config.LoadHTTPConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", FlagName, path, err)
	}
	var errs fileErrors
	for _, f := range referencedFiles(cfg) {
		if err := readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("--%s %s: %w", FlagName, path, errs)
	}
	return cfg, nil
}

// fileErrors are the files of a configuration that cannot be read, on one
// line (errors.Join would put each on its own).
type fileErrors []error

// Error joins the errors with "; ".
func (e fileErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the errors.
func (e fileErrors) Unwrap() []error { return e }

// fileRef is a file a configuration names, and the field that names it.
type fileRef struct{ field, path string }

// referencedFiles lists the files cfg names, by field as the YAML spells
// it. bearer_token_file is listed as authorization.credentials_file:
// config.HTTPClientConfig's validation has moved it there.
func referencedFiles(cfg *config.HTTPClientConfig) []fileRef {
	var refs []fileRef
	add := func(field, path string) {
		if path != "" {
			refs = append(refs, fileRef{field, path})
		}
	}
	tlsFiles := func(prefix string, t config.TLSConfig) {
		add(prefix+"tls_config.ca_file", t.CAFile)
		add(prefix+"tls_config.cert_file", t.CertFile)
		add(prefix+"tls_config.key_file", t.KeyFile)
	}
	if b := cfg.BasicAuth; b != nil {
		add("basic_auth.username_file", b.UsernameFile)
		add("basic_auth.password_file", b.PasswordFile)
	}
	if a := cfg.Authorization; a != nil {
		add("authorization.credentials_file", a.CredentialsFile)
	}
	add("bearer_token_file", cfg.BearerTokenFile)
	if o := cfg.OAuth2; o != nil {
		add("oauth2.client_secret_file", o.ClientSecretFile)
		add("oauth2.client_certificate_key_file", o.ClientCertificateKeyFile)
		tlsFiles("oauth2.", o.TLSConfig)
	}
	tlsFiles("", cfg.TLSConfig)
	if h := cfg.HTTPHeaders; h != nil {
		for name, header := range h.Headers {
			for _, f := range header.Files {
				add("http_headers."+name+".files", f)
			}
		}
	}
	return refs
}

// readable opens path for reading and closes it.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// Client is the Prometheus HTTP API client of one URL. It implements
// remediate.Querier and recommend.API. With a configuration file, Reload
// rebuilds it from the file; queries in flight finish on the client they
// started with.
type Client struct {
	url, file, userAgent string
	cur                  atomic.Pointer[conn]
}

// conn is one built client.
type conn struct {
	api  v1.API
	http *http.Client
}

// New builds the client of the Prometheus HTTP API at url. file is the
// HTTP client configuration file; "" means none: client_golang's default
// transport, as before the flag existed (no credentials; a proxy from
// HTTPS_PROXY and the like; the system's CAs). With a file, the file
// decides all of that, as for promtool (a proxy from the environment only
// with proxy_from_environment: true). userAgent is sent with a file's
// client ("" sends Go's default).
func New(url, file, userAgent string) (*Client, error) {
	c := &Client{url: url, file: file, userAgent: userAgent}
	cn, err := c.build()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cn)
	return c, nil
}

// build makes a conn from the flags, reading the file anew.
func (c *Client) build() (*conn, error) {
	hc := &http.Client{Transport: api.DefaultRoundTripper}
	if c.file != "" {
		cfg, err := LoadConfigFile(c.file)
		if err != nil {
			return nil, err
		}
		var opts []config.HTTPClientOption
		if c.userAgent != "" {
			opts = append(opts, config.WithUserAgent(c.userAgent))
		}
		// config.NewClientFromConfig reads the TLS files now (a CA that
		// does not parse fails here) and wraps the secrets in readers
		// that read their files on every request.
		hc, err = config.NewClientFromConfig(*cfg, "prometheus", opts...)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", FlagName, c.file, err)
		}
	}
	hc.Transport = statusTransport{hc.Transport}
	ac, err := api.NewClient(api.Config{Address: c.url, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", c.url, err)
	}
	return &conn{api: v1.NewAPI(ac), http: hc}, nil
}

// ConfigFile is the configuration file the client was built from; "" for
// none.
func (c *Client) ConfigFile() string { return c.file }

// Reload rebuilds the client from its configuration file. A file that
// fails to load or to build a client changes nothing: the running client
// goes on (it fails closed to the last good configuration, not to none).
// Without a file there is nothing to reload.
func (c *Client) Reload() error {
	if c.file == "" {
		return nil
	}
	next, err := c.build()
	if err != nil {
		return fmt.Errorf("keeping the running Prometheus client: %w", err)
	}
	old := c.cur.Swap(next)
	old.http.CloseIdleConnections()
	return nil
}

// ReloadOnSignal calls Reload for every value received on sig (SIGHUP,
// as the caller arranges with signal.Notify) until ctx is done, logging
// the outcome. Without a configuration file it only drains sig.
func (c *Client) ReloadOnSignal(ctx context.Context, sig <-chan os.Signal, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			if c.file == "" {
				continue
			}
			if err := c.Reload(); err != nil {
				logger.Error("prometheus client config reload failed", "signal", fmt.Sprint(s), "file", c.file, "error", err)
				continue
			}
			logger.Info("prometheus client config reloaded", "signal", fmt.Sprint(s), "file", c.file)
		}
	}
}

// Query runs an instant query.
func (c *Client) Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	ctx, st := withStatus(ctx)
	v, w, i, err := c.cur.Load().api.Query(ctx, query, ts, opts...)
	return v, w, i, c.explain(err, st)
}

// QueryRange runs a range query.
func (c *Client) QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	ctx, st := withStatus(ctx)
	v, w, i, err := c.cur.Load().api.QueryRange(ctx, query, r, opts...)
	return v, w, i, c.explain(err, st)
}

// AuthError is a query that Prometheus, or a proxy in front of it,
// refused with 401 or 403: missing or wrong credentials, or a missing
// header (Mimir answers 401 "no org id" without X-Scope-OrgID). It wraps
// client_golang's error, so that it is classified as that error is (a
// 4xx: permanent).
type AuthError struct {
	// URL is the API's base URL; File the configuration file ("" none).
	URL, File string
	// Status is the HTTP status code; Body the start of the answer.
	Status int
	Body   string
	// Err is client_golang's error.
	Err error
}

// Error says who refused, with what, and where the credentials came from.
func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Prometheus at %s refused the query: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		fmt.Fprintf(&b, " (%q)", e.Body)
	}
	if e.File == "" {
		fmt.Fprintf(&b, "; it wants credentials or headers and none were sent: give them in a --%s", FlagName)
	} else {
		fmt.Fprintf(&b, "; check the credentials and headers of --%s %s", FlagName, e.File)
	}
	return b.String()
}

// Unwrap returns client_golang's error.
func (e *AuthError) Unwrap() error { return e.Err }

// maxBody bounds the answer quoted in an AuthError.
const maxBody = 200

// explain turns a 401 or 403 into an AuthError and names the
// configuration's tls_config on a certificate that did not verify; other
// errors are returned as they are.
func (c *Client) explain(err error, st *atomic.Int32) error {
	if err == nil {
		return nil
	}
	if code := int(st.Load()); code == http.StatusUnauthorized || code == http.StatusForbidden {
		var body string
		var apiErr *v1.Error
		if errors.As(err, &apiErr) {
			body = strings.TrimSpace(apiErr.Detail)
			if len(body) > maxBody {
				body = body[:maxBody] + "..."
			}
		}
		return &AuthError{URL: c.url, File: c.file, Status: code, Body: body, Err: err}
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		if c.file == "" {
			return fmt.Errorf("%w (only the system's CAs are trusted without a --%s: name Prometheus's CA in its tls_config.ca_file)", err, FlagName)
		}
		return fmt.Errorf("%w (check that tls_config.ca_file of --%s %s is the CA that signed Prometheus's certificate)", err, FlagName, c.file)
	}
	return err
}

// statusKey is the context key of the status a query's last answer had.
type statusKey struct{}

// withStatus returns ctx carrying a place for the status of the answer.
func withStatus(ctx context.Context) (context.Context, *atomic.Int32) {
	st := new(atomic.Int32)
	return context.WithValue(ctx, statusKey{}, st), st
}

// statusTransport records each answer's status code in the request's
// context (withStatus), so that an error can say that it was a 401.
type statusTransport struct{ next http.RoundTripper }

// RoundTrip sends req and records the answer's status.
func (t statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if st, ok := req.Context().Value(statusKey{}).(*atomic.Int32); ok && resp != nil {
		st.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// CloseIdleConnections closes the idle connections of the transport
// beneath.
func (t statusTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
