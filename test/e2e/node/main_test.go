// Package node tests the lab's real node (lab.Options.RealNode): a kubelet
// with containerd and runc, kube-controller-manager, kube-scheduler and
// kube-state-metrics on loopback, running real pods that leak, are
// OOM-killed by the kernel and are replaced by the real Deployment
// controller; and the whole alert chain on it (lab.ChainOptions.RealNode):
// Prometheus 2.42 scraping the real kubelet's cAdvisor and
// kube-state-metrics with kube-prometheus's labels, the generated rules
// with lab.RealNodeParams, Alertmanager with deploy/alertmanager's
// receiver, and two replicas of leakguard serve as deploy/leakguard's
// service account under its admission policies.
//
// One node serves the package's tests (TestMain); they run in order, and
// the Deployments of the scenarios start in TestMain, so that their leaks
// ripen while the first tests run. The node runs as root and changes the
// host while it runs (cgroups, sysctls, /var/log/pods, containerd's
// socket), so it starts only when asked: LEAKGUARD_E2E=1 (make test, make
// e2e-node) or LEAKGUARD_E2E_NODE=1. Where the host cannot run a kubelet
// (lab.CheckNodeHost says why) the tests skip, unless LEAKGUARD_E2E=1,
// when they fail. After the tests TestMain stops the node and fails the
// run if the host is not as it was before.
package node

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../../.."

var (
	chain       *lab.Chain
	world       *scenarioWorld
	unavailable string
	broken      bool
	// bringUp is how long the lab took from its start to a Ready node
	// with the chain around it.
	bringUp time.Duration
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	if os.Getenv("LEAKGUARD_E2E") != "1" && os.Getenv("LEAKGUARD_E2E_NODE") != "1" {
		unavailable = "the real node changes the host while it runs; set LEAKGUARD_E2E_NODE=1 (or LEAKGUARD_E2E=1, which makes an unsupported host a failure; make e2e-node) to run it"
		return m.Run()
	}
	bin, err := lab.FindBinaries(repoRoot)
	if err == nil {
		err = lab.CheckNodeHost(bin)
	}
	if err == nil {
		_, err = lab.FindExecutable("prometheus")
	}
	if err == nil {
		_, err = lab.FindExecutable("prometheus-alertmanager", "alertmanager")
	}
	if err != nil {
		unavailable = err.Error()
		fmt.Fprintf(os.Stderr, "node: not starting the real node: %v\n", err)
		return m.Run()
	}
	before, err := snapshotHost()
	if err != nil {
		unavailable, broken = err.Error(), true
		return m.Run()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := lab.StartChain(ctx, lab.ChainOptions{
		RepoRoot: repoRoot, BinDir: bin, RealNode: true, Policy: []byte(nodePolicy),
		Params: nodeParams(),
		// The apiserver serves /debug/pprof, for profile's heap of it
		// (TestControlPlaneOnRealSeries).
		Profiling: true,
		// The agent over a fixture tree, for the real node: its orphans
		// are what make leakguard cordon and drain the node.
		AgentNode: lab.NodeName,
		Progress: func(step string, took time.Duration) {
			fmt.Fprintf(os.Stderr, "node chain: %s (%s)\n", step, took.Round(time.Millisecond))
		},
	})
	if err != nil {
		unavailable, broken = "start the chain on the real node: "+err.Error(), true
		return m.Run()
	}
	bringUp = time.Since(start)
	fmt.Fprintf(os.Stderr, "node chain: ready in %s\n", bringUp.Round(time.Millisecond))
	defer func() {
		if err := c.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "node chain: close: %v\n", err)
			code = 1
		}
		after, err := snapshotHost()
		if err != nil {
			fmt.Fprintf(os.Stderr, "node chain: %v\n", err)
			code = 1
			return
		}
		if diff := compareHost(before, after); diff != "" {
			fmt.Fprintf(os.Stderr, "node chain: the host after the lab stopped differs from before it started:\n%s\n", diff)
			code = 1
		}
	}()
	w, err := createWorld(ctx, c)
	if err != nil {
		unavailable, broken = "create the scenarios' workloads: "+err.Error(), true
		return m.Run()
	}
	chain, world = c, w
	code = m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "node chain: logs of the failed run:\n%s\n", c.Logs())
	}
	return code
}

// need returns the chain, or skips (fails with LEAKGUARD_E2E=1, or when
// the node was asked for and did not start) without it.
func need(t *testing.T) (*lab.Chain, *scenarioWorld) {
	t.Helper()
	if chain != nil {
		return chain, world
	}
	if broken || os.Getenv("LEAKGUARD_E2E") == "1" {
		t.Fatalf("the real node is required and not running: %s", unavailable)
	}
	t.Skipf("no real node: %s", unavailable)
	return nil, nil
}

// waitFor polls cond every half second until it holds, failing the test
// after timeout with cond's last word on what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string, error)) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		ok, seen, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			last = err.Error()
		} else if seen != "" {
			last = seen
		}
		if ok {
			t.Logf("%s after %s", what, time.Since(start).Round(100*time.Millisecond))
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %s for %s; last seen: %s", timeout, what, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
