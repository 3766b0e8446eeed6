// Package chain tests the whole alert chain with real parts on loopback:
// etcd and kube-apiserver, the synthetic metrics endpoint, Prometheus
// 2.42 with rules from the generator (lab.LabParams: windows in seconds
// instead of hours), Alertmanager 0.25 with deploy/alertmanager's
// receiver, and two replicas of the leakguard binary's serve, as
// deploy/leakguard's service account. The scenarios assert on the API
// server's objects and Events.
//
// One chain, with the default policy, serves the package's tests; they
// run in order and share the world of lab.Scenario. TestRemediateChain
// (remediate_test.go) starts a second chain with a policy of its own,
// after the others. Without the binaries the tests skip, unless
// LEAKGUARD_E2E=1 (make e2e sets it), when they fail.
package chain

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// repoRoot is the module, seen from this package's directory.
const repoRoot = "../../.."

var (
	chain       *lab.Chain
	scenario    *lab.Scenario
	leaksFrom   time.Time
	unavailable string
	broken      bool
)

func TestMain(m *testing.M) {
	// Before anything allocates: the heap profiles that this process
	// serves for the lab's pods sample at this rate (lab.ProcessLeak).
	runtime.MemProfileRate = lab.MemProfileRate
	code := func() (code int) {
		bin, err := lab.FindBinaries(repoRoot)
		if err == nil {
			_, err = lab.FindExecutable("prometheus")
		}
		if err == nil {
			_, err = lab.FindExecutable("prometheus-alertmanager", "alertmanager")
		}
		if err != nil {
			unavailable = err.Error()
			return m.Run()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		s := lab.NewScenario()
		// The default policy, handed over as a --policy file (as a
		// mounted ConfigMap would be): a scenario for another remediator
		// brings its own.
		c, err := lab.StartChain(ctx, s.ChainOptions(lab.ChainOptions{RepoRoot: repoRoot, BinDir: bin, Policy: remediate.DefaultPolicyYAML(),
			Progress: func(step string, took time.Duration) {
				fmt.Fprintf(os.Stderr, "chain: %s (%s)\n", step, took.Round(time.Millisecond))
			}}))
		if err != nil {
			unavailable, broken = "start the chain: "+err.Error(), true
			return m.Run()
		}
		defer func() {
			if err := c.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "chain: close: %v\n", err)
				code = 1
			}
		}()
		fmt.Fprintf(os.Stderr, "chain: ready in %s\n", time.Since(start).Round(time.Millisecond))
		if err := s.Create(ctx, c); err == nil {
			err = s.HoldOutage(ctx, c)
		}
		if err != nil {
			unavailable, broken = "create the scenario: "+err.Error(), true
			return m.Run()
		}
		// Every leak and the orphans start now, so that their alerts ripen
		// together while the tests run one after the other.
		if err := s.StartLeaks(c); err != nil {
			unavailable, broken = err.Error(), true
			return m.Run()
		}
		if err := s.StartOrphans(c); err != nil {
			unavailable, broken = err.Error(), true
			return m.Run()
		}
		chain, scenario, leaksFrom = c, s, time.Now()
		code = m.Run()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "chain: logs of the failed run:\n%s\n", c.Logs())
		}
		return code
	}()
	os.Exit(code)
}

// need returns the chain, or skips (fails with LEAKGUARD_E2E=1) without it.
func need(t *testing.T) (*lab.Chain, *lab.Scenario) {
	t.Helper()
	if chain != nil {
		return chain, scenario
	}
	if broken || os.Getenv("LEAKGUARD_E2E") == "1" {
		t.Fatalf("the chain is required and not running: %s", unavailable)
	}
	t.Skipf("no chain: %s; set LEAKGUARD_E2E=1 to make this a failure", unavailable)
	return nil, nil
}

// waitFor polls cond every 250 ms until it holds, failing the test after
// timeout with cond's last word on what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string, error)) {
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
			t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %s for %s; last seen: %s", timeout, what, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
