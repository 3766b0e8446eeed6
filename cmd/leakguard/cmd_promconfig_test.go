package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leakguard/leakguard/promclient"
	"github.com/leakguard/leakguard/recommend"
)

// TestPrometheusConfigFileCheckedAtStart: every command that queries
// Prometheus refuses a --prometheus-config-file that does not load (absent,
// an unknown field, a file it names missing) at start, exit 1, naming the
// flag, the file and the problem, before a payload, a policy or a cluster
// is read, and prints nothing.
func TestPrometheusConfigFileCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	absent := filepath.Join(dir, "absent")
	files := map[string]struct{ path, want string }{
		"absent":         {filepath.Join(dir, "absent.yml"), "no such file or directory"},
		"unknown field":  {writeTestFile(t, dir, "typo.yml", "basic_auth: {username: leakguard, pasword: x}\n"), "field pasword not found"},
		"missing secret": {writeTestFile(t, dir, "secret.yml", "basic_auth: {username: leakguard, password_file: nothere}\n"), "basic_auth.password_file: open " + filepath.Join(dir, "nothere")},
	}
	commands := map[string][]string{
		"serve":     {"serve", "--policy", absent, "--kubeconfig", absent, "--insecure-no-auth"},
		"replay":    {"replay", "--policy", absent, "--kubeconfig", absent},
		"recommend": {"recommend", "-A"},
	}
	for cmdName, args := range commands {
		for fileName, f := range files {
			t.Run(cmdName+", "+fileName, func(t *testing.T) {
				args := append(append([]string{}, args...), "--prometheus-url", "http://127.0.0.1:9090", "--prometheus-config-file", f.path)
				if cmdName == "replay" {
					args = append(args, absent) // the payload
				}
				var stdout, stderr bytes.Buffer
				if code := run(context.Background(), args, &stdout, &stderr); code != 1 {
					t.Fatalf("run(%q) = %d, want 1; stderr:\n%s", args, code, stderr.String())
				}
				prefix := "leakguard " + cmdName + ": --prometheus-config-file " + f.path + ": "
				if !strings.HasPrefix(stderr.String(), prefix) || !strings.Contains(stderr.String(), f.want) {
					t.Errorf("stderr = %q, want %q ... %q", stderr.String(), prefix, f.want)
				}
				for _, later := range []string{"read payload", "read policy", "kubeconfig"} {
					if strings.Contains(stderr.String(), later) {
						t.Errorf("stderr = %q: got as far as %q before refusing the file", stderr.String(), later)
					}
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout = %q, want nothing", stdout.String())
				}
			})
		}
	}
}

// TestPrometheusConfigFileInHelp: serve, replay and recommend document
// the flag.
func TestPrometheusConfigFileInHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "replay", "recommend"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s --help = %d", cmd, code)
		}
		if !strings.Contains(stderr.String(), "--prometheus-config-file FILE ") || !strings.Contains(stderr.String(), "promtool's --http.config.file") {
			t.Errorf("%s --help does not document --prometheus-config-file:\n%s", cmd, stderr.String())
		}
	}
}

// tenantGate passes a request on to next only with basic auth
// leakguard:s3cret and X-Scope-OrgID: tenant-a, and answers 401 "no org
// id" otherwise, as Mimir behind an authenticating proxy does; it counts
// what it passes on.
type tenantGate struct {
	next   http.Handler
	passed atomic.Int32
}

func (g *tenantGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != "leakguard" || pass != "s3cret" || r.Header.Get("X-Scope-OrgID") != "tenant-a" {
		http.Error(w, "no org id", http.StatusUnauthorized)
		return
	}
	g.passed.Add(1)
	g.next.ServeHTTP(w, r)
}

// tenantConfig writes the client configuration tenantGate wants.
func tenantConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTestFile(t, dir, "password", "s3cret\n")
	return writeTestFile(t, dir, "prometheus-client.yml",
		"basic_auth: {username: leakguard, password_file: password}\nhttp_headers: {X-Scope-OrgID: {values: [tenant-a]}}\n")
}

// TestRecommendWithPrometheusConfigFile: recommend reads a Prometheus
// that wants credentials and a tenant with the file, and without it fails
// with the 401 explained and no recommendation printed.
func TestRecommendWithPrometheusConfigFile(t *testing.T) {
	stub := &stubPrometheus{cs: shop()}
	gate := &tenantGate{next: stub}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	file := tenantConfig(t)

	got := runRecommendJSON(t, recArgs(srv.URL, "-n", "shop", "-o", "json", "--workload", "deployment/api", "--prometheus-config-file", file))
	want := []verdictRow{{Workload: "deployment/api", Container: "app", Request: "320Mi", Limit: "384Mi", Verdict: recommend.OK}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recommend with --prometheus-config-file (-want +got):\n%s", diff)
	}
	if gate.passed.Load() == 0 {
		t.Error("no query passed the gate")
	}

	var stdout, stderr bytes.Buffer
	args := recArgs(srv.URL, "-n", "shop", "-o", "json")
	if code := run(context.Background(), args, &stdout, &stderr); code != 1 {
		t.Fatalf("run(%q) = %d, want 1; stderr:\n%s", args, code, stderr.String())
	}
	for _, w := range []string{"refused the query: 401 Unauthorized", `("no org id")`, "--prometheus-config-file"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr = %q, want it to contain %q", stderr.String(), w)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want no recommendation", stdout.String())
	}
}

// TestPromQuerierUsesConfigFile: the querier of serve's checks and
// replay's (promQuerier) sends the file's credentials and headers;
// without the file the query is refused with an AuthError.
func TestPromQuerierUsesConfigFile(t *testing.T) {
	gate := &tenantGate{next: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}`))
	})}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	q, err := promQuerier(srv.URL, tenantConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := q.Query(ctx, "vector(1)", time.Now()); err != nil {
		t.Errorf("Query with the file = %v, want an answer", err)
	}
	if gate.passed.Load() != 1 {
		t.Errorf("%d queries passed the gate, want 1", gate.passed.Load())
	}

	q, err = promQuerier(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = q.Query(ctx, "vector(1)", time.Now())
	var authErr *promclient.AuthError
	if !errors.As(err, &authErr) || authErr.Status != http.StatusUnauthorized {
		t.Errorf("Query without the file = %v, want a 401 AuthError", err)
	}
}

// writeTestFile writes content to dir/name and returns the path.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
