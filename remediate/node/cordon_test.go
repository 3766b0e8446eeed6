package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func cordonFinding() remediate.Finding {
	return remediate.Finding{Alert: remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": "node-0"}),
		Check: remediate.Result{Confirmed: true, Value: 42, HasValue: true, Summary: "42 > 20"}, Cooldown: time.Hour}
}

func nodeTarget(t *testing.T, cs k8sClient, name string) *remediate.Target {
	t.Helper()
	tg, err := remediate.ResolveTarget(context.Background(), cs, remediate.TargetNode, remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": name}))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newCordonT(t *testing.T, args string) Cordon {
	t.Helper()
	r, err := NewCordon(json.RawMessage(args))
	if err != nil {
		t.Fatalf("NewCordon(%s) = %v", args, err)
	}
	return r.(Cordon)
}

func cordonEnv(cs k8sClient) remediate.Env {
	return remediate.Env{Client: cs, Now: remediatetest.Now, Namespace: "leakguard"}
}

// applyCordon plans and, when the plan acts, applies cordon on node.
func applyCordon(t *testing.T, cs k8sClient, c Cordon, name string) (remediate.Plan, string, error) {
	t.Helper()
	p := c.Plan(nodeTarget(t, cs, name), cordonFinding(), remediatetest.Now)
	if p.Hold != "" {
		return p, "", nil
	}
	out, err := p.Apply(context.Background(), cordonEnv(cs))
	return p, out, err
}

func heldReason(p remediate.Plan, err error) string {
	var h *remediate.HeldError
	if errors.As(err, &h) {
		return h.Reason
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return p.Hold
}

func TestCordonGuards(t *testing.T) {
	for _, tc := range []struct {
		name   string
		objs   []runtime.Object
		target string
		args   string
		want   string // the reason that holds, "" when it cordons
	}{
		{"cordons", remediatetest.Nodes(20, "a"), "node-0", `{}`, ""},
		{"already unschedulable", append(remediatetest.Nodes(19, "a"), remediatetest.Node("node-x", "a", true)), "node-x", `{}`, ReasonAlreadyUnschedulable},
		{"max count, a person's cordon counts", append(remediatetest.Nodes(19, "a"), remediatetest.Node("node-x", "a", true)), "node-0", `{}`, ReasonMaxUnschedulable},
		{"max count, a not-ready taint counts", append(remediatetest.Nodes(19, "a"), func() runtime.Object {
			n := remediatetest.Node("node-x", "a", false)
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}
			return n
		}()), "node-0", `{}`, ReasonMaxUnschedulable},
		{"share of 10 % in a cluster of 5", remediatetest.Nodes(5, "a"), "node-0", `{}`, ReasonMaxUnschedulableShare},
		{"share allows 1 of 10", remediatetest.Nodes(10, "a"), "node-0", `{}`, ""},
		{"share with one down already", append(remediatetest.Nodes(9, "a"), remediatetest.Node("node-x", "a", true)), "node-0", `{"maxUnschedulable": 5}`, ReasonMaxUnschedulableShare},
		{"last schedulable node of its pool", append(remediatetest.Nodes(10, "a"), remediatetest.Node("b-0", "b", false), remediatetest.Node("b-1", "b", true)), "b-0", `{"maxUnschedulable": 5, "maxUnschedulablePercent": 50, "poolLabel": "pool"}`, ReasonLastInPool},
		{"not the last of its pool", append(remediatetest.Nodes(10, "a"), remediatetest.Node("b-0", "b", false), remediatetest.Node("b-1", "b", false)), "b-0", `{"maxUnschedulable": 5, "maxUnschedulablePercent": 50, "poolLabel": "pool"}`, ""},
		{"a lone node is the last of the cluster", remediatetest.Nodes(1, "a"), "node-0", `{"maxUnschedulablePercent": 100}`, ReasonLastInPool},
		{"control plane", append(remediatetest.Nodes(19, "a"), remediatetest.Node("cp", "a", false, labelControlPlane)), "cp", `{}`, ReasonControlPlane},
		{"legacy master label", append(remediatetest.Nodes(19, "a"), remediatetest.Node("cp", "a", false, labelMaster)), "cp", `{}`, ReasonControlPlane},
		{"control plane allowed", append(remediatetest.Nodes(19, "a"), remediatetest.Node("cp", "a", false, labelControlPlane)), "cp", `{"allowControlPlane": true}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := remediatetest.NewCluster(t, tc.objs...)
			p, _, err := applyCordon(t, cs, newCordonT(t, tc.args), tc.target)
			if got := heldReason(p, err); got != tc.want {
				t.Fatalf("cordon %s: held by %q, want %q (detail %q)", tc.target, got, tc.want, p.Detail)
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), tc.target, metav1.GetOptions{})
			wasCordoned := false
			for _, o := range tc.objs {
				if o.(*corev1.Node).Name == tc.target {
					wasCordoned = o.(*corev1.Node).Spec.Unschedulable
				}
			}
			if tc.want == "" != (n.Spec.Unschedulable && !wasCordoned) {
				t.Errorf("node %s unschedulable = %v after a decision held by %q", tc.target, n.Spec.Unschedulable, tc.want)
			}
			if tc.want != "" && len(remediatetest.Patches(cs, "nodes")) != 0 {
				t.Errorf("held by %s, but patched the node: %v", tc.want, remediatetest.Patches(cs, "nodes"))
			}
		})
	}
}

func TestCordonWritesMarkTaintAndReservation(t *testing.T) {
	cs := remediatetest.NewCluster(t, remediatetest.Nodes(10, "a")...)
	_, out, err := applyCordon(t, cs, newCordonT(t, `{"taint": true}`), "node-0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "42 > 20") || !strings.Contains(out, TaintCgroupLeak) {
		t.Errorf("outcome %q names neither the value nor the taint", out)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "node-0", metav1.GetOptions{})
	m, ok := readMark(n.Annotations)
	if !ok || m.Alert != "NodeOrphanCgroups" || m.Value != "42 > 20" || !m.At.Equal(remediatetest.Now) || !m.Taint {
		t.Errorf("mark = %+v (%v), want NodeOrphanCgroups, 42 > 20, %s, taint", m, ok, remediatetest.Now)
	}
	if !n.Spec.Unschedulable || !hasTaint(n, TaintCgroupLeak) {
		t.Errorf("node spec = %+v, want unschedulable and tainted", n.Spec)
	}
	lease, err := cs.CoordinationV1().Leases("leakguard").Get(context.Background(), CordonLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var res reservations
	if err := json.Unmarshal([]byte(lease.Annotations[annotationCordonReservations]), &res); err != nil || !res["node-0"].Equal(remediatetest.Now) {
		t.Errorf("reservations = %v (%v), want node-0 at %s", res, err, remediatetest.Now)
	}
}

// A reservation another replica wrote counts before its node shows
// unschedulable: the second decision is held.
func TestCordonReservationCounts(t *testing.T) {
	cs := remediatetest.NewCluster(t, remediatetest.Nodes(20, "a")...)
	res, _ := json.Marshal(reservations{"node-5": remediatetest.Now.Add(-time.Minute)})
	if _, err := cs.CoordinationV1().Leases("leakguard").Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: CordonLeaseName, Namespace: "leakguard",
		Annotations: map[string]string{annotationCordonReservations: string(res)}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, _, err := applyCordon(t, cs, newCordonT(t, `{}`), "node-0")
	if got := heldReason(p, err); got != ReasonMaxUnschedulable {
		t.Fatalf("held by %q, want %s", got, ReasonMaxUnschedulable)
	}
	// An expired reservation (its replica died before the patch) does not.
	cs = remediatetest.NewCluster(t, remediatetest.Nodes(20, "a")...)
	res, _ = json.Marshal(reservations{"node-5": remediatetest.Now.Add(-cordonReservationTTL)})
	_, _ = cs.CoordinationV1().Leases("leakguard").Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: CordonLeaseName, Namespace: "leakguard",
		Annotations: map[string]string{annotationCordonReservations: string(res)}}}, metav1.CreateOptions{})
	if p, _, err := applyCordon(t, cs, newCordonT(t, `{}`), "node-0"); heldReason(p, err) != "" {
		t.Fatalf("an expired reservation held: %s", heldReason(p, err))
	}
}

// Two replicas decide at once: the second's Lease write conflicts, it
// judges again on the first's reservation and is held.
func TestCordonLeaseConflictRejudges(t *testing.T) {
	cs := remediatetest.NewCluster(t, remediatetest.Nodes(20, "a")...)
	if _, err := cs.CoordinationV1().Leases("leakguard").Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: CordonLeaseName, Namespace: "leakguard"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	raced := false
	cs.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		// The other replica's reservation lands first.
		res, _ := json.Marshal(reservations{"node-7": remediatetest.Now})
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: CordonLeaseName, Namespace: "leakguard", ResourceVersion: "2", Annotations: map[string]string{annotationCordonReservations: string(res)}}}
		if err := cs.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), l, "leakguard"); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), CordonLeaseName, errors.New("modified"))
	})
	p, _, err := applyCordon(t, cs, newCordonT(t, `{}`), "node-0")
	if got := heldReason(p, err); got != ReasonMaxUnschedulable {
		t.Fatalf("after the conflict: held by %q, want %s", got, ReasonMaxUnschedulable)
	}
	if len(remediatetest.Patches(cs, "nodes")) != 0 {
		t.Errorf("patched a node after losing the race")
	}
}

func TestCordonLeaseReadFailureIsTransient(t *testing.T) {
	cs := remediatetest.NewCluster(t, remediatetest.Nodes(20, "a")...)
	cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd")
	})
	_, _, err := applyCordon(t, cs, newCordonT(t, `{}`), "node-0")
	if !remediate.IsTransient(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if len(remediatetest.Patches(cs, "nodes")) != 0 {
		t.Errorf("patched a node without the Lease")
	}
}

func TestNewCordonArgs(t *testing.T) {
	for _, bad := range []string{`{"maxUnschedulable": 0}`, `{"maxUnschedulablePercent": 0}`, `{"maxUnschedulablePercent": 101}`, `{"drain": true}`} {
		if _, err := NewCordon(json.RawMessage(bad)); err == nil {
			t.Errorf("NewCordon(%s) = nil error", bad)
		}
	}
	c := newCordonT(t, ``)
	if c.MaxUnschedulable != 1 || c.MaxUnschedulablePercent != 10 || c.UncordonOnResolve || c.Taint || c.AllowControlPlane {
		t.Errorf("defaults = %+v", c)
	}
}

func TestCordonAfterPersonUncordoned(t *testing.T) {
	n := remediatetest.Node("node-0", "a", false)
	mark, _ := json.Marshal(cordonMark{Alert: "NodeOrphanCgroups", Value: "42 > 20", At: remediatetest.Now.Add(-10 * time.Minute)})
	n.Annotations = map[string]string{AnnotationCordonedBy: string(mark)}
	cs := remediatetest.NewCluster(t, append(remediatetest.Nodes(20, "b")[1:], n)...)
	p := newCordonT(t, `{}`).Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), remediatetest.Now)
	if p.Hold != ReasonUncordonedByPerson || !p.Warn {
		t.Fatalf("Plan = %q (warn %v), want %s", p.Hold, p.Warn, ReasonUncordonedByPerson)
	}
	// After the cooldown, or for another alert, cordon judges afresh.
	if p := newCordonT(t, `{}`).Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), remediatetest.Now.Add(time.Hour)); p.Hold != "" {
		t.Errorf("after the cooldown: held by %s", p.Hold)
	}
	f := cordonFinding()
	f.Alert.Labels["alertname"] = "NodeCgroupLeak"
	if p := newCordonT(t, `{}`).Plan(nodeTarget(t, cs, "node-0"), f, remediatetest.Now); p.Hold != "" {
		t.Errorf("for another alert: held by %s", p.Hold)
	}
}

func TestUncordonOnlyLeakguardsOwnCordon(t *testing.T) {
	mark := func(alert string, taint bool) string {
		b, _ := json.Marshal(cordonMark{Alert: alert, At: remediatetest.Now.Add(-time.Hour), Taint: taint})
		return string(b)
	}
	cordoned := func(ann string, mutate func(*corev1.Node)) *corev1.Node {
		n := remediatetest.Node("node-0", "a", true)
		if ann != "" {
			n.Annotations = map[string]string{AnnotationCordonedBy: ann}
			// leakguard's write set spec.unschedulable.
			n.ManagedFields = append(n.ManagedFields, metav1.ManagedFieldsEntry{Manager: remediate.FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1",
				FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{".":{},"f:leakguard.io/cordoned-by":{}}},"f:spec":{"f:unschedulable":{}}}`)}})
		}
		if mutate != nil {
			mutate(n)
		}
		return n
	}
	later := metav1.NewTime(remediatetest.Now.Add(-time.Minute))
	for _, tc := range []struct {
		name  string
		n     *corev1.Node
		args  string
		want  string // "uncordon", "" (nothing to do) or the reason that holds
		alert string
	}{
		{"leakguard's cordon", cordoned(mark("NodeOrphanCgroups", false), nil), `{"uncordonOnResolve": true}`, "uncordon", ""},
		{"off by default", cordoned(mark("NodeOrphanCgroups", false), nil), `{}`, "", ""},
		{"a person's cordon", cordoned("", nil), `{"uncordonOnResolve": true}`, "", ""},
		{"another alert's cordon", cordoned(mark("NodeCgroupLeak", false), nil), `{"uncordonOnResolve": true}`, ReasonNotOurs, ""},
		{"uncordoned by a person already", cordoned(mark("NodeOrphanCgroups", false), func(n *corev1.Node) { n.Spec.Unschedulable = false }), `{"uncordonOnResolve": true}`, ReasonNotOurs, ""},
		{"its taint removed", cordoned(mark("NodeOrphanCgroups", true), nil), `{"uncordonOnResolve": true}`, ReasonNotOurs, ""},
		{"cordoned again by kubectl since", cordoned(mark("NodeOrphanCgroups", false), func(n *corev1.Node) {
			n.ManagedFields = append(n.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubectl-cordon", Time: &later, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:unschedulable":{}}}`)}})
		}), `{"uncordonOnResolve": true}`, ReasonNotOurs, ""},
		{"the node lifecycle controller's unschedulable taint does not count", cordoned(mark("NodeOrphanCgroups", false), func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
			n.ManagedFields = append(n.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Time: &later, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:taints":{}}}`)}})
		}), `{"uncordonOnResolve": true}`, "uncordon", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := remediatetest.NewCluster(t, tc.n)
			f := cordonFinding()
			f.Alert.Status = "resolved"
			p := newCordonT(t, tc.args).Undo(nodeTarget(t, cs, "node-0"), f, remediatetest.Now)
			got := p.Hold
			if p.Apply != nil {
				got = "uncordon"
				if _, err := p.Apply(context.Background(), cordonEnv(cs)); err != nil {
					t.Fatal(err)
				}
				n, _ := cs.CoreV1().Nodes().Get(context.Background(), "node-0", metav1.GetOptions{})
				if n.Spec.Unschedulable || n.Annotations[AnnotationCordonedBy] != "" {
					t.Errorf("after uncordon: unschedulable %v, mark %q", n.Spec.Unschedulable, n.Annotations[AnnotationCordonedBy])
				}
			}
			if got != tc.want {
				t.Errorf("Undo = %q, want %q (%s)", got, tc.want, p.Detail)
			}
			if tc.want != "uncordon" && len(remediatetest.Patches(cs, "nodes")) != 0 {
				t.Errorf("patched the node: %v", remediatetest.Patches(cs, "nodes"))
			}
		})
	}
}

// Through the engine: a firing alert cordons (Event, metric), a second
// firing is held by the node already unschedulable, and the resolved
// alert uncordons leakguard's cordon.
func TestCordonThroughEngine(t *testing.T) {
	objs := append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
	reg := prometheus.NewRegistry()
	q := &settableQuerier{v: 42}
	e, cs := newTestEngine(t, engineSetup{policy: remediatetest.CordonPolicy, objs: objs, registry: reg, opts: func(o *remediate.Options) { o.Querier = q }})
	a := remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": "node-3"})
	d, err := e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionActed {
		t.Fatalf("first firing: %s %s (%v), %+v", d.Decision, d.Reason, err, d.Remediators)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "node-3", metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Fatalf("node-3 not cordoned")
	}
	if got := remediatetest.Counter(t, reg, "leakguard_remediations_total", map[string]string{"remediator": RemediatorCordon, "result": "success"}); got != 1 {
		t.Errorf("cordon successes = %g, want 1", got)
	}
	evs := remediatetest.Events(t, cs)
	if len(evs) == 0 || evs[len(evs)-1].Reason != remediate.EventReasonActed || !strings.Contains(evs[len(evs)-1].Message, "cordoned Node node-3") {
		t.Errorf("events = %+v, want an Acted Event naming the cordon", evs)
	}
	// Another node's alert: the one slot is taken.
	d, _ = e.DecideOne(context.Background(), remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": "node-4"}))
	if d.Remediators[1].Result != remediate.ResultHeld || !strings.HasPrefix(d.Remediators[1].Detail, ReasonMaxUnschedulable) {
		t.Errorf("second node: cordon %+v, want held by %s", d.Remediators[1], ReasonMaxUnschedulable)
	}
	a.Status = "resolved"
	q.set(3) // Prometheus answers that the finding is gone
	d, err = e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionActed {
		t.Fatalf("resolved: %s %s (%v) %+v", d.Decision, d.Reason, err, d.Remediators)
	}
	n, _ = cs.CoreV1().Nodes().Get(context.Background(), "node-3", metav1.GetOptions{})
	if n.Spec.Unschedulable || n.Annotations[AnnotationCordonedBy] != "" {
		t.Errorf("after resolve: unschedulable %v, mark %q", n.Spec.Unschedulable, n.Annotations[AnnotationCordonedBy])
	}
	// Resolved again (a redelivery): nothing left to undo.
	d, err = e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionResolved {
		t.Errorf("resolved again: %s (%v), want %s", d.Decision, err, remediate.DecisionResolved)
	}
}

// Dry-run: cordon and drain say what they would do and write nothing
// (no node patch, no Lease, no eviction), firing or resolved.
func TestCordonDrainDryRunWritesNothing(t *testing.T) {
	const policy = `
dryRun: true
alerts:
  NodeCgroupLeak:
    target: node
    check: {name: dying-cgroups, args: {threshold: 20}}
    remediators:
      - name: cordon
        enabled: true
        args: {uncordonOnResolve: true}
      - name: drain
        enabled: true
`
	objs := append(remediatetest.Nodes(10, "a"), podOn("shop", "web-1", "node-3", nil), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	q := &settableQuerier{v: 42}
	e, cs := newTestEngine(t, engineSetup{policy: policy, objs: objs, opts: func(o *remediate.Options) {
		o.Querier = q
		o.Background = func(func()) { t.Error("a dry-run started a drain") }
	}})
	ev := remediatetest.Evictions(cs, nil)
	a := remediatetest.Alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "node-3"})
	d, err := e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionDryRun || len(d.Remediators) != 2 || !strings.HasPrefix(d.Remediators[0].Detail, "would patch Node node-3 spec.unschedulable=true") || !strings.HasPrefix(d.Remediators[1].Detail, "would evict the pods of Node node-3") {
		t.Fatalf("dry-run decision %s (%v) %+v", d.Decision, err, d.Remediators)
	}
	// Resolved, on a node leakguard cordoned: would uncordon, does not.
	mark, _ := json.Marshal(cordonMark{Alert: "NodeCgroupLeak", At: remediatetest.Now.Add(-time.Hour)})
	cur, _ := cs.CoreV1().Nodes().Get(context.Background(), "node-3", metav1.GetOptions{})
	cur.Spec.Unschedulable = true
	cur.Annotations = map[string]string{AnnotationCordonedBy: string(mark)}
	if _, err := cs.CoreV1().Nodes().Update(context.Background(), cur, metav1.UpdateOptions{FieldManager: remediate.FieldManager}); err != nil {
		t.Fatal(err)
	}
	cs.ClearActions()
	a.Status = "resolved"
	q.set(3) // Prometheus answers that the finding is gone
	d, err = e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionDryRun || !strings.HasPrefix(d.Remediators[0].Detail, "would uncordon Node node-3") {
		t.Fatalf("resolved dry-run decision %s (%v) %+v", d.Decision, err, d.Remediators)
	}
	for _, act := range cs.Actions() {
		switch act.GetVerb() {
		case "get", "list":
		case "create":
			if act.GetResource().Resource == "events" {
				continue // a dry-run records its decision
			}
			t.Errorf("dry-run wrote: %s %s", act.GetVerb(), act.GetResource().Resource)
		default:
			t.Errorf("dry-run wrote: %s %s", act.GetVerb(), act.GetResource().Resource)
		}
	}
	if len(*ev) != 0 {
		t.Errorf("dry-run evicted %v", *ev)
	}
	if n, _ := cs.CoreV1().Nodes().Get(context.Background(), "node-3", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Errorf("dry-run uncordoned the node")
	}
}
