package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/promclient"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// serveArgs is the serve container's command line in a render.
func serveArgs(t *testing.T, vals map[string]any) []string {
	t.Helper()
	var dep map[string]any
	for _, o := range mustRender(t, vals) {
		if o.GetKind() == "Deployment" && o.GetName() == "leakguard-serve" {
			dep = o.Object
		}
	}
	if dep == nil {
		t.Fatalf("no Deployment leakguard-serve")
	}
	var args []string
	for _, a := range dep["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["args"].([]any) {
		args = append(args, a.(string))
	}
	return args
}

// TestServeArgs runs the real leakguard binary with the arguments the
// chart renders for serve (with --print-default-policy added, which stops
// after the flags are parsed and the URL checked, before the files they
// name are read): each value set renders a command line that serve
// accepts. An unknown flag in serve.extraArgs is refused (the check of the
// check).
func TestServeArgs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin, err := lab.BuildLeakguard(ctx, repoRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		vals    map[string]any
		refused string
	}{
		{name: "defaults"},
		{name: "other values", vals: otherValues()},
		{name: "tls.mode off", vals: map[string]any{"tls": map[string]any{"mode": "off"}}},
		{name: "an unknown flag", vals: map[string]any{"serve": map[string]any{"extraArgs": []any{"--no-such-flag"}}}, refused: "no-such-flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := serveArgs(t, tc.vals)
			if args[0] != "serve" {
				t.Fatalf("arguments %q, want serve first", args)
			}
			cmd := exec.CommandContext(ctx, bin, append(args, "--print-default-policy")...)
			out, err := cmd.CombinedOutput()
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("leakguard %s: %v\n%s", strings.Join(args, " "), err, out)
			case tc.refused != "" && (err == nil || !strings.Contains(string(out), tc.refused)):
				t.Errorf("leakguard %s: %v, want an error naming %s\n%s", strings.Join(args, " "), err, tc.refused, out)
			}
		})
	}
}

// TestPrometheusClientConfig checks that prometheus.clientConfig renders
// a file that serve's loader (promclient.LoadConfigFile, prometheus/common's
// strict one) accepts, mounted where the rendered --prometheus-config-file
// names; and that a misspelt field of it fails that loader.
func TestPrometheusClientConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		bad    string
	}{
		{name: "headers and basic auth", config: map[string]any{
			"http_headers": map[string]any{"X-Scope-OrgID": map[string]any{"values": []any{"team-a"}}},
			"basic_auth":   map[string]any{"username": "leakguard", "password": "s3cret"},
		}},
		{name: "bearer token and TLS", config: map[string]any{
			"authorization": map[string]any{"type": "Bearer", "credentials": "t0k3n"},
			"tls_config":    map[string]any{"insecure_skip_verify": false, "server_name": "thanos.example"},
		}},
		{name: "a misspelt field", config: map[string]any{"basic_auth": map[string]any{"user": "leakguard"}}, bad: "user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := byKey(mustRender(t, map[string]any{"prometheus": map[string]any{"clientConfig": tc.config}}))
			secret := get(t, objs, "Secret leakguard/leakguard-prometheus-config")
			data := field(t, secret, "stringData", "config.yaml").(string)
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := promclient.LoadConfigFile(file)
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("load the rendered config:\n%s\n%v", data, err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("load the rendered config:\n%s\nerror %v, want one naming %s", data, err, tc.bad)
			}
			args := serveArgs(t, map[string]any{"prometheus": map[string]any{"clientConfig": tc.config}})
			if !contains(args, "--prometheus-config-file=/etc/leakguard/prometheus/config.yaml") {
				t.Errorf("arguments %q lack --prometheus-config-file", args)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
