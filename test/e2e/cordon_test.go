package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	nodeplugin "github.com/leakguard/leakguard/remediate/node"
)

// newEngineWithPolicy builds an engine with policy that acts through c and
// keeps its Leases in namespace.
func newEngineWithPolicy(t *testing.T, c kubernetes.Interface, policy, namespace string, o func(*remediate.Options)) *remediate.Engine {
	t.Helper()
	p, err := remediate.ParsePolicy([]byte(policy), builtin.Registry())
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	opts := remediate.Options{Client: c, Querier: &answerQuerier{value: confirmingValue}, Policy: p, Namespace: namespace, QueryTimeout: 5 * time.Second}
	if o != nil {
		o(&opts)
	}
	e, err := remediate.NewEngine(opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// unschedulableNodes counts the lab's nodes that cordon counts as
// unschedulable (other tests' nodes included).
func unschedulableNodes(ctx context.Context, t *testing.T) int {
	t.Helper()
	l, err := needLab(t).Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range l.Items {
		down := node.Spec.Unschedulable
		for _, taint := range node.Spec.Taints {
			switch taint.Key {
			case corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, corev1.TaintNodeUnschedulable, nodeplugin.TaintCgroupLeak:
				down = true
			}
		}
		if down {
			n++
		}
	}
	return n
}

// createReadyNode creates a node with labels and takes off the
// node.kubernetes.io/not-ready taint that the API server's admission
// puts on every new node: the node lifecycle controller would, once the
// kubelet reports Ready, and the lab has neither.
func createReadyNode(ctx context.Context, t *testing.T, name string, labels map[string]string) {
	t.Helper()
	c := needLab(t).Admin
	must(t, "create node "+name, func() error {
		n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = nil
		_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

const cordonRacePolicy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  nodes: {perHour: 100}
  storm: {targets: 100}
alerts:
  NodeOrphanCgroups:
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
`

// Two engines, each with its own client as leakguard's service account,
// decide at once the alerts of two nodes when one cordon slot is left:
// one node is cordoned, the other engine is held by the count it reads
// from the cluster or the reservation it finds in the Lease. Three
// rounds, each with one slot more.
func TestCordonRaceForTheLastSlot(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	pool := fmt.Sprintf("race-%d", worldSeq.Add(1))
	// A spare schedulable node keeps the pool from its last node.
	mkNode := func(name string) { createReadyNode(ctx, t, name, map[string]string{"leakguard.io/e2e-pool": pool}) }
	mkNode(pool + "-spare")
	base := unschedulableNodes(ctx, t)
	for round := 1; round <= 3; round++ {
		policy := fmt.Sprintf(cordonRacePolicy, base+round)
		a, b := fmt.Sprintf("%s-r%d-a", pool, round), fmt.Sprintf("%s-r%d-b", pool, round)
		mkNode(a)
		mkNode(b)
		// Both engines list the nodes before either reserves a slot: the
		// nodeListBarrier holds each one's first list of nodes until the other's
		// arrives, so both count the same free slot, and only the Lease
		// can keep the second from taking it too.
		bar := newNodeListBarrier(2)
		engines := []*remediate.Engine{
			newEngineWithPolicy(t, barrierClient(t, bar), policy, ns, nil),
			newEngineWithPolicy(t, barrierClient(t, bar), policy, ns, nil),
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		ds := make([]remediate.Decision, 2)
		errs := make([]error, 2)
		for i, n := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ds[i], errs[i] = engines[i].DecideOne(ctx, alert("NodeOrphanCgroups", map[string]string{"node": n}))
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		took := time.Since(t0)
		acted, held := 0, 0
		for i := range ds {
			if errs[i] != nil {
				t.Fatalf("round %d engine %d: %v (%+v)", round, i, errs[i], ds[i])
			}
			switch {
			case ds[i].Decision == remediate.DecisionActed:
				acted++
			case ds[i].Decision == remediate.DecisionHeld && ds[i].Reason == nodeplugin.ReasonMaxUnschedulable:
				held++
			default:
				t.Errorf("round %d engine %d: %s %s %s, want acted or held by %s", round, i, ds[i].Decision, ds[i].Reason, ds[i].Message, nodeplugin.ReasonMaxUnschedulable)
			}
		}
		cordoned := 0
		for _, n := range []string{a, b} {
			node, err := l.Admin.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if node.Spec.Unschedulable {
				cordoned++
				if !strings.Contains(node.Annotations[nodeplugin.AnnotationCordonedBy], "NodeOrphanCgroups") {
					t.Errorf("%s cordoned without leakguard's mark: %v", n, node.Annotations)
				}
			}
		}
		if !bar.met() {
			t.Errorf("round %d: the engines' lists of nodes did not meet at the nodeListBarrier", round)
		}
		if acted != 1 || held != 1 || cordoned != 1 {
			t.Errorf("round %d: %d acted, %d held, %d of 2 nodes cordoned; want 1, 1, 1", round, acted, held, cordoned)
		}
		if got := unschedulableNodes(ctx, t); got != base+round {
			t.Errorf("round %d: %d nodes unschedulable, want %d", round, got, base+round)
		}
		t.Logf("round %d: two engines decided in %s", round, took.Round(time.Millisecond))
	}
}

// nodeListBarrier lets n requests through together, once: each waits for the
// others (at most 10 s, so a test that goes wrong does not hang).
type nodeListBarrier struct {
	mu      sync.Mutex
	left    int
	release chan struct{}
}

func newNodeListBarrier(n int) *nodeListBarrier {
	return &nodeListBarrier{left: n, release: make(chan struct{})}
}

func (b *nodeListBarrier) wait() {
	b.mu.Lock()
	if b.left == 0 {
		b.mu.Unlock()
		return
	}
	b.left--
	if b.left == 0 {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-time.After(10 * time.Second):
	}
}

func (b *nodeListBarrier) met() bool {
	select {
	case <-b.release:
		return true
	default:
		return false
	}
}

// barrierClient is leakguard's client whose first list of nodes waits at
// bar.
func barrierClient(t *testing.T, bar *nodeListBarrier) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(leakguardConfig)
	var once sync.Once
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes" {
				once.Do(bar.wait)
			}
			return rt.RoundTrip(r)
		})
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const uncordonPolicy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  nodes: {perHour: 100}
  storm: {targets: 100}
alerts:
  NodeOrphanCgroups:
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
          uncordonOnResolve: true
`

// uncordonOnResolve against the real API server and its managedFields:
// leakguard's own cordon is undone when the alert resolves; a node that a
// person uncordoned and cordoned again (as kubectl does, under its own
// field manager) is left cordoned, although it still carries leakguard's
// mark.
func TestUncordonOnResolveOnlyLeakguardsOwn(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	pool := fmt.Sprintf("uncordon-%d", worldSeq.Add(1))
	labels := map[string]string{"leakguard.io/e2e-pool": pool}
	for _, n := range []string{"spare", "own", "touched"} {
		createReadyNode(ctx, t, pool+"-"+n, labels)
	}
	q := &undoQuerier{value: confirmingValue}
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(uncordonPolicy, unschedulableNodes(ctx, t)+2), ns, func(o *remediate.Options) { o.Querier = q })
	decide := func(node, status string) remediate.Decision {
		a := alert("NodeOrphanCgroups", map[string]string{"node": node})
		a.Status = status
		d, err := e.DecideOne(ctx, a)
		if err != nil {
			t.Fatalf("%s %s: %v", node, status, err)
		}
		return d
	}
	unschedulable := func(node string) bool {
		n, err := l.Admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Spec.Unschedulable
	}
	own, touched := pool+"-own", pool+"-touched"
	for _, n := range []string{own, touched} {
		if d := decide(n, "firing"); d.Decision != remediate.DecisionActed || !unschedulable(n) {
			t.Fatalf("cordon %s: %s %s %s", n, d.Decision, d.Reason, d.Message)
		}
	}
	// A person uncordons and cordons again, as kubectl does, within the
	// same second as leakguard's cordon: the field's owner tells, not
	// its time.
	for _, v := range []string{"false", "true"} {
		if _, err := l.Admin.CoreV1().Nodes().Patch(ctx, touched, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":`+v+`}}`), metav1.PatchOptions{FieldManager: "kubectl-cordon"}); err != nil {
			t.Fatal(err)
		}
	}
	q.answer(3, false, nil) // Prometheus answers that the finding is gone
	if d := decide(own, "resolved"); d.Decision != remediate.DecisionActed || unschedulable(own) {
		t.Errorf("resolved on leakguard's own cordon: %s %s %s, unschedulable %v; want uncordoned", d.Decision, d.Reason, d.Message, unschedulable(own))
	}
	if d := decide(touched, "resolved"); d.Decision != remediate.DecisionHeld || d.Reason != nodeplugin.ReasonNotOurs || !unschedulable(touched) {
		t.Errorf("resolved on a node a person cordoned again: %s %s %s, unschedulable %v; want held by %s and still cordoned", d.Decision, d.Reason, d.Message, unschedulable(touched), nodeplugin.ReasonNotOurs)
	}
}
