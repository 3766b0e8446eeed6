package chain

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/node"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// remediatePolicy turns on the disruptive remediators for the alerts of
// TestRemediateChain: for a leaking workload, annotate, profile (its
// pod's heap and goroutines through pods/proxy) and restart
// (minReadyReplicas 1: the lab's Deployments have one replica); cordon
// after annotate for orphan cgroups (at most one node unschedulable; the
// share is lifted so that, of five nodes, the count is the budget that
// refuses); annotate and profile for the apiserver's memory (the heap of
// the lab's own kube-apiserver, at its node's InternalIP and the lab's
// port). The rate limit is raised so that the bucket refuses none of the
// scenario's actions. profile's second heap profile comes 4 s after the
// first: the lab's Alertmanager, with group_interval 1s, gives a webhook
// notification its minimum of 10 s before it cancels it, and the wait,
// the check and three fetches must fit in that.
const remediatePolicy = `
dryRun: false
cooldown: 1h
rateLimit:
  perMinute: 60
  burst: 20
disruption:
  perNamespacePerHour: 2
  storm:
    targets: 5
    window: 10m
    pause: 30m
alerts:
  ContainerMemoryLeak:
    target: workload
    check:
      name: working-set-slope
      args:
        threshold: 1048576
    remediators:
      - name: annotate
      - name: profile
        args:
          timeout: 10s
          growthAfter: 4s
      - name: restart
        enabled: true
        args:
          minReadyReplicas: 1
  NodeOrphanCgroups:
    target: node
    check:
      name: orphan-cgroups
      args:
        threshold: 20
    remediators:
      - name: annotate
      - name: cordon
        enabled: true
        args:
          maxUnschedulable: 1
          maxUnschedulablePercent: 100
  KubeAPIServerMemoryHigh:
    target: apiserver
    allowNamespaces: [kube-system]
    check:
      name: apiserver-memory
      args:
        threshold: 0.6
    remediators:
      - name: annotate
      - name: profile
        args:
          timeout: 20s
          growthAfter: 0s
          apiserverPort: ` + lab.PolicyAPIServerPort + `
`

// TestRemediateChain runs a chain of its own, with remediatePolicy and
// the lab's kube-apiserver profiling, after the shared chain's tests (it
// is parallel, so it waits for them): a leaking Deployment profiled and
// restarted once across two replicas, a node cordoned and a second
// refused by the cordon budget, the pause switch holding a restart, and
// the apiserver's memory alert storing the lab's own apiserver's heap.
// The leaking Deployment's pod serves this process's pprof, which leaks
// for real (lab.ProcessLeak) while the test runs; Prometheus counts the
// lab apiserver's real objects, of which the test makes a burst of
// ConfigMaps before the apiserver's (synthetic) memory alert.
func TestRemediateChain(t *testing.T) {
	need(t)
	t.Parallel()
	bin, err := lab.FindBinaries(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := lab.StartChain(ctx, lab.ChainOptions{RepoRoot: repoRoot, BinDir: bin, Policy: []byte(remediatePolicy), Profiling: true, APIServerObjects: true,
		Progress: func(step string, took time.Duration) {
			fmt.Fprintf(os.Stderr, "remediate chain: %s (%s)\n", step, took.Round(time.Millisecond))
		}})
	if err != nil {
		t.Fatalf("start the chain: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the remediate chain:\n%s", c.Logs())
		}
		if err := c.Close(); err != nil {
			t.Errorf("close the remediate chain: %v", err)
		}
	})

	const gib = 1 << 30
	none := 0
	worker := lab.Node{Name: "rem-worker-1", IP: "10.0.1.11", MemoryBytes: 16 * gib}
	orphanA := lab.Node{Name: "rem-worker-2", IP: "10.0.1.12", MemoryBytes: 16 * gib, OrphanCgroups: &none}
	orphanB := lab.Node{Name: "rem-worker-3", IP: "10.0.1.13", MemoryBytes: 16 * gib, OrphanCgroups: &none}
	spare := lab.Node{Name: "rem-worker-4", IP: "10.0.1.14", MemoryBytes: 16 * gib}
	// The lab's kube-apiserver listens on 127.0.0.1, its node's
	// InternalIP; the synthetic series say it uses 70 % of the node.
	controlPlane := lab.Node{Name: "rem-cp-1", IP: "127.0.0.1", MemoryBytes: 8 * gib, ControlPlane: true, APIServerRSSBytes: 8 * gib * 7 / 10}
	restarted := lab.Workload{Namespace: "cart", Name: "web", Node: worker.Name, LimitBytes: 2 * gib, BaseBytes: 256 << 20, PprofPort: 6060}
	paused := lab.Workload{Namespace: "ledger", Name: "api", Node: worker.Name, LimitBytes: 2 * gib, BaseBytes: 280 << 20}
	// The burst the apiserver's Event is to name, counted by Prometheus
	// before the control-plane node, whose synthetic memory fires the
	// alert, exists.
	burstConfigMaps(ctx, t, c, burstNamespace, burstConfigMapCount, burstConfigMapBytes)
	for _, n := range []lab.Node{worker, orphanA, orphanB, spare, controlPlane} {
		if err := c.AddNode(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
		clearTaints(ctx, t, c, n.Name)
	}
	for _, w := range []lab.Workload{restarted, paused} {
		if err := c.AddWorkload(ctx, w); err != nil {
			t.Fatal(err)
		}
		setRolledOut(ctx, t, c, w)
	}
	// The paused workload's alerts wait in Alertmanager until the pause
	// switch is on.
	silence, err := c.Alertmanager.Silence(ctx, map[string]string{"namespace": paused.Namespace}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []lab.Workload{restarted, paused} {
		if err := c.Metrics.StartLeak(w.Key(), 3<<20); err != nil {
			t.Fatal(err)
		}
	}
	// What restarted's pprof serves leaks for real from now on: the
	// growth between its two heap profiles is leakForTheLab's.
	leak, err := lab.StartProcessLeak(lab.ProcessLeakOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leak.Stop)
	if err := c.Metrics.SetOrphanCgroups(orphanA.Name, 42); err != nil {
		t.Fatal(err)
	}

	t.Run("restart once", func(t *testing.T) { testRestartedOnce(t, c, restarted) })
	t.Run("cordon and budget", func(t *testing.T) { testCordonBudget(t, c, orphanA.Name, orphanB.Name) })
	t.Run("pause switch", func(t *testing.T) { testPauseHoldsRestart(t, c, paused, silence) })
	t.Run("apiserver heap profiled", func(t *testing.T) { testAPIServerProfiled(t, c, controlPlane) })
}

// clearTaints removes the node.kubernetes.io/not-ready:NoSchedule taint
// that the API server's admission puts on a new Node, as the node
// lifecycle controller would once its kubelet reports Ready (the lab runs
// neither): cordon counts a node with it as unschedulable.
func clearTaints(ctx context.Context, t *testing.T, c *lab.Chain, name string) {
	t.Helper()
	nodes := c.Admin.CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("untaint node %s: %v", name, err)
	}
}

// setRolledOut gives w's Deployment the status of a finished rollout
// (lab.Chain.SetRolledOut).
func setRolledOut(ctx context.Context, t *testing.T, c *lab.Chain, w lab.Workload) {
	t.Helper()
	if err := c.SetRolledOut(ctx, w); err != nil {
		t.Fatal(err)
	}
}

// testRestartedOnce: the leak's ContainerMemoryLeak reaches both
// replicas; the Deployment is annotated, its pod profiled through
// pods/proxy and its pod template's restartedAt set, once (one
// LeakguardActed Event naming profile and restart), and the other
// replica's delivery is held by the cooldown claim and stores nothing.
func testRestartedOnce(t *testing.T, c *lab.Chain, w lab.Workload) {
	deps := c.Admin.AppsV1().Deployments(w.Namespace)
	waitFor(t, alertTimeout, "the Deployment restarted and both deliveries decided", func(ctx context.Context) (bool, string, error) {
		d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
		if err != nil {
			return false, "", err
		}
		return d.Spec.Template.Annotations[restart.AnnotationRestartedAt] != "" &&
				count(evs, remediate.EventReasonActed, "") >= 1 &&
				count(evs, remediate.EventReasonHeld, "("+remediate.ReasonCooldown+")") >= 1,
			fmt.Sprintf("template annotations %v, %s", d.Spec.Template.Annotations, describe(evs)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := d.Spec.Template.Annotations[restart.AnnotationRestartedAt]
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		t.Errorf("%s = %q, not a time: %v", restart.AnnotationRestartedAt, at, err)
	}
	if got := d.Annotations[annotate.AnnotationFinding]; got != rules.AlertContainerMemoryLeak {
		t.Errorf("annotation %s = %q, want %s", annotate.AnnotationFinding, got, rules.AlertContainerMemoryLeak)
	}
	generation := d.Generation
	// Redeliveries must not restart again: wait out a few group
	// intervals, then the template and the Events are as they were.
	time.Sleep(3 * time.Second)
	d, err = deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Annotations[restart.AnnotationRestartedAt]; got != at || d.Generation != generation {
		t.Errorf("restarted again: %s %q → %q, generation %d → %d", restart.AnnotationRestartedAt, at, got, generation, d.Generation)
	}
	evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, ""); n != 1 {
		t.Errorf("%d LeakguardActed Events, want exactly 1: %s", n, describe(evs))
	}
	if n := count(evs, remediate.EventReasonActed, restart.Name+" acted"); n != 1 {
		t.Errorf("the LeakguardActed Event does not say restart acted: %s", describe(evs))
	}
	if n := count(evs, remediate.EventReasonActed, profile.Name+" acted: profiles stored"); n != 1 {
		t.Errorf("the LeakguardActed Event does not say profile acted: %s", describe(evs))
	}
	acted := ""
	for _, e := range evs {
		if e.Reason == remediate.EventReasonActed {
			acted = e.Message
		}
	}
	checkWorkloadProfiled(ctx, t, c, w, d.Annotations[profile.AnnotationProfile], acted)
}

// testCordonBudget: orphan cgroups on node a fire NodeOrphanCgroups, and
// a is annotated and cordoned (spec.unschedulable, leakguard.io/cordoned-by);
// then orphans on node b are refused by maxUnschedulable 1: b is
// annotated (a LeakguardActed Event) but its cordon held with reason
// max-unschedulable, b schedulable and without cordoned-by.
func testCordonBudget(t *testing.T, c *lab.Chain, a, b string) {
	nodes := c.Admin.CoreV1().Nodes()
	waitFor(t, alertTimeout, "node "+a+" cordoned", func(ctx context.Context) (bool, string, error) {
		n, err := nodes.Get(ctx, a, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", a)
		if err != nil {
			return false, "", err
		}
		return n.Spec.Unschedulable && n.Annotations[node.AnnotationCordonedBy] != "" &&
				n.Annotations[annotate.AnnotationFinding] == rules.AlertNodeOrphanCgroups &&
				count(evs, remediate.EventReasonActed, node.RemediatorCordon+" acted") >= 1,
			fmt.Sprintf("unschedulable %t, annotations %v, %s", n.Spec.Unschedulable, n.Annotations, describe(evs)), nil
	})
	if err := c.Metrics.SetOrphanCgroups(b, 42); err != nil {
		t.Fatal(err)
	}
	// annotate acts, so the decision's Event is LeakguardActed; it says
	// that cordon was held, and why.
	cordonHeld := node.RemediatorCordon + " held: " + node.ReasonMaxUnschedulable
	waitFor(t, alertTimeout, "node "+b+" refused by the cordon budget", func(ctx context.Context) (bool, string, error) {
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", b)
		if err != nil {
			return false, "", err
		}
		return count(evs, remediate.EventReasonActed, cordonHeld) >= 1, describe(evs), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	time.Sleep(2 * time.Second)
	n, err := nodes.Get(ctx, b, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.Unschedulable || n.Annotations[node.AnnotationCordonedBy] != "" {
		t.Errorf("node %s cordoned past the budget: unschedulable %t, annotations %v", b, n.Spec.Unschedulable, n.Annotations)
	}
	evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", b)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, node.RemediatorCordon+" acted"); n != 0 {
		t.Errorf("%d LeakguardActed Events naming cordon on node %s: %s", n, b, describe(evs))
	}
	// a is still leakguard's one cordon, cordoned once.
	na, err := nodes.Get(ctx, a, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !na.Spec.Unschedulable {
		t.Errorf("node %s uncordoned", a)
	}
	evsA, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", a)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evsA, remediate.EventReasonActed, ""); n != 1 {
		t.Errorf("%d LeakguardActed Events on node %s, want 1: %s", n, a, describe(evsA))
	}
}

// testPauseHoldsRestart: with leakguard.io/pause: "true" on leakguard's
// namespace, the leaking workload's alert (silenced until the switch is
// on) is delivered, annotate acts and restart is held with reason paused
// (said in the LeakguardActed Event): the Deployment's spec, its pod
// template included, is unchanged.
func testPauseHoldsRestart(t *testing.T, c *lab.Chain, w lab.Workload, silence string) {
	ctx, cancel := context.WithTimeout(context.Background(), alertTimeout+time.Minute)
	defer cancel()
	ns := strings.SplitN(c.ServiceAccount, "/", 2)[0]
	if err := setPause(ctx, c, ns, "true"); err != nil {
		t.Fatal(err)
	}
	deps := c.Admin.AppsV1().Deployments(w.Namespace)
	before, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitSilenced(t, c, w.Namespace, "the paused workload's alert firing, silenced")
	if err := c.Alertmanager.Expire(ctx, silence); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the restart held by the pause switch", func(ctx context.Context) (bool, string, error) {
		evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
		if err != nil {
			return false, "", err
		}
		return count(evs, remediate.EventReasonActed, restart.Name+" held: "+remediate.ReasonPaused) >= 1, describe(evs), nil
	})
	time.Sleep(2 * time.Second)
	d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The generation moves with the annotations (a Deployment's
	// generation counts metadata.annotations too): compare the spec.
	if got := d.Spec.Template.Annotations[restart.AnnotationRestartedAt]; got != "" || !apiequality.Semantic.DeepEqual(before.Spec, d.Spec) {
		t.Errorf("restarted while paused: %s %q, spec changed:\nbefore %+v\nafter  %+v", restart.AnnotationRestartedAt, got, before.Spec, d.Spec)
	}
	evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, restart.Name+" acted"); n != 0 {
		t.Errorf("%d LeakguardActed Events naming restart while paused: %s", n, describe(evs))
	}
}

// setPause sets leakguard.io/pause on namespace ns to value.
func setPause(ctx context.Context, c *lab.Chain, ns, value string) error {
	nss := c.Admin.CoreV1().Namespaces()
	n, err := nss.Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[remediate.AnnotationPause] = value
	_, err = nss.Update(ctx, n, metav1.UpdateOptions{})
	return err
}
