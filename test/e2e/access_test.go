package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/server"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// Policies of TestServeAccessCheck: restart on a workload (needs
// deploy/components/restart), cordon on a node (deploy/components/node),
// and that cordon dry-run (no component).
const (
	accessRestartPolicy = `
alerts:
  ContainerMemoryLeak: {target: workload, check: {name: working-set-slope}, remediators: [{name: annotate}, {name: restart, enabled: true}]}
`
	accessCordonPolicy = `
alerts:
  NodeCgroupLeak: {target: node, check: {name: orphan-cgroups}, remediators: [{name: cordon, enabled: true}]}
`
	accessDryRunCordonPolicy = `
alerts:
  NodeCgroupLeak: {target: node, check: {name: orphan-cgroups}, dryRun: true, remediators: [{name: cordon, enabled: true}]}
`
)

// TestServeAccessCheck runs `leakguard serve` (the built binary) against
// the lab's apiserver: as the account with deploy/'s base alone, a policy
// that restarts is refused at start-up, serve exits non-zero naming
// deploy/components/restart; with that component bound, it starts; a
// reload to a policy that cordons (deploy/components/node, not bound) is
// refused, naming the component, and the restart policy goes on deciding;
// the next reload, of that cordon dry-run, is taken.
func TestServeAccessCheck(t *testing.T) {
	l := needLab(t)
	base := componentAccount(t, "base")
	restart := componentAccount(t, "restart", "restart")
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
	kubeconfig := func(a *account) string {
		t.Helper()
		token, err := l.ServiceAccountToken(ctx, a.ns, a.name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, a.ns+".kubeconfig")
		if err := l.WriteTokenKubeconfig(p, a.name, token); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("webhook-token", "e2e-token")
	cert, key := l.ServingCertFiles()
	policyFile := write("policy.yaml", accessRestartPolicy)

	// The base alone: serve exits before it serves.
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen-address=127.0.0.1:0", "--kubeconfig="+kubeconfig(base),
		"--prometheus-url=http://127.0.0.1:1", "--bearer-token-file="+tokenFile, "--tls-cert-file="+cert, "--tls-key-file="+key,
		"--namespace="+base.ns, "--policy="+policyFile)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve as the base alone with restart: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"access check", "add deploy/components/restart", "restart apps/deployments (cluster-wide)", "create pods/eviction (cluster-wide)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve's output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `"serving"`) {
		t.Errorf("serve as the base alone logged that it serves:\n%s", out)
	}

	// With deploy/components/restart: serve starts (StartServe waits for
	// /healthz).
	s, err := lab.StartServe(ctx, lab.ServeOptions{
		Bin: bin, Name: "serve-restart", Dir: dir, Kubeconfig: kubeconfig(restart),
		PrometheusURL: "http://127.0.0.1:1", TokenFile: tokenFile, CertFile: cert, KeyFile: key, CAFile: l.CAFile(),
		Args: []string{"--namespace=" + restart.ns, "--policy=" + policyFile},
	})
	if err != nil {
		t.Fatalf("serve with deploy/components/restart: %v", err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop serve: %v", err)
		}
	}()
	// reload writes policy, sends SIGHUP, and waits (bounded) for the
	// log line of its outcome, the n-th reload's.
	reload := func(policy string, n int) string {
		t.Helper()
		write("policy.yaml", policy)
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
				if strings.Contains(line, `"msg":"policy reload failed"`) || strings.Contains(line, `"msg":"policy reloaded"`) {
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
	// reason is serve's decision on a ContainerMemoryLeak alert about a
	// pod that does not exist: held target-not-found while the restart
	// policy runs, no-policy under the cordon ones (no such entry).
	reason := func() string {
		t.Helper()
		body := `{"version":"4","status":"firing","receiver":"leakguard","groupKey":"{}:{}","alerts":[{"status":"firing",` +
			`"labels":{"alertname":"ContainerMemoryLeak","namespace":"` + restart.ns + `","pod":"none","container":"app"},"startsAt":"` +
			time.Now().UTC().Format(time.RFC3339) + `"}]}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+server.AlertsPath, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer e2e-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Decisions []struct {
				Reason string `json:"reason"`
			} `json:"decisions"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusOK || len(answer.Decisions) != 1 {
			t.Fatalf("webhook: %s, %v, %+v", resp.Status, err, answer)
		}
		return answer.Decisions[0].Reason
	}
	if got := reason(); got != remediate.ReasonTargetNotFound {
		t.Fatalf("decision under the restart policy: %s, want %s", got, remediate.ReasonTargetNotFound)
	}
	got := reload(accessCordonPolicy, 1)
	for _, want := range []string{"policy reload failed", "keeping the running policy", "add deploy/components/node", "cordon nodes (cluster-wide)"} {
		if !strings.Contains(got, want) {
			t.Errorf("reload to a policy that cordons: %s\nwant it to say %q", got, want)
		}
	}
	// The restart policy still runs.
	if got := reason(); got != remediate.ReasonTargetNotFound {
		t.Errorf("decision after the refused reload: %s, want %s (the running policy kept)", got, remediate.ReasonTargetNotFound)
	}
	// A dry-run entry needs no component's right.
	if got := reload(accessDryRunCordonPolicy, 2); !strings.Contains(got, `"msg":"policy reloaded"`) {
		t.Errorf("reload to a dry-run cordon: %s, want it taken", got)
	}
	if got := reason(); got != remediate.ReasonNoPolicy {
		t.Errorf("decision after the dry-run cordon's reload: %s, want %s (the new policy)", got, remediate.ReasonNoPolicy)
	}
}
