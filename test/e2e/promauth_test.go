package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// TestServePrometheusConfigFile runs `leakguard serve` (the built binary,
// as an account of deploy/'s base) with --prometheus-config-file against a
// Prometheus API on loopback that wants basic auth and a tenant header
// (as Mimir behind an authenticating proxy): its /readyz Prometheus check
// passes with the file's credentials; a rotated password file is used
// without a signal; SIGHUP reloads the file itself (another tenant is
// refused, the right one passes again), and a bad file on SIGHUP keeps the
// running client, logged naming the file.
func TestServePrometheusConfigFile(t *testing.T) {
	l := needLab(t)
	// An account of its own (deploy/'s base): its namespace holds no
	// other test's serve.
	base := componentAccount(t, "promauth")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := lab.BuildLeakguard(ctx, repoRoot, dir)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token, err := l.ServiceAccountToken(ctx, base.ns, base.name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := l.WriteTokenKubeconfig(kubeconfig, base.name, token); err != nil {
		t.Fatal(err)
	}

	// The Prometheus API: basic auth leakguard:s3cret and tenant-a, else
	// 401 "no org id".
	var passed atomic.Int32
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "leakguard" || pass != "s3cret" || r.Header.Get("X-Scope-OrgID") != "tenant-a" {
			http.Error(w, "no org id", http.StatusUnauthorized)
			return
		}
		passed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}`))
	}))
	defer prom.Close()

	write("password", "s3cret\n")
	config := func(tenant string) string {
		return write("prometheus-client.yml", "basic_auth: {username: leakguard, password_file: password}\n"+
			"http_headers: {X-Scope-OrgID: {values: ["+tenant+"]}}\n")
	}
	configFile := config("tenant-a")
	cert, key := l.ServingCertFiles()
	s, err := lab.StartServe(ctx, lab.ServeOptions{
		Bin: bin, Name: "serve-promauth", Dir: dir, Kubeconfig: kubeconfig,
		PrometheusURL: prom.URL, TokenFile: write("webhook-token", "e2e-token"), CertFile: cert, KeyFile: key, CAFile: l.CAFile(),
		Args: []string{"--namespace=" + base.ns, "--prometheus-config-file=" + configFile},
	})
	if err != nil {
		t.Fatalf("serve with --prometheus-config-file: %v", err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop serve: %v", err)
		}
	}()

	// prometheusCheck polls /readyz (bounded) until its prometheus check
	// says ok (want "") or an error containing want, and returns it.
	prometheusCheck := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var last string
		for {
			last = readyCheck(ctx, t, s, "prometheus")
			if (want == "" && last == "ok") || (want != "" && strings.Contains(last, want)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz's prometheus check = %q, want %q within 30 s; log:\n%s", last, want, s.Log(20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// reloaded sends SIGHUP and waits (bounded) for the n-th log line
	// of the Prometheus client's reload, and returns it.
	reloaded := func(n int) string {
		t.Helper()
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			data, err := os.ReadFile(s.LogPath())
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []string
			for _, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, `"msg":"prometheus client config reload`) {
					outcomes = append(outcomes, line)
				}
			}
			if len(outcomes) >= n {
				return outcomes[n-1]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no outcome of reload %d within 30 s; log:\n%s", n, s.Log(20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	prometheusCheck("")
	if passed.Load() == 0 {
		t.Fatal("/readyz's prometheus check is ok and no query passed the gate")
	}

	// The password file is re-read on every request: no signal.
	write("password", "rotated-wrong\n")
	prometheusCheck("401 Unauthorized")
	write("password", "s3cret\n")
	prometheusCheck("")

	// The file itself is read on SIGHUP.
	config("tenant-b")
	if line := reloaded(1); !strings.Contains(line, `"msg":"prometheus client config reloaded"`) {
		t.Fatalf("reload 1: %s, want it reloaded", line)
	}
	prometheusCheck(`("no org id")`)
	config("tenant-a")
	if line := reloaded(2); !strings.Contains(line, `"msg":"prometheus client config reloaded"`) {
		t.Fatalf("reload 2: %s, want it reloaded", line)
	}
	prometheusCheck("")

	// A bad file keeps the running client.
	write("prometheus-client.yml", "basic_auth: {username: leakguard, pasword: typo}\n")
	line := reloaded(3)
	for _, want := range []string{`"msg":"prometheus client config reload failed"`, "keeping the running Prometheus client", configFile, "field pasword not found"} {
		if !strings.Contains(line, want) {
			t.Errorf("reload 3: %s, want it to say %q", line, want)
		}
	}
	before := passed.Load()
	prometheusCheck("")
	if passed.Load() == before {
		t.Error("after the failed reload no query passed the gate")
	}
}

// readyCheck GETs s's /readyz and returns the named check's result ("ok"
// or its error).
func readyCheck(ctx context.Context, t *testing.T, s *lab.Serve, name string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET /readyz: %s: %v", resp.Status, err)
	}
	return body.Checks[name]
}
