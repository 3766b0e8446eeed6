package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/leakguard/leakguard/remediate"
)

const drainE2EPolicy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  nodes: {perHour: 100}
  storm: {targets: 100}
alerts:
  NodeCgroupLeak:
    target: node
    check:
      name: orphan-cgroups
      args: {threshold: 20}
    remediators:
      - name: cordon
        enabled: true
        args:
          maxUnschedulable: %d
          maxUnschedulablePercent: 100
          poolLabel: leakguard.io/e2e-pool
      - name: drain
        enabled: true
        args: {timeout: 4s, backoff: 500ms, maxBackoff: 1s}
`

// cordon then drain a node against the real API server's eviction
// handler: a PodDisruptionBudget that allows one disruption lets one of
// its two pods go and refuses the other with a real 429, which drain
// retries until its deadline and then reports, leaving the pod alone. A
// DaemonSet's pod is skipped. The PDB's status is set as admin, as the
// disruption controller (absent from the lab) would.
func TestDrainHonoursARealPDB(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	admin := l.Admin
	budgetNS := budgetNamespace(t)
	w := newWorld(t) // a namespace with the default service account
	pool := fmt.Sprintf("drain-%d", worldSeq.Add(1))
	nodeName := pool + "-n"
	createReadyNode(ctx, t, nodeName, map[string]string{"leakguard.io/e2e-pool": pool})
	createReadyNode(ctx, t, pool+"-spare", map[string]string{"leakguard.io/e2e-pool": pool})

	labels := map[string]string{"app": "db"}
	mkPod := func(name string, labels map[string]string, owners []metav1.OwnerReference) {
		must(t, "create pod "+name, func() error {
			p, err := admin.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: owners},
				Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "db", Image: "registry.invalid/db:1"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			// Running and Ready, as a kubelet would report it: the
			// eviction handler judges only such pods by the budget.
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			_, err = admin.CoreV1().Pods(w.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})
	}
	mkPod("db-0", labels, nil)
	mkPod("db-1", labels, nil)
	mkPod("agent-x", map[string]string{"app": "agent"}, []metav1.OwnerReference{controllerRef("apps/v1", "DaemonSet", "agent", "uid-agent")})

	one := intstr.FromInt32(1)
	must(t, "create the PodDisruptionBudget", func() error {
		pdb, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 1, CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 2}
		_, err = admin.PolicyV1().PodDisruptionBudgets(w.Namespace).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
		return err
	})

	// The drain is held back until the decision has answered: a decision
	// that waited for its drain would never answer.
	var wg sync.WaitGroup
	released := make(chan struct{})
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(drainE2EPolicy, unschedulableNodes(ctx, t)+1), budgetNS, func(o *remediate.Options) {
		o.Background = func(f func()) {
			wg.Add(1)
			go func() { defer wg.Done(); <-released; f() }()
		}
	})
	type answer struct {
		d   remediate.Decision
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		d, err := e.DecideOne(ctx, alert("NodeCgroupLeak", map[string]string{"node": nodeName}))
		answered <- answer{d, err}
	}()
	var a answer
	select {
	case a = <-answered:
	case <-time.After(20 * time.Second):
		close(released)
		t.Fatal("the decision did not answer within 20 s with its drain held back: it waits for the drain")
	}
	close(released)
	if a.err != nil || a.d.Decision != remediate.DecisionActed {
		t.Fatalf("decision %s %s %s (%v) %+v, want acted", a.d.Decision, a.d.Reason, a.d.Message, a.err, a.d.Remediators)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the drain did not end within 20 s (its deadline is 4 s)")
	}

	n, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Spec.Unschedulable {
		t.Errorf("the node is not cordoned")
	}
	state := n.Annotations[remediate.AnnotationDrain]
	for _, want := range []string{`"state":"incomplete"`, `"left":1`, `"evicted":1`, "(disruption budget)", "agent-x (DaemonSet)"} {
		if !strings.Contains(state, want) {
			t.Errorf("drain state %s lacks %s", state, want)
		}
	}
	// One pod evicted (terminating: there is no kubelet to finish it),
	// the other untouched: never forced.
	terminating, untouched := 0, 0
	for _, name := range []string{"db-0", "db-1", "agent-x"} {
		p, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			terminating++ // deleted outright
		case p.DeletionTimestamp != nil:
			terminating++
			if name == "agent-x" {
				t.Errorf("the DaemonSet pod was evicted")
			}
		default:
			untouched++
		}
	}
	if terminating != 1 || untouched != 2 {
		t.Errorf("%d pods evicted and %d untouched, want 1 and 2 (a db pod and the DaemonSet's)", terminating, untouched)
	}
	pdb, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Status.DisruptionsAllowed != 0 || len(pdb.Status.DisruptedPods) != 1 {
		t.Errorf("PDB status %+v, want 0 disruptions allowed and one disrupted pod (the API server's own accounting)", pdb.Status)
	}
	evs := events(ctx, t, admin, metav1.NamespaceDefault, nodeName)
	r := reasons(evs)
	if r[remediate.EventReasonDrainIncomplete] != 1 || r[remediate.EventReasonDrainProgress] == 0 || r[remediate.EventReasonActed] != 1 {
		t.Errorf("events on the node by reason %v, want one %s, some %s, one %s", r, remediate.EventReasonDrainIncomplete, remediate.EventReasonDrainProgress, remediate.EventReasonActed)
	}
}
