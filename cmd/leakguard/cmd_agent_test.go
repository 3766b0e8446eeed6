package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/internal/cli"
)

func TestRunAgentFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	notCgroup := t.TempDir()
	for _, tc := range []struct {
		name       string
		args       []string
		wantIs     error  // errors.Is target, or nil
		wantErr    string // substring of the error, when wantIs is nil
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantIs: cli.ErrHelp, wantStderr: "-cgroup-root"},
		{name: "unknown flag", args: []string{"--nope"}, wantIs: errUsage},
		{name: "no node name", args: []string{"--cgroup-root", missing}, wantIs: errUsage, wantStderr: "--node-name is required"},
		{name: "zero interval", args: []string{"--node-name", "n1", "--interval", "0s"}, wantIs: errUsage, wantStderr: "must be positive"},
		{name: "bad log level", args: []string{"--node-name", "n1", "--log-level", "loud"}, wantIs: errUsage, wantStderr: "--log-level"},
		{name: "stray argument", args: []string{"--node-name", "n1", "extra"}, wantIs: errUsage, wantStderr: "unexpected arguments"},
		{name: "cgroup root does not exist", args: []string{"--node-name", "n1", "--cgroup-root", missing}, wantErr: `cgroup root "` + missing + `"`},
		{name: "cgroup root is not a cgroup mount", args: []string{"--node-name", "n1", "--cgroup-root", notCgroup}, wantErr: "neither a cgroup v2 root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := runAgent(context.Background(), tc.args, &bytes.Buffer{}, &stderr)
			switch {
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("runAgent(%q) = %v, want %v", tc.args, err, tc.wantIs)
			case tc.wantIs == nil && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("runAgent(%q) = %v, want an error containing %q", tc.args, err, tc.wantErr)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("runAgent(%q) stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.wantStderr)
			}
		})
	}
}

// TestRunAgentDaemonSetArgs runs the agent with the arguments and
// environment of deploy/agent/daemonset.yaml: a flag the agent does not
// know, or a value it refuses, would crash-loop the agent on every node.
// Only --cgroup-root is pointed at a missing directory, so that the run
// stops at the first step after the flags.
func TestRunAgentDaemonSetArgs(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "deploy", "agent", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(data, &ds); err != nil {
		t.Fatalf("daemonset.yaml: %v", err)
	}
	if n := len(ds.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("daemonset.yaml has %d containers, want 1", n)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Fatalf("daemonset.yaml args = %q, want the agent subcommand first", c.Args)
	}
	t.Setenv("NODE_NAME", "")
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			t.Setenv("NODE_NAME", "n1") // the downward API's spec.nodeName
		}
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	args := append(slices.Clone(c.Args[1:]), "--cgroup-root="+missing)
	var stderr bytes.Buffer
	err = runAgent(context.Background(), args, &bytes.Buffer{}, &stderr)
	if want := `cgroup root "` + missing + `"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("runAgent(%q) = %v, want an error containing %q (flags accepted); stderr:\n%s", args, err, want, stderr.String())
	}
}

// TestRunAgentStartsAndStops runs the agent against a v2 fixture root with an
// API server that refuses connections on loopback: it must scan, serve, and
// stop cleanly when its context ends.
func TestRunAgentStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "cgroup")
	if err := os.MkdirAll(filepath.Join(root, "kubepods.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"cgroup.controllers": "cpu memory\n",
		"cgroup.stat":        "nr_descendants 1\nnr_dying_descendants 0\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The agent runs until it has said all three, or 30 s; then its context
	// ends and it must return nil.
	want := []string{"starting node agent", "not synced yet", "serving"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr syncBuffer
	returned := make(chan error, 1)
	go func() {
		returned <- runAgent(ctx, []string{"--node-name=n1", "--cgroup-root=" + root, "--kubeconfig=" + kubeconfig,
			"--listen-address=127.0.0.1:0", "--sync-timeout=200ms", "--interval=100ms"}, &bytes.Buffer{}, &stderr)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for said := 0; said < len(want) && ctx.Err() == nil; {
		<-tick.C
		said = 0
		for _, w := range want {
			if strings.Contains(stderr.String(), w) {
				said++
			}
		}
	}
	cancel()
	var err error
	select {
	case err = <-returned:
	case <-time.After(10 * time.Second):
		t.Fatalf("runAgent did not return within 10 s of its context ending; stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("runAgent() = %v, want nil after its context ends; stderr:\n%s", err, stderr.String())
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("agent log does not say %q:\n%s", w, stderr.String())
		}
	}
}

// agentCgroupRoot writes a cgroup v2 root the agent accepts.
func agentCgroupRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cgroup")
	if err := os.MkdirAll(filepath.Join(root, "kubepods.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"cgroup.controllers": "cpu memory\n",
		"cgroup.stat":        "nr_descendants 1\nnr_dying_descendants 0\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRunAgentKubeconfig: the agent finds the cluster as serve and
// kubectl do: $KUBECONFIG without --kubeconfig, --context picking a
// context (only its API server is asked), an unknown context refused
// naming the kubeconfig and its contexts, and no kubeconfig outside a
// cluster an error that says where it looked.
func TestRunAgentKubeconfig(t *testing.T) {
	isolateKubeconfig(t)
	root := agentCgroupRoot(t)
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
	args := []string{"--node-name=n1", "--cgroup-root=" + root, "--listen-address=127.0.0.1:0", "--sync-timeout=100ms", "--interval=100ms"}

	t.Run("unknown context", func(t *testing.T) {
		var stderr bytes.Buffer
		err := runAgent(context.Background(), append(args, "--kubeconfig", kubeconfig, "--context", "prod"), &bytes.Buffer{}, &stderr)
		if want := `--context "prod": no such context in kubeconfig ` + kubeconfig + " (contexts: a, b)"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("runAgent(--context prod) = %v, want an error containing %q", err, want)
		}
	})
	t.Run("no kubeconfig outside a cluster", func(t *testing.T) {
		err := runAgent(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "no kubeconfig (") || !strings.Contains(err.Error(), ".kube/config") {
			t.Errorf("runAgent() without a kubeconfig = %v, want an error naming where it looked", err)
		}
	})
	t.Run("$KUBECONFIG and --context b", func(t *testing.T) {
		t.Setenv("KUBECONFIG", kubeconfig)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var stderr syncBuffer
		returned := make(chan error, 1)
		go func() { returned <- runAgent(ctx, append(args, "--context", "b"), &bytes.Buffer{}, &stderr) }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for hitsB.Load() == 0 && ctx.Err() == nil {
			select {
			case <-tick.C:
			case err := <-returned:
				t.Fatalf("runAgent returned %v before asking an API server; stderr:\n%s", err, stderr.String())
			}
		}
		cancel()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("runAgent did not return within 10 s of its context ending")
		}
		if hitsA.Load() != 0 || hitsB.Load() == 0 {
			t.Errorf("agent --context b: %d requests to context a's server, %d to b's; want none and some; stderr:\n%s", hitsA.Load(), hitsB.Load(), stderr.String())
		}
	})
}
