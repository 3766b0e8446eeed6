package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
)

// isolateKubeconfig hides every kubeconfig and in-cluster hint of the
// machine running the test: $KUBECONFIG is empty, ~/.kube/config is home
// (a path in a temporary directory, absent until written) and the
// KUBERNETES_SERVICE_* variables are empty, so that in-cluster is not
// possible even in a CI pod.
func isolateKubeconfig(t *testing.T) (home string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv(clientcmd.RecommendedConfigPathEnvVar, "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	// clientcmd computes ~/.kube/config once, at init.
	saved := clientcmd.RecommendedHomeFile
	clientcmd.RecommendedHomeFile = filepath.Join(dir, ".kube", "config")
	t.Cleanup(func() { clientcmd.RecommendedHomeFile = saved })
	return clientcmd.RecommendedHomeFile
}

// writeTwoContexts writes a kubeconfig at path with contexts a (the
// current one) and b, reaching serverA and serverB.
func writeTwoContexts(t *testing.T, path, serverA, serverB string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- {name: ca, cluster: {server: %q}}
- {name: cb, cluster: {server: %q}}
users: [{name: u, user: {token: t}}]
contexts:
- {name: a, context: {cluster: ca, user: u}}
- {name: b, context: {cluster: cb, user: u}}
current-context: a
`, serverA, serverB)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubeRESTConfig checks that the cluster is found as kubectl finds
// it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, the context
// from --context, and clear errors when there is no such context or no
// kubeconfig at all outside a cluster.
func TestKubeRESTConfig(t *testing.T) {
	tests := []struct {
		name string
		// flag, env and home: which kubeconfig --kubeconfig, $KUBECONFIG
		// and ~/.kube/config hold ("" none; "flag", "env" or "home": a
		// file of two contexts whose servers are named after it;
		// "absent": a path where there is no file).
		flag, env, home string
		context         string
		wantHost        string
		wantErr         []string
	}{
		{name: "--kubeconfig wins over $KUBECONFIG and home", flag: "flag", env: "env", home: "home", wantHost: "https://flag-a.test"},
		{name: "$KUBECONFIG is read", env: "env", wantHost: "https://env-a.test"},
		{name: "$KUBECONFIG wins over home", env: "env", home: "home", wantHost: "https://env-a.test"},
		{name: "~/.kube/config is read last", home: "home", wantHost: "https://home-a.test"},
		{name: "--context picks the other context", flag: "flag", context: "b", wantHost: "https://flag-b.test"},
		{name: "--context in $KUBECONFIG", env: "env", context: "b", wantHost: "https://env-b.test"},
		{name: "--context in ~/.kube/config", home: "home", context: "b", wantHost: "https://home-b.test"},
		{name: "unknown context", flag: "flag", context: "prod",
			wantErr: []string{`--context "prod": no such context in kubeconfig `, "flag/kubeconfig", "(contexts: a, b)"}},
		{name: "unknown context, no kubeconfig", context: "prod",
			wantErr: []string{`--context "prod": no such context in kubeconfig `, "(contexts: none)"}},
		{name: "--kubeconfig absent", flag: "absent", env: "env",
			wantErr: []string{"kubeconfig ", "absent/kubeconfig", "no such file"}},
		// A kubeconfig that fails to load is its error, not an empty
		// configuration (which would fall back to in-cluster in a pod).
		{name: "kubeconfig not YAML", flag: "not yaml", wantErr: []string{"kubeconfig ", "not yaml/kubeconfig", "yaml: line 1"}},
		{name: "current-context absent", env: "current context absent",
			wantErr: []string{"kubeconfig $KUBECONFIG=", "context was not found for specified context: gone"}},
		{name: "no kubeconfig outside a cluster",
			wantErr: []string{"no kubeconfig (", ".kube/config", "outside a cluster, pass --kubeconfig or set KUBECONFIG", "KUBERNETES_SERVICE_HOST"}},
		{name: "$KUBECONFIG names no file outside a cluster", env: "absent",
			wantErr: []string{"no kubeconfig ($KUBECONFIG=", "absent/kubeconfig", "outside a cluster"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := isolateKubeconfig(t)
			dir := t.TempDir()
			file := func(which string) string {
				p := filepath.Join(dir, which, "kubeconfig")
				switch which {
				case "absent":
				case "not yaml", "current context absent":
					body := "not: [yaml"
					if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
						t.Fatal(err)
					}
					if which == "current context absent" {
						body = strings.Replace(string(mustRead(t, writeTwoContexts(t, p, "https://x.test", "https://y.test"))),
							"current-context: a", "current-context: gone", 1)
					}
					if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
						t.Fatal(err)
					}
				default:
					writeTwoContexts(t, p, "https://"+which+"-a.test", "https://"+which+"-b.test")
				}
				return p
			}
			var flagPath string
			if tc.flag != "" {
				flagPath = file(tc.flag)
			}
			if tc.env != "" {
				t.Setenv(clientcmd.RecommendedConfigPathEnvVar, file(tc.env))
			}
			if tc.home != "" {
				writeTwoContexts(t, home, "https://home-a.test", "https://home-b.test")
			}
			cfg, err := kubeRESTConfig(flagPath, tc.context)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("kubeRESTConfig(%q, %q) = host %s, want an error", flagPath, tc.context, cfg.Host)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("kubeRESTConfig(%q, %q) error %q lacks %q", flagPath, tc.context, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("kubeRESTConfig(%q, %q): %v", flagPath, tc.context, err)
			}
			got := [3]any{cfg.Host, cfg.BearerToken, cfg.QPS}
			if diff := cmp.Diff([3]any{tc.wantHost, "t", float32(50)}, got); diff != "" {
				t.Errorf("kubeRESTConfig(%q, %q) host, token, QPS (-want +got):\n%s", flagPath, tc.context, diff)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContextFlagReachesCluster runs replay and serve with --context b of
// a kubeconfig whose contexts are two API servers: only b's is asked
// (replay), and an unknown context is refused naming it (both).
func TestContextFlagReachesCluster(t *testing.T) {
	isolateKubeconfig(t)
	var hitsA, hitsB atomic.Int32
	apiServer := func(hits *atomic.Int32) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			http.NotFound(w, nil)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := apiServer(&hitsA), apiServer(&hitsB)
	kubeconfig := writeTwoContexts(t, filepath.Join(t.TempDir(), "kubeconfig"), a.URL, b.URL)
	payload := repoPath(t, "remediate", "testdata", "alertmanager", "alertmanager-0.25-e2e-leak.json")

	var stdout, stderr bytes.Buffer
	_ = run(context.Background(), []string{"replay", "--kubeconfig", kubeconfig, "--context", "b",
		"--prometheus-url", "http://127.0.0.1:1", payload}, &stdout, &stderr)
	if hitsA.Load() != 0 || hitsB.Load() == 0 {
		t.Errorf("replay --context b: %d requests to context a's server, %d to b's; want none and some; stderr:\n%s",
			hitsA.Load(), hitsB.Load(), stderr.String())
	}

	for _, args := range [][]string{
		{"replay", "--kubeconfig", kubeconfig, "--context", "prod", payload},
		{"serve", "--kubeconfig", kubeconfig, "--context", "prod", "--insecure-no-auth"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code != 1 {
			t.Errorf("run(%q) = %d, want 1", args, code)
		}
		if want := `--context "prod": no such context in kubeconfig ` + kubeconfig + " (contexts: a, b)"; !strings.Contains(stderr.String(), want) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", args, stderr.String(), want)
		}
	}
	if hitsA.Load() != 0 {
		t.Errorf("context a's server was asked %d times, want never", hitsA.Load())
	}

	for _, cmd := range []string{"serve", "replay"} {
		stderr.Reset()
		run(context.Background(), []string{cmd, "--help"}, &stdout, &stderr)
		for _, want := range []string{"-context", "current-context", "$KUBECONFIG", "~/.kube/config", "in-cluster"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, want, stderr.String())
			}
		}
	}
}
