// Package e2e tests leakguard's engine against a real kube-apiserver and
// etcd (package lab): RBAC with the ClusterRole of deploy/leakguard/, merge
// patches and their resourceVersion preconditions, Events. One lab serves
// every test of the package; each test works in namespaces and on nodes of
// its own.
//
// Without the binaries the tests skip, unless LEAKGUARD_E2E=1 (make e2e
// sets it), when they fail.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// repoRoot is the repository, seen from this package's directory, where
// go test runs it.
const repoRoot = "../.."

var (
	// leakguardNamespace is where leakguard serve runs: its service account,
	// its Role and its budget Lease.
	leakguardNamespace string
	// shared is the package's lab, nil when it is not running.
	shared *lab.Lab
	// unavailable says why shared is nil.
	unavailable string
	// broken is set when the binaries are there but the lab did not
	// start: the tests fail then, whatever LEAKGUARD_E2E says.
	broken bool
	// leakguardConfig authenticates as the service account bound to
	// leakguard's ClusterRole.
	leakguardConfig *rest.Config
	// serviceAccount is that account, as namespace/name.
	serviceAccount string
)

func TestMain(m *testing.M) {
	code := func() (code int) {
		bin, err := lab.FindBinaries(repoRoot)
		if err != nil {
			unavailable = err.Error()
			return m.Run()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		// The pod network: pods/proxy reaches the pprof handlers that
		// profile_test.go attaches to its pods.
		l, err := lab.Start(ctx, lab.Options{BinDir: bin, PodNetwork: true})
		if err != nil {
			unavailable = fmt.Sprintf("start the lab from %s: %v", bin, err)
			broken = true
			return m.Run()
		}
		defer func() {
			// A lab that does not stop cleanly fails the run: it may have
			// left a process or files behind.
			if err := l.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: close the lab: %v\n", err)
				code = 1
			}
		}()
		fmt.Fprintf(os.Stderr, "e2e: etcd and kube-apiserver at %s ready in %s\n", l.Host(), time.Since(start).Round(time.Millisecond))
		if err := setUpLeakguard(ctx, l); err != nil {
			unavailable = "set up leakguard's service account and role: " + err.Error()
			broken = true
			return m.Run()
		}
		shared = l
		return m.Run()
	}()
	os.Exit(code)
}

// setUpLeakguard creates deploy/leakguard's namespace, service account,
// ClusterRole and binding with every component of deploy/components bound
// too, as a user who enables every remediator installs them (the tests of
// restart, cordon, drain and profile act as this account), and a client
// configuration for the account that the binding names. rbac_test.go
// checks what the base alone refuses, as an account of its own.
func setUpLeakguard(ctx context.Context, l *lab.Lab) error {
	ns, name, cfg, err := installLeakguard(ctx, l)
	if err != nil {
		return err
	}
	serviceAccount = ns + "/" + name
	leakguardNamespace = ns
	leakguardConfig = cfg
	return nil
}

// installLeakguard creates deploy/leakguard's RBAC manifests, with every
// component, in l and returns the service account they bind and a
// configuration that authenticates as it.
func installLeakguard(ctx context.Context, l *lab.Lab) (ns, name string, cfg *rest.Config, err error) {
	if ns, name, err = lab.InstallLeakguard(ctx, l, repoRoot, lab.Components...); err != nil {
		return "", "", nil, err
	}
	cfg, err = l.ServiceAccountConfig(ctx, ns, name)
	return ns, name, cfg, err
}

// needLab returns the shared lab, or skips the test when the binaries are
// absent; with LEAKGUARD_E2E=1 it fails instead.
func needLab(t *testing.T) *lab.Lab {
	t.Helper()
	if shared != nil {
		return shared
	}
	if broken {
		t.Fatalf("the e2e lab did not start: %s", unavailable)
	}
	if os.Getenv("LEAKGUARD_E2E") == "1" {
		t.Fatalf("the e2e lab is required (LEAKGUARD_E2E=1) and not running: %s", unavailable)
	}
	t.Skipf("no e2e lab: %s; set LEAKGUARD_E2E=1 to make this a failure", unavailable)
	return nil
}

// leakguardClient returns a client that authenticates as leakguard's
// service account.
func leakguardClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	needLab(t)
	c, err := kubernetes.NewForConfig(leakguardConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testContext is a context that ends with the test, bounded so that a
// hung API call fails the test instead of hanging it.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
